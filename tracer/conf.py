"""The ``TRACER`` setting: one dict, every key has a default."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver

CAPTURE_MODES = ("explicit", "always")

DEFAULTS: dict[str, Any] = {
    # "explicit": record inside tracer.capture() and requests (TracerMiddleware).
    # "always": also record every statement outside any trace, into rolling traces.
    "CAPTURE": "explicit",
    # With CAPTURE "always": statements per rolling trace, and finished traces kept.
    "ALWAYS_TRACE_STATEMENTS": 1000,
    "ALWAYS_TRACES_KEPT": 20,
    # Frames in files under these paths are not "your code": a statement's location
    # is the first frame outside them. None means Django, the tracer, the standard
    # library and site-packages.
    "LIBRARY_PATHS": None,
    # Frames kept per call site, from the first frame in your code outward.
    "STACK_DEPTH": 12,
    # Past SOFT_CAP statements a trace keeps timings and SQL but drops stacks and
    # params; past HARD_CAP it keeps only counters. Each trace says what it dropped.
    "SOFT_CAP": 1000,
    "HARD_CAP": 10000,
    # The in-memory store of finished traces: at most this many, and about this
    # many bytes (SQL text, params and records, estimated).
    "STORE_TRACES": 100,
    "STORE_BYTES": 50_000_000,
    # Analysis: a statement slower than this (execute plus fetch, in ms) is slow.
    "SLOW_MS": 100,
    # Analysis: related accesses from one call site that make an N+1 (at least).
    "N_PLUS_ONE_MIN": 2,
    # Display and export: values of columns whose names contain one of these
    # (case-insensitive) are shown as "********".
    "REDACT_COLUMNS": ("password", "token", "secret", "key"),
    # Who may see the tracer's pages: a callable taking the request and returning a
    # bool, or its dotted path. None: DEBUG is on and the client is in INTERNAL_IPS.
    "SHOW_CALLBACK": None,
    # Where finished traces are kept: None for memory (this process only), or the
    # path of a SQLite file that every process of the server shares.
    "STORE_PATH": None,
    # Emit each finished trace as OpenTelemetry spans (the "otel" extra): one span per
    # statement, with a child span per stage that took time.
    "OTEL": False,
    # Append a sqlcommenter comment (call site, view, route, traceparent) to the SQL
    # of each recorded statement, as sent to the database.
    "SQL_COMMENTS": False,
    # Which requests TracerMiddleware records: a rate from 0 to 1, or a callable taking
    # the request and returning a bool, or its dotted path.
    "SAMPLE": 1.0,
    # Record a request that sampling skipped when it carries the header "X-Tracer: 1" or
    # the cookie "tracer=1": True when SHOW_CALLBACK allows the request, False never,
    # or a callable taking the request (or its dotted path) that decides.
    "ON_DEMAND": True,
    # The playground page's Run: rows read at most, and milliseconds each statement
    # may take.
    "PLAYGROUND_ROW_LIMIT": 100,
    "PLAYGROUND_TIMEOUT_MS": 2000,
    # Log each recorded statement as it finishes executing: its time, call site, stages
    # and SQL, at DEBUG on the logger "tracer.statements" (see tracer.console). Printed
    # to stderr unless LOGGING gives that logger handlers of its own.
    "LOG": False,
}

_POSITIVE_INTS = (
    "ALWAYS_TRACE_STATEMENTS",
    "ALWAYS_TRACES_KEPT",
    "STACK_DEPTH",
    "SOFT_CAP",
    "HARD_CAP",
    "STORE_TRACES",
    "STORE_BYTES",
    "N_PLUS_ONE_MIN",
    "PLAYGROUND_ROW_LIMIT",
    "PLAYGROUND_TIMEOUT_MS",
)


@dataclass(frozen=True)
class Config:
    capture: str = DEFAULTS["CAPTURE"]
    always_trace_statements: int = DEFAULTS["ALWAYS_TRACE_STATEMENTS"]
    always_traces_kept: int = DEFAULTS["ALWAYS_TRACES_KEPT"]
    library_paths: tuple[str, ...] | None = None
    stack_depth: int = DEFAULTS["STACK_DEPTH"]
    soft_cap: int = DEFAULTS["SOFT_CAP"]
    hard_cap: int = DEFAULTS["HARD_CAP"]
    store_traces: int = DEFAULTS["STORE_TRACES"]
    store_bytes: int = DEFAULTS["STORE_BYTES"]
    slow_ms: float = DEFAULTS["SLOW_MS"]
    n_plus_one_min: int = DEFAULTS["N_PLUS_ONE_MIN"]
    redact_columns: tuple[str, ...] = DEFAULTS["REDACT_COLUMNS"]
    show_callback: Any = None
    store_path: str | None = None
    otel: bool = False
    sql_comments: bool = False
    sample: Any = 1.0
    on_demand: Any = True
    playground_row_limit: int = DEFAULTS["PLAYGROUND_ROW_LIMIT"]
    playground_timeout_ms: int = DEFAULTS["PLAYGROUND_TIMEOUT_MS"]
    log: bool = False


def config_problems(value: Any) -> list[str]:
    """Describe what is wrong with a TRACER setting value (empty when valid)."""
    if not isinstance(value, dict):
        return [f"TRACER must be a dict, not {type(value).__name__}."]
    problems = [
        f"TRACER has an unknown key {key!r}; known keys: {', '.join(sorted(DEFAULTS))}."
        for key in value
        if key not in DEFAULTS
    ]
    capture = value.get("CAPTURE", DEFAULTS["CAPTURE"])
    if capture not in CAPTURE_MODES:
        problems.append(
            f"TRACER['CAPTURE'] is {capture!r}; use one of {', '.join(map(repr, CAPTURE_MODES))}."
        )
    for key in _POSITIVE_INTS:
        number = value.get(key, DEFAULTS[key])
        if not isinstance(number, int) or isinstance(number, bool) or number < 1:
            problems.append(f"TRACER[{key!r}] must be a positive integer, not {number!r}.")
    paths = value.get("LIBRARY_PATHS")
    if paths is not None and (
        isinstance(paths, str)
        or not isinstance(paths, (list, tuple))
        or not all(isinstance(p, str) for p in paths)
    ):
        problems.append(f"TRACER['LIBRARY_PATHS'] must be a list of paths or None, not {paths!r}.")
    slow = value.get("SLOW_MS", DEFAULTS["SLOW_MS"])
    if not isinstance(slow, (int, float)) or isinstance(slow, bool) or slow < 0:
        problems.append(f"TRACER['SLOW_MS'] must be a number of milliseconds >= 0, not {slow!r}.")
    redact = value.get("REDACT_COLUMNS", DEFAULTS["REDACT_COLUMNS"])
    if (
        isinstance(redact, str)
        or not isinstance(redact, (list, tuple))
        or not all(isinstance(p, str) and p for p in redact)
    ):
        problems.append(
            "TRACER['REDACT_COLUMNS'] must be a list of non-empty strings "
            f"(parts of column names), not {redact!r}."
        )
    show = value.get("SHOW_CALLBACK")
    if show is not None and not callable(show) and not isinstance(show, str):
        problems.append(
            f"TRACER['SHOW_CALLBACK'] must be a callable, its dotted path, or None, not {show!r}."
        )
    store_path = value.get("STORE_PATH")
    if store_path is not None and not isinstance(store_path, (str, os.PathLike)):
        problems.append(f"TRACER['STORE_PATH'] must be a file path or None, not {store_path!r}.")
    problems.extend(_observability_problems(value))
    soft, hard = (
        value.get("SOFT_CAP", DEFAULTS["SOFT_CAP"]),
        value.get("HARD_CAP", DEFAULTS["HARD_CAP"]),
    )
    if isinstance(soft, int) and isinstance(hard, int) and soft > hard:
        problems.append(
            f"TRACER['SOFT_CAP'] ({soft}) must not exceed TRACER['HARD_CAP'] ({hard})."
        )
    return problems


def _observability_problems(value: dict[str, Any]) -> list[str]:
    problems = [
        f"TRACER[{key!r}] must be True or False, not {value[key]!r}."
        for key in ("OTEL", "SQL_COMMENTS", "LOG")
        if key in value and not isinstance(value[key], bool)
    ]
    if value.get("OTEL") is True:
        from tracer.otel import installed

        if not installed():
            problems.append(
                "TRACER['OTEL'] is True but opentelemetry-api is not installed: "
                "pip install 'django-query-tracer[otel]'."
            )
    sample = value.get("SAMPLE", DEFAULTS["SAMPLE"])
    if not (callable(sample) or isinstance(sample, str)) and (
        not isinstance(sample, (int, float)) or isinstance(sample, bool) or not 0 <= sample <= 1
    ):
        problems.append(
            "TRACER['SAMPLE'] must be a rate from 0 to 1, a callable, or its dotted path, "
            f"not {sample!r}."
        )
    on_demand = value.get("ON_DEMAND", DEFAULTS["ON_DEMAND"])
    if not isinstance(on_demand, (bool, str)) and not callable(on_demand):
        problems.append(
            "TRACER['ON_DEMAND'] must be True, False, a callable, or its dotted path, "
            f"not {on_demand!r}."
        )
    return problems


@lru_cache(maxsize=1)
def get_config() -> Config:
    user = getattr(settings, "TRACER", {})
    problems = config_problems(user)
    if problems:
        raise ImproperlyConfigured(" ".join(problems))
    merged = {**DEFAULTS, **user}
    paths = merged["LIBRARY_PATHS"]
    return Config(
        capture=merged["CAPTURE"],
        always_trace_statements=merged["ALWAYS_TRACE_STATEMENTS"],
        always_traces_kept=merged["ALWAYS_TRACES_KEPT"],
        library_paths=None if paths is None else tuple(paths),
        stack_depth=merged["STACK_DEPTH"],
        soft_cap=merged["SOFT_CAP"],
        hard_cap=merged["HARD_CAP"],
        store_traces=merged["STORE_TRACES"],
        store_bytes=merged["STORE_BYTES"],
        slow_ms=merged["SLOW_MS"],
        n_plus_one_min=merged["N_PLUS_ONE_MIN"],
        redact_columns=tuple(p.lower() for p in merged["REDACT_COLUMNS"]),
        show_callback=merged["SHOW_CALLBACK"],
        store_path=None if merged["STORE_PATH"] is None else os.fspath(merged["STORE_PATH"]),
        otel=merged["OTEL"],
        sql_comments=merged["SQL_COMMENTS"],
        sample=merged["SAMPLE"],
        on_demand=merged["ON_DEMAND"],
        playground_row_limit=merged["PLAYGROUND_ROW_LIMIT"],
        playground_timeout_ms=merged["PLAYGROUND_TIMEOUT_MS"],
        log=merged["LOG"],
    )


@receiver(setting_changed)
def _reset_config(*, setting: str, **kwargs: Any) -> None:
    # So that override_settings(TRACER=...) takes effect in tests.
    if setting == "TRACER":
        get_config.cache_clear()
