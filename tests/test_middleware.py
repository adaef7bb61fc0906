from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from asgiref.sync import async_to_sync, iscoroutinefunction
from django.http import HttpRequest, HttpResponse
from django.test import AsyncClient, Client, RequestFactory, override_settings

import tracer
from tests.testapp.models import Author
from tracer.middleware import TracerMiddleware
from tracer.store import get_store
from tracer.trace import Trace

pytestmark = pytest.mark.django_db

COUNT_SQL = 'SELECT COUNT(*) AS "__count" FROM "testapp_author"'


@pytest.fixture(autouse=True)
def middleware() -> Iterator[None]:
    get_store().clear()
    with override_settings(MIDDLEWARE=["tracer.middleware.TracerMiddleware"]):
        yield
    get_store().clear()


def stored() -> Trace:
    (trace,) = get_store().traces()
    assert trace.finished
    return trace


def test_sync_and_async_capable():
    def view(request: HttpRequest) -> HttpResponse:
        return HttpResponse()

    async def aview(request: HttpRequest) -> HttpResponse:
        return HttpResponse()

    assert not iscoroutinefunction(TracerMiddleware(view))
    assert iscoroutinefunction(TracerMiddleware(aview))


def test_request_is_one_stored_trace(client: Client):
    Author.objects.create(name="Ann")
    response = client.get("/authors/")
    assert response.content == b"1 authors, traced as GET /authors/"
    trace = stored()
    assert response.wsgi_request.tracer_trace is trace
    assert trace.label == "GET /authors/"
    assert trace.request == {
        "method": "GET",
        "path": "/authors/",
        "status": 200,
        "view": "tests.testapp.views.authors",
    }
    assert [(s.alias, s.sql, s.params) for s in trace.statements] == [("default", COUNT_SQL, ())]


def test_async_request_is_one_stored_trace(async_client: AsyncClient):
    Author.objects.create(name="Ann")
    response = async_to_sync(async_client.post)("/aauthors/")
    assert response.content == b"1 authors, traced as POST /aauthors/"
    trace = stored()
    assert response.asgi_request.tracer_trace is trace
    assert trace.label == "POST /aauthors/"
    assert trace.request == {
        "method": "POST",
        "path": "/aauthors/",
        "status": 200,
        "view": "tests.testapp.views.aauthors",
    }
    assert [(s.alias, s.sql, s.params) for s in trace.statements] == [("default", COUNT_SQL, ())]


def test_each_request_its_own_trace(client: Client):
    client.get("/authors/")
    client.get("/missing/")
    missing, authors = get_store().traces()
    assert missing.request == {"method": "GET", "path": "/missing/", "status": 404, "view": None}
    assert missing.statements == []
    assert authors.label == "GET /authors/"
    assert [s.sql for s in authors.statements] == [COUNT_SQL]


def test_view_exception_is_a_500(client: Client):
    with pytest.raises(ValueError, match="^broken view$"):
        client.get("/broken/")
    trace = stored()
    assert trace.request == {
        "method": "GET",
        "path": "/broken/",
        "status": 500,
        "view": "tests.testapp.views.broken",
    }
    assert [s.sql for s in trace.statements] == [COUNT_SQL]


@override_settings(DEBUG_PROPAGATE_EXCEPTIONS=True)
def test_exception_through_the_middleware(client: Client):
    with pytest.raises(ValueError, match="^broken view$"):
        client.get("/broken/")
    trace = stored()
    assert trace.request == {
        "method": "GET",
        "path": "/broken/",
        "status": None,
        "view": "tests.testapp.views.broken",
    }
    assert [s.sql for s in trace.statements] == [COUNT_SQL]


@override_settings(DEBUG_PROPAGATE_EXCEPTIONS=True)
def test_async_exception_through_the_middleware(async_client: AsyncClient):
    with pytest.raises(ValueError, match="^broken view$"):
        async_to_sync(async_client.get)("/broken/")
    trace = stored()
    assert trace.request == {
        "method": "GET",
        "path": "/broken/",
        "status": None,
        "view": "tests.testapp.views.broken",
    }
    assert [s.sql for s in trace.statements] == [COUNT_SQL]


