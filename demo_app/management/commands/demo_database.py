"""Create the demo's database on PostgreSQL or MariaDB/MySQL when it is not there yet
(``DEMO_ENGINE=postgresql`` or ``mysql``; SQLite makes its file by itself)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand
from django.db import connection


class Command(BaseCommand):
    help = "Create the demo database on the server DEMO_ENGINE names, if it does not exist."

    def handle(self, *args: Any, **options: Any) -> None:
        name = connection.settings_dict["NAME"]
        if connection.vendor == "sqlite":
            self.stdout.write(f"SQLite: {name} is made by migrate.")
            return
        quoted = connection.ops.quote_name(name)
        # A connection to the server without the database (Django's own, as its test
        # runner uses to create test databases).
        with connection._nodb_cursor() as cursor:
            if connection.vendor == "postgresql":
                cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
            else:
                cursor.execute("SHOW DATABASES LIKE %s", [name])
            if cursor.fetchone() is not None:
                self.stdout.write(f"Database {name} exists.")
                return
            charset = " CHARACTER SET utf8mb4" if connection.vendor == "mysql" else ""
            cursor.execute(f"CREATE DATABASE {quoted}{charset}")
        self.stdout.write(f"Created database {name}.")
