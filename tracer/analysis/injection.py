"""Raw SQL written with values in its text instead of params: a sign of SQL built by
string formatting, which is how SQL injection gets in.

Four places take SQL from the user's code: ``cursor.execute()``, ``Model.objects.raw()``,
``QuerySet.extra()`` and ``RawSQL`` expressions. Each finding says where the SQL was
written and gives the parametrised form to use instead.

What counts as a value written in, to keep false positives low:

- string literals compared with something (``name = 'bob'``, ``'x' = name``, ``LIKE
  '%x%'``), in an ``IN (...)`` list or inserted (``VALUES ('x')``, ``SET a = 'x'``);
- numbers in those places, except 0 and 1 (flags and booleans); an ``IN`` list with
  any other number is taken whole.

Not flagged: literals that are arguments of functions (``DATE_TRUNC('month', d)``,
``COALESCE(a, '')``), ``INTERVAL '1 day'``, ``ESCAPE '\\'``, ``LIMIT 10``, ``SELECT 1``;
DDL and session statements (CREATE, ALTER, SAVEPOINT, SET, PRAGMA, SHOW ...);
statements about ``django_migrations`` or the system catalogs (``sqlite_master``,
``pg_catalog``, ``information_schema`` ...: Django's introspection); ``executemany``;
raw SQL run by Django or other libraries without any frame of the user's code on the
stack; and statements past ``SOFT_CAP``, which keep no stack to tell the two apart.

A constant compared with a column (``status = 'active'``) is flagged: the trace cannot
tell it from a formatted-in value, and a param costs nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.db.models.expressions import BaseExpression, RawSQL
from django.db.models.query import RawQuerySet
from django.db.models.query_utils import Q

from tracer import stacks
from tracer.analysis.fingerprint import normalize
from tracer.analysis.groups import location_of
from tracer.conf import get_config
from tracer.sqldisplay import MASK, redact_literals
from tracer.sqlscan import Value, values
from tracer.trace import Call, Manager, Operation, Statement, Trace

#: Where raw SQL came from, as findings name it.
KINDS = ("cursor.execute", "raw()", "extra()", "RawSQL")

# Statements whose literals are not values: DDL, transactions, session settings.
_IGNORED_WORDS = frozenset(
    """
    CREATE ALTER DROP TRUNCATE RENAME COMMENT GRANT REVOKE SAVEPOINT RELEASE ROLLBACK
    COMMIT BEGIN START END SET RESET PRAGMA SHOW USE DESCRIBE DESC EXPLAIN ANALYZE
    VACUUM REINDEX CLUSTER LOCK UNLOCK DECLARE CLOSE FETCH MOVE LISTEN NOTIFY CHECKPOINT
    FLUSH OPTIMIZE KILL
    """.split()
)
# Introspection reads the system catalogs, with literals; Django runs it in migrate,
# flush, loaddata ... which the user's code may call (so there is a user frame).
_CATALOGS = re.compile(
    r"""\b(?:django_migrations|information_schema|sqlite_master|sqlite_schema
    |sqlite_temp_master|sqlite_sequence|pg_catalog|pg_class|pg_namespace|pg_attribute
    |pg_attrdef|pg_constraint|pg_index|pg_collation|pg_type|pg_proc|pg_inherits
    |pg_tables|pg_indexes|pg_sequences?|pg_settings)\b""",
    re.VERBOSE | re.IGNORECASE,
)
_FIRST_WORD = re.compile(r"(?:\s+|--[^\n]*|/\*.*?\*/|\()*([A-Za-z_]+)", re.DOTALL)
_EXTRA_ARGS = ("select", "where", "params", "tables", "order_by", "select_params")


@dataclass
class InjectionRisk:
    """Raw SQL from one place in the code, with values written into its text."""

    #: Where the SQL was given: one of KINDS.
    kind: str
    #: ``"file:line"`` where it was written (the ``.extra()``/``.raw()`` call, the
    #: call holding the RawSQL) or ran (``cursor.execute``), ``"template:line"``, "?".
    location: str
    #: The SQL the values are in: the statement's, or the fragments given to
    #: ``extra()`` or ``RawSQL`` (one per line); of the first statement.
    sql: str
    #: The literals found, as written (those of secret-looking columns as
    #: ``'********'``); of the first statement.
    literals: list[str]
    #: The call to write instead, with placeholders and params.
    suggestion: str
    #: Positions in ``trace.statements`` of the statements that ran it.
    indexes: list[int] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.indexes)


def risks(trace: Trace) -> list[InjectionRisk]:
    """Raw SQL of the trace with values written in, one finding per kind, location and
    shape (statements of one loop are one finding), in order of first appearance."""
    found: dict[tuple[str, str, str], InjectionRisk] = {}
    compiled: dict[int, tuple[Operation, list[tuple[int, Statement]]]] = {}
    for index, statement in enumerate(trace.statements):
        if statement.kind != "execute" or not isinstance(statement.sql, str):
            continue
        operation = statement.operation
        if statement.compile is not None:
            if operation is not None:
                compiled.setdefault(id(operation), (operation, []))[1].append((index, statement))
            continue
        if not _ignored(statement.sql):
            _add(found, _raw(statement), index)
    for operation, ran in compiled.values():
        for risk, fragments in _written_into(operation, ran):
            for index, statement in ran:
                # The fragments are in the SQL of the statements that used them
                # (count() leaves out extra(select=...), not extra(where=...)).
                if any(fragment in statement.sql for fragment in fragments):
                    _add(found, risk, index)
    return sorted(found.values(), key=lambda risk: risk.indexes[0])


def _add(
    found: dict[tuple[str, str, str], InjectionRisk], risk: InjectionRisk | None, index: int
) -> None:
    if risk is None:
        return
    # One finding per place and shape: the SQL with its values taken out.
    key = (risk.kind, risk.location, normalize(risk.sql))
    known = found.setdefault(key, risk)
    if index not in known.indexes:
        known.indexes.append(index)


def _ignored(sql: str) -> bool:
    match = _FIRST_WORD.match(sql)
    if match is None or match.group(1).upper() in _IGNORED_WORDS:
        return True
    return _CATALOGS.search(sql) is not None


# cursor.execute() and raw() ------------------------------------------------------------


def _raw(statement: Statement) -> InjectionRisk | None:
    """A finding for a statement the ORM did not compile, if it has values written in."""
    operation = statement.operation
    if operation is None:
        if statement.stack is None and statement.template is None:
            return None  # Django's or a library's own SQL: no frame of the user's code
        kind, location = "cursor.execute", location_of(statement)
    elif operation.stack is None and operation.template is None:
        return None
    elif operation.queryset_class is not None and issubclass(
        operation.queryset_class, RawQuerySet
    ):
        kind, location = "raw()", _raw_call_location(operation) or location_of(statement)
    else:  # SQL run by the user's code inside an ORM operation (a save() override ...)
        kind, location = "cursor.execute", location_of(statement)
    sql, params, vendor = statement.sql, statement.params, statement.vendor
    if isinstance(params, str):  # not recorded (past SOFT_CAP)
        params = None
    flagged = _flagged(sql, vendor)
    if not flagged:
        return None
    # Without params the driver sent the text as it is; with them, % must be %%.
    new_sql, new_params = _parametrised(sql, params, flagged, vendor, escape=params is None)
    if kind == "raw()":
        call = f"{_manager_of(operation)}.raw"
    else:
        call = "cursor.execute"
    suggestion = f"{call}({_py(new_sql)}, {_py(new_params)})"
    return InjectionRisk(
        kind, location, redact_literals(sql, vendor=vendor), _shown(flagged), suggestion
    )


def _raw_call_location(operation: Operation) -> str | None:
    lineage = operation.lineage
    while isinstance(lineage, Call):
        if lineage.name == "raw":
            return _call_location(lineage)
        lineage = lineage.parent
    return None


def _manager_of(operation: Any) -> str:
    model = getattr(operation.model, "__name__", "Model")
    lineage = operation.lineage
    while isinstance(lineage, Call):
        lineage = lineage.parent
    if isinstance(lineage, Manager) and lineage.related is None and lineage.name:
        return f"{model}.{lineage.name}"
    return f"{model}.objects"


# extra() and RawSQL ---------------------------------------------------------------------


def _written_into(
    operation: Operation, ran: list[tuple[int, Statement]]
) -> list[tuple[InjectionRisk, list[str]]]:
    """Findings for the SQL fragments in the QuerySet's lineage (calls made in the
    user's code) and in the trigger's arguments, each with its fragments."""
    vendor = ran[0][1].vendor
    found: list[tuple[InjectionRisk, list[str]] | None] = []
    lineage = operation.lineage
    while isinstance(lineage, Call):
        # A call with no code object was typed, not made by a library: the
        # playground records the calls of the expression it built that way.
        if lineage.code is None or not stacks.is_library(lineage.code):
            location = _call_location(lineage)
            if lineage.name == "extra":
                found.append(_extra(lineage, vendor, location))
            for raw in _raw_sqls((lineage.args, lineage.kwargs)):
                found.append(_raw_sql(raw, vendor, location))
        lineage = lineage.parent
    for raw in _raw_sqls((operation.args, operation.kwargs)):
        found.append(_raw_sql(raw, vendor, location_of(ran[0][1])))
    return [item for item in found if item is not None]


def _extra(call: Call, vendor: str, location: str) -> tuple[InjectionRisk, list[str]] | None:
    given = dict(zip(_EXTRA_ARGS, call.args, strict=False))
    kwargs = call.kwargs or ()
    given.update(zip(kwargs[::2], kwargs[1::2], strict=True))
    parts: list[str] = []
    fragments: list[str] = []
    literals: list[Value] = []
    select = given.get("select")
    if not isinstance(select, dict):
        select = {}
    select_sql = [str(sql) for sql in select.values()]
    where_sql = [str(sql) for sql in given.get("where") or ()]
    for name, sqls, params_name in (
        ("select", select_sql, "select_params"),
        ("where", where_sql, "params"),
    ):
        flagged = [_flagged(sql, vendor) for sql in sqls]
        if not any(flagged):
            continue
        params = list(given.get(params_name) or ())
        rewritten = []
        for sql, found in zip(sqls, flagged, strict=True):
            consumed = sum(1 for v in values(sql, vendor) if v.kind == "param")
            new_sql, new_params = _parametrised(sql, params[:consumed], found, vendor)
            params = params[consumed:]
            rewritten.append((new_sql, new_params))
            if found:
                fragments.append(sql)
                literals.extend(found)
        new_params = [value for _, fragment in rewritten for value in fragment] + params
        if name == "select":
            pairs = ", ".join(
                f"{_py(key)}: {_py(sql)}" for key, (sql, _) in zip(select, rewritten, strict=True)
            )
            parts.append(f"select={{{pairs}}}")
        else:
            parts.append(f"where={_py([sql for sql, _ in rewritten])}")
        parts.append(f"{params_name}={_py(new_params)}")
    if not parts:
        return None
    suggestion = f".extra({', '.join(sorted(parts, key=_extra_order))})"
    sql = "\n".join(redact_literals(fragment, vendor=vendor) for fragment in fragments)
    risk = InjectionRisk("extra()", location, sql, _shown(literals), suggestion)
    return risk, fragments


def _extra_order(part: str) -> int:
    return _EXTRA_ARGS.index(part.split("=", 1)[0])


def _raw_sql(raw: RawSQL, vendor: str, location: str) -> tuple[InjectionRisk, list[str]] | None:
    flagged = _flagged(raw.sql, vendor)
    if not flagged:
        return None
    new_sql, new_params = _parametrised(raw.sql, raw.params, flagged, vendor)
    params = tuple(new_params) if isinstance(raw.params, tuple) else new_params
    suggestion = f"RawSQL({_py(new_sql)}, {_py(params)})"
    sql = redact_literals(raw.sql, vendor=vendor)
    return InjectionRisk("RawSQL", location, sql, _shown(flagged), suggestion), [raw.sql]


def _raw_sqls(value: Any, depth: int = 0) -> Iterator[RawSQL]:
    """The RawSQL expressions in call arguments, however deeply nested."""
    if depth > 30 or value is None or isinstance(value, (str, bytes, int, float)):
        return
    if isinstance(value, RawSQL):
        yield value
    elif isinstance(value, (list, tuple, set, frozenset)):
        for item in value:
            yield from _raw_sqls(item, depth + 1)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _raw_sqls(item, depth + 1)
    elif isinstance(value, Q):
        for child in value.children:
            yield from _raw_sqls(child, depth + 1)
    elif isinstance(value, BaseExpression):
        for expression in value.get_source_expressions():
            yield from _raw_sqls(expression, depth + 1)


def _call_location(call: Call) -> str:
    frame = stacks.location((call.code, call.lasti)) if call.code is not None else None
    return "?" if frame is None else f"{frame.filename}:{frame.lineno}"


# Literals and their parametrised form -------------------------------------------------------


def _flagged(sql: str, vendor: str | None) -> list[Value]:
    """The literals of ``sql`` that look like values written in (see the module's
    docstring), in order."""
    found = values(sql, vendor)
    flagged = {v.start for v in found if _suspicious(v)}
    lists = {v.group for v in found if v.start in flagged and v.group is not None}
    return [
        v
        for v in found
        if v.kind != "param" and (v.start in flagged or (v.group is not None and v.group in lists))
    ]


def _suspicious(value: Value) -> bool:
    if value.via not in ("compare", "in", "insert"):
        return False
    if value.kind == "string":
        return True
    return value.kind == "number" and value.text not in ("0", "1")


def _parametrised(
    sql: str, params: Any, flagged: list[Value], vendor: str, *, escape: bool = False
) -> tuple[str, Any]:
    """``sql`` with the flagged literals as placeholders, and the params: the given ones
    where placeholders were, the literals' values where they were (with named params,
    named ``value_1``, ``value_2`` ...). Literals of secret-looking columns left in the
    text are redacted; ``escape`` doubles ``%`` (for SQL that ran without params)."""
    secret = _secret_columns()
    named = isinstance(params, Mapping)
    given = [] if named else list(params or ())
    new_params: list[Any] = []
    new_names: dict[str, Any] = dict(params) if named else {}
    replaced = {v.start for v in flagged}
    pieces: list[str] = []
    position = 0
    for value in values(sql, vendor):
        if value.kind == "param":
            if given:
                new_params.append(given.pop(0))
            continue
        if value.start not in replaced:
            continue
        pieces.append(_escaped(sql[position : value.start], escape))
        position = value.end
        python = MASK if _is_secret(value, secret) else _python(value, vendor)
        if named:
            name = _free_name(new_names)
            new_names[name] = python
            pieces.append(f"%({name})s")
        else:
            new_params.append(python)
            pieces.append("%s")
    pieces.append(_escaped(sql[position:], escape))
    text = redact_literals("".join(pieces), vendor=vendor)
    return text, (new_names if named else new_params + given)


def _free_name(taken: dict[str, Any]) -> str:
    number = 1
    while f"value_{number}" in taken:
        number += 1
    return f"value_{number}"


def _escaped(text: str, escape: bool) -> str:
    return text.replace("%", "%%") if escape else text


def _shown(flagged: list[Value]) -> list[str]:
    secret = _secret_columns()
    return [f"'{MASK}'" if _is_secret(v, secret) else v.text for v in flagged]


def _secret_columns() -> tuple[str, ...]:
    return get_config().redact_columns


def _is_secret(value: Value, parts: tuple[str, ...]) -> bool:
    column = (value.column or "").lower()
    return bool(column) and any(part in column for part in parts)


_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "0": "\0", "b": "\b", "Z": "\x1a"}


def _python(value: Value, vendor: str) -> Any:
    """The Python value of a literal: int, float, str or bytes."""
    text = value.text
    if value.kind == "number":
        return int(text) if text.lstrip("-").isdigit() else float(text)
    prefix = ""
    if text[0] not in "'\"":
        prefix, text = text[0].upper(), text[1:]
    quote = text[0]
    body = text[1:-1] if len(text) > 1 and text.endswith(quote) else text[1:]
    if prefix == "X":
        try:
            return bytes.fromhex(body)
        except ValueError:
            return body
    if prefix != "E" and vendor != "mysql":  # standard strings: no backslash escapes
        return body.replace(quote * 2, quote)
    return re.sub(
        r"\\(.)|" + quote * 2,
        lambda m: quote if m.group(1) is None else _ESCAPES.get(m.group(1), m.group(1)),
        body,
        flags=re.DOTALL,
    )


def _py(value: Any) -> str:
    """Python source for a value, strings in double quotes where they can be."""
    if isinstance(value, str):
        text = repr(value)
        if text.startswith("'") and '"' not in value:
            text = '"' + text[1:-1] + '"'
        return text
    if isinstance(value, list):
        return "[" + ", ".join(_py(item) for item in value) + "]"
    if isinstance(value, tuple):
        items = ", ".join(_py(item) for item in value)
        return f"({items},)" if len(value) == 1 else f"({items})"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_py(k)}: {_py(v)}" for k, v in value.items()) + "}"
    return repr(value)
