"""Slow statements: those whose database time (execution plus fetching) passed a
threshold, ``TRACER["SLOW_MS"]`` unless given, slowest first.
"""

from __future__ import annotations

from dataclasses import dataclass

from tracer.analysis.groups import location_of
from tracer.conf import get_config
from tracer.trace import Statement, Trace


@dataclass(frozen=True)
class Slow:
    """One slow statement of a trace."""

    #: Its position in ``trace.statements``.
    index: int
    statement: Statement
    #: Time spent executing it and fetching its rows.
    duration_ns: int
    #: ``"file:line"`` of the first frame in your code, ``"template:line"``, or ``"?"``.
    location: str

    @property
    def ms(self) -> float:
        return self.duration_ns / 1e6


def slow_statements(trace: Trace, threshold_ms: float | None = None) -> list[Slow]:
    """The statements that took longer than ``threshold_ms`` (execute plus fetch),
    slowest first, then in the order they ran.

    Every kind counts, transaction statements too: a slow COMMIT is database time.
    """
    if threshold_ms is None:
        threshold_ms = get_config().slow_ms
    # Compared in ns, so that "longer than 100 ms" means exactly that.
    threshold_ns = threshold_ms * 1_000_000
    found = []
    for index, statement in enumerate(trace.statements):
        duration_ns = (statement.duration_ns or 0) + statement.fetch_ns
        if duration_ns > threshold_ns:
            found.append(Slow(index, statement, duration_ns, location_of(statement)))
    found.sort(key=lambda slow: (-slow.duration_ns, slow.index))
    return found
