"""Where recorded statements go: the active trace of the current context, and the
ORM operation and compiler call they run under.

This module is on the hot path of every query. When nothing records anywhere in the
process, the cost of a query is one global read (``tracing``); when some other thread
or task records, one context-variable read more.
"""

from __future__ import annotations

import atexit
import logging
import os
import sys
import threading
import weakref
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from django.core.signals import setting_changed

from tracer import stacks
from tracer.trace import SAME_AS_STATEMENT, Operation, Statement, Trace

logger = logging.getLogger("tracer")

# The innermost tracer.capture() (or request) trace of this thread or task.
_current: ContextVar[Trace | None] = ContextVar("tracer_current", default=None)
# With CAPTURE "always": the rolling trace of this context outside any explicit one.
_ambient: ContextVar[Trace | None] = ContextVar("tracer_ambient", default=None)

# The ORM operation (QuerySet evaluation, save, ...) running in this context.
_operation: ContextVar[Operation | None] = ContextVar("tracer_operation", default=None)
_operation_get = _operation.get
# Set by async ORM methods before they hand over to a worker thread: (trigger,
# stack, template) of the awaiting code, which the thread's stack does not show.
_origin: ContextVar[tuple[str, Any, Any] | None] = ContextVar("tracer_origin", default=None)

#: What a statement past SOFT_CAP keeps instead of its params.
DROPPED = "<dropped: past SOFT_CAP>"

# CAPTURE == "always", read from settings on first use; None means "not read yet".
_always: bool | None = None
_always_limit = 1000
_soft_cap = 1000
_hard_cap = 10000
_always_traces: deque[Trace] = deque(maxlen=20)
# Whether the atexit hook that stores the rolling traces is registered.
_exit_hooked = False

#: TRACER["LOG"]: statements are logged as they finish (tracer.console). Read on the
#: hot path by the recording cursor, one global read per statement recorded.
log_statements = False

_failures = 0
_failures_lock = threading.Lock()

#: Nonzero while anything in the process may record: the open ``capture()`` and
#: ``suspended()`` blocks (requests' traces are captures), plus 1 while CAPTURE is
#: "always" or the configuration is not read yet. Hot hooks read it before the
#: context variables: ``active_trace() if recorder.tracing else None``. Never lower
#: than the truth (a context holding a trace implies it is nonzero).
tracing = 1
_open = 0
_tracing_lock = threading.Lock()


def _update_tracing(opened: int = 0) -> None:
    global tracing, _open
    with _tracing_lock:
        _open += opened
        tracing = _open + (_always is not False)


def active_trace() -> Trace | None:
    """The trace a statement run now belongs to, or None if nothing records."""
    trace = _current.get()
    if trace is None and (_always if _always is not None else _load_config()):
        trace = _ambient.get()
        if trace is None or len(trace.statements) >= _always_limit:
            try:
                trace = _start_ambient(trace)
            except Exception:  # the statement runs unrecorded
                note_failure()
                return None
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
    _update_tracing(1)
    token = _current.set(trace)
    try:
        yield trace
    finally:
        _current.reset(token)
        _update_tracing(-1)
        try:
            _end(trace, parent)
        except Exception:  # never in the way of the block's own outcome
            note_failure()


def _end(trace: Trace, parent: Trace | None) -> None:
    """A capture ended: merge it into the outer one, or store and export it."""
    if parent is not None:
        adopt(parent, trace)
    trace.finish()
    if parent is not None:
        parent.statements.extend(trace.statements)
        parent.events.extend(trace.events)
        for operation in trace.operations:
            operation.index = len(parent.operations)
            parent.operations.append(operation)
        for key, count in trace.dropped.items():
            parent.dropped[key] = parent.dropped.get(key, 0) + count
    else:
        _store(trace)
        _export(trace)


@contextmanager
def suspended() -> Iterator[None]:
    """Keep what this thread or task runs inside the block out of every trace: the
    tracer's own queries (EXPLAIN), which belong to no trace and no operation.

    Inside, statements go to a throwaway trace (``current_trace()`` returns it) that
    is never stored nor merged into an outer one; so the hot path needs no extra check.
    """
    throwaway = _Suspended("suspended")
    _update_tracing(1)
    current = _current.set(throwaway)
    operation = _operation.set(None)
    origin = _origin.set(None)
    try:
        yield
    finally:
        _origin.reset(origin)
        _operation.reset(operation)
        _current.reset(current)
        _update_tracing(-1)
        throwaway.finish()  # lets go of anything it held or watched


