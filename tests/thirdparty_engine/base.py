from __future__ import annotations

from typing import Any

from django.db.backends.sqlite3 import base
from django.db.backends.utils import CursorWrapper


class EngineCursorWrapper(CursorWrapper):
    """Defines its own fetches, as some third-party engines do."""

    def __init__(self, cursor: Any, db: Any) -> None:
        super().__init__(cursor, db)
        self.engine_fetches = 0

    def fetchone(self) -> Any:
        self.engine_fetches += 1
        with self.db.wrap_database_errors:
            return self.cursor.fetchone()

    def fetchmany(self, size: int = 1) -> Any:
        self.engine_fetches += 1
        with self.db.wrap_database_errors:
            return self.cursor.fetchmany(size)

    def fetchall(self) -> Any:
        self.engine_fetches += 1
        with self.db.wrap_database_errors:
            return self.cursor.fetchall()


class DatabaseWrapper(base.DatabaseWrapper):
    display_name = "SQLite (third-party example)"

    def make_cursor(self, cursor: Any) -> Any:
        return EngineCursorWrapper(cursor, self)
