"""Reading a backend without connecting: an alias's engine, its classes, and a fresh
instance of its ``DatabaseWrapper`` that refuses to connect, so that a value that
needs the server says so instead of opening a connection."""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from django.conf import settings
from django.db import connections
from django.db.utils import load_backend

from tracer import djangosource, engines, recorder

__all__ = ["NEEDS_SERVER", "Backend", "Cell", "NotConnected", "Row", "load", "reading"]

#: What a value read from the server says when no connection may be opened.
NEEDS_SERVER = "needs the server (its version or settings): not read without a connection"


class NotConnected(Exception):
    """Reading this would open a connection, which rendering the page never does."""


def _refuse() -> None:
    raise NotConnected(NEEDS_SERVER)


@dataclass
class Cell:
    """One value of one alias: its text, or why it is not known."""

    text: str = ""
    unknown: str | None = None
    #: Extra lines (a pattern op, a column's suffix or check), shown under the text.
    more: list[str] = field(default_factory=list)
    #: Where it is in Django's source.
    links: list[djangosource.SourceLink] = field(default_factory=list)
    #: Said about it, not compared (how it is computed).
    notes: list[str] = field(default_factory=list)

    @property
    def key(self) -> tuple[str, tuple[str, ...]] | None:
        return None if self.unknown else (self.text, tuple(self.more))

    @property
    def lines(self) -> list[list[str]]:
        """The text, then each extra line, cut after each dot: a page breaks a long
        dotted path there rather than inside a name."""
        return [_after_dots(line) for line in [self.text, *self.more] if line]


def _after_dots(line: str) -> list[str]:
    parts = line.split(".")
    return [part + "." for part in parts[:-1]] + [parts[-1]]


@dataclass
class Row:
    """One thing (a class, a flag, a lookup...), with a cell per backend."""

    name: str
    cells: list[Cell]
    explanation: str = ""
    #: Whether a difference is worth marking (two engines' classes always differ).
    compare: bool = True

    @property
    def differs(self) -> bool:
        """Whether the backends shown disagree (values not read are left out)."""
        keys = {cell.key for cell in self.cells if cell.key is not None}
        return self.compare and len(keys) > 1


@dataclass
class Backend:
    """One alias's engine, read from its classes and an unconnected instance."""

    alias: str
    engine: str
    traced: bool
    wrapper_class: type | None = None
    #: An instance to read properties from: fresh and unconnected, or the alias's own
    #: connection with ``?connect=1``.
    wrapper: Any = None
    error: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def loaded(self) -> bool:
        """Whether its engine's classes could be loaded (a template calls a class, so
        it reads this instead of ``wrapper_class``)."""
        return self.wrapper_class is not None

    @cached_property
    def vendor(self) -> str:
        return str(getattr(self.wrapper_class, "vendor", "?"))

    @cached_property
    def display_name(self) -> str:
        return str(getattr(self.wrapper_class, "display_name", self.vendor))

    def read(self, owner: Any, name: str) -> Cell:
        """``owner.name`` (owner: a class or an instance) without opening a
        connection: a plain class attribute directly, a property only on an
        instance, and only if reading it connects to nothing."""
        if owner is None:
            return Cell(unknown="not available")
        try:
            value = getattr(owner, name)
        except NotConnected:
            return Cell(unknown=NEEDS_SERVER)
        except Exception as exc:  # the engine's own code failed: say so, go on
            return Cell(unknown=f"{type(exc).__name__}: {exc}")
        return Cell(text(value))


def text(value: Any) -> str:
    if isinstance(value, type):
        return path(value)
    return repr(value) if not isinstance(value, str) else value


def path(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def load(alias: str, connect: bool = False) -> Backend:
    """The engine behind ``alias``: its classes, and an instance to read from."""
    config = settings.DATABASES[alias]
    traced = config.get("ENGINE") in (engines.ENGINE, engines.ENGINE + ".base")
    try:
        engine = engines.wrapped_engine(alias)
    except Exception as exc:
        return Backend(alias, str(config.get("WRAPPED_ENGINE") or "?"), traced, error=str(exc))
    backend = Backend(alias, engine, traced)
    try:
        backend.wrapper_class = load_backend(engine).DatabaseWrapper
    except Exception as exc:  # a driver that is not installed, say
        backend.error = f"The engine could not be loaded: {type(exc).__name__}: {exc}"
        return backend
    if connect:
        try:
            connection = connections[alias]
            with recorder.suspended():
                connection.ensure_connection()
        except Exception as exc:
            backend.notes.append(
                f"Could not connect ({type(exc).__name__}: {exc}): values that need the "
                "server are not read."
            )
        else:
            backend.wrapper = connection
            return backend
    try:
        wrapper = backend.wrapper_class(dict(connections.settings[alias]), alias)
    except Exception as exc:
        backend.notes.append(
            f"An unconnected instance could not be made ({type(exc).__name__}: {exc}): "
            "only class attributes are shown."
        )
        return backend
    # A fresh instance, never used for anything else: whatever would connect fails.
    wrapper.connect = _refuse
    backend.wrapper = wrapper
    return backend


def reading(backend: Backend) -> AbstractContextManager[None]:
    """Around reading from the alias's own connection (``?connect=1``): what it
    sends belongs to no trace."""
    if backend.wrapper is not None and backend.wrapper is connections[backend.alias]:
        return recorder.suspended()
    return nullcontext()