class _Suspended(Trace):
    """The throwaway trace of ``suspended()``: what runs in it is not logged either."""


def statement_done(statement: Statement) -> None:
    """A recorded statement returned or raised: log it (``TRACER["LOG"]``, checked by
    the caller through ``log_statements``). Never raises."""
    try:
        if type(_current.get()) is _Suspended:
            return
        from tracer import console

        console.emit(statement)
    except Exception:  # the statement ran; only its log line is lost
        note_failure()


def begin_statement(trace: Trace, db: Any, kind: str, sql: Any, params: Any) -> Statement | None:
    """Record a statement about to run, or return None past the hard cap."""
    if _always is None:
        _load_config()
    statements = trace.statements
    kept = params
    past_soft_cap = len(statements) >= _soft_cap
    if past_soft_cap:
        dropped = trace.dropped
        if len(statements) >= _hard_cap:
            dropped["statements"] = dropped.get("statements", 0) + 1
            return None
        if params is not None:
            kept = DROPPED
            dropped["params"] = dropped.get("params", 0) + 1
    # The compiler call running on this connection (tracer.backend.compiler), if any.
    compile = db._tracer_compiling
    operation = _operation_get()
    statement = Statement(
        db.alias, db.vendor, kind, sql, kept, db.in_atomic_block, operation, compile
    )
    if compile is not None:
        compile.statement = statement
        produced = compile.sql
        if type(produced) is tuple and produced[0] is sql and produced[1] is params:
            compile.sql = SAME_AS_STATEMENT
    if operation is not None:
        if operation.index < 0:
            register(trace, operation)
        if operation.capped:
            trace.dropped["stacks"] = trace.dropped.get("stacks", 0) + 1
    elif past_soft_cap:
        trace.dropped["stacks"] = trace.dropped.get("stacks", 0) + 1
    else:
        # Raw SQL: where it ran from is the statement's own.
        origin = _origin.get()
        if origin is not None:
            statement.stack, statement.template = origin[1], origin[2]
        else:
            try:
                statement.stack, statement.template = stacks.capture_shared(
                    sys._getframe(1), trace._stacks
                )
            except Exception:  # keep the statement, without its location
                note_failure()
    statements.append(statement)
    return statement


def register(trace: Trace, operation: Operation) -> None:
    """Add an operation (and its unregistered parents) to the trace: operations
    are registered by their first statement, so those that ran none don't show."""
    parent = operation.parent
    if parent is not None and parent.index < 0:
        register(trace, parent)
    operation.index = len(trace.operations)
    trace.operations.append(operation)


#: Model instances a trace holds at most for N+1 detection (see ``hold``).
HOLD_MAX = 20_000
#: Evaluations held while no lazy load has used them: the most recent ones only, so
#: that a loop over many pages does not keep every page's instances alive.
HOLD_RECENT = 8


def hold(trace: Trace, operation: Operation, instances: list[Any]) -> None:
    """Keep the instances an evaluation loaded, so that a lazy load on one of them
    can name the evaluation (``loaded_by``). One reference per evaluation; the index
    by instance is built only when a lazy load asks.

    The last HOLD_RECENT evaluations are held; one that a lazy load used stays held
    (it is the loop's) until the trace finishes, up to HOLD_MAX instances in all."""
    if trace._held + len(instances) > HOLD_MAX or trace.end_ns is not None:
        return
    trace._held += len(instances)
    operation.rows = instances
    recent = trace._recent
    recent.append(operation)
    trace._unindexed.append(operation)
    if len(recent) > HOLD_RECENT:
        _release(trace, recent.popleft())


def _release(trace: Trace, operation: Operation) -> None:
    rows = operation.rows or ()
    trace._held -= len(rows)
    if id(operation) in trace._indexed:
        trace._indexed.discard(id(operation))
        index = trace._loaded
        for row in rows:
            index.pop(id(row), None)
    operation.rows = None


