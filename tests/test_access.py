"""Who may see the tracer's pages."""

from __future__ import annotations

import pytest
from django.http import Http404, HttpRequest, HttpResponse
from django.test import RequestFactory, override_settings

from tracer.access import allowed, show_tracer, tracer_view

factory = RequestFactory()


def request_from(address: str) -> HttpRequest:
    return factory.get("/__tracer__/", REMOTE_ADDR=address)


def only_staff(request: HttpRequest) -> bool:
    return request.META.get("HTTP_X_STAFF") == "yes"


@tracer_view
def page(request: HttpRequest, name: str) -> HttpResponse:
    return HttpResponse(f"hello {name}")


@override_settings(DEBUG=True, INTERNAL_IPS=["127.0.0.1"])
def test_default_allows_internal_ips_in_debug():
    assert show_tracer(request_from("127.0.0.1")) is True
    assert show_tracer(request_from("10.0.0.1")) is False
    assert page(request_from("127.0.0.1"), "x").content == b"hello x"
    with pytest.raises(Http404):
        page(request_from("10.0.0.1"), "x")


@override_settings(DEBUG=False, INTERNAL_IPS=["127.0.0.1"])
def test_default_refuses_everyone_without_debug():
    assert allowed(request_from("127.0.0.1")) is False
    with pytest.raises(Http404):
        page(request_from("127.0.0.1"), "x")


@override_settings(DEBUG=False, TRACER={"SHOW_CALLBACK": only_staff})
def test_a_callable_replaces_the_default():
    assert allowed(factory.get("/", HTTP_X_STAFF="yes")) is True
    assert allowed(factory.get("/")) is False


@override_settings(DEBUG=True, INTERNAL_IPS=["127.0.0.1"])
def test_a_dotted_path_replaces_the_default():
    with override_settings(TRACER={"SHOW_CALLBACK": "tests.test_access.only_staff"}):
        assert allowed(request_from("127.0.0.1")) is False
        assert page(factory.get("/", HTTP_X_STAFF="yes"), "y").content == b"hello y"


@pytest.mark.django_db
@override_settings(DEBUG=True, INTERNAL_IPS=["127.0.0.1"])
def test_a_store_that_cannot_be_read_is_shown_as_such(tmp_path, client):
    broken = tmp_path / "traces.sqlite3"
    broken.write_bytes(b"<not a database>" * 100)

    with override_settings(TRACER={"STORE_PATH": broken}):
        response = client.get("/__tracer__/")

    assert response.status_code == 503
    assert "<h1>The trace store cannot be read</h1>" in response.content.decode()
    assert str(broken) in response.content.decode()
    assert broken.read_bytes() == b"<not a database>" * 100
