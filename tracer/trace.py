"""What a trace holds: plain Python objects, no Django imports.

Objects here are created on the hot path, so they use ``__slots__``, take raw values
(SQL and params exactly as the driver got them) and do no formatting; anything
derived is computed when someone looks.
"""

from __future__ import annotations

import time
import uuid
from collections import deque
from typing import Any

#: The params of an ``executemany`` whose ``param_list`` was an iterator: the driver
#: consumes it, so the recorder must not (and cannot) keep it.
UNRECORDED = "<iterator: not recorded>"

#: Compile.sql of a compile whose statement ran exactly the SQL and params it made.
SAME_AS_STATEMENT = "<same as the statement>"

#: The alias Django gives the connections it opens without a database
#: (``_nodb_cursor``: CREATE/DROP DATABASE while setting up test databases).
NO_DB_ALIAS = "__no_db__"


def describe_error(exc: BaseException) -> tuple[str, str]:
    """(exception class path, message): what a record keeps of an exception, so that
    it holds no traceback and no frames alive."""
    return f"{type(exc).__module__}.{type(exc).__qualname__}", str(exc)


class Statement:
    """One call that sent work to the database server.

    ``kind`` is ``"execute"``, ``"executemany"``, ``"callproc"`` or ``"transaction"``
    (BEGIN, COMMIT or ROLLBACK made as a driver call rather than as SQL text; ``sql``
    then holds that word, as in Django's own ``connection.queries``).
    """

    __slots__ = (
        "alias",
        "vendor",
        "kind",
        "sql",
        "params",
        "start_ns",
        "duration_ns",
        "rowcount",
        "rows_fetched",
        "fetch_ns",
        "fetch_calls",
        "error",
        "in_atomic_block",
        "operation",
        "compile",
        "stack",
        "template",
    )

    def __init__(
        self,
        alias: str,
        vendor: str,
        kind: str,
        sql: Any,
        params: Any,
        in_atomic_block: bool,
        operation: Operation | None = None,
        compile: Compile | None = None,
    ) -> None:
        self.alias = alias
        self.vendor = vendor
        self.kind = kind
        self.sql = sql
        self.params = params
        self.in_atomic_block = in_atomic_block
        self.start_ns = 0
        #: None until the call returns or raises.
        self.duration_ns: int | None = None
        #: The driver's ``cursor.rowcount`` after the call (-1 where it has none).
        self.rowcount: int | None = None
        self.rows_fetched = 0
        self.fetch_ns = 0
        self.fetch_calls = 0
        #: (exception class path, message) if the call raised.
        self.error: tuple[str, str] | None = None
        #: The ORM operation it ran for (None: raw SQL outside any operation).
        self.operation = operation
        #: The compiler call that produced it (None: the SQL did not come from one).
        self.compile = compile
        #: Where it ran from, for statements outside any operation (raw SQL); an
        #: operation's statements use the operation's.
        self.stack: Stack | None = None
        self.template: tuple[str, int] | None = None

    @property
    def duration_ms(self) -> float | None:
        return None if self.duration_ns is None else self.duration_ns / 1e6

    @property
    def stages(self) -> dict[str, dict[str, Any] | None]:
        """The six stages (model, manager, queryset, query, compiler, backend), built
        when asked; None marks a stage this statement did not go through."""
        from tracer.export import stages

        return stages(self)

    @property
    def is_setup(self) -> bool:
        """Whether it ran on a connection without a database (test-database setup)."""
        return self.alias == NO_DB_ALIAS

    def __repr__(self) -> str:
        sql = self.sql if isinstance(self.sql, str) else repr(self.sql)
        if len(sql) > 60:
            sql = sql[:57] + "..."
        return f"<Statement {self.alias} {self.kind} {sql!r}>"


#: A call site: code objects and instruction offsets, flattened
#: ``(code, lasti, code, lasti, ...)``, innermost first, starting at the first frame
#: in the user's code. Resolved to files and lines only when displayed.
Stack = tuple[Any, ...]


