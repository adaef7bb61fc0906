"""One trace per request."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django.urls import Resolver404, resolve

from tracer.recorder import capture
from tracer.trace import Trace


class TracerMiddleware:
    """Record each request in its own trace, labelled ``"GET /books/"``.

    The trace is ``request.tracer_trace`` while the request runs, and its ``request``
    dict holds ``method``, ``path``, ``status`` and ``view`` (the resolved view's
    dotted path; None if no URL matched). Like any outermost ``tracer.capture()``, it
    is kept in the store (``tracer.store``) when it ends.

    It ends when the rest of the stack returns a response: for a streaming response,
    before the content is streamed, so statements run while streaming are not in it.
    If the rest of the stack raises (Django turns view exceptions into 500 responses
    unless ``DEBUG_PROPAGATE_EXCEPTIONS`` is set), the trace ends with status None and
    the exception goes on.

    The tracer's own pages (the ``tracer`` URL namespace) are not recorded: the live
    list polls them, and would fill the store with traces of itself. Nor are
    django-debug-toolbar's (``djdt``), which fetch its panels.
    """

    sync_capable = True
    async_capable = True

    def __init__(
        self,
        get_response: (
            Callable[[HttpRequest], HttpResponseBase]
            | Callable[[HttpRequest], Awaitable[HttpResponseBase]]
        ),
    ) -> None:
        self.get_response = get_response
        self.async_mode = iscoroutinefunction(get_response)
        if self.async_mode:
            # Mark the instance as a coroutine function, but switch paths inside
            # __call__ to avoid swapping out dunder methods.
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> HttpResponseBase | Awaitable[HttpResponseBase]:
        if self.async_mode:
            return self.__acall__(request)
        if is_tracer_request(request):
            return self.get_response(request)
        with capture(f"{request.method} {request.path}") as trace:
            facts = _begin(request, trace)
            try:
                response = self.get_response(request)
            except BaseException:
                _end(request, facts, None)
                raise
            _end(request, facts, response)
        return response

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        if is_tracer_request(request):
            return await self.get_response(request)
        with capture(f"{request.method} {request.path}") as trace:
            facts = _begin(request, trace)
            try:
                response = await self.get_response(request)
            except BaseException:
                _end(request, facts, None)
                raise
            _end(request, facts, response)
        return response


def is_tracer_request(request: HttpRequest, apps: Collection[str] = ("tracer", "djdt")) -> bool:
    """Whether ``request`` is for one of the tracer's own views, or by default also
    django-debug-toolbar's (which render the tracer's panel)."""
    try:
        match = resolve(request.path_info, getattr(request, "urlconf", None))
    except Resolver404:
        return False
    return any(app in match.app_names for app in apps)


def _begin(request: HttpRequest, trace: Trace) -> dict[str, Any]:
    request.tracer_trace = trace
    facts: dict[str, Any] = {
        "method": request.method,
        "path": request.path,
        "status": None,
        "view": None,
    }
    trace.request = facts
    return facts


def _end(request: HttpRequest, facts: dict[str, Any], response: HttpResponseBase | None) -> None:
    if response is not None:
        facts["status"] = response.status_code
    match = getattr(request, "resolver_match", None)
    if match is not None:
        facts["view"] = match._func_path
