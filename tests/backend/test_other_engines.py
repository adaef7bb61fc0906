"""Engines beyond the three servers: third-party, Oracle (import only), GIS."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db.utils import ConnectionHandler

import tracer
from tests.databases import CHECKOUT, CI, POSTGRES
from tests.thirdparty_engine.base import DatabaseWrapper as ThirdPartyWrapper
from tests.thirdparty_engine.base import EngineCursorWrapper
from tracer.backend.base import DatabaseWrapper


def handler(**config):
    """A connection handler of our own, so these aliases stay out of the test run's."""
    return ConnectionHandler(tracer.traced({"default": config}))


@pytest.fixture(autouse=True)
def own_connections(django_db_blocker):  # type: ignore[no-untyped-def]
    # These tests open connections of their own handlers, outside the test databases.
    with django_db_blocker.unblock():
        yield


def test_third_party_engine():
    connections = handler(ENGINE="tests.thirdparty_engine", NAME=":memory:")
    connection = connections["default"]
    try:
        assert isinstance(connection, ThirdPartyWrapper)
        assert connection.display_name == "SQLite (third-party example)"
        with tracer.capture() as trace:
            with connection.cursor() as cursor:
                assert isinstance(cursor, EngineCursorWrapper)
                cursor.execute("SELECT 1 UNION ALL SELECT 2")
                assert cursor.fetchone() == (1,)
                assert cursor.fetchall() == [(2,)]
                # The engine's own fetch methods ran, and were recorded.
                assert cursor.engine_fetches == 2
        (statement,) = trace.statements
        assert (statement.rows_fetched, statement.fetch_calls) == (2, 2)
    finally:
        connections.close_all()


def test_oracle_engine_loads_without_a_server():
    pytest.importorskip("oracledb", reason="oracledb is not installed")
    connection = handler(
        ENGINE="django.db.backends.oracle", NAME="xe", USER="u", PASSWORD="p", HOST="h"
    )["default"]
    from django.db.backends.oracle.base import DatabaseWrapper as OracleWrapper

    assert isinstance(connection, OracleWrapper)
    assert isinstance(connection, DatabaseWrapper)
    assert repr(connection) == "<DatabaseWrapper vendor='oracle' alias='default'>"
    assert type(connection.ops).__module__ == "django.db.backends.oracle.operations"
    assert "tracer.backend" not in connection.creation.test_db_signature()


def gis_or_skip(module: str) -> None:
    try:
        __import__(module + ".base")
    except (ImproperlyConfigured, OSError) as exc:
        if CI:
            raise
        pytest.skip(f"{module} cannot load here: {exc}")


def test_spatialite():
    import sqlite3

    if not hasattr(sqlite3.Connection, "enable_load_extension"):
        pytest.skip("this Python's sqlite3 cannot load extensions, so SpatiaLite cannot run")
    gis_or_skip("django.contrib.gis.db.backends.spatialite")
    connections = handler(ENGINE="django.contrib.gis.db.backends.spatialite", NAME=":memory:")
    connection = connections["default"]
    try:
        with tracer.capture() as trace:
            connection.prepare_database()
            version = connection.ops.spatial_version
        assert type(connection.ops).__name__ == "SpatiaLiteOperations"
        assert len(version) == 3
        sql = [str(s.sql) for s in trace.statements]
        assert "SELECT InitSpatialMetaData(1)" in sql
        assert any("spatialite_version" in s.lower() for s in sql)
    finally:
        connections.close_all()


@pytest.mark.django_db(databases="__all__")
def test_postgis(settings):
    if "postgresql" in settings.UNAVAILABLE:
        pytest.skip(settings.UNAVAILABLE["postgresql"])
    gis_or_skip("django.contrib.gis.db.backends.postgis")
    import psycopg

    name = f"tracer_gis_{CHECKOUT}"
    admin = psycopg.connect(
        host=POSTGRES["HOST"],
        port=POSTGRES["PORT"],
        user=POSTGRES["USER"],
        password=POSTGRES["PASSWORD"],
        dbname="postgres",
        autocommit=True,
    )
    admin.execute(f"DROP DATABASE IF EXISTS {name}")
    admin.execute(f"CREATE DATABASE {name}")
    connections = handler(
        **{**POSTGRES, "ENGINE": "django.contrib.gis.db.backends.postgis", "NAME": name}
    )
    connection = connections["default"]
    try:
        # PostGIS picks its operations by the alias given as a keyword argument.
        assert type(connection.ops).__name__ == "PostGISOperations"
        nodb = type(connection)(connection.settings_dict, alias="__no_db__")
        assert type(nodb.ops).__name__ == "DatabaseOperations"
        with tracer.capture() as trace:
            connection.prepare_database()
            with connection.cursor() as cursor:
                cursor.execute("SELECT ST_AsText(ST_MakePoint(%s, %s))", [1, 2])
                assert cursor.fetchone() == ("POINT(1 2)",)
        sql = [str(s.sql) for s in trace.statements]
        assert sql[:2] == [
            "SELECT 1 FROM pg_extension WHERE extname = %s",
            "CREATE EXTENSION IF NOT EXISTS postgis",
        ]
        assert trace.statements[-1].rows_fetched == 1
    finally:
        connections.close_all()
        with admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name}")


def test_postgresql_connection_pool(settings):
    if "postgresql" in settings.UNAVAILABLE:
        pytest.skip(settings.UNAVAILABLE["postgresql"])
    pytest.importorskip("psycopg_pool", reason="psycopg-pool is not installed")
    # The pool manages the raw connections; the tracer never wraps them.
    connections = handler(**{**POSTGRES, "NAME": "postgres", "OPTIONS": {"pool": True}})
    connection = connections["default"]
    try:
        with tracer.capture() as trace:
            for _ in range(2):
                with connection.cursor() as cursor:
                    cursor.execute("SELECT %s", [1])
                    assert cursor.fetchone() == (1,)
                connection.close()  # returns the connection to the pool
        assert [str(s.sql) for s in trace.statements] == ["SELECT %s", "SELECT %s"]
        assert connection.pool is not None
    finally:
        connections.close_all()
        connection.close_pool()
