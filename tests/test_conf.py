from __future__ import annotations

import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from tracer.conf import Config, get_config


def test_defaults():
    assert get_config() == Config(
        capture="explicit",
        always_trace_statements=1000,
        always_traces_kept=20,
        library_paths=None,
        stack_depth=12,
        soft_cap=1000,
        hard_cap=10000,
        store_traces=100,
        store_bytes=50_000_000,
        slow_ms=100,
        n_plus_one_min=2,
        redact_columns=("password", "token", "secret", "key"),
        show_callback=None,
        store_path=None,
        otel=False,
        sql_comments=False,
        sample=1.0,
        on_demand=True,
        playground_row_limit=100,
        playground_timeout_ms=2000,
    )


def test_override_settings_takes_effect():
    with override_settings(TRACER={"CAPTURE": "always"}):
        assert get_config().capture == "always"
    assert get_config().capture == "explicit"


@override_settings(TRACER=["CAPTURE"])
def test_invalid_raises_clear_error():
    with pytest.raises(ImproperlyConfigured, match="^TRACER must be a dict, not list.$"):
        get_config()


@override_settings(TRACER={"SOFT_CAP": 50, "HARD_CAP": 10, "LIBRARY_PATHS": "/usr"})
def test_caps_and_paths_are_checked():
    with pytest.raises(ImproperlyConfigured) as info:
        get_config()
    assert str(info.value) == (
        "TRACER['LIBRARY_PATHS'] must be a list of paths or None, not '/usr'. "
        "TRACER['SOFT_CAP'] (50) must not exceed TRACER['HARD_CAP'] (10)."
    )


@override_settings(TRACER={"SLOW_MS": -1, "N_PLUS_ONE_MIN": 0, "REDACT_COLUMNS": "password"})
def test_analysis_settings_are_checked():
    with pytest.raises(ImproperlyConfigured) as info:
        get_config()
    assert str(info.value) == (
        "TRACER['N_PLUS_ONE_MIN'] must be a positive integer, not 0. "
        "TRACER['SLOW_MS'] must be a number of milliseconds >= 0, not -1. "
        "TRACER['REDACT_COLUMNS'] must be a list of non-empty strings "
        "(parts of column names), not 'password'."
    )


@override_settings(TRACER={"SLOW_MS": 2.5, "REDACT_COLUMNS": ["PIN", "Api_Key"]})
def test_redacted_columns_are_lowercased():
    config = get_config()
    assert (config.slow_ms, config.redact_columns) == (2.5, ("pin", "api_key"))


@override_settings(TRACER={"SHOW_CALLBACK": 3, "STORE_PATH": ["traces.sqlite3"]})
def test_ui_settings_are_checked():
    with pytest.raises(ImproperlyConfigured) as info:
        get_config()
    assert str(info.value) == (
        "TRACER['SHOW_CALLBACK'] must be a callable, its dotted path, or None, not 3. "
        "TRACER['STORE_PATH'] must be a file path or None, not ['traces.sqlite3']."
    )


@override_settings(TRACER={"SHOW_CALLBACK": "myproject.tracing.show", "STORE_PATH": Path("/t.db")})
def test_ui_settings_are_kept():
    config = get_config()
    assert (config.show_callback, config.store_path) == ("myproject.tracing.show", "/t.db")


@override_settings(TRACER={"OTEL": 1, "SQL_COMMENTS": "yes", "SAMPLE": 1.5, "ON_DEMAND": 0})
def test_observability_settings_are_checked():
    with pytest.raises(ImproperlyConfigured) as info:
        get_config()
    assert str(info.value) == (
        "TRACER['OTEL'] must be True or False, not 1. "
        "TRACER['SQL_COMMENTS'] must be True or False, not 'yes'. "
        "TRACER['SAMPLE'] must be a rate from 0 to 1, a callable, or its dotted path, "
        "not 1.5. "
        "TRACER['ON_DEMAND'] must be True, False, a callable, or its dotted path, not 0."
    )


@override_settings(TRACER={"OTEL": True})
def test_otel_needs_opentelemetry(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setitem(sys.modules, "opentelemetry.trace", None)
    with pytest.raises(ImproperlyConfigured) as info:
        get_config()
    assert str(info.value) == (
        "TRACER['OTEL'] is True but opentelemetry-api is not installed: "
        "pip install 'django-query-tracer[otel]'."
    )


@override_settings(
    TRACER={"OTEL": True, "SQL_COMMENTS": True, "SAMPLE": 0, "ON_DEMAND": "shop.tracing.ask"}
)
def test_observability_settings_are_kept():
    config = get_config()
    assert (config.otel, config.sql_comments, config.sample, config.on_demand) == (
        True,
        True,
        0,
        "shop.tracing.ask",
    )


@override_settings(TRACER={"PLAYGROUND_ROW_LIMIT": 0, "PLAYGROUND_TIMEOUT_MS": 5.5})
def test_playground_settings_are_checked():
    with pytest.raises(ImproperlyConfigured) as info:
        get_config()
    assert str(info.value) == (
        "TRACER['PLAYGROUND_ROW_LIMIT'] must be a positive integer, not 0. "
        "TRACER['PLAYGROUND_TIMEOUT_MS'] must be a positive integer, not 5.5."
    )


@override_settings(TRACER={"LOG": "DEBUG"})
def test_log_is_true_or_false():
    with pytest.raises(ImproperlyConfigured) as info:
        get_config()
    assert str(info.value) == "TRACER['LOG'] must be True or False, not 'DEBUG'."


@override_settings(TRACER={"LOG": True})
def test_log_is_kept():
    assert get_config().log is True
    assert Config().log is False
