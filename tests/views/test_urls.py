"""Every route of tracer.urls is a 404 unless the show-callback allows the request."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.http import HttpRequest
from django.test import Client, override_settings
from django.urls import reverse

from tests.views.conftest import n_plus_one
from tracer import urls

pytestmark = pytest.mark.django_db

NAMES = [pattern.name for pattern in urls.urlpatterns]


def allow_header(request: HttpRequest) -> bool:
    return request.headers.get("X-Let-Me-In") == "yes"


@pytest.fixture
def addresses() -> Iterator[list[str]]:
    trace = n_plus_one()
    found = []
    for pattern in urls.urlpatterns:
        keys = pattern.pattern.converters
        arguments = {"trace_id": trace.id, "index": 0}
        found.append(reverse(f"tracer:{pattern.name}", kwargs={k: arguments[k] for k in keys}))
    yield found


def test_every_route_is_named_and_covered():
    assert NAMES == [
        "dashboard",
        "trace",
        "statements",
        "groups",
        "export",
        "statement",
        "explain",
        "import",
        "compare",
    ]


def shown() -> list[int]:
    """The status of a GET of each route when shown: explain only takes POSTs."""
    return [405 if name == "explain" else 200 for name in NAMES]


def test_shown_with_debug_to_internal_addresses(client: Client, addresses: list[str]):
    assert [client.get(address).status_code for address in addresses] == shown()


@pytest.mark.parametrize(
    "changes",
    [{"DEBUG": False}, {"INTERNAL_IPS": ["10.0.0.1"]}],
    ids=["debug-off", "not-internal"],
)
def test_hidden_otherwise(client: Client, addresses: list[str], changes: dict[str, object]):
    with override_settings(**changes):
        statuses = [client.get(address).status_code for address in addresses]
        assert client.post(addresses[NAMES.index("import")]).status_code == 404
    assert statuses == [404] * len(addresses)


def test_another_address_is_hidden(addresses: list[str]):
    client = Client(REMOTE_ADDR="192.168.1.9")
    assert [client.get(address).status_code for address in addresses] == [404] * len(addresses)


@override_settings(DEBUG=False, TRACER={"SHOW_CALLBACK": "tests.views.test_urls.allow_header"})
def test_show_callback_decides(client: Client, addresses: list[str]):
    assert [client.get(address).status_code for address in addresses] == [404] * len(addresses)
    allowed = [client.get(address, HTTP_X_LET_ME_IN="yes").status_code for address in addresses]
    assert allowed == shown()