class StackCache(dict[tuple[int, int], list[tuple[Stack, Stack, Stack]]]):
    """A trace's interned stacks (see ``stacks.capture_shared``), and the last one
    captured with the frame it started at: while that frame still runs, at the same
    instruction, its callers are the same."""

    __slots__ = ("frame", "lasti", "stack")

    def __init__(self) -> None:
        super().__init__()
        self.frame: Any = None
        self.lasti = -1
        self.stack: Stack | None = None

    def clear(self) -> None:
        super().clear()
        # The frame outlives its call only as long as it is held: not past the trace.
        self.frame = self.stack = None


class Call:
    """One call in a QuerySet's lineage: ``.filter(price__lt=10)`` and where it was made.

    ``parent`` is the call before it; the first call of a lineage has a ``Manager``
    parent (or None when the QuerySet was not made by a manager that we saw).
    """

    __slots__ = ("parent", "name", "args", "kwargs", "code", "lasti", "duration_ns")

    def __init__(
        self,
        parent: Call | Manager | None,
        name: str,
        args: tuple[Any, ...],
        kwargs: tuple[Any, ...] | None,
        code: Any,
        lasti: int,
        duration_ns: int,
    ) -> None:
        self.parent = parent
        self.name = name
        self.args = args
        #: Keyword arguments flattened, ``(name, value, name, value, ...)``: a third
        #: of a dict's size.
        self.kwargs = kwargs
        self.code = code
        self.lasti = lasti
        self.duration_ns = duration_ns

    def __reduce__(self) -> Any:
        # Lineage rides on QuerySets; a pickled QuerySet drops it instead of
        # failing on the code objects it holds. Deep copies share it (immutable).
        return (_dropped, ())

    def __deepcopy__(self, memo: Any) -> Call:
        return self

    def __repr__(self) -> str:
        return f"<Call .{self.name}()>"


class Manager:
    """The manager a QuerySet came from: ``Book.objects``, or ``author.book_set``.

    ``related`` is, for a related manager, ``(model label of the instance, accessor
    name, instance pk)``.
    """

    __slots__ = ("name", "manager_class", "model", "related", "loaded_by", "prefetch")

    def __init__(
        self, name: str | None, manager_class: type, model: Any, related: Any = None
    ) -> None:
        self.name = name
        self.manager_class = manager_class
        self.model = model
        self.related = related
        #: For a related manager: the evaluation in the trace that loaded its
        #: instance, if any (see Operation.loaded_by).
        self.loaded_by: Operation | None = None
        #: For the QuerySet a prefetch stored on an instance: that prefetch.
        self.prefetch: Operation | None = None

    def __reduce__(self) -> Any:
        return (_dropped, ())

    def __deepcopy__(self, memo: Any) -> Manager:
        return self

    def __repr__(self) -> str:
        return f"<Manager {self.name}>"


def _dropped() -> None:
    return None


