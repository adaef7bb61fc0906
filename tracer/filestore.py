"""Finished traces in a SQLite file that every process of a server shares.

With ``TRACER["STORE_PATH"] = "/var/tmp/tracer.sqlite3"``, the processes of one server
(gunicorn's workers; runserver's, one after the other, as its autoreloader restarts it)
add their traces to one file, and the tracer's pages list all of them, whichever
process serves the page.

- The store talks to the file through Python's ``sqlite3`` module, never through a
  Django connection: its statements never pass through ``tracer.backend``, so they are
  in no trace, also with ``CAPTURE = "always"``.
- ``add()`` only puts the trace on a queue. One background thread per process exports
  it (``trace.to_dict()``, with its findings), and writes the JSON, the summary of the
  list (``tracer.findings.summary``) and the params EXPLAIN needs, then drops the
  oldest traces past ``STORE_TRACES`` or ``STORE_BYTES`` (bytes of JSON, counted
  before it is compressed).
- Lists are answered from summary columns, with indexes, never by parsing the JSON.
- WAL journal, a busy timeout, one connection per thread and per process (sqlite3
  connections cannot be shared, nor kept across a fork), and a schema version in
  ``PRAGMA user_version`` so that an older tracer refuses a newer file clearly.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import queue
import sqlite3
import threading
import weakref
import zlib
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

from tracer import recorder
from tracer.store import (
    IMPORTED,
    SORT_KEYS,
    ListQuery,
    ParamsUnavailable,
    StoreError,
    summary_of,
)
from tracer.storedparams import Unencodable, decode, encode
from tracer.trace import Trace

logger = logging.getLogger("tracer")

#: The layout of the file, in ``PRAGMA user_version``. Bump it (and migrate) when the
#: tables change, or when ``tracer.findings.summary`` gains or changes a key: stored
#: summaries are returned as they were written.
SCHEMA_VERSION = 1
#: ``PRAGMA application_id`` of a tracer store ("Trac"): a file of another
#: application is refused, never written to.
APPLICATION_ID = 0x54726163
#: Seconds a statement waits for another process's write lock before failing.
BUSY_TIMEOUT = 5.0
#: Traces waiting for the writer at most; past that, add() drops them (counted in
#: ``failures``) rather than hold the memory of a store that cannot keep up.
QUEUE_MAX = 1000
#: Seconds between the writer's looks at its queue. add() does not wake it: a woken
#: thread takes the CPU (and the GIL) from the request that woke it, mid-request.
POLL = 0.05
#: Traces written per transaction at most.
BATCH = 50
#: Seconds a read waits for this process's earlier adds to be written.
READ_WAIT = 1.0
#: Seconds the interpreter's exit waits for the queued traces to be written.
EXIT_WAIT = 5.0
#: Traces kept parsed, so that the pages of one trace do not parse its JSON each time.
PARSED_KEPT = 8

#: The summary keys kept as columns, for filtering and sorting in SQL.
_COLUMNS = (
    "started_at",
    "method",
    "path",
    "status",
    "statements",
    "duration_ms",
    "db_ms",
    "orm_ms",
    "n_plus_ones",
    "duplicates",
    "slow",
)

# Columns without a declared type keep values exactly as given (an int stays an int).
# "place" is what ListQuery.path searches: the request path, or else the label.
_SCHEMA = (
    f"""CREATE TABLE traces (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        place TEXT NOT NULL,
        {", ".join(_COLUMNS)},
        bytes INTEGER NOT NULL,
        summary TEXT NOT NULL
    )""",
    # The JSON apart, so that scanning the list reads small rows only; compressed
    # (zlib): a trace's JSON repeats its stacks and SQL, and shrinks about 15 times.
    """CREATE TABLE trace_data (
        seq INTEGER PRIMARY KEY,
        data BLOB NOT NULL,
        params TEXT
    )""",
    *(f"CREATE INDEX traces_{key} ON traces ({key})" for key in SORT_KEYS),
)

#: Why the params of a statement are not kept, when it is not a SELECT.
NOT_KEPT = "Its params were not kept: the file store keeps the params of SELECTs only."
SECRET_PARAMS = (
    "Its params hold values of secret-looking columns (TRACER['REDACT_COLUMNS']), "
    "which the file store does not write to disk."
)
SECRET_SQL = (
    "Its SQL holds values of secret-looking columns (TRACER['REDACT_COLUMNS']), "
    "which the file store does not write to disk."
)
KEPT_TYPES = (
    "None, bool, int, float, str, bytes, Decimal, date, time, datetime, timedelta, "
    "UUID, and lists and tuples of them"
)

#: The first page of every trace, newest first.
EVERYTHING = ListQuery()

# Queue items other than traces.
_STOP = object()

# Every store of this process, for atexit and fork.
_stores: weakref.WeakSet[SQLiteStore] = weakref.WeakSet()
# Connections inherited across a fork: never used nor closed in the child (closing
# one could disturb the parent's locks), only kept from the garbage collector.
_abandoned: list[Any] = []


class SQLiteStore:
    """Traces kept in the SQLite file at ``path``, shared by every process using it.

    Bounded like ``MemoryStore``: at most ``max_traces`` traces, and about
    ``max_bytes`` bytes of JSON (counted before compression), the oldest dropped first,
    the newest always kept. The bounds are applied by each write (so a ``resize()``
    takes effect at the next one), with the bounds of the process that writes.

    The file is opened when first used. Reading methods raise ``StoreError`` when it
    cannot be read; ``add()`` never raises. A read waits (up to ``READ_WAIT``
    seconds) for this process's earlier adds to be written; ``get()`` returns a trace
    still waiting to be written as it is (not loaded back).
    """

    def __init__(self, path: str | os.PathLike[str], max_traces: int, max_bytes: int) -> None:
        self.path = os.fspath(path)
        self.max_traces = max_traces
        self.max_bytes = max_bytes
        #: How many traces could not be stored (the first failure is logged).
        self.failures = 0
        self._start_process()
        _stores.add(self)

    def _start_process(self) -> None:
        # Everything that belongs to one process: locks, queue, writer, connections.
        self._lock = threading.Lock()
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        # Set by flush() and close(); add() never wakes the writer (see POLL).
        self._wake = threading.Event()
        self._writer: threading.Thread | None = None
        # Traces added but not yet written, by id: get() finds them here.
        self._pending: dict[str, Trace] = {}
        self._local = threading.local()
        self._parsed: OrderedDict[int, Trace] = OrderedDict()

    def __repr__(self) -> str:
        return f"<SQLiteStore {self.path!r}>"

    # Writing -------------------------------------------------------------------------

    def add(self, trace: Trace) -> None:
        """Queue ``trace`` to be written (as the newest, replacing a trace with its
        id). Cheap: the export and the write happen on the store's own thread.

        Never raises: a failure is logged once and counted in ``failures``."""
        try:
            trace_id = trace.id
            with self._lock:
                full = len(self._pending) >= QUEUE_MAX
                if not full:
                    self._start_writer()
                    self._pending[trace_id] = trace
                    self._queue.put(trace)
        except Exception:
            self._failed()
            return
        if full:
            self._failed(
                f"{QUEUE_MAX} traces are waiting to be written to {self.path}; "
                "this one was dropped"
            )

    def write_now(self, trace: Trace, timeout: float = EXIT_WAIT) -> None:
        """Write ``trace`` in this thread before returning, after the traces queued
        before it (waiting at most ``timeout`` seconds for them): for the interpreter's
        exit (``tracer.recorder.store_at_exit``), when no writer thread may be started.

        Never raises: a failure is logged once and counted in ``failures``."""
        try:
            self.flush(timeout)
            with recorder.suspended():
                row = _row(trace)
            self._insert([row])
        except Exception:
            self._failed()

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every trace added before the call is written (or failed).
        False if ``timeout`` seconds passed first."""
        with self._lock:
            if self._writer is None:
                return True
            done = threading.Event()
        self._queue.put(done)
        self._wake.set()
        return done.wait(timeout)

    def close(self, timeout: float | None = None) -> None:
        """Write what is queued (waiting at most ``timeout`` seconds), stop the writer
        thread, and close this thread's connection. The store can still be used: it
        starts again when needed."""
        with self._lock:
            writer, self._writer = self._writer, None
        if writer is not None:
            self._queue.put(_STOP)
            self._wake.set()
            writer.join(timeout)
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            del self._local.connection
            connection.close()

    def resize(self, max_traces: int, max_bytes: int) -> None:
        """Change the bounds, for the next write."""
        self.max_traces = max_traces
        self.max_bytes = max_bytes

    def clear(self) -> None:
        """Drop every trace: the ones of every process, and the ones waiting here."""
        self.flush(READ_WAIT)
        with self._using() as connection:
            connection.execute("BEGIN IMMEDIATE")
            try:
                connection.execute("DELETE FROM trace_data")
                connection.execute("DELETE FROM traces")
                connection.execute("COMMIT")
            except BaseException:
                connection.execute("ROLLBACK")
                raise
        with self._lock:
            self._parsed.clear()

    def _start_writer(self) -> None:
        # Called with the lock held.
        if self._writer is None:
            self._writer = threading.Thread(
                target=self._write_queued, name="tracer-store-writer", daemon=True
            )
            self._writer.start()

    def _write_queued(self) -> None:
        while True:
            self._wake.wait(POLL)
            self._wake.clear()
            while batch := self._take(BATCH):
                traces = [item for item in batch if isinstance(item, Trace)]
                events = [item for item in batch if isinstance(item, threading.Event)]
                stop = _STOP in batch
                batch.clear()
                if traces:
                    self._write(traces)
                    # Once written, none of them stays in memory (not until the next
                    # batch either); flush() callers are woken after that.
                    traces.clear()
                for event in events:
                    event.set()
                if stop:
                    connection = getattr(self._local, "connection", None)
                    if connection is not None:
                        connection.close()
                    return

    def _take(self, count: int) -> list[Any]:
        taken: list[Any] = []
        while len(taken) < count:
            try:
                taken.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return taken

    def _write(self, traces: list[Trace]) -> None:
        rows = []
        # Nothing the export runs (it should run no query, but a QuerySet's repr
        # does) may land in a trace, nor keep a Django connection open on this thread.
        with recorder.suspended():
            for trace in traces:
                try:
                    rows.append(_row(trace))
                except Exception:
                    self._failed()
        try:
            from django.db import connections

            connections.close_all()
        except Exception:
            pass
        try:
            if rows:
                self._insert(rows)
        except Exception:
            self._failed(count=len(rows))
        finally:
            with self._lock:
                for trace in traces:
                    if self._pending.get(trace.id) is trace:
                        del self._pending[trace.id]

    def _insert(self, rows: list[dict[str, Any]]) -> None:
        with self._using() as connection:
            connection.execute("BEGIN IMMEDIATE")
            try:
                for row in rows:
                    old = connection.execute(
                        "SELECT seq FROM traces WHERE id = ?", (row["id"],)
                    ).fetchone()
                    if old is not None:
                        connection.execute("DELETE FROM trace_data WHERE seq = ?", old)
                        connection.execute("DELETE FROM traces WHERE seq = ?", old)
                    names = ["id", "place", *_COLUMNS, "bytes", "summary"]
                    seq = connection.execute(
                        f"INSERT INTO traces ({', '.join(names)}) "
                        f"VALUES ({', '.join('?' * len(names))})",
                        [row[name] for name in names],
                    ).lastrowid
                    connection.execute(
                        "INSERT INTO trace_data (seq, data, params) VALUES (?, ?, ?)",
                        (seq, row["data"], row["params"]),
                    )
                self._evict(connection)
                connection.execute("COMMIT")
            except BaseException:
                connection.execute("ROLLBACK")
                raise

    def _evict(self, connection: sqlite3.Connection) -> None:
        """Drop the oldest traces until both bounds hold, keeping the newest."""
        count, size = connection.execute("SELECT COUNT(*), TOTAL(bytes) FROM traces").fetchone()
        if count <= self.max_traces and size <= self.max_bytes:
            return
        kept = size = 0
        for seq, nbytes in connection.execute("SELECT seq, bytes FROM traces ORDER BY seq DESC"):
            if kept >= self.max_traces or (kept and size + nbytes > self.max_bytes):
                connection.execute("DELETE FROM trace_data WHERE seq <= ?", (seq,))
                connection.execute("DELETE FROM traces WHERE seq <= ?", (seq,))
                return
            kept += 1
            size += nbytes

    def _failed(self, problem: str | None = None, count: int = 1) -> None:
        with self._lock:
            self.failures += count
            first = self.failures == count
        if first:
            logger.error(
                "tracer could not store a trace%s; the request or block it recorded "
                "was not affected. Later failures are counted (store.failures).",
                f" ({problem})" if problem else f" in {self.path}",
                exc_info=problem is None,
            )

    # Reading -------------------------------------------------------------------------

    def get(self, trace_id: str) -> Trace | None:
        """The trace with that id (loaded from its JSON: ``imported`` is True), or
        None. A trace of this process still waiting to be written is returned as is."""
        pending = self._pending.get(trace_id)
        if pending is not None:
            return pending
        with self._using() as connection:
            row = connection.execute("SELECT seq FROM traces WHERE id = ?", (trace_id,)).fetchone()
            if row is None:
                return None
            return self._load(connection, row[0])

    def traces(self) -> list[Trace]:
        """Every trace in the file, newest first (each loaded from its JSON)."""
        self._wait_for_writes()
        with self._using() as connection:
            newest_first = connection.execute("SELECT seq FROM traces ORDER BY seq DESC")
            seqs = [seq for (seq,) in newest_first]
            loaded = (self._load(connection, seq) for seq in seqs)
            return [trace for trace in loaded if trace is not None]

    def summaries(self, query: ListQuery = EVERYTHING) -> tuple[list[dict[str, Any]], int]:
        """As ``MemoryStore.summaries``: the page of summaries ``query`` asks for, in
        its order, and how many traces it selects in all."""
        query.check()
        self._wait_for_writes()
        where, args = _where(query)
        key = query.sort.lstrip("-")
        direction = "DESC" if query.sort.startswith("-") else "ASC"
        with self._using() as connection:
            connection.execute("BEGIN")  # one snapshot for the page and the count
            try:
                count = connection.execute(f"SELECT COUNT(*) FROM traces{where}", args)
                (total,) = count.fetchone()
                rows = connection.execute(
                    f"SELECT summary FROM traces{where} "
                    f"ORDER BY {key} {direction} NULLS LAST, seq DESC LIMIT ? OFFSET ?",
                    [*args, query.limit, query.offset],
                ).fetchall()
            finally:
                connection.execute("COMMIT")
            return [json.loads(summary) for (summary,) in rows], total

    def raw_params(self, trace_id: str, index: int) -> Any:
        """The params statement ``index`` of trace ``trace_id`` ran with, as kept for
        EXPLAIN (SELECTs only); ParamsUnavailable saying why they are not kept."""
        pending = self._pending.get(trace_id)
        if pending is not None:
            if not 0 <= index < len(pending.statements):
                raise ParamsUnavailable(
                    f"No statement {index} of trace {trace_id!r} in the store."
                )
            if pending.imported:
                raise ParamsUnavailable(IMPORTED)
            return pending.statements[index].params
        with self._using() as connection:
            row = connection.execute(
                "SELECT params, statements FROM traces JOIN trace_data USING (seq) WHERE id = ?",
                (trace_id,),
            ).fetchone()
            if row is None or not 0 <= index < row[1]:
                raise ParamsUnavailable(
                    f"No statement {index} of trace {trace_id!r} in the store."
                )
            if row[0] is None:
                raise ParamsUnavailable(IMPORTED)
            entry = json.loads(row[0]).get(str(index))
        if entry is None:
            raise ParamsUnavailable(NOT_KEPT)
        if "problem" in entry:
            raise ParamsUnavailable(entry["problem"])
        return decode(entry["params"])

    @property
    def bytes(self) -> int:
        """The size of the stored JSON, as the bounds count it."""
        self._wait_for_writes()
        with self._using() as connection:
            return int(connection.execute("SELECT TOTAL(bytes) FROM traces").fetchone()[0])

    def __len__(self) -> int:
        self._wait_for_writes()
        with self._using() as connection:
            return int(connection.execute("SELECT COUNT(*) FROM traces").fetchone()[0])

    def _wait_for_writes(self) -> None:
        if self._pending and threading.current_thread() is not self._writer:
            self.flush(READ_WAIT)

    def _load(self, connection: sqlite3.Connection, seq: int) -> Trace | None:
        with self._lock:
            trace = self._parsed.get(seq)
            if trace is not None:
                self._parsed.move_to_end(seq)
                return trace
        row = connection.execute("SELECT data FROM trace_data WHERE seq = ?", (seq,)).fetchone()
        if row is None:  # dropped since
            return None
        try:
            trace = Trace.from_dict(json.loads(zlib.decompress(row[0])))
        except (ValueError, zlib.error) as exc:
            raise StoreError(f"The trace store {self.path} holds a damaged trace: {exc}") from exc
        with self._lock:
            self._parsed[seq] = trace
            while len(self._parsed) > PARSED_KEPT:
                self._parsed.popitem(last=False)
        return trace

    # The file ------------------------------------------------------------------------

    @contextmanager
    def _using(self) -> Iterator[sqlite3.Connection]:
        """This thread's connection; sqlite3 errors become StoreError."""
        try:
            yield self._connection()
        except (sqlite3.Error, ValueError) as exc:  # ValueError: damaged JSON
            raise StoreError(f"The trace store {self.path} cannot be used: {exc}.") from exc

    def _connection(self) -> sqlite3.Connection:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = sqlite3.connect(
                self.path, timeout=BUSY_TIMEOUT, isolation_level=None, check_same_thread=True
            )
            try:
                self._prepare(connection)
            except BaseException:
                connection.close()
                raise
            self._local.connection = connection
        return connection

    def _prepare(self, connection: sqlite3.Connection) -> None:
        """Check that the file is a tracer store this version reads, creating the
        tables in a new (empty) file; then switch it to WAL."""
        if not self._is_current(connection):
            connection.execute("BEGIN IMMEDIATE")
            try:
                # Another process may have created it meanwhile.
                if not self._is_current(connection):
                    for statement in _SCHEMA:
                        connection.execute(statement)
                    connection.execute(f"PRAGMA application_id = {APPLICATION_ID}")
                    connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                connection.execute("COMMIT")
            except BaseException:
                connection.execute("ROLLBACK")
                raise
        # Readers do not block the writer, nor the writer readers. Lasting: set once.
        connection.execute("PRAGMA journal_mode = WAL")
        # In WAL mode, commits without waiting for the disk; a crash of the machine
        # may lose the last traces, never damage the file.
        connection.execute("PRAGMA synchronous = NORMAL")

    def _is_current(self, connection: sqlite3.Connection) -> bool:
        """Whether the file holds this version's tables (False: a new, empty file).

        StoreError for a file of another application or of a newer tracer."""
        (application,) = connection.execute("PRAGMA application_id").fetchone()
        (version,) = connection.execute("PRAGMA user_version").fetchone()
        if application == APPLICATION_ID:
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"The trace store {self.path} was written by a newer version of the "
                    f"tracer (schema version {version}; this version reads "
                    f"{SCHEMA_VERSION}). Upgrade the tracer, or set TRACER['STORE_PATH'] "
                    "to another file."
                )
            return version == SCHEMA_VERSION
        tables = [
            name
            for (name,) in connection.execute(
                "SELECT name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY name"
            )
        ]
        if application != 0 or version != 0 or tables:
            raise StoreError(
                f"{self.path} is not a tracer store: it holds another application's data"
                f"{' (' + ', '.join(tables[:5]) + ')' if tables else ''}. Set "
                "TRACER['STORE_PATH'] to a file of its own; the tracer creates it."
            )
        return False

    def _forget_process(self) -> None:
        # In a forked child: the parent's threads are gone, and its connections and
        # locks must not be used.
        _abandoned.append(self._local)
        self._start_process()


