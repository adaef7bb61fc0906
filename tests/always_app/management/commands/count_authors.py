"""``manage.py count_authors NAME``: one raw statement and one ORM count, for the
subprocesses of tests/test_always_commands.py."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db import connection

from tests.testapp.models import Author


class Command(BaseCommand):
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name")

    def handle(self, *args: Any, **options: Any) -> None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT %s", [options["name"]])
            cursor.fetchall()
        self.stdout.write(str(Author.objects.filter(name=options["name"]).count()))
