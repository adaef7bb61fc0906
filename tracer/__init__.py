"""tracer: see how Django's ORM turns a QuerySet into SQL, and where the time goes."""

from __future__ import annotations

from tracer.engines import ENGINE, traced, wrapped_engine
from tracer.recorder import always_traces, capture, current_trace
from tracer.trace import Event, Statement, Trace

__version__ = "0.1.0"

__all__ = [
    "ENGINE",
    "Event",
    "Statement",
    "Trace",
    "always_traces",
    "capture",
    "current_trace",
    "traced",
    "wrapped_engine",
]
