"""Where recorded statements go: the active trace of the current context.

This module is on the hot path of every query. When nothing records, the cost of a
query is one context-variable read and one global read.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from django.core.signals import setting_changed

from tracer.trace import Statement, Trace

logger = logging.getLogger("tracer")

# The innermost tracer.capture() (or request) trace of this thread or task.
_current: ContextVar[Trace | None] = ContextVar("tracer_current", default=None)
# With CAPTURE "always": the rolling trace of this context outside any explicit one.
_ambient: ContextVar[Trace | None] = ContextVar("tracer_ambient", default=None)

# CAPTURE == "always", read from settings on first use; None means "not read yet".
_always: bool | None = None
_always_limit = 1000
_always_traces: deque[Trace] = deque(maxlen=20)

_failures = 0
_failures_lock = threading.Lock()


def active_trace() -> Trace | None:
    """The trace a statement run now belongs to, or None if nothing records."""
    trace = _current.get()
    if trace is None and (_always if _always is not None else _load_config()):
        trace = _ambient.get()
        if trace is None or len(trace.statements) >= _always_limit:
            trace = _start_ambient(trace)
    return trace


def current_trace() -> Trace | None:
    """The innermost explicit trace (``capture()`` block or request), if any."""
    return _current.get()


def always_traces() -> list[Trace]:
    """The rolling traces of ``CAPTURE = "always"``, oldest first (bounded)."""
    return list(_always_traces)


@contextmanager
def capture(label: str = "") -> Iterator[Trace]:
    """Record every statement run by this thread or task inside the block.

    Nested captures each get their own statements; when an inner one ends, its
    statements and events are added to the outer one too.
    """
    parent = _current.get()
    trace = Trace(label)
    token = _current.set(trace)
    try:
        yield trace
    finally:
        _current.reset(token)
        trace.finish()
        if parent is not None:
            parent.statements.extend(trace.statements)
            parent.events.extend(trace.events)


def begin_statement(trace: Trace, db: Any, kind: str, sql: Any, params: Any) -> Statement:
    statement = Statement(db.alias, db.vendor, kind, sql, params, db.in_atomic_block)
    trace.statements.append(statement)
    return statement


def note_failure() -> None:
    """Count a failure of the recorder itself; log the first with its traceback.

    Call it from an ``except`` block. The user's query is never affected.
    """
    global _failures
    with _failures_lock:
        _failures += 1
        first = _failures == 1
    if first:
        logger.exception(
            "tracer failed to record a statement; the query itself was not affected. "
            "Later failures are counted (tracer.recorder.failures()) but not logged."
        )


def failures() -> int:
    """How many times recording failed in this process."""
    return _failures


def _load_config() -> bool:
    global _always, _always_limit, _always_traces
    from tracer.conf import get_config

    try:
        config = get_config()
    except Exception:
        # An invalid TRACER setting is reported by the system checks; queries go on.
        note_failure()
        _always = False
        return False
    _always_limit = config.always_trace_statements
    if _always_traces.maxlen != config.always_traces_kept:
        _always_traces = deque(_always_traces, maxlen=config.always_traces_kept)
    _always = config.capture == "always"
    return _always


def _start_ambient(full: Trace | None) -> Trace:
    if full is not None:
        full.finish()
    trace = Trace("always")
    _always_traces.append(trace)
    _ambient.set(trace)
    return trace


def _reset_config(*, setting: str, **kwargs: Any) -> None:
    global _always
    if setting == "TRACER":
        _always = None


setting_changed.connect(_reset_config)
