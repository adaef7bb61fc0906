"""tracer/views/htmx.py"""

from __future__ import annotations

from django.http import HttpResponse
from django.test import RequestFactory

from tracer.views.htmx import is_htmx, vary_on_htmx


def test_is_htmx():
    factory = RequestFactory()
    assert not is_htmx(factory.get("/"))
    assert is_htmx(factory.get("/", HTTP_HX_REQUEST="true"))
    assert not is_htmx(factory.get("/", HTTP_HX_REQUEST="false"))
    # Restoring a page missing from htmx's history cache needs the whole page.
    assert not is_htmx(
        factory.get("/", HTTP_HX_REQUEST="true", HTTP_HX_HISTORY_RESTORE_REQUEST="true")
    )


def test_vary_on_htmx():
    response = HttpResponse()
    response["Vary"] = "Cookie"
    assert vary_on_htmx(response) is response
    assert response["Vary"] == "Cookie, HX-Request"
