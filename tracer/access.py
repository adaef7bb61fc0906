"""Who may see the tracer's pages: every tracer URL is a 404 unless this allows it.
And what they see when the store cannot be read: its error, not a server error."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.module_loading import import_string

from tracer.conf import get_config
from tracer.store import StoreError

View = TypeVar("View", bound=Callable[..., Any])


class NotFound(Http404):
    """What a tracer page asked for is not there (a trace the store no longer holds, a
    statement past its last): ``tracer_view`` answers with the tracer's own 404 page,
    saying why."""


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


def missing_trace(trace_id: str) -> str:
    """Why a trace's page is a 404."""
    return (
        f"No trace {trace_id!r} in the store: it is unknown, or was evicted since "
        "(the store keeps the newest traces only; see TRACER['STORE_TRACES'])."
    )


def not_found(request: HttpRequest, message: str) -> HttpResponse:
    """The tracer's 404 page (a fragment for htmx) with ``message``."""
    from tracer.views.htmx import is_htmx, vary_on_htmx

    template = "tracer/_not_found.html" if is_htmx(request) else "tracer/not_found.html"
    return vary_on_htmx(render(request, template, {"message": message}, status=404))


def tracer_view(view: View) -> View:
    """Make ``view`` a 404 for anyone the show-callback does not allow, and show a
    store that cannot be read (``StoreError``) as a 503 page saying why."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        if not allowed(request):
            raise Http404("Not found")
        try:
            return view(request, *args, **kwargs)
        except StoreError as exc:
            return render(request, "tracer/store_error.html", {"error": str(exc)}, status=503)
        except NotFound as exc:
            return not_found(request, str(exc))

    return wrapper  # type: ignore[return-value]
