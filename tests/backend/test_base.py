"""A traced connection is the wrapped engine's connection in every observable way."""

from __future__ import annotations

import copy
import pickle
from importlib import import_module

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connections
from django.db.backends.utils import CursorWrapper

from tracer.backend import base
from tracer.backend.base import DatabaseWrapper, wrapper_class

ENGINES = {
    "sqlite": "django.db.backends.sqlite3",
    "postgresql": "django.db.backends.postgresql",
    "mysql": "django.db.backends.mysql",
}
pytestmark = pytest.mark.django_db(databases="__all__")

ROLES = ("client", "creation", "features", "introspection", "ops", "validation")


def engine_wrapper(vendor: str) -> type:
    return import_module(ENGINES[vendor] + ".base").DatabaseWrapper


def test_is_instance_of_wrapped_engine_and_of_tracer(vendor, connection):
    assert isinstance(connection, engine_wrapper(vendor))
    assert isinstance(connection, DatabaseWrapper)
    assert type(connection).__mro__[1:3] == (DatabaseWrapper, engine_wrapper(vendor))
    assert connection.wrapped_engine == ENGINES[vendor]


def test_same_identity_as_plain(connection, plain_connection):
    assert connection.vendor == plain_connection.vendor
    assert connection.display_name == plain_connection.display_name
    assert (
        repr(connection)
        == f"<DatabaseWrapper vendor={connection.vendor!r} alias={connection.alias!r}>"
    )
    assert type(connection).__name__ == type(connection).__qualname__ == "DatabaseWrapper"
    assert connection.Database is plain_connection.Database
    assert connection.data_types == plain_connection.data_types
    assert connection.operators == plain_connection.operators
    assert connection.SchemaEditorClass is type(plain_connection).SchemaEditorClass


@pytest.mark.parametrize("role", ROLES)
def test_roles_are_the_engines(connection, plain_connection, role):
    # Class attributes, never instance patches: Django checks type(conn).X_class.
    # creation (test-db signature) and ops (traced compilers) are subclasses of the
    # engine's own; the other roles are the engine's classes themselves.
    traced_roles = ("creation", "ops")
    assert (type(connection).__dict__.get(f"{role}_class") is None) is (role not in traced_roles)
    assert type(getattr(connection, role)) is getattr(type(connection), f"{role}_class")
    if role in traced_roles:
        traced, plain = type(getattr(connection, role)), type(getattr(plain_connection, role))
        assert traced.__bases__[1] is plain
        assert traced.__name__ == plain.__name__
    else:
        assert type(getattr(connection, role)) is type(getattr(plain_connection, role))


def test_schema_editor_is_the_engines(connection, plain_connection):
    assert type(connection.schema_editor()) is type(plain_connection).SchemaEditorClass


def test_features_answer_alike(connection, plain_connection):
    flags = [
        name
        for name, value in vars(type(plain_connection.features)).items()
        if isinstance(value, bool)
    ]
    assert flags
    for name in flags:
        assert getattr(connection.features, name) == getattr(plain_connection.features, name)


def test_execute_wrappers_left_to_their_owners(connection):
    assert connection.execute_wrappers == []


def test_cursor_keeps_engine_wrapper_class(connection, plain_connection):
    with connection.cursor() as traced_cursor, plain_connection.cursor() as plain_cursor:
        assert isinstance(traced_cursor, CursorWrapper)
        assert isinstance(traced_cursor, type(plain_cursor))
        assert type(traced_cursor).__name__ == type(plain_cursor).__name__


def test_debug_cursor_keeps_engine_class(vendor, connection, plain_connection):
    connection.force_debug_cursor = plain_connection.force_debug_cursor = True
    try:
        with connection.cursor() as traced_cursor, plain_connection.cursor() as plain_cursor:
            assert isinstance(traced_cursor, type(plain_cursor))
            if vendor == "postgresql":
                assert callable(traced_cursor.copy)  # PostgreSQL's debug wrapper adds copy()
    finally:
        connection.force_debug_cursor = plain_connection.force_debug_cursor = False


