"""Eager loading that was never used: a ``prefetch_related`` whose results your code
never read in the trace, and a ``select_related`` path whose objects it never read.

What the trace can tell:

- Prefetches of many-valued relations (reverse foreign keys and many-to-many) store a
  QuerySet on each instance; reading one (iterating it, its ``len``, ``count()``, an
  index ...) marks the prefetch used.
- ``select_related`` paths and prefetches of a foreign key or one-to-one are cached on
  the instance, and reading them runs the relation's descriptor (``book.author``:
  ``ForwardManyToOneDescriptor.__get__``, ``place.restaurant``:
  ``ReverseOneToOneDescriptor.__get__``). While a trace records, that read is checked
  against the evaluations it watches (see ``tracer.recorder.watch``): reading
  ``review.book`` marks the path ``book`` of the evaluation that loaded the review,
  reading ``review.book.author`` marks ``book__author`` (and ``book``). Reads by your
  code and by templates count, and so do the related objects the playground's
  result table shows (``tracer.pipeline.shown``); reads by the ORM itself (a
  prefetch walking the objects) and by the tracer's own code don't.

What it cannot tell, and never reports:

- The columns of an object that were read. Django's loaded fields are plain values in
  the instance's ``__dict__``, and CPython reads them in C, calling no Python code (not
  even a dict subclass's ``__getitem__``). What could see such a read costs too much or
  changes your objects: tracing every bytecode (``sys.settrace`` with
  ``f_trace_opcodes``, many times slower), or keeping the values out of ``__dict__`` and
  serving them through descriptors (``vars()``, ``__dict__``, pickles and copies would
  differ). So "fetched but never read" is not told at all. ``only()`` and ``defer()``
  are yours to choose; a deferred field read later is an N+1 of its own.
- Relations read through other descriptors: a ``GenericForeignKey``'s prefetch.
- Evaluations older than the last ``HOLD_RECENT`` watched ones when the trace
  finished: their objects could still be read later, unseen. So are evaluations past
  ``HOLD_MAX`` instances, those run by ``.iterator()`` (rows are not kept), paths to a
  ``FilteredRelation``, ``Prefetch(..., to_attr=...)`` objects, and a trace still
  recording (its reads are not all in).
- An evaluation one of whose objects was pickled or copied (``Model.__getstate__``: a
  cache, a deep copy) while it was watched: the copy may be read unseen.
- Reads that go around the descriptors (``instance._state.fields_cache``), and reads
  after the trace ended (a streaming response's generator, an object kept in memory):
  those are not seen, and a path read only so is reported unused.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tracer.analysis.groups import where
from tracer.analysis.nplusone import queryset_code
from tracer.export import _calls, _root, call_code
from tracer.recorder import watching
from tracer.trace import Operation, Statement, Trace


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


@dataclass
class UnusedSelectRelated:
    """A ``select_related`` path whose objects nothing read: the shallowest one of an
    unread part (``"book"`` when nothing read ``review.book``; ``"book__author"``
    when ``review.book`` was read but never ``review.book.author``)."""

    #: The path (``"author"``, ``"book__author"``).
    lookup: str
    #: Rows the evaluation fetched (each with the path's joined columns).
    rows: int
    #: The evaluation: where, and its QuerySet as code.
    location: str
    code: str | None
    #: What to do about it, and the QuerySet joining only the paths that were read
    #: (every unread one dropped; None when its select_related() call is not known).
    fix: str
    fixed_code: str | None
    operation: int


def unused_prefetches(trace: Trace) -> list[UnusedPrefetch]:
    """Prefetches of the trace whose results were never read, in the order they ran."""
    found = []
    pending = watching(trace)
    statements = _statements(trace)
    for operation in trace.operations:
        if operation.trigger != "prefetch" or operation.used is not False:
            continue
        mine = statements.get(id(operation))
        if not mine or id(operation) in pending:
            continue
        parent = operation.parent
        asker = parent if parent is not None else operation
        lookup = operation.detail or "?"
        name = lookup.rsplit("__", 1)[-1]
        single = parent is not None and _single_valued(parent.model, lookup)
        read = (
            f"instance.{name}, not a new query"
            if single
            else (f"instance.{name}.all(), not a new filter()")
        )
        found.append(
            UnusedPrefetch(
                lookup=lookup,
                queries=len(mine),
                rows=sum(s.rows_fetched for s in mine),
                duration_ns=operation.duration_ns or 0,
                location=where(asker.template, asker.stack),
                code=queryset_code(parent) if parent is not None else None,
                fix=(
                    f"Nothing read the {lookup!r} it loaded: drop "
                    f".prefetch_related({lookup!r}), or read it through the prefetch "
                    f"({read})."
                ),
                operation=operation.index,
            )
        )
    return found


def unused_select_related(trace: Trace) -> list[UnusedSelectRelated]:
    """``select_related`` paths of the trace's evaluations that nothing read, in the
    order the evaluations ran, then in the order of the paths."""
    found = []
    pending = watching(trace)
    statements = _statements(trace)
    for operation in trace.operations:
        selected = operation.selected
        if not selected or id(operation) in pending:
            continue
        unread = [
            path
            for path, used in selected.items()
            if used is False and selected.get(path.rpartition("__")[0], True) is True
        ]
        if not unread:
            continue
        # Paths are marked read with the paths above them, and an evaluation no
        # longer watched has no unread (False) paths: what is not unread was read.
        kept = [path for path, used in selected.items() if used is True]
        leaves = [p for p in kept if not any(q.startswith(p + "__") for q in kept)]
        fixed = _with_select_related(operation, leaves)
        asker = operation.parent if operation.trigger == "prefetch" else None
        place = asker if asker is not None else operation
        rows = _rows(statements.get(id(operation)) or [])
        for path in unread:
            found.append(
                UnusedSelectRelated(
                    lookup=path,
                    rows=rows,
                    location=where(place.template, place.stack),
                    code=queryset_code(operation),
                    fix=_fix(path, selected, leaves),
                    fixed_code=fixed,
                    operation=operation.index,
                )
            )
    return found


def _fix(path: str, selected: dict[str, bool | None], leaves: list[str]) -> str:
    below = any(other.startswith(path + "__") for other in selected)
    nothing = f"Nothing read the {path!r} it joined" + (" (nor below it)" if below else "")
    if not leaves:
        return f"{nothing}: drop the .select_related()."
    keep = ", ".join(repr(leaf) for leaf in leaves)
    return f"{nothing}: join only what was read, .select_related({keep})."


def _with_select_related(operation: Operation, leaves: list[str]) -> str | None:
    """The evaluation's QuerySet as code with its select_related() calls replaced by
    one joining ``leaves`` (none: dropped), where it had one."""
    manager, calls = _calls(operation.lineage)
    chosen = [call for call in calls if call.name == "select_related"]
    if not chosen or any(call.kwargs or None in call.args for call in chosen):
        return None
    code = _root(manager, operation)
    replaced = False
    for call in calls:
        if call.name != "select_related":
            code += call_code(call)
        elif not replaced:
            replaced = True
            if leaves:
                code += f".select_related({', '.join(repr(leaf) for leaf in leaves)})"
    return code


def _rows(statements: list[Statement]) -> int:
    """Rows fetched by the statements that built the instances (not an INSERT's
    RETURNING in get_or_create())."""
    built = [
        s
        for s in statements
        if s.compile is not None
        and getattr(s.compile.iterable_class, "__name__", None) == "ModelIterable"
    ]
    return sum(s.rows_fetched for s in built or statements)


def _statements(trace: Trace) -> dict[int, list[Statement]]:
    mine: dict[int, list[Statement]] = {}
    for statement in trace.statements:
        if statement.operation is not None:
            mine.setdefault(id(statement.operation), []).append(statement)
    return mine


def _single_valued(model: Any, lookup: str) -> bool:
    """Whether a prefetch lookup ends in a foreign key or one-to-one (one object
    cached per instance), following the relations' descriptors from ``model``."""
    from django.db.models.fields.related_descriptors import (
        ForwardManyToOneDescriptor,
        ReverseOneToOneDescriptor,
    )

    descriptor = None
    for part in lookup.split("__"):
        descriptor = getattr(model, part, None)
        if isinstance(descriptor, ForwardManyToOneDescriptor):
            model = descriptor.field.remote_field.model
        elif isinstance(descriptor, ReverseOneToOneDescriptor):
            model = descriptor.related.related_model
        elif (rel := getattr(descriptor, "rel", None)) is not None:
            reverse = getattr(descriptor, "reverse", True)
            model = rel.related_model if reverse else rel.model
        else:
            return False
    return isinstance(descriptor, (ForwardManyToOneDescriptor, ReverseOneToOneDescriptor))
