"""One trace per request, for the requests that sampling or on-demand capture pick."""

from __future__ import annotations

import functools
import random
import re
from collections.abc import Awaitable, Callable, Collection, Iterator
from contextlib import contextmanager
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.core.signals import setting_changed
from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django.urls import get_resolver, get_urlconf
from django.utils.module_loading import import_string

from tracer import sqlcomment
from tracer.conf import Config, get_config
from tracer.recorder import capture
from tracer.trace import Trace

#: The request header and the cookie that ask for a request to be recorded.
ON_DEMAND_HEADER = "X-Tracer"
ON_DEMAND_COOKIE = "tracer"
_HEADER_KEY = "HTTP_" + ON_DEMAND_HEADER.upper().replace("-", "_")

# Where sampling draws its numbers (tests swap it for a seeded one).
draw: Callable[[], float] = random.random


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

    Which requests are recorded is ``TRACER["SAMPLE"]`` (a rate, or a callable taking
    the request), and ``TRACER["ON_DEMAND"]`` for those sampling skipped: the header
    ``X-Tracer: 1`` or the cookie ``tracer=1``, honoured only for requests that
    ``SHOW_CALLBACK`` allows (or that the ON_DEMAND callable accepts). A request that
    is not recorded records nothing and has ``request.tracer_trace = None``.

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
        config = get_config()
        # Sampling first: a request it skips need not be resolved.
        if not recorded(request, config) or is_tracer_request(request):
            request.tracer_trace = None
            return self.get_response(request)
        with _recording(request, config) as facts:
            try:
                response = self.get_response(request)
            except BaseException:
                _end(request, facts, None)
                raise
            _end(request, facts, response)
        return response

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        config = get_config()
        if not recorded(request, config) or is_tracer_request(request):
            request.tracer_trace = None
            return await self.get_response(request)
        with _recording(request, config) as facts:
            try:
                response = await self.get_response(request)
            except BaseException:
                _end(request, facts, None)
                raise
            _end(request, facts, response)
        return response


def recorded(request: HttpRequest, config: Config | None = None) -> bool:
    """Whether TracerMiddleware records ``request``: sampled, or asked for on demand
    by a client allowed to."""
    config = config or get_config()
    sample = config.sample
    if sample == 1:
        return True
    if isinstance(sample, (int, float)):
        if sample > 0 and draw() < sample:
            return True
    elif _callable(sample)(request):
        return True
    return on_demand(request, config)


def on_demand(request: HttpRequest, config: Config | None = None) -> bool:
    """Whether ``request`` asks to be recorded (``X-Tracer: 1`` or cookie ``tracer=1``)
    and ``TRACER["ON_DEMAND"]`` grants it."""
    config = config or get_config()
    policy = config.on_demand
    if policy is False:
        return False
    asked = request.META.get(_HEADER_KEY) == "1" or request.COOKIES.get(ON_DEMAND_COOKIE) == "1"
    if not asked:
        return False
    if policy is True:
        from tracer.access import allowed

        return allowed(request)
    return bool(_callable(policy)(request))


def _callable(value: Any) -> Callable[[HttpRequest], Any]:
    return import_string(value) if isinstance(value, str) else value


@contextmanager
def _recording(request: HttpRequest, config: Config) -> Iterator[dict[str, Any]]:
    with capture(f"{request.method} {request.path}") as trace:
        if not config.sql_comments:
            yield _begin(request, trace)
            return
        token = sqlcomment.current_request.set(request)
        try:
            yield _begin(request, trace)
        finally:
            sqlcomment.current_request.reset(token)


def is_tracer_request(request: HttpRequest, apps: Collection[str] = ("tracer", "djdt")) -> bool:
    """Whether ``request`` is for one of the tracer's own views, or by default also
    django-debug-toolbar's (which render the tracer's panel): whether its path is under
    where those URL namespaces are included (a few regex matches, not a resolution)."""
    urlconf = getattr(request, "urlconf", None) or get_urlconf()
    path = request.path_info.removeprefix("/")
    return any(mount.match(path) for mount in _mounts(urlconf, tuple(apps)))


@functools.lru_cache(maxsize=16)
def _mounts(urlconf: Any, apps: tuple[str, ...]) -> list[re.Pattern[str]]:
    """The path prefixes (as Django's own patterns) under which ``urlconf`` includes
    the namespaces ``apps``."""
    namespaces = get_resolver(urlconf).namespace_dict
    return [re.compile(namespaces[app][0]) for app in apps if app in namespaces]


def _clear_mounts(**kwargs: Any) -> None:
    _mounts.cache_clear()


# URLconfs change in tests (override_settings(ROOT_URLCONF=...)).
setting_changed.connect(_clear_mounts)


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
