"""The pipeline of an expression, unfolded: the manager, the QuerySet after each
chained call with what that call changed in its ``Query``, then the compiler and
the SQL it writes. No statement is sent (``guard.no_queries``).

The Query's state is ``tracer.querystate.describe()``, the same as the ``query``
stage of a recorded statement, taken after compiling (so the joins the compiler
adds, for ``select_related()``, are there). Each step's changes are the keys of
that state that differ from the step before.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.db import connections

from tracer import recorder
from tracer.export import value
from tracer.guard import QueryAttempted, first_statement, no_queries
from tracer.playground import writes
from tracer.playground.compiling import (
    Compiled,
    as_in_transaction,
    compile_query,
    from_attempt,
)
from tracer.playground.parser import Expression, MethodCall, PlaygroundError, parse

__all__ = ["Change", "Pipeline", "Step", "changes", "state_text", "unfold"]


@dataclass
class Change:
    """One key of the Query's state that a call changed."""

    key: str
    before: Any
    after: Any
    #: The change in words: ``INNER JOIN demo_app_author ON ...``, ``-published``.
    text: str

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "before": self.before, "after": self.after, "text": self.text}


@dataclass
class Step:
    """The QuerySet after one chained call."""

    index: int
    method: str
    code: str
    start: int
    end: int
    queryset_class: str
    build_ms: float
    #: The QuerySet's SQL at this point, and its Query's state.
    compiled: Compiled
    changes: list[Change]

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "method": self.method,
            "code": self.code,
            "start": self.start,
            "end": self.end,
            "queryset_class": self.queryset_class,
            "build_ms": self.build_ms,
            "compiled": self.compiled.to_dict(),
            "changes": [change.to_dict() for change in self.changes],
        }


