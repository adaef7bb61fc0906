from __future__ import annotations

from pathlib import Path

import tracer
from tests.databases import MYSQL, POSTGRES, unavailable

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = "tests-only"
DEBUG = False
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

#: Vendor -> reason, for servers that are not reachable (their tests skip).
UNAVAILABLE = unavailable()

# Each traced alias has a plain twin on the same database.
_plain = {
    "sqlite_plain": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"},
}
if "postgresql" not in UNAVAILABLE:
    _plain["postgresql_plain"] = POSTGRES
if "mysql" not in UNAVAILABLE:
    _plain["mysql_plain"] = MYSQL

DATABASES = {
    **tracer.traced({alias.removesuffix("_plain"): config for alias, config in _plain.items()}),
    **_plain,
}
DATABASES["default"] = DATABASES.pop("sqlite")

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.staticfiles",
    "debug_toolbar",
    "tracer",
    "tests.testapp",
    "demo_app",
    "tests.migrated_app",
]

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
    }
]
STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
ROOT_URLCONF = "tests.urls"

# The toolbar panel's tests (tests/test_panels.py) turn the toolbar on with
# override_settings (DEBUG, INTERNAL_IPS, MIDDLEWARE); its URLs are in tests/urls.py.
DEBUG_TOOLBAR_PANELS = [
    "debug_toolbar.panels.history.HistoryPanel",
    "debug_toolbar.panels.sql.SQLPanel",
    "tracer.panels.PipelinePanel",
]
DEBUG_TOOLBAR_CONFIG = {"IS_RUNNING_TESTS": False}
