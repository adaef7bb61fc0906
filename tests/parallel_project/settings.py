"""A tiny project whose test suite runs with --parallel through tracer.backend.

PARALLEL_VENDOR picks the database; the traced alias "default" and the plain alias
"plain" point at the same database and must share one test database.
"""

import os

import tracer
from tests.databases import CHECKOUT, MYSQL, POSTGRES

vendor = os.environ.get("PARALLEL_VENDOR", "sqlite")
database = {
    "sqlite": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.path.join(os.environ.get("PARALLEL_DIR", "."), "parallel.sqlite3"),
    },
    "postgresql": {**POSTGRES, "NAME": f"tracer_parallel_{CHECKOUT}"},
    "mysql": {**MYSQL, "NAME": f"tracer_parallel_{CHECKOUT}"},
}[vendor]

if vendor == "sqlite" and os.environ.get("PARALLEL_START") == "fork":
    # On disk, so that the two aliases share it (in-memory test databases are per
    # alias, with or without the tracer). Not under spawn: Django's SQLite worker
    # setup then looks for "<alias>_<n>.sqlite3" in the working directory.
    database["TEST"] = {"NAME": os.path.join(os.environ["PARALLEL_DIR"], "test.sqlite3")}

DATABASES = {
    "default": database
    if os.environ.get("PARALLEL_PLAIN")
    else tracer.traced({"default": database})["default"],
    "plain": database,
}
SECRET_KEY = "tests-only"
INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.auth"]
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
USE_TZ = True
