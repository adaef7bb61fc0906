"""Eager loading that was never used: a ``prefetch_related`` whose prefetched
QuerySets your code never read in the trace.

What the trace can tell: prefetches of many-valued relations (reverse foreign keys and
many-to-many), stored as QuerySets on each instance, are marked used when your code
reads one (iterates it, takes its ``len``, ``count()``, an index ...). Not told (and
never reported): ``select_related`` joins and prefetches of single-valued relations,
which Django caches on the instance where reading them runs no tracer code, and
``Prefetch(..., to_attr=...)`` lists.
"""

from __future__ import annotations

from dataclasses import dataclass

from tracer.analysis.groups import where
from tracer.analysis.nplusone import queryset_code
from tracer.trace import Trace


@dataclass
class UnusedPrefetch:
    """A prefetch whose results nothing read."""

    #: The lookup, as given to prefetch_related() (``"books"``, ``"books__tags"``).
    lookup: str
    #: Statements it ran, rows they fetched, and its time (Python included).
    queries: int
    rows: int
    duration_ns: int
    #: The evaluation that asked for it: where, and its QuerySet as code.
    location: str
    code: str | None
    #: What to do about it.
    fix: str
    operation: int

    @property
    def duration_ms(self) -> float:
        return self.duration_ns / 1e6


def unused_prefetches(trace: Trace) -> list[UnusedPrefetch]:
    """Prefetches of the trace whose results were never read, in the order they ran."""
    found = []
    for operation in trace.operations:
        if operation.trigger != "prefetch" or operation.used is not False:
            continue
        statements = [s for s in trace.statements if s.operation is operation]
        if not statements:
            continue
        parent = operation.parent
        asker = parent if parent is not None else operation
        lookup = operation.detail or "?"
        found.append(
            UnusedPrefetch(
                lookup=lookup,
                queries=len(statements),
                rows=sum(s.rows_fetched for s in statements),
                duration_ns=operation.duration_ns or 0,
                location=where(asker.template, asker.stack),
                code=queryset_code(parent) if parent is not None else None,
                fix=(
                    f"Nothing read the {lookup!r} it loaded: drop "
                    f".prefetch_related({lookup!r}), or read it through the prefetch "
                    f"(instance.{lookup.rsplit('__', 1)[-1]}.all(), not a new filter())."
                ),
                operation=operation.index,
            )
        )
    return found