def test_streaming_response_trace_ends_before_content(client: Client):
    response = client.get("/streamed/")
    trace = stored()
    assert b"".join(response.streaming_content) == b"0 authors"
    assert trace.request is not None
    assert trace.request["status"] == 200
    assert [(s.sql, s.params) for s in trace.statements] == [
        ('SELECT %s AS "a" FROM "testapp_author" LIMIT 1', (1,))
    ]


@override_settings(DEBUG=True, INTERNAL_IPS=["127.0.0.1"])
def test_the_tracers_own_pages_are_not_recorded(client: Client):
    client.get("/authors/")
    assert client.get("/__tracer__/").status_code == 200
    assert client.get("/__tracer__/compare/").status_code == 200
    assert async_to_sync(AsyncClient().get)("/__tracer__/").status_code == 200
    (trace,) = get_store().traces()
    assert trace.label == "GET /authors/"


@override_settings(ROOT_URLCONF="tests.urlconfs.elsewhere", DEBUG=True, INTERNAL_IPS=["127.0.0.1"])
def test_the_app_is_left_alone_where_it_is_mounted(client: Client):
    assert client.get("/internal/queries/").status_code == 200
    assert client.get("/authors/").status_code == 200
    assert client.get("/authors/", SCRIPT_NAME="/shop").status_code == 200
    assert client.get("/internal/queries/", SCRIPT_NAME="/shop").status_code == 200

    assert [trace.label for trace in get_store().traces()] == [
        "GET /shop/authors/",
        "GET /authors/",
    ]


@override_settings(ROOT_URLCONF="tests.urlconfs.unmounted")
def test_without_the_app_every_page_is_recorded(client: Client):
    assert client.get("/__tracer__/").status_code == 200

    assert [trace.label for trace in get_store().traces()] == ["GET /__tracer__/"]


# Sampling and on-demand capture --------------------------------------------------------


def draws(monkeypatch: pytest.MonkeyPatch, *values: float) -> list[float]:
    """Make sampling draw ``values`` in turn; returns the list, emptied as drawn."""
    pending = list(values)
    monkeypatch.setattr("tracer.middleware.draw", lambda: pending.pop(0))
    return pending


def only_authors(request: HttpRequest) -> bool:
    return request.path == "/authors/"


def view_recording(request: HttpRequest) -> HttpResponse:
    """A view saying whether it runs inside a trace, after running a query."""
    Author.objects.count()
    return HttpResponse(f"{request.tracer_trace} {tracer.current_trace()}")


async def aview_recording(request: HttpRequest) -> HttpResponse:
    await Author.objects.acount()
    return HttpResponse(f"{request.tracer_trace} {tracer.current_trace()}")


@override_settings(TRACER={"SAMPLE": 0})
def test_unsampled_request_records_nothing():
    response = TracerMiddleware(view_recording)(RequestFactory().get("/"))
    assert response.content == b"None None"
    assert get_store().traces() == []


@override_settings(TRACER={"SAMPLE": 0})
def test_unsampled_async_request_records_nothing():
    middleware = TracerMiddleware(aview_recording)
    response = async_to_sync(middleware)(RequestFactory().get("/"))
    assert response.content == b"None None"
    assert get_store().traces() == []


@override_settings(TRACER={"SAMPLE": 0.25})
def test_sampled_at_a_rate(monkeypatch: pytest.MonkeyPatch):
    pending = draws(monkeypatch, 0.1, 0.3, 0.2499, 0.25)
    middleware = TracerMiddleware(view_recording)
    for path in ("/1/", "/2/", "/3/", "/4/"):
        middleware(RequestFactory().get(path))
    assert pending == []
    assert [t.label for t in get_store().traces()] == ["GET /3/", "GET /1/"]


def test_everything_sampled_draws_nothing(client: Client, monkeypatch: pytest.MonkeyPatch):
    pending = draws(monkeypatch)  # drawing would raise IndexError
    client.get("/authors/")
    assert pending == []
    stored()


