"""Where finished traces are kept, and how a list of them is asked for.

By default in memory (``MemoryStore``): a ring buffer of this process's traces. With
``TRACER["STORE_PATH"]`` set, in a SQLite file that every process of the server shares
(``tracer.filestore.SQLiteStore``). Both keep at most ``TRACER["STORE_TRACES"]`` traces
and about ``TRACER["STORE_BYTES"]`` bytes of them, dropping the oldest first.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections import OrderedDict
from dataclasses import dataclass
from itertools import islice
from typing import TYPE_CHECKING, Any, Protocol

from django.core.signals import setting_changed

from tracer.conf import DEFAULTS, get_config
from tracer.trace import Call

if TYPE_CHECKING:
    from tracer.filestore import SQLiteStore
    from tracer.trace import Trace

logger = logging.getLogger("tracer")

# Fixed costs of the records, in bytes. Measured on CPython 3.11 (64-bit) with
# tracemalloc: the traced-memory growth of building 20,000 records into a list, as the
# recorder fills them (int clocks and counters set), divided by 20,000; so each
# includes the record, its new ints and its list slot. sys.getsizeof of the bare
# records: Statement 168, Operation 144, Event 80, Trace 56 (plus its __dict__).
#: A Trace with its lists and dicts, empty.
TRACE_BYTES = 530
#: A Statement, without its SQL and params.
STATEMENT_BYTES = 280
#: An Operation, without the lineage, compiles and stack it points to.
OPERATION_BYTES = 260
#: An Event.
EVENT_BYTES = 160
#: A Compile (one per compiler call, shared by the statements of a batched insert),
#: with its compile time set.
COMPILE_BYTES = 140
#: A Call of a QuerySet's lineage (``.filter(name=...)``), with a one-pair keyword
#: tuple and its clocks; shared by the operations that evaluate the same QuerySet.
CALL_BYTES = 180

#: Params lists longer than this are measured on their first PARAMS_SAMPLE items and
#: scaled, so that estimating a bulk insert stays cheap.
PARAMS_SAMPLE = 100


def estimate_bytes(trace: Trace) -> int:
    """About how much memory ``trace`` holds, cheaply: O(statements), nothing formatted.

    ``TRACE_BYTES``, plus ``STATEMENT_BYTES`` per statement, ``OPERATION_BYTES`` per
    operation, ``EVENT_BYTES`` per event, ``COMPILE_BYTES`` per compile and
    ``CALL_BYTES`` per call in the operations' lineages (each counted once); plus, per
    statement, ``len(sql)`` if the SQL is ``str`` or ``bytes``, and if its params are a
    list or tuple, the sum of ``sys.getsizeof`` of each param (not recursing into them;
    past ``PARAMS_SAMPLE`` params, the first ``PARAMS_SAMPLE`` scaled to the whole
    list). Stacks, query shapes and the request dict are not counted; nor is what a
    page computes later (summary, findings, the export: see ``tracer.export``).
    """
    size = (
        TRACE_BYTES
        + STATEMENT_BYTES * len(trace.statements)
        + OPERATION_BYTES * len(trace.operations)
        + EVENT_BYTES * len(trace.events)
    )
    seen: set[int] = set()
    for operation in trace.operations:
        call = operation.lineage
        while type(call) is Call and id(call) not in seen:
            seen.add(id(call))
            size += CALL_BYTES
            call = call.parent
    getsizeof = sys.getsizeof
    for statement in trace.statements:
        compile = statement.compile
        if compile is not None and compile.statement is statement:
            size += COMPILE_BYTES
        sql = statement.sql
        if isinstance(sql, (str, bytes)):
            size += len(sql)
        params = statement.params
        if isinstance(params, (list, tuple)):
            count = len(params)
            if count <= PARAMS_SAMPLE:
                size += sum(map(getsizeof, params))
            else:
                sample = sum(map(getsizeof, islice(params, PARAMS_SAMPLE)))
                size += sample * count // PARAMS_SAMPLE
    return size


#: The badges a list of traces can be filtered on: summary keys counting findings.
BADGES = ("n_plus_ones", "duplicates", "slow")
#: The summary keys a list can be sorted on (prefix "-" for descending).
SORT_KEYS = ("started_at", "statements", "duration_ms", "db_ms", "orm_ms", "path", "status")


@dataclass(frozen=True)
class ListQuery:
    """Which traces a list shows, in which order, and which page of them."""

    #: Traces whose request path (or label, outside requests) contains this.
    path: str = ""
    #: Request method ("GET"); "" for any.
    method: str = ""
    min_statements: int = 0
    #: Only traces with at least one finding of each of these kinds (see BADGES).
    badges: tuple[str, ...] = ()
    #: A SORT_KEYS key, "-" first for descending; ties go newest first.
    sort: str = "-started_at"
    offset: int = 0
    limit: int = 50
    #: Only traces started after this (``time.time()`` seconds): for live updates.
    since: float | None = None

    def check(self) -> None:
        """Raise ValueError, saying what is wrong, unless every store can answer it."""
        if self.sort.lstrip("-") not in SORT_KEYS:
            raise ValueError(f"Cannot sort traces by {self.sort!r}; use one of {SORT_KEYS}.")
        unknown = [badge for badge in self.badges if badge not in BADGES]
        if unknown:
            raise ValueError(f"Unknown badge(s) {unknown!r}; use some of {BADGES}.")
        if self.offset < 0 or self.limit < 0:
            raise ValueError(
                f"offset and limit must be >= 0, not {self.offset!r} and {self.limit!r}."
            )

    def matches(self, summary: dict[str, Any]) -> bool:
        if self.path and self.path not in (summary["path"] or summary["label"] or ""):
            return False
        if self.method and summary["method"] != self.method:
            return False
        if summary["statements"] < self.min_statements:
            return False
        if any(not summary[badge] for badge in self.badges):
            return False
        return self.since is None or summary["started_at"] > self.since

    def ordered(self, summaries: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """``summaries`` (newest first) in this query's order."""
        self.check()
        key = self.sort.lstrip("-")
        descending = self.sort.startswith("-")
        # None (no status, no path) sorts last either way.
        present = [s for s in summaries if s[key] is not None]
        missing = [s for s in summaries if s[key] is None]
        present.sort(key=lambda s: s[key], reverse=descending)
        return present + missing


