"""Keeping statements from reaching the database: while the playground builds and
compiles, and while an export describes the user's objects (a ``repr()`` may run a
query). Every statement is stopped before the driver sees it (in the connection's
``execute_wrappers``, so the tracer does not record it either)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

from django.db import connections

from tracer import recorder
from tracer.trace import Compile

__all__ = ["QueryAttempted", "Stopped", "first_statement", "no_queries"]


class QueryAttempted(Exception):
    """A statement was about to be sent; it was not."""

    def __init__(self, sql: Any, params: Any, compile: Compile | None = None) -> None:
        super().__init__(sql)
        self.sql = sql
        self.params = params
        #: The tracer's record of the compiler call that made the statement (traced
        #: aliases only): its compiler class, Query class and state.
        self.compile = compile


def _refuse(execute: Any, sql: Any, params: Any, many: bool, context: Any) -> Any:
    # The compiler call running on a traced connection (tracer.backend.compiler).
    compile = getattr(context.get("connection"), "_tracer_compiling", None)
    raise QueryAttempted(sql, params, compile)


@contextmanager
def no_queries(aliases: Iterable[str] | None = None) -> Iterator[None]:
    """Raise QueryAttempted instead of sending any statement on ``aliases`` (all of
    them by default) inside the block."""
    with ExitStack() as stack:
        for alias in list(connections) if aliases is None else aliases:
            stack.enter_context(connections[alias].execute_wrapper(_refuse))
        yield


class Stopped:
    """What ``first_statement`` stopped: None until a statement was attempted."""

    attempt: QueryAttempted | None = None


@contextmanager
def first_statement(alias: str) -> Iterator[Stopped]:
    """Let Django run the block's code up to its first statement on ``alias``, and
    stop there: ``stopped.attempt`` holds its SQL, params and compile record.

    Recording is suspended (a throwaway trace records the compile, so that the
    compiler class and Query state are known), so no trace sees any of it.
    """
    stopped = Stopped()
    with recorder.suspended(), no_queries([alias]):
        try:
            yield stopped
        except QueryAttempted as attempt:
            stopped.attempt = attempt
