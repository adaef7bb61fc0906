"""``manage.py tracecommand``: another command run inside a trace, its statements (a
migration's DDL, inspectdb's introspection queries) stored and written as JSON."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from tracer.store import get_store
from tracer.trace import Trace


def tracecommand(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("tracecommand", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


@pytest.mark.django_db
def test_inspectdb_introspection_queries_become_a_trace(tmp_path: Path):
    output = tmp_path / "trace.json"

    models, said = tracecommand("--output", str(output), "inspectdb", "demo_app_tag")

    assert "class DemoAppTag(models.Model):" in models  # its output, as ever
    trace = Trace.from_dict(json.loads(output.read_text()))
    assert trace.label == "manage.py inspectdb demo_app_tag"
    assert get_store().get(trace.id) is not None
    assert said == (
        f"Trace {trace.id} ('manage.py inspectdb demo_app_tag'): "
        f"{len(trace.statements)} statement(s) on default.\n"
        f"Written to {output}: the tracer app's Import page loads it.\n"
    )
    sql = [str(statement.sql) for statement in trace.statements]
    assert any("sqlite_master" in text for text in sql)
    assert any(text.startswith("PRAGMA table_info") for text in sql)


@pytest.mark.django_db(databases=["default"], transaction=True)
def test_a_migrations_ddl_becomes_a_trace():
    call_command("migrate", "migrated_app", "zero", verbosity=0)
    try:
        _, said = tracecommand("migrate", "migrated_app", "--verbosity", "0")
    finally:
        call_command("migrate", "migrated_app", verbosity=0)

    trace_id = said.split()[1]
    trace = get_store().get(trace_id)
    assert trace is not None
    sql = [str(statement.sql) for statement in trace.statements]
    assert len([text for text in sql if text.startswith('CREATE TABLE "migrated_app_shelf"')]) == 1
    assert any(text.startswith('INSERT INTO "django_migrations"') for text in sql)


@pytest.mark.django_db
def test_a_command_that_fails_still_gives_its_trace(tmp_path: Path):
    output = tmp_path / "trace.json"
    err = StringIO()

    with pytest.raises(CommandError, match="No installed app with label 'nope'."):
        call_command("tracecommand", "-o", str(output), "migrate", "nope", stderr=err)

    assert Trace.from_dict(json.loads(output.read_text())).label == "manage.py migrate nope"
    assert err.getvalue().startswith("Trace ")
