"""Query budgets in tests: context managers, a unittest mixin (the pytest plugin in
``tracer.pytest_plugin`` offers the same as a fixture).

::

    with assert_max_queries(3):
        client.get("/books/")
    with assert_no_n_plus_one():
        client.get("/books/")

A failure lists every statement with where it ran from and, for an N+1, what it is
and how to fix it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager

from tracer.analysis.groups import duplicates, location_of
from tracer.analysis.nplusone import NPlusOne, n_plus_ones
from tracer.recorder import capture
from tracer.stacks import short_path
from tracer.trace import Trace

__all__ = [
    "TracerAssertionsMixin",
    "assert_max_queries",
    "assert_no_duplicates",
    "assert_no_n_plus_one",
    "assert_num_queries",
    "describe",
]

# Statement kinds that count as queries (not BEGIN/COMMIT made as driver calls).
_QUERY_KINDS = ("execute", "executemany", "callproc")


def queries(trace: Trace, using: str | None = None) -> list[int]:
    """Indexes of the trace's queries, on one database alias or all."""
    return [
        index
        for index, statement in enumerate(trace.statements)
        if statement.kind in _QUERY_KINDS and (using is None or statement.alias == using)
    ]


def describe(trace: Trace, indexes: list[int] | None = None) -> str:
    """The statements, numbered, each with its location: what a failure shows."""
    lines = []
    for index in queries(trace) if indexes is None else indexes:
        statement = trace.statements[index]
        sql = statement.sql if isinstance(statement.sql, str) else repr(statement.sql)
        if len(sql) > 300:
            sql = sql[:297] + "..."
        lines.append(f"  {index + 1}. {sql}\n     at {short_path(location_of(statement))}")
    return "\n".join(lines)


@contextmanager
def assert_num_queries(count: int, using: str | None = None) -> Iterator[Trace]:
    """Fail unless the block runs exactly ``count`` queries (on ``using``, or all)."""
    with capture("assert_num_queries") as trace:
        yield trace
    ran = queries(trace, using)
    if len(ran) != count:
        raise AssertionError(
            f"{len(ran)} queries ran, {count} expected{_on(using)}:\n{describe(trace, ran)}"
            + _n_plus_one_hint(trace)
        )


@contextmanager
def assert_max_queries(count: int, using: str | None = None) -> Iterator[Trace]:
    """Fail if the block runs more than ``count`` queries (on ``using``, or all)."""
    with capture("assert_max_queries") as trace:
        yield trace
    ran = queries(trace, using)
    if len(ran) > count:
        raise AssertionError(
            f"{len(ran)} queries ran, at most {count} expected{_on(using)}:\n"
            f"{describe(trace, ran)}" + _n_plus_one_hint(trace)
        )


@contextmanager
def assert_no_n_plus_one(minimum: int | None = None) -> Iterator[Trace]:
    """Fail if the block has an N+1 (see ``tracer.analysis.nplusone``)."""
    with capture("assert_no_n_plus_one") as trace:
        yield trace
    found = n_plus_ones(trace, minimum)
    if found:
        raise AssertionError(
            f"{len(found)} N+1 found:\n" + "\n".join(_n_plus_one(trace, n) for n in found)
        )


@contextmanager
def assert_no_duplicates() -> Iterator[Trace]:
    """Fail if the block runs one statement (same SQL, same params) more than once."""
    with capture("assert_no_duplicates") as trace:
        yield trace
    found = duplicates(trace)
    if found:
        parts = [
            f"- ran {group.count} times: {group.shape}\n{describe(trace, group.indexes)}"
            for group in found
        ]
        raise AssertionError(f"{len(found)} duplicated statements:\n" + "\n".join(parts))


def _on(using: str | None) -> str:
    return "" if using is None else f" on {using!r}"


def _n_plus_one(trace: Trace, found: NPlusOne) -> str:
    fix = f"\n  Fix: {found.fixed_code}" if found.fixed_code else f"\n  Fix: {found.fix}"
    return f"- {found.explanation}{fix}\n{describe(trace, found.statements)}"


def _n_plus_one_hint(trace: Trace) -> str:
    found = n_plus_ones(trace)
    if not found:
        return ""
    return "\nAmong them:\n" + "\n".join(_n_plus_one(trace, n) for n in found)


class TracerAssertionsMixin:
    """For ``unittest``/Django ``TestCase`` classes::

    class BookTests(TracerAssertionsMixin, TestCase):
        def test_list(self):
            with self.assertMaxQueries(2):
                self.client.get("/books/")
    """

    def assertNumQueriesTraced(  # noqa: N802
        self, count: int, using: str | None = None
    ) -> AbstractContextManager[Trace]:
        return assert_num_queries(count, using)

    def assertMaxQueries(  # noqa: N802
        self, count: int, using: str | None = None
    ) -> AbstractContextManager[Trace]:
        return assert_max_queries(count, using)

    def assertNoNPlusOne(self, minimum: int | None = None) -> AbstractContextManager[Trace]:  # noqa: N802
        return assert_no_n_plus_one(minimum)

    def assertNoDuplicateQueries(self) -> AbstractContextManager[Trace]:  # noqa: N802
        return assert_no_duplicates()