def loaded_by(trace: Trace, instance: Any) -> Operation | None:
    """The evaluation in ``trace`` that loaded ``instance``, if it holds it.

    Held lists keep their instances alive, and released ones leave the index, so an
    id found in the index is the instance itself, not a later object at its address."""
    index = trace._loaded
    pending = trace._unindexed
    if pending:
        indexed = trace._indexed
        for operation in pending:
            rows = operation.rows
            # Released since (rows None), or indexed already: nothing to add.
            if rows is not None and id(operation) not in indexed:
                indexed.add(id(operation))
                for row in rows:
                    index[id(row)] = operation
        pending.clear()
    found = index.get(id(instance))
    if found is not None and found.rows is not None and found in trace._recent:
        # Used by a lazy load: the loop's evaluation, held until the trace ends.
        trace._recent.remove(found)
        trace._pinned.append(found)
    return found


# Reads of eager loads ---------------------------------------------------------------
#
# select_related objects and single-valued prefetches are cached on the instance,
# where reading them (``book.author``) runs no code of the ORM's that the tracer sees,
# except the related descriptor's __get__ (see tracer.pipeline: wrapped only while
# some trace watches). A watched evaluation keeps its instances; the index from
# object to what it is, built only when a read asks, tells a read of a watched
# relation from any other.

#: A select_related plan: one entry per relation, ``(cache name, paths, entries
#: below it)``. ``paths`` is the relation's path (``"book__author"``) then those of
#: the relations above it (``"book"``): reading it means they were read too.
Plan = tuple[tuple[str, tuple[str, ...], "Plan"], ...]


class Watched:
    """One evaluation whose eager loads are watched: the instances it loaded, its
    select_related plan, and whether it is a single-valued prefetch (whose objects
    are read as the value of a relation)."""

    __slots__ = ("operation", "rows", "plan", "prefetch", "keys")

    def __init__(self, operation: Operation, rows: list[Any], plan: Plan, prefetch: bool):
        self.operation = operation
        self.rows: list[Any] | None = rows
        self.plan = plan
        self.prefetch = prefetch
        #: The ids it put in the index, once indexed.
        self.keys: list[int] | None = None


class Node:
    """What an indexed object is to a watched evaluation: one of its instances
    (``paths`` None) or a related object it joined at ``paths[0]``. ``children``
    maps the cache name of a relation read on the object to the paths that marks."""

    __slots__ = ("watched", "paths", "children")

    def __init__(
        self, watched: Watched, paths: tuple[str, ...] | None, children: dict[str, Any]
    ) -> None:
        self.watched = watched
        self.paths = paths
        self.children = children


class Watch:
    """The evaluations of one trace whose eager loads are watched: the last
    HOLD_RECENT of them, up to HOLD_MAX instances in all. ``index`` maps ``id()`` of
    their instances and related objects to a Node; those in ``pending`` are indexed
    when a read asks. ``unread`` counts what they loaded and nothing read yet: at 0,
    a read has nothing to tell."""

    __slots__ = ("recent", "index", "pending", "rows", "unread", "closed", "_stop", "__weakref__")

    def __init__(self) -> None:
        self.recent: deque[Watched] = deque()
        self.index: dict[int, Node] = {}
        self.pending: list[Watched] = []
        self.rows = 0
        self.unread = 0
        self.closed = False
        _watching(1)
        # A trace dropped unfinished (the rolling trace of a thread that ended)
        # stops watching when it is collected.
        self._stop = weakref.finalize(self, _watching, -1)
        self._stop.atexit = False

    def close(self) -> None:
        """Stop watching (the trace finished): what was not read stays unread."""
        if self.closed:
            return
        self.closed = True
        for watched in self.recent:
            watched.rows = watched.keys = None
        self.recent.clear()
        self.pending = []
        self.index = {}
        self.rows = self.unread = 0
        self._stop()


# Traces watching reads now, in the whole process; the pipeline wraps the forward
# related descriptor only while there are any (reads_hook).
_watches = 0
# Reentrant: a collected Watch's finalizer may run inside _watching.
_watches_lock = threading.RLock()
#: Called with True when the first trace starts watching reads, with False when the
#: last one stops (set by tracer.pipeline.install()).
reads_hook: Any = None


