"""Settings for the demo bookstore: SQLite through tracer.backend by default.

DEMO_DATABASE_URL-style switches are kept simple: set DEMO_ENGINE to
"postgresql" or "mysql" to run the demo on the local servers instead, and DEMO_ALSO
to add an alias of another engine to compare with.
"""

from __future__ import annotations

import os
from importlib.util import find_spec
from pathlib import Path

import tracer

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = "demo-only-not-secret"
DEBUG = True
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
INTERNAL_IPS = ["127.0.0.1"]

_engine = os.environ.get("DEMO_ENGINE", "sqlite")
_databases = {
    "sqlite": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": BASE_DIR / "demo_app" / "db.sqlite3",
    },
    "postgresql": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": "tracer_demo",
        "USER": os.environ.get("PGUSER", "postgres"),
        "HOST": os.environ.get("PGHOST", "127.0.0.1"),
    },
    "mysql": {
        "ENGINE": "django.db.backends.mysql",
        "NAME": "tracer_demo",
        "USER": os.environ.get("MYSQL_USER", "root"),
        "HOST": os.environ.get("MYSQL_HOST", "127.0.0.1"),
        "OPTIONS": {"charset": "utf8mb4"},
    },
}
# DEMO_ALSO=postgresql (or mysql, or both, comma-separated): one more alias per engine
# named, for the backend anatomy page and the playground to compare with the demo's
# engine. Never migrated nor seeded; reading the anatomy or compiling a QuerySet for
# it opens no connection (except MySQL's compile, which reads the server's version).
_also = [name for name in os.environ.get("DEMO_ALSO", "").split(",") if name and name != _engine]
if set(_also) - set(_databases):
    raise ValueError(
        f"DEMO_ALSO={os.environ['DEMO_ALSO']!r}: each name is one of {list(_databases)}."
    )
DATABASES = tracer.traced(
    {"default": _databases[_engine], **{name: _databases[name] for name in _also}}
)

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.staticfiles",
    "tracer",
    "demo_app",
]
MIDDLEWARE = [
    # One trace per request, listed at /__tracer__/ (the tracer's own pages are not).
    "tracer.middleware.TracerMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
]
ROOT_URLCONF = "demo_app.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        # A development checkout finds tracer's templates here; the wheel ships them
        # inside the package (tracer/templates), found through APP_DIRS.
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {"context_processors": ["django.template.context_processors.request"]},
    }
]
STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# django-debug-toolbar, when installed (`make demo` installs it): the tracer's panel
# next to its SQL panel. Its middleware comes first and TracerMiddleware after it, so
# a request's trace is finished when the panel reads it.
if find_spec("debug_toolbar") is not None:
    from debug_toolbar.settings import PANELS_DEFAULTS

    INSTALLED_APPS.append("debug_toolbar")
    MIDDLEWARE.insert(0, "debug_toolbar.middleware.DebugToolbarMiddleware")
    _sql = PANELS_DEFAULTS.index("debug_toolbar.panels.sql.SQLPanel")
    DEBUG_TOOLBAR_PANELS = [
        *PANELS_DEFAULTS[: _sql + 1],
        "tracer.panels.PipelinePanel",
        *PANELS_DEFAULTS[_sql + 1 :],
    ]
    # The tracer app's requests (a drawer, the live list) stay out of the toolbar's
    # history. The toolbar starts as its handle: open, it covers the pages' right edge.
    DEBUG_TOOLBAR_CONFIG = {
        "SHOW_TOOLBAR_CALLBACK": "tracer.panels.show_toolbar",
        "SHOW_COLLAPSED": True,
    }
USE_TZ = True
TIME_ZONE = "UTC"
