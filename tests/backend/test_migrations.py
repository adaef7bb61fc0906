"""Migrations run through the traced connection and are recorded."""

from __future__ import annotations

import pytest
from django.core.management import call_command

import tracer


@pytest.mark.django_db(databases="__all__", transaction=True)
def test_migrate_is_recorded(alias, vendor):
    call_command("migrate", "migrated_app", "zero", database=alias, verbosity=0)
    try:
        with tracer.capture() as trace:
            call_command("migrate", "migrated_app", database=alias, verbosity=0)
    finally:
        call_command("migrate", "migrated_app", database=alias, verbosity=0)
    sql = [str(s.sql) for s in trace.statements if s.alias == alias]
    quote = "`" if vendor == "mysql" else '"'
    create = [s for s in sql if s.startswith(f"CREATE TABLE {quote}migrated_app_shelf{quote}")]
    assert len(create) == 1
    # The migration recorder's own bookkeeping is recorded too.
    assert any(s.startswith(f"INSERT INTO {quote}django_migrations{quote}") for s in sql)