def test_one_class_per_engine(connection):
    again = type(connection)(connection.settings_dict, connection.alias)
    assert type(again) is type(connection)
    assert wrapper_class(connection.wrapped_engine) is type(connection)
    fresh = DatabaseWrapper(connection.settings_dict, connection.alias)
    assert type(fresh) is type(connection)


def test_copy(connection):
    copied = connection.copy()
    assert type(copied) is type(connection)
    assert copied.settings_dict == connection.settings_dict
    assert copied.settings_dict is not connection.settings_dict
    shallow = copy.copy(connection)
    assert type(shallow) is type(connection)
    assert shallow.alias == connection.alias


def test_not_picklable_like_plain(connection, plain_connection):
    # Neither can be pickled (the plain one fails on its state, the traced one on its
    # class, which is not importable by name).
    for conn in (connection, plain_connection):
        with pytest.raises((TypeError, pickle.PicklingError)):
            pickle.dumps(conn)


def test_settings_dict_untouched(connection):
    from django.conf import settings

    assert settings.DATABASES[connection.alias]["ENGINE"] == "tracer.backend"
    assert connection.settings_dict["ENGINE"] == "tracer.backend"
    assert "WRAPPED_ENGINE" not in connection.settings_dict.get("OPTIONS", {})


def test_alias_passed_through_as_given():
    # PostGIS reads alias from kwargs: the wrapped __init__ must see the caller's args.
    seen = {}

    class Recording(engine_wrapper("sqlite")):
        def __init__(self, *args, **kwargs):
            seen["args"], seen["kwargs"] = args, kwargs
            super().__init__(*args, **kwargs)

    settings_dict = {**connections["default"].settings_dict}
    base._classes["tests.fake"] = type(
        "DatabaseWrapper", (DatabaseWrapper, Recording), {"wrapped_engine": "tests.fake"}
    )
    try:
        settings_dict["WRAPPED_ENGINE"] = "tests.fake"
        DatabaseWrapper(settings_dict, alias="__no_db__")
        assert seen["args"] == (settings_dict,) and seen["kwargs"] == {"alias": "__no_db__"}
        DatabaseWrapper(settings_dict, "other")
        assert seen["args"] == (settings_dict, "other") and seen["kwargs"] == {}
    finally:
        del base._classes["tests.fake"]


def test_nodb_connection_is_traced_and_tagged(server_vendor):
    import tracer

    connection = connections[server_vendor]
    with tracer.capture() as trace:
        with connection._nodb_cursor() as cursor:
            cursor.execute("SELECT 1")
            assert cursor.fetchone() == (1,)
    (statement,) = [s for s in trace.statements if s.sql == "SELECT 1"]
    assert statement.alias == "__no_db__"
    assert statement.is_setup
    assert statement.sql == "SELECT 1"
    assert statement.rows_fetched == 1


def test_missing_wrapped_engine_names_alias():
    with pytest.raises(ImproperlyConfigured) as info:
        DatabaseWrapper({"ENGINE": "tracer.backend", "NAME": "x"}, "nowhere")
    assert str(info.value).startswith(
        "DATABASES['nowhere'] uses ENGINE 'tracer.backend' but has no WRAPPED_ENGINE."
    )


def test_unloadable_engine_names_alias():
    with pytest.raises(ImproperlyConfigured) as info:
        DatabaseWrapper(
            {"ENGINE": "tracer.backend", "WRAPPED_ENGINE": "no.such.engine", "NAME": "x"}, "a"
        )
    message = str(info.value)
    assert message.startswith(
        "DATABASES['a']['WRAPPED_ENGINE'] = 'no.such.engine' could not be loaded: "
    )
    assert "isn't an available database backend" in message


def test_wrapping_itself_is_refused():
    with pytest.raises(ImproperlyConfigured) as info:
        DatabaseWrapper({"ENGINE": "tracer.backend", "WRAPPED_ENGINE": "tracer.backend"}, "a")
    assert str(info.value).startswith(
        "DATABASES['a']['WRAPPED_ENGINE'] is 'tracer.backend': the tracer cannot wrap itself."
    )
