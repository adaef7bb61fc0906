"""N+1 detection: lazy loads repeated over the instances of one evaluation, with the fix.

A lazy load is an operation that loads something for one model instance: a forward
foreign key or one-to-one (``book.author``), a related manager (``author.books.all()``,
``book.tags.count()``), a deferred field (``book.title`` after ``.only("id")``). Loads
of one relation from one call site (or template line) on instances of one multi-row
evaluation, for at least ``N_PLUS_ONE_MIN`` distinct instances, are an N+1. So is a
``.get()`` repeated from one call site with different arguments.

Not N+1: one instance touching its relation once (or its cached relation again),
relations already loaded by ``select_related``/``prefetch_related`` (they run no SQL),
and identical statements that are not lazy loads (see ``groups.duplicates``).
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any

from tracer import stacks
from tracer.analysis.fingerprint import fingerprint
from tracer.analysis.groups import where
from tracer.export import _calls, _root, call_code
from tracer.trace import Call, Manager, Operation, Statement, Trace

#: What kind of lazy load repeats, and the fix for each.
KINDS = {
    "forward": "a foreign key or one-to-one loaded for each instance",
    "many": "a related manager queried for each instance",
    "count": "a related manager counted for each instance",
    "exists": "a related manager checked for each instance",
    "deferred": "a deferred field loaded for each instance",
    "get": "a .get() repeated in a loop",
}


@dataclass
class NPlusOne:
    """One N+1: the same lazy load repeated for many instances."""

    #: One of KINDS.
    kind: str
    #: ``"Book.author"``, ``"Author.books"``, ``"Book.title"`` (deferred), ``"Book"`` (get).
    relation: str
    #: Statements the repeated loads ran, and for how many distinct instances.
    queries: int
    instances: int
    #: Time in the ORM for these loads (their operations, Python included), and the
    #: part of it spent in the database (executing and fetching).
    duration_ns: int
    db_ns: int
    #: Where the loads happen: ``"file:line"`` or ``"template:line"``.
    location: str
    #: Where the instances were loaded and that QuerySet as code (None if unknown).
    loaded_at: str | None
    loaded_code: str | None
    #: The fix in short (``.select_related('author')``), and the loading code with it
    #: applied when the loading code is known.
    fix: str
    fixed_code: str | None
    #: The whole explanation, in a sentence or three.
    explanation: str
    operations: list[int] = field(default_factory=list)
    statements: list[int] = field(default_factory=list)

    @property
    def duration_ms(self) -> float:
        return self.duration_ns / 1e6

    @property
    def db_ms(self) -> float:
        return self.db_ns / 1e6


def n_plus_ones(trace: Trace, minimum: int | None = None) -> list[NPlusOne]:
    """The N+1s of a recorded trace, those with the most queries first, then in the
    order they started.

    ``minimum`` is the number of distinct instances (or distinct ``.get()``
    arguments) that makes one; by default ``TRACER["N_PLUS_ONE_MIN"]``.
    """
    if minimum is None:
        from tracer.conf import get_config

        minimum = get_config().n_plus_one_min
    known = {id(operation) for operation in trace.operations}
    statements: dict[int, list[int]] = {}
    for index, statement in enumerate(trace.statements):
        if statement.operation is not None:
            statements.setdefault(id(statement.operation), []).append(index)
    groups: dict[Hashable, _Group] = {}
    for operation in trace.operations:
        mine = statements.get(id(operation))
        if not mine:
            continue
        load = _lazy_load(operation, trace.statements[mine[0]], known)
        if load is None:
            continue
        first = trace.statements[mine[0]]
        sql = first.sql if isinstance(first.sql, str) else repr(first.sql)
        key = (
            load.kind,
            load.relation,
            load.path,
            id(load.root) if load.root is not None else None,
            _site(operation),
            fingerprint(sql, first.vendor),
        )
        group = groups.get(key)
        if group is None:
            group = groups[key] = _Group(load)
        group.operations.append(operation)
        group.instances.add(load.instance)
        group.statements.extend(mine)
    found = [
        _report(group, trace.statements)
        for group in groups.values()
        if len(group.instances) >= minimum
    ]
    # Most queries first, then in the order they happened (not by time: the order
    # must not change from one run to the next).
    found.sort(key=lambda n: (-n.queries, n.operations[0]))
    return found


# What one lazy load is ------------------------------------------------------------------


@dataclass
class _Load:
    kind: str
    relation: str
    #: The lookup from the root evaluation's model: "author", "author__publisher".
    path: str
    #: The multi-row evaluation the instance came from (None: not known).
    root: Operation | None
    #: The instance (pk) or, for .get(), the arguments: what must differ.
    instance: Hashable
    #: For related managers: the calls made on the manager (a filter in the loop).
    calls: list[Call] = field(default_factory=list)
    manager: Manager | None = None


def _lazy_load(operation: Operation, statement: Statement, known: set[int]) -> _Load | None:
    trigger = operation.trigger
    if trigger in ("related", "deferred"):
        if not operation.detail:
            return None
        name = operation.detail.rsplit(".", 1)[-1]
        kind = "forward" if trigger == "related" else "deferred"
        root, prefix = _origin(operation.loaded_by, known)
        path = _join(prefix, name) if kind == "forward" else prefix
        return _Load(kind, operation.detail, path, root, _hashable(operation.instance_pk))
    manager, calls = _calls(operation.lineage)
    if manager is not None and manager.related is not None:
        label, accessor, pk = manager.related
        relation = f"{label.rsplit('.', 1)[-1]}.{accessor}"
        kind = trigger if trigger in ("count", "exists") else "many"
        root, prefix = _origin(manager.loaded_by, known)
        return _Load(kind, relation, _join(prefix, accessor), root, _hashable(pk), calls, manager)
    if trigger == "get" and operation.parent is None:
        model = getattr(operation.model, "__name__", "?")
        return _Load("get", model, "", None, _hashable(statement.params))
    return None


def _origin(loaded_by: Operation | None, known: set[int]) -> tuple[Operation | None, str]:
    """The multi-row evaluation instances came from, through lazy loads: an author
    loaded by ``book.author`` came from the books' evaluation, at path "author"."""
    path = ""
    operation = loaded_by
    while operation is not None and id(operation) in known:
        if operation.trigger != "related" or not operation.detail:
            return operation, path
        path = _join(operation.detail.rsplit(".", 1)[-1], path)
        operation = operation.loaded_by
    return None, path


