from __future__ import annotations

import pytest
from django.core import checks
from django.test import override_settings

from tracer.checks import check_databases, check_settings

# These tests override DATABASES on purpose, without opening connections.
pytestmark = pytest.mark.filterwarnings("ignore:Overriding setting DATABASES")

GOOD = {"ENGINE": "tracer.backend", "WRAPPED_ENGINE": "django.db.backends.sqlite3"}


def ids(messages):
    return [(m.id, m.msg) for m in messages]


def test_registered_and_quiet_when_configured():
    assert check_databases in checks.registry.registry.get_checks()
    assert check_settings in checks.registry.registry.get_checks()
    assert check_databases() == []
    assert check_settings() == []


@override_settings(
    DATABASES={
        "default": GOOD,
        "missing": {"ENGINE": "tracer.backend"},
        "broken": {"ENGINE": "tracer.backend", "WRAPPED_ENGINE": "no.such.engine"},
        "self": {"ENGINE": "tracer.backend", "WRAPPED_ENGINE": "tracer.backend"},
        "stray": {"ENGINE": "django.db.backends.sqlite3", "WRAPPED_ENGINE": "x"},
    }
)
def test_misconfigured_aliases():
    messages = check_databases()
    assert [(m.id, type(m)) for m in messages] == [
        ("tracer.E001", checks.Error),
        ("tracer.E002", checks.Error),
        ("tracer.E003", checks.Error),
        ("tracer.W001", checks.Warning),
    ]
    assert messages[0].msg == (
        "DATABASES['missing'] uses ENGINE 'tracer.backend' but has no WRAPPED_ENGINE."
    )
    assert messages[1].msg.startswith(
        "DATABASES['broken']['WRAPPED_ENGINE'] = 'no.such.engine' could not be loaded:"
    )
    assert messages[3].msg == (
        "DATABASES['stray'] has WRAPPED_ENGINE but its ENGINE is "
        "'django.db.backends.sqlite3', so it is not traced."
    )


@override_settings(TRACER={"CAPTURE": "yes", "COLOUR": 1, "ALWAYS_TRACES_KEPT": 0})
def test_invalid_tracer_setting():
    assert ids(check_settings()) == [
        (
            "tracer.E004",
            "TRACER has an unknown key 'COLOUR'; known keys: ALWAYS_TRACES_KEPT, "
            "ALWAYS_TRACE_STATEMENTS, CAPTURE, HARD_CAP, LIBRARY_PATHS, LOG, N_PLUS_ONE_MIN, "
            "ON_DEMAND, OTEL, PLAYGROUND_ROW_LIMIT, PLAYGROUND_TIMEOUT_MS, "
            "REDACT_COLUMNS, SAMPLE, SHOW_CALLBACK, SLOW_MS, SOFT_CAP, SQL_COMMENTS, "
            "STACK_DEPTH, STORE_BYTES, "
            "STORE_PATH, "
            "STORE_TRACES.",
        ),
        ("tracer.E004", "TRACER['CAPTURE'] is 'yes'; use one of 'explicit', 'always'."),
        ("tracer.E004", "TRACER['ALWAYS_TRACES_KEPT'] must be a positive integer, not 0."),
    ]
