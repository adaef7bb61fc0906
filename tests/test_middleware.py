from __future__ import annotations

from collections.abc import Iterator

import pytest
from asgiref.sync import async_to_sync, iscoroutinefunction
from django.http import HttpRequest, HttpResponse
from django.test import AsyncClient, Client, override_settings

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
