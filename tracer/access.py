"""Who may see the tracer's pages: every tracer URL is a 404 unless this allows it."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from django.conf import settings
from django.http import Http404, HttpRequest
from django.utils.module_loading import import_string

from tracer.conf import get_config

View = TypeVar("View", bound=Callable[..., Any])


def show_tracer(request: HttpRequest) -> bool:
    """The default: DEBUG is on and the client's address is in INTERNAL_IPS (the
    rule django-debug-toolbar uses)."""
    return bool(settings.DEBUG) and request.META.get("REMOTE_ADDR") in settings.INTERNAL_IPS


def allowed(request: HttpRequest) -> bool:
    """Whether ``request`` may see the tracer: ``TRACER["SHOW_CALLBACK"]``, or
    ``show_tracer`` when that is None."""
    callback = get_config().show_callback
    if callback is None:
        callback = show_tracer
    elif isinstance(callback, str):
        callback = import_string(callback)
    return bool(callback(request))


def tracer_view(view: View) -> View:
    """Make ``view`` a 404 for anyone the show-callback does not allow."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        if not allowed(request):
            raise Http404("Not found")
        return view(request, *args, **kwargs)

    return wrapper  # type: ignore[return-value]
