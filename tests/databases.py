"""The database servers the tests run against, and whether each is reachable.

SQLite always; PostgreSQL and MariaDB/MySQL at the local defaults unless the
TRACER_TEST_POSTGRES_* / TRACER_TEST_MYSQL_* environment variables say otherwise.
An unreachable server skips its tests, visibly; with CI=true it fails the run.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}

#: Part of every database name the tests create, so that two checkouts (a CI clone
#: and a working tree, say) running at once never drop each other's databases.
CHECKOUT = hashlib.sha1(str(Path(__file__).resolve().parent.parent).encode()).hexdigest()[:6]


def _env(vendor: str, key: str, default: str) -> str:
    return os.environ.get(f"TRACER_TEST_{vendor.upper()}_{key}", default)


POSTGRES: dict[str, Any] = {
    "ENGINE": "django.db.backends.postgresql",
    "HOST": _env("postgres", "HOST", "127.0.0.1"),
    "PORT": _env("postgres", "PORT", "5432"),
    "USER": _env("postgres", "USER", "postgres"),
    "PASSWORD": _env("postgres", "PASSWORD", ""),
    "NAME": _env("postgres", "NAME", f"tracer_tests_{CHECKOUT}"),
}

MYSQL: dict[str, Any] = {
    "ENGINE": "django.db.backends.mysql",
    "HOST": _env("mysql", "HOST", "127.0.0.1"),
    "PORT": _env("mysql", "PORT", "3306"),
    "USER": _env("mysql", "USER", "root"),
    "PASSWORD": _env("mysql", "PASSWORD", ""),
    "NAME": _env("mysql", "NAME", f"tracer_tests_{CHECKOUT}"),
    "TEST": {"CHARSET": "utf8mb4"},
}


def _probe_postgres() -> str | None:
    try:
        import psycopg

        psycopg.connect(
            host=POSTGRES["HOST"],
            port=POSTGRES["PORT"],
            user=POSTGRES["USER"],
            password=POSTGRES["PASSWORD"],
            dbname="postgres",
            connect_timeout=3,
        ).close()
    except Exception as exc:
        return f"PostgreSQL at {POSTGRES['HOST']}:{POSTGRES['PORT']} unreachable: {exc}"
    return None


def _probe_mysql() -> str | None:
    try:
        import MySQLdb

        MySQLdb.connect(
            host=MYSQL["HOST"],
            port=int(MYSQL["PORT"]),
            user=MYSQL["USER"],
            password=MYSQL["PASSWORD"],
            connect_timeout=3,
        ).close()
    except Exception as exc:
        return f"MariaDB/MySQL at {MYSQL['HOST']}:{MYSQL['PORT']} unreachable: {exc}"
    return None


def unavailable() -> dict[str, str]:
    """Vendor -> why its server cannot be used. Raises under CI instead."""
    reasons = {
        vendor: reason
        for vendor, reason in (("postgresql", _probe_postgres()), ("mysql", _probe_mysql()))
        if reason is not None
    }
    if CI and reasons:
        raise RuntimeError(
            "CI=true and a database server is missing: " + "; ".join(reasons.values())
        )
    return reasons