def _row(trace: Trace) -> dict[str, Any]:
    """What is written for ``trace``: its JSON, summary, and params for EXPLAIN."""
    data = trace.to_dict()
    text = json.dumps(data, separators=(",", ":"))
    summary = summary_of(trace)
    params = None if trace.imported else json.dumps(_kept_params(trace, data))
    return {
        **{key: summary[key] for key in _COLUMNS},
        "id": trace.id,
        "place": summary["path"] or summary["label"] or "",
        "bytes": len(text) + len(params or ""),
        "summary": json.dumps(summary),
        "data": zlib.compress(text.encode("ascii"), 1),
        "params": params,
    }


def _kept_params(trace: Trace, data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """For each SELECT that EXPLAIN may run (by index): ``{"params": tagged}``, or
    ``{"problem": why not}``."""
    from tracer.export import redacted

    kept = {}
    for index, (statement, exported) in enumerate(
        zip(trace.statements, data["statements"], strict=True)
    ):
        sql, params = statement.sql, statement.params
        if (
            statement.kind != "execute"
            or not isinstance(sql, str)
            or isinstance(params, str)  # not kept past SOFT_CAP
            or _select_problem(sql, statement.vendor) is not None
        ):
            continue
        if exported["sql"] != sql:
            kept[str(index)] = {"problem": SECRET_SQL}
            continue
        masked = redacted(statement)
        if masked is not params and masked != params:
            kept[str(index)] = {"problem": SECRET_PARAMS}
            continue
        try:
            kept[str(index)] = {"params": encode(params)}
        except Unencodable as exc:
            kept[str(index)] = {
                "problem": f"Its params include a {exc}, which the file store does not "
                f"keep (it keeps {KEPT_TYPES})."
            }
    return kept


def _select_problem(sql: str, vendor: str) -> str | None:
    from tracer.analysis.explain import select_problem

    # Most statements of a trace repeat a few SQL texts (a loop's): ask once for each.
    if len(sql) > 2000:
        return select_problem(sql, vendor)
    return _cached_select_problem(sql, vendor)


@lru_cache(maxsize=256)
def _cached_select_problem(sql: str, vendor: str) -> str | None:
    from tracer.analysis.explain import select_problem

    return select_problem(sql, vendor)


def _where(query: ListQuery) -> tuple[str, list[Any]]:
    """The WHERE clause of ``query``'s filters (see ListQuery.matches)."""
    clauses = ["statements >= ?"]
    args: list[Any] = [query.min_statements]
    if query.path:
        clauses.append("instr(place, ?) > 0")  # case-sensitive, as `in`
        args.append(query.path)
    if query.method:
        clauses.append("method = ?")
        args.append(query.method)
    # Badge names are checked against BADGES (ListQuery.check).
    clauses += [f"{badge} <> 0" for badge in query.badges]
    if query.since is not None:
        clauses.append("started_at > ?")
        args.append(query.since)
    return " WHERE " + " AND ".join(clauses), args


def _flush_all() -> None:
    # At exit: write what is queued (each store's writer is a daemon thread).
    for store in list(_stores):
        try:
            store.close(EXIT_WAIT)
        except Exception:
            pass


def _after_fork() -> None:
    for store in list(_stores):
        store._forget_process()


atexit.register(_flush_all)
if hasattr(os, "register_at_fork"):  # not on Windows, which has no fork
    os.register_at_fork(after_in_child=_after_fork)