class Operation:
    """One thing the ORM did for the user's code: a QuerySet evaluation, a
    ``save()``, a ``delete()`` with its cascade, a lazy related-object access...

    Its statements point to it (``statement.operation``). Operations started while
    another runs (a prefetch, a cascade) have it as ``parent``.
    """

    __slots__ = (
        "index",
        "trigger",
        "detail",
        "model",
        "queryset_class",
        "lineage",
        "args",
        "kwargs",
        "prefetch",
        "stack",
        "capped",
        "template",
        "parent",
        "start_ns",
        "end_ns",
        "error",
        "loaded_by",
        "instance_pk",
        "rows",
        "used",
        "selected",
    )

    def __init__(
        self,
        index: int,
        trigger: str,
        model: Any,
        parent: Operation | None,
        start_ns: int,
        stack: Stack | None = None,
        template: tuple[str, int] | None = None,
        capped: bool = False,
    ) -> None:
        self.index = index
        #: What started it: "iteration", "len", "count", "get", "save", "related",
        #: "prefetch", ... (see tracer.pipeline.TRIGGERS).
        self.trigger = trigger
        #: Trigger details: the relation ("Book.author") or prefetch lookup path.
        self.detail: str | None = None
        self.model = model
        self.queryset_class: type | None = None
        #: The QuerySet's last lineage call (follow ``.parent`` back to its manager).
        self.lineage: Call | Manager | None = None
        #: The triggering call's arguments, e.g. ``.get(pk=1)``'s (flattened
        #: keywords, as in ``Call``); None for implicit triggers like iteration.
        self.args: tuple[Any, ...] | None = None
        self.kwargs: tuple[Any, ...] | None = None
        #: The QuerySet's prefetch_related lookups, as given.
        self.prefetch: tuple[Any, ...] = ()
        self.stack = stack
        #: Started past SOFT_CAP, so no stack was captured.
        self.capped = capped
        self.template = template
        self.parent = parent
        self.start_ns = start_ns
        self.end_ns: int | None = None
        self.error: tuple[str, str] | None = None
        #: For a lazy load on one instance ("related", "deferred"): the evaluation
        #: in this trace that loaded the instance (None if another trace did), and
        #: the instance's pk. N+1 detection groups lazy loads by them.
        self.loaded_by: Operation | None = None
        self.instance_pk: Any = None
        #: While the trace records: the model instances this evaluation loaded, so
        #: that lazy loads on them can find it (see recorder.loaded_by). Released
        #: when the trace finishes: a finished trace holds none of your objects.
        self.rows: list[Any] | None = None
        #: For a prefetch of a many-valued relation: whether your code read any of
        #: the QuerySets it stored (None when that cannot be told). For a prefetch of
        #: a foreign key or one-to-one: whether your code read an object it loaded.
        self.used: bool | None = None
        #: For an evaluation with select_related: each path it joined
        #: (``"book"``, ``"book__author"``) and whether your code read it; None
        #: for a path (or the whole dict) that cannot be told (see recorder.watch).
        self.selected: dict[str, bool | None] | None = None

    @property
    def duration_ns(self) -> int | None:
        return None if self.end_ns is None else self.end_ns - self.start_ns

    def __repr__(self) -> str:
        model = getattr(self.model, "__name__", None)
        return f"<Operation {self.index} {self.trigger} {model}>"


class Shape:
    """What all compiles of one SQL text by one compiler class share: the classes,
    the model and the Query's state in readable form (tracer.querystate)."""

    __slots__ = ("compiler_class", "query_class", "model", "state")

    def __init__(
        self, compiler_class: type, query_class: type, model: Any, state: Any = None
    ) -> None:
        self.compiler_class = compiler_class
        self.query_class = query_class
        self.model = model
        self.state: dict[str, Any] | None = state


class Compile:
    """One compiler call: ``SQLCompiler.execute_sql()`` and the ``as_sql()`` in it.

    Several statements can share one (a bulk insert in batches).
    """

    __slots__ = (
        "shape",
        "result_type",
        "sql",
        "compile_ns",
        "convert_ns",
        "hydrate_ns",
        "iterable_class",
        "statement",
    )

    def __init__(self, shape: Shape | None, result_type: str | None = None) -> None:
        #: Shared with every compile of the same SQL (see Shape); set once as_sql()
        #: returned (execute_sql() makes one of its own if as_sql() never did).
        self.shape: Shape = shape  # type: ignore[assignment]
        self.result_type = result_type
        #: What as_sql() returned: (sql, params), or a list of them for inserts;
        #: SAME_AS_STATEMENT when the statement ran exactly that (not kept twice).
        self.sql: Any = None
        self.compile_ns: int | None = None
        #: Time in the backend's row converters (from_db_value, ...), or None if
        #: there were none.
        self.convert_ns: int | None = None
        #: Time the iterable spent building results from rows (model instances,
        #: select_related objects, dicts or tuples), net of fetching and converting.
        self.hydrate_ns: int | None = None
        self.iterable_class: type | None = None
        #: The last statement it ran.
        self.statement: Statement | None = None

    @property
    def compiler_class(self) -> type:
        return self.shape.compiler_class

    @property
    def query_class(self) -> type:
        return self.shape.query_class

    @property
    def model(self) -> Any:
        return self.shape.model

    @property
    def query(self) -> dict[str, Any] | None:
        """The Query's state in readable form."""
        return self.shape.state

    def __repr__(self) -> str:
        return f"<Compile {self.compiler_class.__name__}>"