def summary_of(trace: Trace) -> dict[str, Any]:
    """The list figures of a finished trace (``tracer.findings.summary``), cached.
    A live trace's come from its records, without exporting it."""
    cached = trace._summary
    if cached is None:
        from tracer.findings import live_summary, summary

        cached = summary(trace.to_dict()) if trace.imported else live_summary(trace)
        if trace.finished:
            trace._summary = cached
    return cached


class StoreError(Exception):
    """The store cannot be read (a file store's file is unreadable, corrupt, or from a
    newer version of the tracer); the message says which file and why, for showing."""


class ParamsUnavailable(Exception):
    """The params a stored statement ran with are not available; the message says why."""


#: Why the params of a trace loaded from an export are not available.
IMPORTED = (
    "This trace was loaded from an export: its params are JSON renderings, "
    "not the values the statement ran with."
)


class Store(Protocol):
    """What every store offers (``MemoryStore``, ``tracer.filestore.SQLiteStore``)."""

    #: How many ``add()`` calls failed; ``add()`` itself never raises.
    failures: int

    def add(self, trace: Trace) -> None: ...

    def get(self, trace_id: str) -> Trace | None: ...

    def traces(self) -> list[Trace]: ...

    def summaries(self, query: ListQuery = ...) -> tuple[list[dict[str, Any]], int]: ...

    def raw_params(self, trace_id: str, index: int) -> Any: ...

    def clear(self) -> None: ...

    def resize(self, max_traces: int, max_bytes: int) -> None: ...

    def __len__(self) -> int: ...


