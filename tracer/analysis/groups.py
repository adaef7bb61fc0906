"""Statements grouped by what they share: similar (one fingerprint) and duplicate (the
same SQL with the same params), with counts, time and the code locations of each.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

from tracer import stacks
from tracer.analysis.fingerprint import fingerprint, normalize
from tracer.trace import Statement, Trace

#: Statement kinds that are grouped (BEGIN/COMMIT/ROLLBACK are not).
KINDS = ("execute", "executemany", "callproc")

# Transaction control sent as SQL text: SQLite's BEGIN, savepoints on every engine.
# A PL/SQL block ("BEGIN ...; END;") is not one.
_CONTROL = re.compile(
    r"\s*(?:"
    r"(?:BEGIN|END|COMMIT|ROLLBACK)(?:\s+(?:DEFERRED|IMMEDIATE|EXCLUSIVE|TRANSACTION|WORK))*"
    r"|START\s+TRANSACTION\b[^;]*"
    r"|(?:ROLLBACK(?:\s+(?:WORK|TRANSACTION))?\s+TO|RELEASE|SAVEPOINT)\s[^;]*"
    r")\s*;?\s*",
    re.IGNORECASE,
)


def is_transaction_control(sql: str) -> bool:
    """Whether ``sql`` only begins, ends or marks a transaction (``BEGIN``,
    ``SAVEPOINT "s1_x1"``, ``RELEASE SAVEPOINT ...``, ``START TRANSACTION``...)."""
    return _CONTROL.fullmatch(sql) is not None


@dataclass
class Group:
    """Statements of a trace that share a key."""

    #: The fingerprint (see tracer.analysis.fingerprint).
    fingerprint: str
    #: The SQL with its values taken out.
    shape: str
    #: Positions of the statements in ``trace.statements``, in order.
    indexes: list[int] = field(default_factory=list)
    #: Time spent executing and fetching, all statements together.
    duration_ns: int = 0
    #: How many statements ran from each location: ``"file:line"`` of the first frame
    #: in your code, ``"template:line"`` when a template rendered it, or ``"?"``.
    locations: Counter[str] = field(default_factory=Counter)

    @property
    def count(self) -> int:
        return len(self.indexes)

    @property
    def duration_ms(self) -> float:
        return self.duration_ns / 1e6


def similar(trace: Trace, minimum: int = 2) -> list[Group]:
    """Groups of statements with one fingerprint, at least ``minimum`` each, the
    largest first, then in the order they ran."""
    return _grouped(trace, lambda s: fingerprint(s.sql, s.vendor), minimum)


def duplicates(trace: Trace, minimum: int = 2) -> list[Group]:
    """Groups of statements that ran the same SQL with the same params, at least
    ``minimum`` each. Statements whose params were not kept (past ``SOFT_CAP``, or an
    iterator given to ``executemany()``) are never counted as duplicates, nor is
    transaction control (every ``atomic()`` block on SQLite sends the same BEGIN)."""

    def key(statement: Statement) -> Hashable | None:
        if is_transaction_control(statement.sql):
            return None
        params = _params_key(statement.params)
        return None if params is _UNKNOWN else (statement.sql, params)

    return _grouped(trace, key, minimum)


def location_of(statement: Statement) -> str:
    """Where a statement came from, as shown in groups: template line first."""
    operation = statement.operation
    if operation is not None:
        return where(operation.template, operation.stack)
    return where(statement.template, statement.stack)


def where(template: tuple[str, int] | None, stack: Any) -> str:
    """``"template:line"`` if a template ran it, else ``"file:line"`` of the first
    frame in your code, else ``"?"``."""
    if template is not None:
        return f"{template[0]}:{template[1]}"
    frame = stacks.location(stack)
    return "?" if frame is None else f"{frame.filename}:{frame.lineno}"


def _grouped(
    trace: Trace, key: Callable[[Statement], Hashable | None], minimum: int
) -> list[Group]:
    groups: dict[Hashable, Group] = {}
    for index, statement in enumerate(trace.statements):
        if statement.kind not in KINDS or not isinstance(statement.sql, str):
            continue
        value = key(statement)
        if value is None:
            continue
        group = groups.get(value)
        if group is None:
            group = groups[value] = Group(
                fingerprint(statement.sql, statement.vendor),
                normalize(statement.sql, statement.vendor),
            )
        group.indexes.append(index)
        group.duration_ns += (statement.duration_ns or 0) + statement.fetch_ns
        group.locations[location_of(statement)] += 1
    found = [group for group in groups.values() if group.count >= minimum]
    found.sort(key=lambda group: (-group.count, group.indexes[0]))
    return found


_UNKNOWN = object()


def _params_key(params: Any) -> Any:
    """A hashable, type-strict form of params (``1``, ``1.0`` and ``True`` differ), or
    _UNKNOWN when they were not recorded."""
    if isinstance(params, str):  # the DROPPED / UNRECORDED markers
        return _UNKNOWN
    try:
        return _key(params)
    except Exception:
        return _UNKNOWN


def _key(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return (type(value).__name__, *(_key(item) for item in value))
    if isinstance(value, dict):
        return ("dict", *sorted((str(k), _key(v)) for k, v in value.items()))
    try:
        hash(value)
    except TypeError:
        return (type(value).__qualname__, repr(value))
    return (type(value).__qualname__, value)
