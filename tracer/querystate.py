"""The state of a ``sql.Query`` in readable, JSON-serialisable form.

``describe(query)`` is called by the traced compiler right after ``as_sql()`` ran on
``query`` (so its joins are set up), once per distinct (Query class, model, SQL text).
Its result is cached and shared between every compile of that SQL, so it never contains
literal values: a plain value is rendered as ``"?"`` (the SQL's placeholder), while
expressions, which are part of the SQL text, are rendered in full.

``describe`` only reads the query: it never mutates it (it avoids even the Query
properties that fill caches, such as ``annotation_select`` and ``base_table``), never
compiles through a connection, never executes SQL, and never raises. A part it cannot
describe falls back to a default value and is named in ``"errors"``; an expression node
it does not know is rendered as its class name (with its source expressions, if any).

Format (part of the ``tracer-trace/1`` export; every key is always present)
--------------------------------------------------------------------------

Expressions ("readable") are strings:

- ``Col``: ``"alias.column"``; ``F("x")``: ``"F(x)"``; ``OuterRef("x")``: ``"OuterRef(x)"``;
  ``Ref`` (an annotation referred to by name): ``"Ref(name)"``;
- ``Value`` and any plain value: ``"?"`` (``"NULL"`` for ``None``, which is written into the
  SQL text); ``Star``: ``"*"``; ``RawSQL``: ``"RawSQL(<sql>)"``;
- functions, transforms and aggregates: ``"Name(arg, ...)"`` (``"Count(DISTINCT x)"``,
  ``"Sum(x) FILTER (WHERE ...)"``, ``"Cast(x AS IntegerField)"``);
- ``a + b`` arithmetic, ``CASE WHEN ... THEN ... ELSE ... END``, ``x DESC`` (OrderBy),
  ``expr OVER (PARTITION BY ... ORDER BY ...)`` (Window), ``NOT x``;
- nested queries: ``"Subquery(app_label.Model)"``, ``"Exists(app_label.Model)"`` (also
  ``"NOT Exists(...)"``); a bare Query in an expression (``pk__in=queryset``) is a Subquery;
- lookups inside expressions (``When`` conditions): ``"lhs < rhs"``.

Keys of ``describe()``'s dict:

- ``class``: the query class name (``Query``, ``InsertQuery``, ``UpdateQuery``,
  ``DeleteQuery``, ``AggregateQuery``, ``RawQuery``, or a third-party subclass's name).
- ``model``: ``"app_label.ModelName"`` or None; ``table``: the model's ``db_table`` or None.
- ``tables``: the FROM clause, in ``alias_map`` order, as a list of
  ``{"alias", "table", "join", "parent", "on", "relation", "condition"}``: ``join`` is None
  for the base table or ``"INNER JOIN"``/``"LEFT OUTER JOIN"``, ``parent`` the alias joined
  from (None for the base table), ``on`` a list of ``[parent_column, column]`` pairs,
  ``relation`` the name of the field or reverse relation followed (None for the base
  table), ``condition`` the ``FilteredRelation`` condition or None. Only the aliases in
  the FROM clause are listed: exactly those given as ``from_aliases`` (see
  ``from_aliases()``), else the ones with ``alias_refcount > 0``, the base table, the
  joins of ``select_related()`` and of the ordering and ``distinct()`` fields' relations,
  and their parents (``as_sql()`` resets the reference counts of the joins it set up,
  and leaves trimmed joins in ``alias_map``). Never compiled: the model's table.
- ``where``: None, or ``{"connector": "AND"|"OR"|"XOR", "negated": bool, "children": [...]}``
  where a child is a nested tree, a lookup ``{"lookup": "exact"|"lt"|"in"|..., "lhs":
  readable, "rhs": readable}``, or a readable string for a condition that is not a lookup
  (``"Exists(app.Model)"``, ``"NOT Exists(...)"``, ``"ExtraWhere(...)"``, ``"Nothing"``).
  A lookup's ``rhs`` is ``"?"`` for a value, ``"(?, ?)"`` for a list or tuple (for ``in``,
  one ``?`` per distinct non-None value, as in the SQL), the readable form of an
  expression or nested query, or for ``isnull`` the boolean (written into the SQL text).
  Conditions on aggregates (HAVING) and windows (QUALIFY) are part of this tree too.
- ``select``: readable columns of ``query.select``; ``["<all fields of app.Model>"]`` when
  the model's default columns are selected (see ``deferred``); ``[]`` for InsertQuery,
  UpdateQuery, DeleteQuery and AggregateQuery (which selects its ``annotations``).
- ``deferred``: None, or ``{"mode": "defer"|"only", "fields": [sorted names]}`` from
  ``defer()``/``only()``.
- ``annotations``: ``{name: readable}`` of the annotations in the SELECT clause
  (``alias()``-only ones are left out: they appear inline where they are used).
- ``values``: field names of ``values()``/``values_list()`` (``query.values_select``).
- ``extra``: names of ``extra(select=...)`` columns in the SELECT clause.
- ``group_by``: None, True (group by every selected column), or a list of readable.
- ``order_by``: the explicit ordering as given (strings such as ``"-price"`` or readable
  expressions; ``extra(order_by=...)`` replaces it, as in the compiler).
- ``default_ordering``: the model's ``Meta.ordering`` when it applies (no explicit
  ordering and not cleared), else None. (The compiler leaves it out of the ORDER BY of a
  query with a GROUP BY.)
- ``reversed``: True after ``reverse()`` (every ordering direction is flipped).
- ``low_mark``: int offset; ``high_mark``: int end of the slice, or None.
- ``distinct``: bool; ``distinct_fields``: list of names (``distinct(*fields)``).
- ``select_for_update``: None, or ``{"nowait": bool, "skip_locked": bool, "of": [names],
  "no_key": bool}``.
- ``combinator``: None, or ``{"kind": "union"|"intersection"|"difference", "all": bool,
  "queries": int, "parts": [describe() of each combined query]}``. A combined query's
  ``tables`` is ``[]`` and its ``where`` None: the compiler writes the parts' instead (the
  query keeps a copy of the first part's, unused).
- ``select_related``: False, True (all non-null relations), or a nested dict of names.
- ``subqueries``: the number of nested queries referred to directly by this query's
  expressions (Subquery, Exists, ``__in=queryset``), plus combined queries and an
  AggregateQuery's inner query (nested queries of nested queries are not counted).
- ``errors``: names of the parts that could not be described (normally ``[]``).

Extra keys by class:

- InsertQuery (``tables`` is ``[]``): ``fields`` (names), ``objs`` (number of objects),
  ``on_conflict`` (None, ``"ignore"`` or ``"update"``), ``update_fields``,
  ``unique_fields`` (names).
- UpdateQuery (``tables`` is the base table only: the UPDATE statement names no other
  table): ``set`` (``{name: readable}`` of the fields set, in order: ``"?"``
  for a value, ``"NULL"`` for None, an expression in full), ``related_updates`` (labels of
  the ancestor models that get their own UPDATE).
- DeleteQuery: nothing more (its joins, if any, end up in a ``pk IN (subquery)``, or in a
  ``DELETE ... JOIN`` on MySQL).
- AggregateQuery (``tables`` is ``[]``): ``inner``: ``describe()`` of the query in its
  FROM subquery.
- RawQuery: ``sql`` (the raw SQL string), ``params`` (number of parameters).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from django.db.models import Q
from django.db.models.aggregates import Aggregate
from django.db.models.expressions import (
    Case,
    Col,
    ColPairs,
    CombinedExpression,
    Exists,
    ExpressionWrapper,
    F,
    Func,
    NegatedExpression,
    OrderBy,
    OuterRef,
    RawSQL,
    Ref,
    ResolvedOuterRef,
    Star,
    Subquery,
    Value,
    When,
    Window,
)
from django.db.models.functions import Cast
from django.db.models.lookups import Exact, In, IsNull, Lookup
from django.db.models.sql.query import Query, RawQuery
from django.db.models.sql.subqueries import (
    AggregateQuery,
    DeleteQuery,
    InsertQuery,
    UpdateQuery,
)
from django.db.models.sql.where import ExtraWhere, NothingNode, WhereNode

__all__ = ["describe", "from_aliases"]

#: What a value (a query parameter) is rendered as.
PLACEHOLDER = "?"

#: Nesting depth beyond which expressions are cut short (guards against cycles).
MAX_DEPTH = 32

_OPERATORS = {
    "exact": "=",
    "lt": "<",
    "lte": "<=",
    "gt": ">",
    "gte": ">=",
    "in": "IN",
}


def describe(query: Any, *, from_aliases: Iterable[str] | None = None) -> dict[str, Any]:
    """Return the state of ``query`` (a ``sql.Query`` or ``RawQuery``) as a dict of
    JSON-serialisable values; see the module docstring for the keys.

    ``from_aliases``: the aliases of the FROM clause as ``from_aliases(query)`` returned
    while the compiler was running (from ``get_from_clause()``), for an exact ``tables``.
    Without it, ``tables`` is reconstructed from the query (see the module docstring).
    """
    try:
        return _Describer().describe(query, from_aliases)
    except Exception:  # pragma: no cover - every part is guarded already
        result = _skeleton(query)
        result["errors"] = ["describe"]
        return result


def _class_name(node: Any) -> str:
    return type(node).__name__


def _label(model: Any) -> str | None:
    if model is None:
        return None
    try:
        return str(model._meta.label)
    except Exception:
        return _class_name(model)


def _is_exists(node: Any) -> bool:
    """Exists(...) or ~Exists(...), which every backend writes as a bare condition."""
    if isinstance(node, NegatedExpression):
        node = node.expression
    return isinstance(node, Exists)


def _names(items: Any) -> list[str]:
    """Names of fields given as Field objects or strings."""
    if not items:
        return []
    return [item if isinstance(item, str) else str(getattr(item, "name", item)) for item in items]


def from_aliases(query: Query) -> list[str]:
    """The aliases that ``SQLCompiler.get_from_clause()`` puts in the FROM clause.

    Only meaningful while the compiler is running: ``as_sql()`` restores the reference
    counts it found when it ends, so the joins that the compile itself set up
    (``select_related()``, ordering or ``distinct()`` across relations) are back to zero
    afterwards. A compiler calls it from ``get_from_clause()`` and passes the result to
    ``describe(query, from_aliases=...)``.
    """
    refcount = query.alias_refcount
    return [alias for alias in query.alias_map if refcount.get(alias)]


def _used_aliases(query: Query) -> set[str]:
    """Best reconstruction of the FROM clause's aliases after the compile ended.

    An alias with a positive reference count is used. The joins that the compiler set up
    for itself are left in ``alias_map`` with a count of zero, next to joins that were
    trimmed (``filter(author=...)`` needs no join): they are told apart by following the
    ``select_related()`` names and the relations of the ordering and ``distinct()``
    fields from the base table. Then every used join's parents are used too.
    """
    alias_map = query.alias_map
    refcount = query.alias_refcount
    used = {alias for alias in alias_map if refcount.get(alias)}
    bases = [alias for alias, table in alias_map.items() if table.join_type is None]
    base = next((alias for alias in bases if alias in used), bases[0] if bases else None)
    if base is None:
        return used
    used.add(base)
    children: dict[tuple[str, str], str] = {}
    for alias, table in alias_map.items():
        if table.join_type is not None:
            try:
                name = str(table.join_field.name)
            except Exception:
                continue
            children.setdefault((table.parent_alias, name), alias)

    def follow_related(parent: str, spec: Any, depth: int) -> None:
        if depth > query.max_depth or depth > MAX_DEPTH:
            return
        if isinstance(spec, dict):
            for name, sub in spec.items():
                alias = children.get((parent, name))
                if alias is not None:
                    used.add(alias)
                    follow_related(alias, sub, depth + 1)
            return
        # select_related(): every non-null forward foreign key, recursively.
        for (from_alias, _), alias in children.items():
            field = alias_map[alias].join_field
            if (
                from_alias == parent
                and not getattr(field, "auto_created", True)
                and (getattr(field, "many_to_one", False) or getattr(field, "one_to_one", False))
                and not getattr(field, "null", True)
            ):
                used.add(alias)
                follow_related(alias, True, depth + 1)

    def follow_path(path: str) -> None:
        names = path.lstrip("-+").split("__")
        parent = base
        for position, name in enumerate(names):
            alias = children.get((parent, name))
            if alias is None:
                return
            if position == len(names) - 1:
                # Ordering by a relation itself needs the join only when the related
                # model has a default ordering; otherwise the foreign key column does.
                model = getattr(alias_map[alias].join_field, "related_model", None)
                if not getattr(getattr(model, "_meta", None), "ordering", None):
                    return
            used.add(alias)
            parent = alias

    if query.select_related:
        follow_related(base, query.select_related, 1)
    paths: list[Any] = [*query.extra_order_by, *query.order_by, *query.distinct_fields]
    if not query.order_by and query.default_ordering and query.model is not None:
        paths.extend(query.model._meta.ordering)
    for item in paths:
        if isinstance(item, OrderBy):
            item = item.expression
        if isinstance(item, F):
            item = item.name
        if isinstance(item, str):
            follow_path(item)

    for alias in list(used):
        parent = getattr(alias_map.get(alias), "parent_alias", None)
        while parent is not None and parent not in used:
            used.add(parent)
            parent = getattr(alias_map.get(parent), "parent_alias", None)
    return used


def _skeleton(query: Any) -> dict[str, Any]:
    model = getattr(query, "model", None)
    table = None
    if model is not None:
        try:
            table = str(model._meta.db_table)
        except Exception:
            table = None
    return {
        "class": _class_name(query),
        "model": _label(model),
        "table": table,
        "tables": [],
        "where": None,
        "select": [],
        "deferred": None,
        "annotations": {},
        "values": [],
        "extra": [],
        "group_by": None,
        "order_by": [],
        "default_ordering": None,
        "reversed": False,
        "low_mark": 0,
        "high_mark": None,
        "distinct": False,
        "distinct_fields": [],
        "select_for_update": None,
        "combinator": None,
        "select_related": False,
        "subqueries": 0,
        "errors": [],
    }


class _Describer:
    """One describe() call: renders the nodes of one query and counts its subqueries."""

    __slots__ = ("subqueries",)

    def __init__(self) -> None:
        self.subqueries = 0

    # -- the query ---------------------------------------------------------------------

    def describe(self, query: Any, from_aliases: Iterable[str] | None = None) -> dict[str, Any]:
        result = _skeleton(query)
        errors: list[str] = result["errors"]

        def part(key: str, compute: Callable[[], Any], default: Any = None) -> None:
            # Each key is computed on its own: one that fails keeps its default.
            result.setdefault(key, default)
            try:
                result[key] = compute()
            except Exception:
                errors.append(key)

        if isinstance(query, RawQuery):
            part("sql", lambda: str(query.sql))
            part("params", lambda: len(query.params) if query.params is not None else 0, 0)
            return result
        if not isinstance(query, Query):
            errors.append("class")
            return result

        part("tables", lambda: self.tables(query, from_aliases))
        part("where", lambda: self.where(query.where))
        part("select", lambda: self.select(query))
        part("deferred", lambda: self.deferred(query))
        part("annotations", lambda: self.annotations(query))
        part("values", lambda: [str(name) for name in query.values_select])
        part("extra", lambda: self.extra(query))
        part("group_by", lambda: self.group_by(query))
        part("order_by", lambda: self.order_by(query))
        part("default_ordering", lambda: self.default_ordering(query))
        part("reversed", lambda: not query.standard_ordering)
        part("low_mark", lambda: int(query.low_mark))
        part("high_mark", lambda: None if query.high_mark is None else int(query.high_mark))
        part("distinct", lambda: bool(query.distinct))
        part("distinct_fields", lambda: [str(name) for name in query.distinct_fields])
        part("select_for_update", lambda: self.select_for_update(query))
        part("combinator", lambda: self.combinator(query))
        part("select_related", lambda: self.select_related(query.select_related))

        if result["combinator"] is not None:
            result["tables"], result["where"] = [], None
        if isinstance(query, (InsertQuery, UpdateQuery, DeleteQuery, AggregateQuery)):
            # Their compilers write no column list of the model (an aggregation
            # selects its annotations only).
            result["select"] = []
        if isinstance(query, InsertQuery):
            result["tables"] = []  # INSERT INTO table: no FROM clause.
            part("fields", lambda: _names(query.fields), [])
            part("objs", lambda: len(query.objs), 0)
            part("on_conflict", lambda: self.on_conflict(query.on_conflict))
            part("update_fields", lambda: _names(query.update_fields), [])
            part("unique_fields", lambda: _names(query.unique_fields), [])
        elif isinstance(query, UpdateQuery):
            # UPDATE table SET ... names the base table only; a filter across
            # relations becomes "pk IN (subquery)" when the compiler runs.
            result["tables"] = [t for t in result["tables"] if t["join"] is None][:1]
            part("set", lambda: self.update_set(query.values), {})
            part("related_updates", lambda: [_label(m) for m in query.related_updates], [])
        elif isinstance(query, AggregateQuery):
            self.subqueries += 1
            part("inner", lambda: _Describer().describe(query.inner_query))

        result["subqueries"] = self.subqueries
        return result

    def tables(self, query: Query, from_aliases: Iterable[str] | None) -> list[dict[str, Any]]:
        alias_map = query.alias_map
        if from_aliases is not None:
            used = set(from_aliases)
        else:
            used = _used_aliases(query)
        if not alias_map:
            if isinstance(query, AggregateQuery) or query.model is None:
                return []  # An AggregateQuery's FROM is its inner query.
            # Never compiled: the compiler would start from the model's table.
            table = str(query.model._meta.db_table)
            return [self.table_entry(table, None, table)]
        return [self.table_entry(alias, alias_map[alias]) for alias in alias_map if alias in used]

    def table_entry(self, alias: str, table: Any, table_name: str = "") -> dict[str, Any]:
        entry: dict[str, Any] = {
            "alias": str(alias),
            "table": table_name,
            "join": None,
            "parent": None,
            "on": [],
            "relation": None,
            "condition": None,
        }
        if table is None:
            return entry
        entry["table"] = str(getattr(table, "table_name", None) or alias)
        join_type = getattr(table, "join_type", None)
        if join_type is None:
            return entry
        entry["join"] = str(join_type)
        parent = getattr(table, "parent_alias", None)
        entry["parent"] = None if parent is None else str(parent)
        try:
            entry["on"] = [[str(lhs), str(rhs)] for lhs, rhs in table.join_cols]
        except Exception:
            entry["on"] = []
        try:
            name = getattr(table.join_field, "name", None)
            entry["relation"] = None if name is None else str(name)
        except Exception:
            entry["relation"] = None
        filtered = getattr(table, "filtered_relation", None)
        if filtered is not None:
            entry["condition"] = self.expr(getattr(filtered, "condition", None), 0)
        return entry

    def select(self, query: Query) -> list[str]:
        if not query.select and query.default_cols:
            return [f"<all fields of {_label(query.model)}>"]
        return [self.expr(col, 0) for col in query.select]

    def deferred(self, query: Query) -> dict[str, Any] | None:
        field_names, defer = query.deferred_loading
        if defer and not field_names:
            return None
        return {"mode": "defer" if defer else "only", "fields": sorted(map(str, field_names))}

    def annotations(self, query: Query) -> dict[str, str]:
        # Not query.annotation_select: that property fills a cache on the query.
        mask = query.annotation_select_mask
        return {
            str(name): self.expr(annotation, 0)
            for name, annotation in query.annotations.items()
            if mask is None or name in mask
        }

    def extra(self, query: Query) -> list[str]:
        mask = query.extra_select_mask
        return [str(name) for name in query.extra if mask is None or name in mask]

    def group_by(self, query: Query) -> bool | list[str] | None:
        group_by = query.group_by
        if group_by is None or group_by is True:
            return group_by
        return [self.expr(item, 0) for item in group_by]

    def order_by(self, query: Query) -> list[str]:
        ordering = query.extra_order_by or query.order_by
        return [self.expr(item, 0) for item in ordering]

    def default_ordering(self, query: Query) -> list[str] | None:
        if query.extra_order_by or query.order_by or not query.default_ordering:
            return None
        if query.model is None:
            return None
        ordering = query.model._meta.ordering
        return [self.expr(item, 0) for item in ordering] if ordering else None

    def select_for_update(self, query: Query) -> dict[str, Any] | None:
        if not query.select_for_update:
            return None
        return {
            "nowait": bool(query.select_for_update_nowait),
            "skip_locked": bool(query.select_for_update_skip_locked),
            "of": [str(name) for name in query.select_for_update_of],
            "no_key": bool(query.select_for_no_key_update),
        }

    def combinator(self, query: Query) -> dict[str, Any] | None:
        if not query.combinator:
            return None
        queries = query.combined_queries
        self.subqueries += len(queries)
        return {
            "kind": str(query.combinator),
            "all": bool(query.combinator_all),
            "queries": len(queries),
            "parts": [_Describer().describe(part) for part in queries],
        }

    def select_related(self, value: Any) -> Any:
        if isinstance(value, bool):
            return value
        if isinstance(value, dict):
            return {str(name): self.select_related(sub) for name, sub in value.items()}
        return bool(value)

    @staticmethod
    def on_conflict(value: Any) -> str | None:
        if value is None:
            return None
        return str(getattr(value, "value", value))

    def update_set(self, values: Any) -> dict[str, str]:
        result = {}
        for field, _, value in values:
            if value is None:
                rendered = "NULL"
            elif hasattr(value, "resolve_expression"):
                rendered = self.expr(value, 0)
            else:
                rendered = PLACEHOLDER
            result[str(field.name)] = rendered
        return result

    # -- the where tree ----------------------------------------------------------------

    def where(self, node: Any) -> dict[str, Any] | None:
        if isinstance(node, WhereNode) and not node.children:
            return None
        if not isinstance(node, WhereNode):
            return {"connector": "AND", "negated": False, "children": [self.condition(node, 1)]}
        return self.tree(node, 0)

    def tree(self, node: WhereNode, depth: int) -> dict[str, Any]:
        return {
            "connector": str(node.connector),
            "negated": bool(node.negated),
            "children": [self.condition(child, depth + 1) for child in node.children],
        }

    def condition(self, node: Any, depth: int) -> Any:
        try:
            if depth > MAX_DEPTH:
                return "..."
            if isinstance(node, WhereNode):
                return self.tree(node, depth)
            if isinstance(node, Lookup):
                lhs, rhs = node.lhs, node.rhs
                if isinstance(node, Exact) and _is_exists(lhs) and isinstance(rhs, bool):
                    # filter([~]Exists(...)): "[NOT] EXISTS(...)", the lookup is not in
                    # the SQL (a condition on other expressions may be "= %s").
                    rendered = self.expr(lhs, depth + 1)
                    return rendered if rhs else f"NOT {rendered}"
                try:
                    rendered_rhs = self.rhs(node, depth + 1)
                except Exception:
                    rendered_rhs = _class_name(rhs)
                return {
                    "lookup": str(node.lookup_name),
                    "lhs": self.expr(lhs, depth + 1),
                    "rhs": rendered_rhs,
                }
            return self.expr(node, depth)
        except Exception:
            return _class_name(node)

    def rhs(self, lookup: Lookup, depth: int) -> Any:
        value = lookup.rhs
        if isinstance(lookup, IsNull) and isinstance(value, bool):
            return value
        if isinstance(lookup, In) and isinstance(value, (list, tuple, set, frozenset)):
            # As In.process_rhs(): duplicates and None are left out of the SQL.
            try:
                items = list(dict.fromkeys(v for v in value if v is not None))
            except TypeError:
                items = [v for v in value if v is not None]
            return "(" + ", ".join(self.value(item, depth) for item in items) + ")"
        return self.value(value, depth)

    def value(self, value: Any, depth: int) -> str:
        """A value in parameter position: "?" unless it is an expression."""
        if hasattr(value, "resolve_expression") or isinstance(value, Query):
            return self.expr(value, depth)
        if isinstance(value, (list, tuple)):
            if depth > MAX_DEPTH:
                return "..."
            return "(" + ", ".join(self.value(item, depth + 1) for item in value) + ")"
        return PLACEHOLDER

    # -- expressions -------------------------------------------------------------------

    def expr(self, node: Any, depth: int) -> str:
        try:
            if depth > MAX_DEPTH:
                return "..."
            return self._expr(node, depth + 1)
        except Exception:
            return _class_name(node)

    def args(self, nodes: Any, depth: int) -> str:
        return ", ".join(self.expr(node, depth) for node in nodes)

    def nested(self, kind: str, query: Any) -> str:
        self.subqueries += 1
        return f"{kind}({_label(getattr(query, 'model', None))})"

    def _expr(self, node: Any, depth: int) -> str:
        if isinstance(node, str):
            return node
        if isinstance(node, Col):
            column = node.target.column
            return f"{node.alias}.{column}" if node.alias else str(column)
        if node is None:
            return "NULL"
        if isinstance(node, Value):
            return "NULL" if node.value is None else PLACEHOLDER
        if isinstance(node, Query):
            return self.nested("Subquery", node)
        if isinstance(node, Exists):
            rendered = self.nested("Exists", node.query)
            return f"NOT {rendered}" if getattr(node, "negated", False) else rendered
        if isinstance(node, Subquery):
            return self.nested("Subquery", node.query)
        if isinstance(node, F):
            if isinstance(node, (OuterRef, ResolvedOuterRef)):
                return f"OuterRef({self.expr(node.name, depth)})"
            return f"F({node.name})"
        if isinstance(node, Ref):
            return f"Ref({node.refs})"
        if isinstance(node, Star):
            return "*"
        if isinstance(node, Lookup):
            operator = _OPERATORS.get(node.lookup_name, node.lookup_name)
            if isinstance(node, IsNull) and isinstance(node.rhs, bool):
                suffix = "IS NULL" if node.rhs else "IS NOT NULL"
                return f"{self.expr(node.lhs, depth)} {suffix}"
            return f"{self.expr(node.lhs, depth)} {operator} {self.rhs(node, depth)}"
        if isinstance(node, (WhereNode, Q)):
            return self.boolean(node, depth)
        if isinstance(node, CombinedExpression):
            lhs = self.expr(node.lhs, depth)
            rhs = self.expr(node.rhs, depth)
            if isinstance(node.lhs, CombinedExpression):
                lhs = f"({lhs})"
            if isinstance(node.rhs, CombinedExpression):
                rhs = f"({rhs})"
            return f"{lhs} {node.connector} {rhs}"
        if isinstance(node, NegatedExpression):
            return f"NOT {self.expr(node.expression, depth)}"
        if isinstance(node, ExpressionWrapper):
            return self.expr(node.expression, depth)
        if isinstance(node, OrderBy):
            text = f"{self.expr(node.expression, depth)} {'DESC' if node.descending else 'ASC'}"
            if node.nulls_first:
                text += " NULLS FIRST"
            elif node.nulls_last:
                text += " NULLS LAST"
            return text
        if isinstance(node, When):
            return f"WHEN {self.expr(node.condition, depth)} THEN {self.expr(node.result, depth)}"
        if isinstance(node, Case):
            parts = [self.expr(case, depth) for case in node.cases]
            return f"CASE {' '.join(parts)} ELSE {self.expr(node.default, depth)} END"
        if isinstance(node, Window):
            return self.window(node, depth)
        if isinstance(node, Aggregate):
            args = self.args(node.source_expressions, depth)
            text = f"{_class_name(node)}({'DISTINCT ' if node.distinct else ''}{args})"
            if node.filter is not None:
                text += f" FILTER (WHERE {self.expr(node.filter, depth)})"
            return text
        if isinstance(node, Cast):
            output_field = node.__dict__.get("output_field")  # Not the cached property.
            target = f" AS {_class_name(output_field)}" if output_field is not None else ""
            return f"Cast({self.args(node.source_expressions, depth)}{target})"
        if isinstance(node, Func):
            name = _class_name(node)
            if type(node) is Func:
                name = str(node.extra.get("function") or node.function or name)
            return f"{name}({self.args(node.source_expressions, depth)})"
        if isinstance(node, RawSQL):
            return f"RawSQL({node.sql})"
        if isinstance(node, ColPairs):
            return f"({self.args(node.get_cols(), depth)})"
        if isinstance(node, NothingNode):
            return "Nothing"
        if isinstance(node, ExtraWhere):
            return f"ExtraWhere({' AND '.join(str(sql) for sql in node.sqls)})"
        if isinstance(node, (list, tuple)):
            return f"({self.args(node, depth)})"
        if hasattr(node, "get_source_expressions"):
            # An expression this module does not know (third-party, newer Django).
            sources = node.get_source_expressions()
            return f"{_class_name(node)}({self.args(sources, depth)})"
        if hasattr(node, "resolve_expression") or hasattr(node, "as_sql"):
            return _class_name(node)
        return PLACEHOLDER  # A plain value.

    def boolean(self, node: WhereNode | Q, depth: int) -> str:
        parts = []
        for child in node.children:
            if isinstance(child, tuple) and len(child) == 2 and isinstance(child[0], str):
                # An unresolved Q leaf: ("field__lookup", value).
                parts.append(f"{child[0]}={self.value(child[1], depth)}")
            elif isinstance(child, (WhereNode, Q)) and len(child.children) > 1:
                parts.append(f"({self.expr(child, depth)})")
            else:
                parts.append(self.condition_text(child, depth))
        text = f" {node.connector} ".join(parts)
        if node.negated:
            return f"NOT ({text})"
        return text

    def condition_text(self, node: Any, depth: int) -> str:
        if isinstance(node, Exact) and _is_exists(node.lhs) and isinstance(node.rhs, bool):
            rendered = self.expr(node.lhs, depth)
            return rendered if node.rhs is not False else f"NOT {rendered}"
        return self.expr(node, depth)

    def window(self, node: Window, depth: int) -> str:
        clauses = []
        if node.partition_by is not None:
            clauses.append(
                f"PARTITION BY {self.args(node.partition_by.source_expressions, depth)}"
            )
        if node.order_by is not None:
            clauses.append(f"ORDER BY {self.args(node.order_by.source_expressions, depth)}")
        if node.frame is not None:
            clauses.append(_class_name(node.frame))
        return f"{self.expr(node.source_expression, depth)} OVER ({' '.join(clauses)})"