class MemoryStore:
    """The newest finished traces, at most ``max_traces`` of them and about
    ``max_bytes`` in all (see ``estimate_bytes``).

    Adding a trace evicts the oldest until both bounds hold again, except that the
    newest trace is always kept: one trace larger than ``max_bytes`` is held alone
    until the next one arrives (the trace caps, ``SOFT_CAP`` and ``HARD_CAP``, bound
    how large it can be). Safe to use from several threads.
    """

    def __init__(self, max_traces: int, max_bytes: int) -> None:
        self.max_traces = max_traces
        self.max_bytes = max_bytes
        #: How many ``add()`` calls failed (the first is logged, on logger "tracer").
        self.failures = 0
        self._lock = threading.Lock()
        # trace id -> (trace, estimated bytes), oldest first.
        self._entries: OrderedDict[str, tuple[Trace, int]] = OrderedDict()
        self._bytes = 0

    def add(self, trace: Trace) -> None:
        """Keep ``trace`` as the newest (moving it there if it was already kept).

        Its size is estimated now, so add it finished. Never raises: a failure is
        logged once and counted in ``failures``.
        """
        try:
            size = estimate_bytes(trace)
            trace_id = trace.id
            with self._lock:
                previous = self._entries.pop(trace_id, None)
                if previous is not None:
                    self._bytes -= previous[1]
                self._entries[trace_id] = (trace, size)
                self._bytes += size
                self._evict()
        except Exception:
            with self._lock:
                self.failures += 1
                first = self.failures == 1
            if first:
                logger.exception(
                    "tracer could not store a trace; the request or block it recorded "
                    "was not affected. Later failures are counted (store.failures)."
                )

    def get(self, trace_id: str) -> Trace | None:
        with self._lock:
            entry = self._entries.get(trace_id)
        return None if entry is None else entry[0]

    def traces(self) -> list[Trace]:
        """The kept traces, newest first."""
        with self._lock:
            return [trace for trace, _ in reversed(self._entries.values())]

    def summaries(self, query: ListQuery = ListQuery()) -> tuple[list[dict[str, Any]], int]:
        """The summaries (``summary_of``) of the kept traces that ``query`` selects,
        in its order: the page it asks for, and how many there are in all.

        A trace's summary is computed the first time it is listed, then kept."""
        query.check()
        selected = [s for s in map(summary_of, self.traces()) if query.matches(s)]
        ordered = query.ordered(selected)
        return ordered[query.offset : query.offset + query.limit], len(ordered)

    def raw_params(self, trace_id: str, index: int) -> Any:
        """The params statement ``index`` of trace ``trace_id`` ran with (for EXPLAIN);
        ParamsUnavailable if the trace was loaded from an export, or is not here."""
        trace = self.get(trace_id)
        if trace is None or not 0 <= index < len(trace.statements):
            raise ParamsUnavailable(f"No statement {index} of trace {trace_id!r} in the store.")
        if trace.imported:
            raise ParamsUnavailable(IMPORTED)
        return trace.statements[index].params

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._bytes = 0

    def resize(self, max_traces: int, max_bytes: int) -> None:
        """Change the bounds, evicting the oldest traces if they no longer hold."""
        with self._lock:
            self.max_traces = max_traces
            self.max_bytes = max_bytes
            self._evict()

    @property
    def bytes(self) -> int:
        """The estimated size of the kept traces."""
        return self._bytes

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"<MemoryStore traces={len(self)} bytes={self._bytes}>"

    def _evict(self) -> None:
        # Called with the lock held.
        entries = self._entries
        while len(entries) > self.max_traces or (
            self._bytes > self.max_bytes and len(entries) > 1
        ):
            _, (_, size) = entries.popitem(last=False)
            self._bytes -= size


_memory = MemoryStore(DEFAULTS["STORE_TRACES"], DEFAULTS["STORE_BYTES"])
_store: Store = _memory
# File stores by path: one per file, so that switching settings back and forth (tests)
# keeps one writer thread per file.
_files: dict[str, SQLiteStore] = {}
_lock = threading.Lock()
# Whether _store and its bounds were read from the TRACER setting since it last changed.
_configured = False


def get_store() -> Store:
    """The process-wide store, as the current settings say: the memory store, or the
    file store of ``TRACER["STORE_PATH"]``, with its bounds.

    Never raises, and touches no file: a file store opens its file when first used."""
    global _configured, _store
    if not _configured:
        path = None
        try:
            config = get_config()
        except Exception:
            # An invalid TRACER setting is reported by the system checks; keep the
            # defaults rather than fail the request that is being stored.
            bounds = (DEFAULTS["STORE_TRACES"], DEFAULTS["STORE_BYTES"])
        else:
            bounds = (config.store_traces, config.store_bytes)
            path = config.store_path
        with _lock:
            if path is None:
                store: Store = _memory
            else:
                store = _files.get(path)  # type: ignore[assignment]
                if store is None:
                    from tracer.filestore import SQLiteStore

                    store = _files[path] = SQLiteStore(path, *bounds)
            store.resize(*bounds)
            _store = store
            _configured = True
    return _store


def _reset_config(*, setting: str, **kwargs: Any) -> None:
    global _configured
    if setting == "TRACER":
        _configured = False


setting_changed.connect(_reset_config)