@pytest.mark.parametrize("sample", [only_authors, "tests.test_middleware.only_authors"])
def test_sampled_by_a_callable(sample: Any):
    middleware = TracerMiddleware(view_recording)
    with override_settings(TRACER={"SAMPLE": sample}):
        middleware(RequestFactory().get("/authors/"))
        middleware(RequestFactory().get("/books/"))
    assert [t.label for t in get_store().traces()] == ["GET /authors/"]


ASKING = [
    {"HTTP_X_TRACER": "1"},
    {"HTTP_COOKIE": "tracer=1"},
]


@pytest.mark.parametrize("asking", ASKING)
@override_settings(TRACER={"SAMPLE": 0}, DEBUG=True, INTERNAL_IPS=["127.0.0.1"])
def test_on_demand_for_whom_the_tracer_shows(asking: dict[str, str]):
    request = RequestFactory().get("/", **asking)
    assert TracerMiddleware(view_recording)(request).content.startswith(b"<Trace 'GET /'")
    assert stored().label == "GET /"


@pytest.mark.parametrize(
    "asking",
    [{"HTTP_X_TRACER": "yes"}, {"HTTP_X_TRACER": "0"}, {"HTTP_COOKIE": "tracer=true"}, {}],
)
@override_settings(TRACER={"SAMPLE": 0}, DEBUG=True, INTERNAL_IPS=["127.0.0.1"])
def test_on_demand_asks_with_1(asking: dict[str, str]):
    TracerMiddleware(view_recording)(RequestFactory().get("/", **asking))
    assert get_store().traces() == []


@pytest.mark.parametrize("asking", ASKING)
@override_settings(TRACER={"SAMPLE": 0}, DEBUG=False, INTERNAL_IPS=["127.0.0.1"])
def test_on_demand_refused_to_anyone_else(asking: dict[str, str]):
    # In production (DEBUG off) the default show-callback allows nobody.
    TracerMiddleware(view_recording)(RequestFactory().get("/", **asking))
    assert get_store().traces() == []


@override_settings(
    TRACER={"SAMPLE": 0, "SHOW_CALLBACK": lambda request: request.headers.get("X-Staff") == "ok"}
)
def test_on_demand_follows_the_show_callback():
    middleware = TracerMiddleware(view_recording)
    middleware(RequestFactory().get("/denied/", HTTP_X_TRACER="1"))
    middleware(RequestFactory().get("/allowed/", HTTP_X_TRACER="1", HTTP_X_STAFF="ok"))
    assert [t.label for t in get_store().traces()] == ["GET /allowed/"]


@override_settings(
    TRACER={"SAMPLE": 0, "ON_DEMAND": False}, DEBUG=True, INTERNAL_IPS=["127.0.0.1"]
)
def test_on_demand_off():
    TracerMiddleware(view_recording)(RequestFactory().get("/", HTTP_X_TRACER="1"))
    assert get_store().traces() == []


def test_on_demand_callable():
    asked: list[str] = []

    def grant(request: HttpRequest) -> bool:
        asked.append(request.path)
        return request.headers.get("X-Tracer-Token") == "s3cret"

    middleware = TracerMiddleware(view_recording)
    with override_settings(TRACER={"SAMPLE": 0, "ON_DEMAND": grant}):
        middleware(RequestFactory().get("/plain/"))
        for path, token in (("/wrong/", "x"), ("/right/", "s3cret")):
            middleware(RequestFactory().get(path, HTTP_X_TRACER="1", HTTP_X_TRACER_TOKEN=token))
    assert asked == ["/wrong/", "/right/"]  # only requests that ask
    assert [t.label for t in get_store().traces()] == ["GET /right/"]


@override_settings(TRACER={"SAMPLE": 0.5}, DEBUG=True, INTERNAL_IPS=["127.0.0.1"])
def test_sampled_requests_need_not_ask(monkeypatch: pytest.MonkeyPatch):
    draws(monkeypatch, 0.9, 0.1, 0.9)
    middleware = TracerMiddleware(view_recording)
    middleware(RequestFactory().get("/skipped/"))
    middleware(RequestFactory().get("/sampled/"))
    middleware(RequestFactory().get("/asked/", HTTP_X_TRACER="1"))
    assert [t.label for t in get_store().traces()] == ["GET /asked/", "GET /sampled/"]
