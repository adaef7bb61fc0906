"""Reading a backend without connecting: a fresh instance that refuses to connect,
and the alias's own connection only when asked."""

from __future__ import annotations

import pytest
from django.db import connections

from tracer.anatomy import NEEDS_SERVER, load, sections

pytestmark = pytest.mark.django_db(databases="__all__")


def test_the_engine_behind_a_traced_alias(alias, vendor):
    backend = load(alias)

    assert backend.traced
    assert (
        backend.engine
        == {
            "sqlite": "django.db.backends.sqlite3",
            "postgresql": "django.db.backends.postgresql",
            "mysql": "django.db.backends.mysql",
        }[vendor]
    )
    assert backend.vendor == vendor
    # The engine's own class, not the proxy's, and an instance of it never connected.
    assert backend.wrapper_class is type(connections[alias]).__mro__[2]
    assert backend.wrapper is not connections[alias]
    assert backend.wrapper.connection is None


def test_a_plain_alias(plain_alias):
    backend = load(plain_alias)

    assert not backend.traced
    assert backend.wrapper_class is type(connections[plain_alias])


#: A flag each engine needs the server for: SQLite asks it whether it has JSON; the
#: others read its version.
NEEDS = {
    "sqlite": "supports_json_field",
    "postgresql": "supports_nulls_distinct_unique_constraints",
    "mysql": "has_native_uuid_field",
}


def test_what_needs_the_server_is_not_read_without_a_connection(alias, vendor):
    backend = load(alias)

    cell = backend.read(backend.wrapper.features, NEEDS[vendor])

    assert cell.unknown == NEEDS_SERVER
    assert backend.wrapper.connection is None
    assert load(alias, connect=True).read(connections[alias].features, NEEDS[vendor]).text in (
        "True",
        "False",
    )


def test_with_a_connection_the_aliases_own_is_read(alias, vendor):
    backend = load(alias, connect=True)

    assert backend.wrapper is connections[alias]
    flags = {
        row.name: row.cells[0] for topic in sections.flags([backend]) for row in topic["rows"]
    }
    assert not [name for name, cell in flags.items() if cell.unknown is not None]


def test_an_alias_without_its_engine(settings, monkeypatch):
    monkeypatch.setitem(settings.DATABASES, "broken", {"ENGINE": "tracer.backend"})

    backend = load("broken")

    assert backend.error == (
        "DATABASES['broken'] uses ENGINE 'tracer.backend' but has no WRAPPED_ENGINE. Add "
        'the real engine, e.g. "WRAPPED_ENGINE": "django.db.backends.postgresql", or wrap '
        "your DATABASES with tracer.traced(DATABASES)."
    )
    assert not backend.loaded
    assert sections.flags([backend])[0]["rows"][0].cells[0].unknown == "not available"