def _join(prefix: str, name: str) -> str:
    return f"{prefix}__{name}" if prefix and name else prefix or name


def _hashable(value: Any) -> Hashable:
    try:
        hash(value)
        return value
    except TypeError:
        return repr(value)


def _site(operation: Operation) -> Hashable:
    """Where a load happens: the template line, else the first frame in the user's
    code (code object and line), else nothing known.

    The line, not the instruction offset: once CPython specialises a loop's code, one
    call can be made from another instruction (``list(...)``: its PRECALL rather than
    its CALL), and the loads of one line would fall in two groups.
    """
    if operation.template is not None:
        return operation.template
    stack = operation.stack
    frame = stacks.location(stack)  # resolved once per code and offset (cached)
    return (id(stack[0]), frame.lineno) if stack and frame is not None else None


def _where(operation: Operation) -> str:
    return where(operation.template, operation.stack)


# The report and its fix ----------------------------------------------------------------


@dataclass
class _Group:
    load: _Load
    operations: list[Operation] = field(default_factory=list)
    instances: set[Hashable] = field(default_factory=set)
    statements: list[int] = field(default_factory=list)


def _report(group: _Group, statements: list[Statement]) -> NPlusOne:
    load = group.load
    root = load.root
    outer = root
    prefix_lookup = None
    if root is not None and root.trigger == "prefetch" and root.parent is not None:
        # Instances a prefetch loaded: the fix extends the prefetch lookup of the
        # QuerySet that asked for it.
        prefix_lookup = root.detail
        outer = root.parent
    path = _join(prefix_lookup, load.path) if prefix_lookup else load.path
    # A plain prefetch of the relation the loop filters is never read: the fix's
    # Prefetch() takes its place.
    unread = path if outer is not None and _prefetches(outer, path) else None
    fix, note = _fix(load, path, prefix_lookup is not None, unread is not None)
    loaded_code = queryset_code(outer) if outer is not None else None
    fixed_code = None
    if outer is not None and fix.startswith("."):
        fixed_code = queryset_code(outer, fix, unread if "Prefetch(" in fix else None)
    first = group.operations[0]
    duration = sum(op.duration_ns or 0 for op in group.operations)
    db = sum((statements[i].duration_ns or 0) + statements[i].fetch_ns for i in group.statements)
    where = _where(first)
    loaded_at = _where(outer) if outer is not None else None
    count = len(group.statements)
    # The sentence is read by people: places as the UI shows them (the fields keep
    # the whole paths).
    explanation = (
        f"{count} queries ({KINDS[load.kind]}: {load.relation}) for "
        f"{len(group.instances)} instances at {stacks.short_path(where)}"
        + (
            f", loaded at {stacks.short_path(loaded_at or '?')} by {loaded_code}"
            if loaded_code
            else ""
        )
        + f". {note}"
    )
    return NPlusOne(
        kind=load.kind,
        relation=load.relation,
        queries=count,
        instances=len(group.instances),
        duration_ns=duration,
        db_ns=db,
        location=where,
        loaded_at=loaded_at,
        loaded_code=loaded_code,
        fix=fix,
        fixed_code=fixed_code,
        explanation=explanation,
        operations=[op.index for op in group.operations],
        statements=group.statements,
    )


