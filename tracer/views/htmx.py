"""The little of htmx the views need, without django-htmx's middleware (users may not
install it)."""

from __future__ import annotations

from typing import TypeVar

from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django.utils.cache import patch_vary_headers

Response = TypeVar("Response", bound=HttpResponseBase)


def is_htmx(request: HttpRequest) -> bool:
    """Whether to answer with a fragment: an htmx request, but not the one htmx makes
    to restore a page missing from its history cache, which needs the whole page."""
    headers = request.headers
    return headers.get("HX-Request") == "true" and headers.get("HX-History-Restore-Request") != (
        "true"
    )


def vary_on_htmx(response: Response) -> Response:
    """Mark a response that is a page or a fragment depending on the request, so that
    no cache hands one out for the other."""
    patch_vary_headers(response, ("HX-Request",))
    return response
