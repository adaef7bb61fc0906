"""Settings of the ``manage.py`` subprocesses of tests/test_always_commands.py:
CAPTURE "always" and a file store, on the database the environment gives.

TRACER_ALWAYS_DB: the wrapped database's settings, as JSON. TRACER_ALWAYS_STORE: the
store's file. TRACER_ALWAYS_STATEMENTS: statements per rolling trace. TRACER_ALWAYS_LOG:
"1" turns TRACER["LOG"] on.
"""

from __future__ import annotations

import json
import os

import tracer

SECRET_KEY = "tests-only"
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

DATABASES = tracer.traced({"default": json.loads(os.environ["TRACER_ALWAYS_DB"])})

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "tracer",
    "tests.testapp",
    "tests.always_app",
]

TRACER = {
    "CAPTURE": "always",
    "STORE_PATH": os.environ["TRACER_ALWAYS_STORE"],
    "ALWAYS_TRACE_STATEMENTS": int(os.environ.get("TRACER_ALWAYS_STATEMENTS", "1000")),
    "LOG": os.environ.get("TRACER_ALWAYS_LOG") == "1",
}