@dataclass
class Pipeline:
    """An expression from its manager to the statements it would send."""

    expression: str
    code: str
    alias: str
    vendor: str
    #: ``{"label", "table"}`` of the model.
    model: dict[str, Any]
    #: ``{"name", "class", "code", "start", "end", "queryset_class", "compiled"}``:
    #: the manager and its QuerySet.
    manager: dict[str, Any]
    steps: list[Step]
    #: The call that ends the expression (``count()``, ``update(...)``), or None when
    #: the expression is a QuerySet (running it iterates it): ``{"method", "code",
    #: "kind", "start", "end"}``.
    terminal: dict[str, Any] | None
    #: The statements the expression would send, in order, compiled.
    statements: list[Compiled]
    notes: list[str] = field(default_factory=list)
    #: The parsed expression (not exported).
    parsed: Expression | None = field(default=None, repr=False)

    @property
    def kind(self) -> str:
        """``"rows"`` (a QuerySet), ``"evaluate"`` or ``"write"``."""
        return "rows" if self.terminal is None else str(self.terminal["kind"])

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe data."""
        return {
            "expression": self.expression,
            "code": self.code,
            "alias": self.alias,
            "vendor": self.vendor,
            "kind": self.kind,
            "model": self.model,
            "manager": {
                **{key: item for key, item in self.manager.items() if key != "compiled"},
                "compiled": self.manager["compiled"].to_dict(),
            },
            "steps": [step.to_dict() for step in self.steps],
            "terminal": self.terminal,
            "statements": [statement.to_dict() for statement in self.statements],
            "notes": list(self.notes),
        }


def unfold(
    expression: str | Expression, using: str = "default", *, app: str | None = None
) -> Pipeline:
    """Parse ``expression`` (unless already parsed) and compile each stage of it for
    the database ``using``. Raises PlaygroundError, pointing at the call at fault,
    when the expression is refused or Django rejects it."""
    parsed = expression if isinstance(expression, Expression) else parse(expression, app=app)
    if using not in connections:
        raise PlaygroundError(f"There is no database {using!r}.", parsed.text, 0, 0)
    connection = connections[using]
    if connection.vendor == "mysql":
        # The server's version and flavour, which the compiler consults: Django reads
        # them once per connection; read here so that compiling itself sends nothing.
        with recorder.suspended():
            connection.mysql_server_data  # noqa: B018
    # Suspended: a compile record (which the guard reads) goes to a throwaway trace.
    with recorder.suspended(), no_queries([using]):
        return _unfold(parsed, using, connection.vendor)


def _unfold(parsed: Expression, using: str, vendor: str) -> Pipeline:
    model = parsed.model
    manager = parsed.manager
    base = _compile_step(parsed, parsed.base, using, "rows", parsed.root_start, parsed.root_end)
    steps: list[Step] = []
    before = base.state or {}
    for index, call in enumerate(parsed.calls):
        compiled = _compile_step(parsed, call.queryset, using, "rows", call.start, call.end)
        after = compiled.state or {}
        steps.append(
            Step(
                index=index,
                method=call.method,
                code=call.code,
                start=call.start,
                end=call.end,
                queryset_class=_path(type(call.queryset)),
                build_ms=round(call.duration_ns / 1e6, 6),
                compiled=compiled,
                changes=changes(before, after),
            )
        )
        before = after
    final = steps[-1].compiled if steps else base
    terminal = parsed.terminal
    notes = _notes(parsed)
    if terminal is None:
        statements = [final]
    elif terminal.kind == "write":
        statements, more = _write(parsed, terminal, using)
        notes += more
    else:
        statements = [_evaluate(parsed, terminal, using)]
    return Pipeline(
        expression=parsed.text,
        code=parsed.code,
        alias=using,
        vendor=vendor,
        model={"label": model._meta.label, "table": model._meta.db_table},
        manager={
            "name": parsed.manager_name,
            "class": _path(type(manager)),
            "code": parsed.root_code,
            "start": parsed.root_start,
            "end": parsed.root_end,
            "queryset_class": _path(type(parsed.base)),
            "compiled": base,
        },
        steps=steps,
        terminal=None
        if terminal is None
        else {
            "method": terminal.method,
            "code": terminal.code,
            "kind": terminal.kind,
            "start": terminal.start,
            "end": terminal.end,
        },
        statements=statements,
        notes=notes,
        parsed=parsed,
    )


def _path(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _compile_step(
    parsed: Expression, queryset: Any, using: str, purpose: str, start: int, end: int
) -> Compiled:
    """The QuerySet's SQL, or PlaygroundError at the call whose result Django
    cannot compile (``select_related("nope")`` fails only then)."""
    try:
        return compile_query(queryset.query, using, purpose)
    except QueryAttempted as attempt:
        raise PlaygroundError(
            f"Compiling this would query the database ({attempt.sql}); refused.",
            parsed.text,
            start,
            end,
        ) from None
    except Exception as exc:
        raise PlaygroundError(
            f"{type(exc).__name__}: {exc}".rstrip(": "), parsed.text, start, end
        ) from None


def _evaluate(parsed: Expression, terminal: MethodCall, using: str) -> Compiled:
    """The statement an evaluating call sends first, stopped before it is sent."""
    queryset = parsed.queryset.using(using)
    method = terminal.method
    connection = connections[using]
    try:
        with as_in_transaction(connection, bool(queryset.query.select_for_update)):
            with first_statement(using) as stopped:
                if method == "__getitem__":
                    queryset[terminal.args[0]]
                else:
                    getattr(queryset, method)(*terminal.args, **terminal.kwargs)
    except Exception as exc:
        name = "[...]" if method == "__getitem__" else f"{method}()"
        raise PlaygroundError(
            f"{name}: {type(exc).__name__}: {exc}", parsed.text, terminal.start, terminal.end
        ) from None
    purpose = "index" if method == "__getitem__" else method
    if stopped.attempt is None:
        return Compiled(purpose, note="Django knows the answer without a query: none is sent.")
    return from_attempt(stopped.attempt, using, purpose)


def _write(
    parsed: Expression, terminal: MethodCall, using: str
) -> tuple[list[Compiled], list[str]]:
    try:
        statements, notes = writes.plan(
            terminal.method, parsed.queryset, terminal.args, terminal.kwargs, using
        )
    except QueryAttempted as attempt:
        raise PlaygroundError(
            f"{terminal.method}(): compiling it would query the database ({attempt.sql}); "
            "refused.",
            parsed.text,
            terminal.start,
            terminal.end,
        ) from None
    except Exception as exc:
        raise PlaygroundError(
            f"{terminal.method}(): {type(exc).__name__}: {exc}",
            parsed.text,
            terminal.start,
            terminal.end,
        ) from None
    notes = [f"{terminal.method}() changes data: it is compiled, never run.", *notes]
    return statements, notes


def _notes(parsed: Expression) -> list[str]:
    queryset = parsed.queryset
    notes = []
    lookups = getattr(queryset, "_prefetch_related_lookups", ())
    if lookups and (parsed.terminal is None or parsed.terminal.method in _PREFETCHING):
        names = ", ".join(
            lookup if isinstance(lookup, str) else str(lookup.prefetch_to) for lookup in lookups
        )
        notes.append(
            f"prefetch_related({names}): once the rows are fetched, one more query per "
            "relation, filtered by the keys of the rows (run it to see them)."
        )
    if queryset.query.select_for_update:
        notes.append("FOR UPDATE locks the rows it reads: running does it in a transaction.")
    return notes


_PREFETCHING = frozenset({"get", "first", "last", "earliest", "latest", "__getitem__"})


# State changes -------------------------------------------------------------------------


def changes(before: dict[str, Any], after: dict[str, Any]) -> list[Change]:
    """The keys of ``describe()`` whose values differ, in the order of the state."""
    found = []
    for key, new in after.items():
        old = before.get(key)
        if old == new:
            continue
        found.append(Change(key, value(old), value(new), _change_text(key, old, new)))
    return found


def _change_text(key: str, before: Any, after: Any) -> str:
    if key == "tables":
        old = {entry["alias"]: entry for entry in before or []}
        new = {entry["alias"]: entry for entry in after or []}
        lines = [
            f"+ {_table_text(entry)}" for alias, entry in new.items() if old.get(alias) != entry
        ]
        lines += [f"- {_table_text(entry)}" for alias, entry in old.items() if alias not in new]
        return "\n".join(lines)
    if before in (None, False, [], {}, 0) and key not in ("low_mark",):
        return state_text(key, after)
    return f"{state_text(key, before)} -> {state_text(key, after)}"


def state_text(key: str, item: Any) -> str:
    """One key of a ``describe()`` state in words."""
    if key == "tables":
        return "\n".join(_table_text(entry) for entry in item or [])
    if key == "where":
        return "(none)" if item is None else where_text(item)
    if key in ("select", "values", "order_by", "default_ordering", "distinct_fields", "extra"):
        return ", ".join(str(part) for part in item) if item else "(none)"
    if key == "annotations":
        return ", ".join(f"{name} = {expr}" for name, expr in item.items()) if item else "(none)"
    if key == "deferred":
        return "(none)" if item is None else f"{item['mode']}: {', '.join(item['fields'])}"
    if key == "group_by":
        if item is True:
            return "every selected column"
        return "(none)" if not item else ", ".join(item)
    if key == "select_related":
        if item is True:
            return "every non-null foreign key"
        return ", ".join(_related_paths(item)) if item else "(none)"
    if key == "select_for_update":
        if item is None:
            return "(none)"
        options = [name for name in ("nowait", "skip_locked", "no_key") if item.get(name)]
        if item.get("of"):
            options.append("of " + ", ".join(item["of"]))
        return "FOR UPDATE" + (f" ({', '.join(options)})" if options else "")
    if key == "combinator":
        if item is None:
            return "(none)"
        kind = str(item["kind"]).upper() + (" ALL" if item.get("all") else "")
        return f"{kind} of {item['queries']} queries"
    if item is None:
        return "(none)"
    return str(item)


def _related_paths(item: Any, prefix: str = "") -> list[str]:
    paths = []
    for name, sub in item.items():
        path = f"{prefix}{name}"
        nested = _related_paths(sub, f"{path}__") if isinstance(sub, dict) else []
        paths += nested or [path]
    return paths


def _table_text(entry: dict[str, Any]) -> str:
    name = (
        entry["table"]
        if entry["alias"] == entry["table"]
        else f"{entry['table']} {entry['alias']}"
    )
    if entry["join"] is None:
        return f"FROM {name}"
    on = " AND ".join(
        f"{entry['parent']}.{lhs} = {entry['alias']}.{rhs}" for lhs, rhs in entry["on"]
    )
    text = f"{entry['join']} {name} ON {on}"
    if entry.get("relation"):
        text += f" (via {entry['relation']})"
    return text


_WORDS = {"exact": "=", "lt": "<", "lte": "<=", "gt": ">", "gte": ">=", "in": "IN"}


def where_text(node: Any) -> str:
    """A ``describe()`` WHERE tree as one line: ``a.x < ? AND (b.y = ? OR ...)``."""
    if isinstance(node, str):
        return node
    if "lookup" in node:
        if node["lookup"] == "isnull" and isinstance(node["rhs"], bool):
            return f"{node['lhs']} IS {'' if node['rhs'] else 'NOT '}NULL"
        return f"{node['lhs']} {_WORDS.get(node['lookup'], node['lookup'])} {node['rhs']}"
    parts = []
    for child in node["children"]:
        text = where_text(child)
        if isinstance(child, dict) and "children" in child and len(child["children"]) > 1:
            text = f"({text})"
        parts.append(text)
    text = f" {node['connector']} ".join(parts)
    return f"NOT ({text})" if node["negated"] else text