def _watching(change: int) -> None:
    global _watches
    with _watches_lock:
        _watches += change
        hook = reads_hook
        if hook is not None and _watches == (1 if change > 0 else 0):
            hook(change > 0)


def watches() -> int:
    """How many traces watch reads of eager loads now."""
    return _watches


def watch(
    trace: Trace,
    operation: Operation,
    rows: list[Any],
    plan: Plan,
    paths: tuple[str, ...] = (),
    prefetch: bool = False,
) -> None:
    """Watch reads of what ``operation`` loaded: the relations of ``plan`` on
    ``rows`` (select_related; ``operation.selected`` gets ``paths``, unread), or
    ``rows`` themselves as a relation's value (a prefetch of a foreign key or
    one-to-one; ``operation.used`` becomes False). Not watched, nothing is told.

    The last HOLD_RECENT evaluations are watched; what an older one did not read by
    then cannot be told, and is marked so (None)."""
    if trace.end_ns is not None:
        return
    state = trace._watch
    if state is None:
        state = trace._watch = Watch()
    if prefetch:
        for watched in state.recent:
            if watched.operation is operation:
                # A prefetch whose queryset had select_related: one evaluation.
                watched.prefetch = True
                operation.used = False
                state.unread += 1
                return
    if state.rows + len(rows) > HOLD_MAX:
        return
    if prefetch:
        operation.used = False
    else:
        operation.selected = dict.fromkeys(paths, False)
    _add(state, Watched(operation, rows, plan, prefetch))


def _unread(watched: Watched) -> int:
    operation = watched.operation
    count = 1 if watched.prefetch and operation.used is False else 0
    selected = operation.selected
    if selected and watched.plan:
        count += sum(1 for used in selected.values() if used is False)
    return count


def _add(state: Watch, watched: Watched) -> None:
    state.rows += len(watched.rows or ())
    state.unread += _unread(watched)
    state.recent.append(watched)
    state.pending.append(watched)
    if len(state.recent) > HOLD_RECENT:
        _unwatch(state, state.recent.popleft())


def _unwatch(state: Watch, watched: Watched) -> None:
    untell(state, watched)
    state.rows -= len(watched.rows or ())
    index = state.index
    for key in watched.keys or ():
        node = index.get(key)
        if node is not None and node.watched is watched:
            del index[key]
    if watched in state.pending:
        state.pending.remove(watched)
    watched.rows = watched.keys = None


def untell(state: Watch, watched: Watched) -> None:
    """What a watched evaluation loaded and nothing read yet can no longer be told."""
    state.unread -= _unread(watched)
    operation = watched.operation
    if watched.prefetch and operation.used is False:
        operation.used = None
    selected = operation.selected
    if selected and watched.plan:
        for path, used in selected.items():
            if used is False:
                selected[path] = None


def index_pending(state: Watch) -> None:
    """Index the watched evaluations no read has asked about yet."""
    pending, state.pending = state.pending, []
    index = state.index
    for watched in pending:
        if watched.rows is None:
            continue
        keys = watched.keys = []
        levels: list[tuple[list[Any], tuple[str, ...] | None, Plan]] = [
            (watched.rows, None, watched.plan)
        ]
        while levels:
            objects, paths, plan = levels.pop()
            node = Node(watched, paths, {entry[0]: entry[1] for entry in plan})
            for obj in objects:
                key = id(obj)
                index[key] = node
                keys.append(key)
            for cache_name, below, entries in plan:
                related = []
                for obj in objects:
                    # Not obj._state.fields_cache: Django creates it on first access.
                    cache = obj._state.__dict__.get("fields_cache")
                    value = cache.get(cache_name) if cache else None
                    if value is not None:
                        related.append(value)
                if related:
                    levels.append((related, below, entries))


def watching(trace: Trace) -> set[int]:
    """``id()`` of the operations ``trace`` still watches (their reads are not all in)."""
    state = trace._watch
    if state is None:
        return set()
    return {id(watched.operation) for watched in state.recent}