class Event:
    """Something that happened to a connection without sending a statement:
    ``"connect"``, ``"close"``, ``"autocommit on"``."""

    __slots__ = ("alias", "vendor", "kind", "start_ns", "duration_ns", "error")

    def __init__(self, alias: str, vendor: str, kind: str, start_ns: int) -> None:
        self.alias = alias
        self.vendor = vendor
        self.kind = kind
        self.start_ns = start_ns
        self.duration_ns: int | None = None
        self.error: tuple[str, str] | None = None

    def __repr__(self) -> str:
        return f"<Event {self.alias} {self.kind}>"


class Trace:
    """One unit of work: a ``capture()`` block, a request, a rolling 'always' trace."""

    def __init__(self, label: str = "") -> None:
        self.label = label
        #: Wall-clock start, for display; durations use the monotonic ``*_ns`` clocks.
        self.started_at = time.time()
        self.start_ns = time.perf_counter_ns()
        self.end_ns: int | None = None
        self.statements: list[Statement] = []
        self.events: list[Event] = []
        self.operations: list[Operation] = []
        #: What the caps made it drop: "params", "stacks" (statements past SOFT_CAP
        #: lost those) and "statements" (past HARD_CAP: only counted).
        self.dropped: dict[str, int] = {}
        #: Per-request facts set by the middleware (method, path, status, ...).
        self.request: dict[str, Any] | None = None
        self._id: str | None = None
        # The export, once finished (see export.to_dict); a trace loaded by
        # from_dict() keeps the data it came from and is marked imported.
        self._exported: dict[str, Any] | None = None
        self.imported = False
        self._summary: dict[str, Any] | None = None
        self._findings: dict[str, Any] | None = None
        # Interned stacks, so statements from one loop share one tuple (see
        # stacks.capture_shared).
        self._stacks = StackCache()
        self._managers: dict[tuple[Any, ...], Manager] = {}
        # Lineage calls' arguments when they are one string (.using("replica")),
        # shared by the calls that pass the same one.
        self._args: dict[tuple[Any, ...], tuple[Any, ...]] = {}
        # Evaluations holding their instances (Operation.rows): the recent ones and
        # those a lazy load used; how many instances in all; id(instance) ->
        # evaluation for the indexed ones (see recorder.hold).
        self._recent: deque[Operation] = deque()
        self._pinned: list[Operation] = []
        self._held = 0
        self._indexed: set[int] = set()
        self._loaded: dict[int, Operation] = {}
        # Held evaluations not in that index yet (it is built when a lazy load asks).
        self._unindexed: list[Operation] = []
        # Evaluations whose eager loads are watched for reads (recorder.Watch).
        self._watch: Any = None

    @property
    def id(self) -> str:
        """A unique id, made on first use (not on the hot path)."""
        if self._id is None:
            self._id = uuid.uuid4().hex
        return self._id

    @property
    def finished(self) -> bool:
        return self.end_ns is not None

    @property
    def duration_ns(self) -> int:
        end = self.end_ns if self.end_ns is not None else time.perf_counter_ns()
        return end - self.start_ns

    @property
    def duration_ms(self) -> float:
        return self.duration_ns / 1e6

    @property
    def db_ms(self) -> float:
        return self.db_ns / 1e6

    @property
    def db_ns(self) -> int:
        """Time spent in database calls: execution plus fetching."""
        return sum((s.duration_ns or 0) + s.fetch_ns for s in self.statements)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe data in the documented ``"tracer-trace/1"`` format."""
        from tracer.export import to_dict

        return to_dict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Trace:
        """Load a trace from ``to_dict()`` data; raises ValueError on other data."""
        from tracer.export import from_dict

        return from_dict(data)

    def finish(self) -> None:
        if self.end_ns is None:
            self.end_ns = time.perf_counter_ns()
        for operation in (*self._recent, *self._pinned):
            operation.rows = None
        self._recent.clear()
        self._pinned = []
        self._held = 0
        self._indexed = set()
        self._loaded = {}
        self._unindexed = []
        self._args = {}
        self._stacks.clear()
        if self._watch is not None:
            self._watch.close()
            self._watch = None

    def __repr__(self) -> str:
        return f"<Trace {self.label!r} statements={len(self.statements)}>"