def _prefetches(operation: Operation, path: str) -> bool:
    """Whether the QuerySet of ``operation`` has ``.prefetch_related(path)``."""
    _manager, calls = _calls(operation.lineage)
    return any(call.name == "prefetch_related" and _lookup(call, path) for call in calls)


def _lookup(call: Call, path: str) -> bool:
    return any(_is(arg, path) for arg in call.args)


def _is(arg: Any, path: str) -> bool:
    # Strings only: a Prefetch() or another object's == is not asked.
    return type(arg) is str and arg == path


def _fix(load: _Load, path: str, via_prefetch: bool, prefetched: bool) -> tuple[str, str]:
    """The fix as a call to add to the loading QuerySet, and a sentence saying why."""
    kind = load.kind
    if kind == "forward":
        if via_prefetch or not path:
            call = f".prefetch_related({path!r})"
            return call, f"Load them with the prefetch: add {call}."
        call = f".select_related({path!r})"
        return call, f"Join them into the query that loads the instances: add {call}."
    if kind in ("count", "exists"):
        accessor = path.rsplit("__", 1)[-1]
        name = f"{accessor}_count"
        # Count() takes the relation's query name: "book" for the accessor book_set.
        if load.manager is not None and load.manager.related is not None:
            accessor = _query_name(load.manager.related[0], accessor)
        condition = _filter_q(load.calls, accessor)
        count = f"Count({accessor!r}{', filter=' + condition if condition else ''})"
        use = f"instance.{name}" if kind == "count" else f"instance.{name} > 0"
        call = f".annotate({name}={count})"
        return call, f"Count them in the same query: add {call} and use {use}."
    if kind == "many":
        filters = [c for c in load.calls if c.name not in ("all",)]
        if filters:
            accessor = path.rsplit("__", 1)[-1]
            model = getattr(load.manager.model if load.manager else None, "__name__", "?")
            queryset = f"{model}.objects" + "".join(call_code(c) for c in filters)
            call = (
                f".prefetch_related(Prefetch({path!r}, queryset={queryset}, "
                f"to_attr={accessor + '_list'!r}))"
            )
            instead = (
                f" in place of .prefetch_related({path!r}), whose results the loop never reads,"
                if prefetched
                else ""
            )
            return call, (
                f"The loop filters them, so prefetch that QuerySet: add {call}{instead} and "
                f"iterate instance.{accessor}_list."
            )
        call = f".prefetch_related({path!r})"
        return call, f"Load them all in one more query: add {call}."
    if kind == "deferred":
        name = load.relation.rsplit(".", 1)[-1]
        return (
            f"load {name!r} with the instances",
            f"{name!r} was deferred (.only()/.defer()) but is read for every instance: "
            f"include it in .only(...) or drop it from .defer(...).",
        )
    return (
        f"{load.relation}.objects.in_bulk(...)",
        "Fetch them before the loop in one query (in_bulk() or filter(pk__in=...)) "
        "and look each up in the result.",
    )


def _query_name(label: str, accessor: str) -> str:
    """The query name (for filters and aggregates) of the relation a model reaches
    through ``accessor``: ``book`` for ``book_set``; the accessor itself when the model
    is not installed here (an imported trace) or the relation is not found."""
    from django.apps import apps

    try:
        model = apps.get_model(label)
    except (LookupError, ValueError):
        return accessor
    for each in model._meta.get_fields():
        if each.auto_created and not each.concrete and each.is_relation:
            if each.get_accessor_name() == accessor:
                return str(each.name)
        elif each.name == accessor:
            return accessor
    return accessor


def _filter_q(calls: list[Call], accessor: str) -> str | None:
    """``Q(books__price__lt=10)`` for a count filtered in the loop, if it is simple."""
    parts = []
    for call in calls:
        if call.name == "all":
            continue
        if call.name != "filter" or call.args:
            return None
        kwargs = call.kwargs or ()
        for i in range(0, len(kwargs), 2):
            parts.append(f"{accessor}__{kwargs[i]}={kwargs[i + 1]!r}")
    return f"Q({', '.join(parts)})" if parts else None


def queryset_code(operation: Operation, fix: str | None = None, drop: str | None = None) -> str:
    """The QuerySet of an evaluation as code, with ``fix`` inserted before any slice
    (a sliced QuerySet cannot take every call), and without the prefetch lookup
    ``drop`` (a call left with no lookup goes)."""
    manager, calls = _calls(operation.lineage)
    code = _root(manager, operation)
    inserted = fix is None
    for call in calls:
        if not inserted and call.name == "__getitem__":
            code += fix or ""
            inserted = True
        if drop is not None and call.name == "prefetch_related" and _lookup(call, drop):
            args = tuple(arg for arg in call.args if not _is(arg, drop))
            if not args:
                continue
            call = Call(None, call.name, args, call.kwargs, call.code, call.lasti, 0)
        code += call_code(call)
    if not inserted:
        code += fix or ""
    return code