def adopt(parent: Trace, child: Trace) -> None:
    """A nested capture ended: its parent goes on watching what it watched."""
    state = child._watch
    if state is None or state.closed:
        return
    records = [watched for watched in state.recent if watched.rows is not None]
    state.recent.clear()
    if records and parent.end_ns is None:
        target = parent._watch
        if target is None:
            target = parent._watch = Watch()
        for watched in records:
            watched.keys = None
            _add(target, watched)
    else:
        for watched in records:
            untell(state, watched)
    state.close()
    child._watch = None


def capture_allowed(trace: Trace) -> bool:
    """Whether new stacks may be kept (below SOFT_CAP). The statements that run
    without one are counted as they are recorded."""
    return len(trace.statements) < _soft_cap


def _store(trace: Trace) -> None:
    try:
        from tracer.store import get_store

        get_store().add(trace)
    except Exception:
        note_failure()


def _export(trace: Trace) -> None:
    # OpenTelemetry spans (TRACER["OTEL"]), made after the store has the trace.
    # tracer.otel imports opentelemetry only when it is on.
    try:
        from tracer import otel

        otel.finished(trace)
    except Exception:
        note_failure()


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
    global _always, _always_limit, _always_traces, _soft_cap, _hard_cap
    global log_statements, _exit_hooked
    from tracer.conf import get_config

    try:
        config = get_config()
    except Exception:
        # An invalid TRACER setting is reported by the system checks; queries go on.
        note_failure()
        _always = False
        log_statements = False
        _update_tracing()
        return False
    if config.log or "tracer.console" in sys.modules:
        try:
            from tracer import console

            console.configure(config.log)
        except Exception:
            note_failure()
    log_statements = config.log
    if config.capture == "always" and not _exit_hooked:
        _exit_hooked = True
        atexit.register(store_at_exit)
    _always_limit = config.always_trace_statements
    _soft_cap = config.soft_cap
    _hard_cap = config.hard_cap
    if _always_traces.maxlen != config.always_traces_kept:
        _always_traces = deque(_always_traces, maxlen=config.always_traces_kept)
    _always = config.capture == "always"
    _update_tracing()
    return _always


def command_line(argv: list[str]) -> str:
    """How a process was started, for a label: ``manage.py migrate --noinput``."""
    if not argv:
        return ""
    return " ".join([os.path.basename(argv[0]), *argv[1:]])


def store_at_exit() -> None:
    """With CAPTURE "always", at the interpreter's exit: store the rolling traces not
    yet stored (each process's last one), labelled with the command line (``always:
    manage.py migrate``). A file store writes them before returning (``write_now``):
    its writer thread may already be stopped. Registered once, by the first statement
    under "always"; does nothing if "always" is off by then."""
    try:
        if not _load_config():
            return
        line = command_line(sys.argv)
        label = f"always: {line}" if line else "always"
        from tracer.store import get_store

        store = get_store()
        write = getattr(store, "write_now", None)
        for trace in list(_always_traces):
            if trace.end_ns is not None or not trace.statements:
                continue
            trace.label = label
            _finish_rolling(trace)
            if write is not None:
                write(trace)
            else:
                store.add(trace)
    except Exception:
        note_failure()


def _start_ambient(full: Trace | None) -> Trace:
    if full is not None:
        _finish_rolling(full)
        _store(full)
    trace = Trace("always")
    _always_traces.append(trace)
    _ambient.set(trace)
    return trace


def _finish_rolling(trace: Trace) -> None:
    # Cut at a statement count or at exit, not at the end of any work: what its
    # watched evaluations did not read yet may be read later, so none is told unread.
    state = trace._watch
    if state is not None:
        for watched in state.recent:
            untell(state, watched)
    trace.finish()


def _reset_config(*, setting: str, **kwargs: Any) -> None:
    global _always, _ambient
    if setting == "TRACER":
        _always = None
        # Rolling traces begun under the old settings are not continued under the new
        # ones: a new variable leaves every context's old ambient trace behind, at no
        # cost to the hot path.
        _ambient = ContextVar("tracer_ambient", default=None)
        _update_tracing()


setting_changed.connect(_reset_config)
