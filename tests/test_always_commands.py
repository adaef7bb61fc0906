"""``CAPTURE = "always"`` in a management command: the process's last rolling trace is
stored when it exits (``tracer.recorder.store_at_exit``), written to the file store
before the process ends, labelled with the command line; ``TRACER["LOG"]`` prints each
statement to stderr. Each test runs real ``python manage.py ...`` subprocesses with
tests/always_settings.py."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.db import connections
from django.db.migrations.loader import MigrationLoader
from django.test import override_settings
from django.urls import reverse

from tests.conftest import TRACED
from tests.databases import MYSQL, POSTGRES
from tracer.filestore import SQLiteStore
from tracer.trace import Trace

ROOT = Path(__file__).resolve().parent.parent


def manage(
    database: dict[str, Any], store: Path, *args: str, statements: int = 1000, log: bool = False
) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.always_settings",
        "TRACER_ALWAYS_DB": json.dumps(database),
        "TRACER_ALWAYS_STORE": str(store),
        "TRACER_ALWAYS_STATEMENTS": str(statements),
        "TRACER_ALWAYS_LOG": "1" if log else "0",
    }
    done = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done


def stored(store: Path) -> list[Trace]:
    """The traces in the file, oldest first."""
    return list(reversed(SQLiteStore(store, 100, 50_000_000).traces()))


def sqlite(tmp_path: Path) -> dict[str, Any]:
    tmp_path.mkdir(exist_ok=True)
    return {"ENGINE": "django.db.backends.sqlite3", "NAME": str(tmp_path / "db.sqlite3")}


def test_migrate_is_stored_at_exit(tmp_path: Path):
    store = tmp_path / "store.sqlite3"

    manage(sqlite(tmp_path), store, "migrate", "--noinput")

    (trace,) = stored(store)
    assert trace.label == "always: manage.py migrate --noinput"
    sql = [str(statement.sql) for statement in trace.statements]
    created = [text.split('"')[1] for text in sql if text.startswith("CREATE TABLE")]
    # A migration that alters a column remakes the table (SQLite).
    assert created == ["django_migrations", "django_content_type", "new__django_content_type"]
    recorded = [text for text in sql if text.startswith('INSERT INTO "django_migrations"')]
    loader = MigrationLoader(None, ignore_no_migrations=True)
    assert len(recorded) == len(
        [key for key in loader.disk_migrations if key[0] == "contenttypes"]
    )
    # The content types of the two apps with models, made after migrating (ORM).
    inserted = [
        (item["stages"]["model"]["label"], item["stages"]["queryset"]["trigger"])
        for item in trace.to_dict()["statements"]
        if item["sql"].startswith('INSERT INTO "django_content_type"')
    ]
    assert inserted == [("contenttypes.ContentType", "bulk_create")] * 2


def test_the_rolling_traces_before_the_last_keep_their_order(tmp_path: Path):
    whole, rolled = tmp_path / "whole.sqlite3", tmp_path / "rolled.sqlite3"
    manage(sqlite(tmp_path / "whole"), whole, "migrate", "--noinput")
    manage(sqlite(tmp_path / "rolled"), rolled, "migrate", "--noinput", statements=10)

    (one,) = stored(whole)
    parts = stored(rolled)
    count = len(one.statements)
    assert [len(part.statements) for part in parts] == [10] * (count // 10) + (
        [count % 10] if count % 10 else []
    )
    assert [part.label for part in parts] == ["always"] * (len(parts) - 1) + [
        "always: manage.py migrate --noinput"
    ]
    assert [str(s.sql) for part in parts for s in part.statements] == [
        str(s.sql) for s in one.statements
    ]


@pytest.mark.django_db
def test_the_app_lists_the_stored_trace(tmp_path: Path, client: Any):
    store = tmp_path / "store.sqlite3"
    manage(sqlite(tmp_path), store, "migrate", "--noinput")
    (trace,) = stored(store)

    with override_settings(TRACER={"STORE_PATH": store, "SHOW_CALLBACK": lambda request: True}):
        page = client.get(reverse("tracer:dashboard"))
        detail = client.get(reverse("tracer:trace", args=[trace.id]))

    assert page.status_code == 200
    assert "always: manage.py migrate --noinput" in page.content.decode()
    assert detail.status_code == 200


SERVERS = {"postgresql": POSTGRES, "mysql": MYSQL}

TIMES = re.compile(r"\d+\.\d{3} ms")
#: Where each statement's lines begin.
BLOCK = re.compile(r"(?m)^(?=\(T ms\))")


@pytest.mark.django_db(databases=list(TRACED.values()))
def test_a_command_logs_and_stores_its_statements(vendor: str, tmp_path: Path):
    store = tmp_path / "store.sqlite3"
    if vendor == "sqlite":
        database = sqlite(tmp_path)
        manage(database, tmp_path / "setup.sqlite3", "migrate", "--run-syncdb", "--noinput")
    else:
        name = connections[TRACED[vendor]].settings_dict["NAME"]  # the test database
        database = {**SERVERS[vendor], "NAME": name}

    done = manage(database, store, "count_authors", "ann", log=True)

    assert done.stdout == "0\n"
    (trace,) = stored(store)
    assert trace.label == "always: manage.py count_authors ann"
    q = "`" if vendor == "mysql" else '"'
    count = (
        f"SELECT COUNT(*) AS {q}__count{q} FROM {q}testapp_author{q} "
        f"WHERE {q}testapp_author{q}.{q}name{q} = %s"
    )
    statements = [(s.sql, s.params) for s in trace.statements]
    logged = BLOCK.split(TIMES.sub("T ms", done.stderr))
    if vendor == "mysql":
        # The connection's first queries (Django's mysql_server_data, and its
        # init_connection_state), made when the command opens a cursor.
        (sql, params), isolation = statements.pop(0), statements.pop(0)
        assert (sql.split()[:2], params) == (["SELECT", "VERSION(),"], None)
        assert isolation == ("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED", None)
        first, second = logged.pop(1), logged.pop(1)
        assert second == (
            "(T ms) default  tests/always_app/management/commands/count_authors.py:21\n"
            "  backend mysql T ms\n"
            "  SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED\n"
        )
        assert first.startswith(
            "(T ms) default  tests/always_app/management/commands/count_authors.py:21\n"
            "  backend mysql T ms\n"
            "  \n"
            "                  SELECT VERSION(),\n"
        )
    assert statements == [("SELECT %s", ["ann"]), (count, ["ann"])]  # JSON: lists
    shown = count.replace("%s", "'ann'")
    assert "".join(logged) == (
        f"(T ms) default  tests/always_app/management/commands/count_authors.py:22\n"
        f"  backend {vendor} T ms\n"
        "  SELECT 'ann'\n"
        f"(T ms) default  tests/always_app/management/commands/count_authors.py:24\n"
        "  model testapp.Author > manager objects > queryset "
        "Author.objects.filter(name='ann').count() [count] T ms > query Query > "
        f"compiler SQLCompiler T ms > backend {vendor} T ms\n"
        f"  {shown}\n"
    )
