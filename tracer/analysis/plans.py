"""Query plans as trees, built from each vendor's EXPLAIN output, with the costly
parts marked.

Pure functions from what the server returned to a ``PlanNode`` tree: SQLite's
``EXPLAIN QUERY PLAN`` rows, PostgreSQL's ``EXPLAIN (FORMAT JSON)`` and
MySQL's or MariaDB's ``EXPLAIN FORMAT=JSON`` (their JSON shapes differ; both are read).
Running the EXPLAIN is tracer.analysis.explain's job.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

# MySQL's end_markers_in_json setting appends "/* name */" after objects and lists.
_END_MARKER = re.compile(r"([}\]]) /\* [\w-]+ \*/")

# What a node's ``warnings`` can hold.
#: Every row of a table is read (SQLite ``SCAN t``, PostgreSQL ``Seq Scan``,
#: MySQL/MariaDB access type ``ALL``).
FULL_SCAN = "full table scan"
#: SQLite sorts or de-duplicates through a temporary b-tree (``USE TEMP B-TREE FOR
#: ORDER BY``, ``GROUP BY``, ``DISTINCT``, ``UNION USING TEMP B-TREE``).
TEMP_BTREE = "temporary b-tree"
#: SQLite builds an index for this one query because none exists
#: (``USING AUTOMATIC COVERING INDEX``).
AUTOMATIC_INDEX = "automatic index"
#: A PostgreSQL sort did not fit in ``work_mem`` (only known with ANALYZE).
SORT_ON_DISK = "sort on disk"
#: MySQL/MariaDB sorts the rows itself rather than reading them in index order.
FILESORT = "filesort"
#: MySQL/MariaDB goes through an internal temporary table.
TEMPORARY_TABLE = "temporary table"
#: A MySQL/MariaDB full scan with no index that could serve the conditions
#: (``possible_keys`` empty).
NO_INDEX = "no usable index"
#: A MySQL/MariaDB full scan although an index could serve (``possible_keys`` set,
#: ``key`` empty): the optimizer judged the scan cheaper.
INDEX_NOT_USED = "index not used"


@dataclass
class PlanNode:
    """One step of a plan."""

    #: Readable, in the vendor's own words: ``SCAN testapp_book``,
    #: ``Seq Scan on testapp_book``, ``ALL on `testapp_book```.
    label: str
    #: The vendor's fields for this step, as it gave them (children left out).
    detail: dict[str, Any] = field(default_factory=dict)
    children: list[PlanNode] = field(default_factory=list)
    #: The costly parts of this step: FULL_SCAN, TEMP_BTREE, ... (this module's
    #: constants), in that order.
    warnings: list[str] = field(default_factory=list)

    def walk(self) -> Iterator[PlanNode]:
        """This node and those under it, depth first, in plan order."""
        yield self
        for child in self.children:
            yield from child.walk()

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "warnings": list(self.warnings),
            "detail": self.detail,
            "children": [child.to_dict() for child in self.children],
        }


@dataclass
class Plan:
    """The plan of one recorded statement."""

    vendor: str
    #: The statement's SQL, as it ran (params not inlined).
    sql: str
    #: What was put before it: ``EXPLAIN QUERY PLAN``, ``EXPLAIN (FORMAT JSON)``...
    command: str
    #: Whether the statement was run to measure it (PostgreSQL's ANALYZE).
    analyzed: bool
    root: PlanNode
    #: The vendor's output, JSON-able: SQLite's rows as lists, PostgreSQL's and
    #: MySQL's JSON documents parsed.
    raw: Any

    @property
    def warnings(self) -> list[tuple[str, str]]:
        """(node label, warning) for every warning in the tree, in plan order."""
        return [(node.label, warning) for node in self.root.walk() for warning in node.warnings]

    def to_dict(self) -> dict[str, Any]:
        return {
            "vendor": self.vendor,
            "sql": self.sql,
            "command": self.command,
            "analyzed": self.analyzed,
            "warnings": [list(pair) for pair in self.warnings],
            "root": self.root.to_dict(),
            "raw": self.raw,
        }


def load_document(value: Any) -> Any:
    """A JSON plan as Python data: text (or bytes) parsed, anything else as it is.

    psycopg parses PostgreSQL's ``json`` column itself; MySQL's drivers return text,
    which has "/* name */" end markers when the session set ``end_markers_in_json``.
    """
    if isinstance(value, bytes):
        value = value.decode()
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        return json.loads(_END_MARKER.sub(r"\1", value))


# SQLite ------------------------------------------------------------------------------

_SQLITE_SCAN = re.compile(r"SCAN (?:TABLE )?(\S+)(.*)", re.S)
# Steps that name a subquery or CTE; scanning one of those reads no table.
_SQLITE_SUBQUERY = re.compile(r"(?:MATERIALIZE|CO-ROUTINE) (\S+)")


def sqlite_plan(rows: list[Any]) -> PlanNode:
    """The tree of ``EXPLAIN QUERY PLAN`` rows ``(id, parent, notused, detail)``,
    under a ``QUERY PLAN`` root (as the sqlite3 shell prints it)."""
    root = PlanNode("QUERY PLAN")
    nodes = {0: root}
    subqueries = set()
    for node_id, parent, notused, detail in rows:
        node = PlanNode(
            detail, {"id": node_id, "parent": parent, "notused": notused, "detail": detail}
        )
        # Parents come before their children; an unknown parent means the root.
        nodes.get(parent, root).children.append(node)
        nodes[node_id] = node
        named = _SQLITE_SUBQUERY.match(detail)
        if named:
            subqueries.add(named.group(1))
        scan = _SQLITE_SCAN.match(detail)
        if scan:
            table, rest = scan.groups()
            through_index = "INDEX" in rest or "VIRTUAL TABLE" in rest
            if not through_index and table != "CONSTANT" and table not in subqueries:
                node.warnings.append(FULL_SCAN)
        if "TEMP B-TREE" in detail:
            node.warnings.append(TEMP_BTREE)
        if "AUTOMATIC" in detail and "INDEX" in detail:
            node.warnings.append(AUTOMATIC_INDEX)
    return root


# PostgreSQL --------------------------------------------------------------------------

# How EXPLAIN's text format names aggregates by their strategy.
_PG_AGGREGATES = {
    "Plain": "Aggregate",
    "Sorted": "GroupAggregate",
    "Hashed": "HashAggregate",
    "Mixed": "MixedAggregate",
}
_PG_JOINS = ("Nested Loop", "Hash Join", "Merge Join")


def postgresql_plan(document: Any) -> PlanNode:
    """The tree of an ``EXPLAIN (FORMAT JSON)`` document, ``[{"Plan": ...}]``
    (parsed, or its text: see ``load_document``)."""
    return _pg_node(load_document(document)[0]["Plan"])


def _pg_node(plan: dict[str, Any]) -> PlanNode:
    detail = {key: value for key, value in plan.items() if key != "Plans"}
    node = PlanNode(_pg_label(plan), detail, [_pg_node(child) for child in plan.get("Plans", ())])
    node_type = plan.get("Node Type")
    if node_type == "Seq Scan":
        node.warnings.append(FULL_SCAN)
    if node_type == "Sort" and (
        plan.get("Sort Space Type") == "Disk" or "external" in str(plan.get("Sort Method", ""))
    ):
        node.warnings.append(SORT_ON_DISK)
    return node


def _pg_label(plan: dict[str, Any]) -> str:
    """The node's line in EXPLAIN's text format: ``Index Scan using t_pkey on t``."""
    label = str(plan.get("Node Type", "?"))
    if label == "Aggregate":
        label = _PG_AGGREGATES.get(plan.get("Strategy", "Plain"), label)
    join = plan.get("Join Type")
    if label in _PG_JOINS and join and join != "Inner":
        label = f"{label.removesuffix(' Join')} {join} Join"
    if plan.get("Index Name") and label != "Bitmap Index Scan":
        label += f" using {plan['Index Name']}"
    target = (
        plan.get("Relation Name")
        or plan.get("CTE Name")
        or plan.get("Function Name")
        or (plan.get("Index Name") if label == "Bitmap Index Scan" else None)
    )
    alias = plan.get("Alias")
    if target:
        label += f" on {target}"
        if alias and alias != target:
            label += f" {alias}"
    elif alias:
        label += f" on {alias}"
    return label


# MySQL and MariaDB -------------------------------------------------------------------

# Keys whose object is a step of the plan (MySQL 8 and MariaDB 10.x names).
_MYSQL_STEPS = {
    "query_block": "query block",
    "table": "table",
    "nested_loop": "nested loop",
    "union_result": "UNION result",
    "ordering_operation": "ORDER BY",
    "grouping_operation": "GROUP BY",
    "duplicates_removal": "duplicates removal",
    "filesort": "filesort",
    "temporary_table": "temporary table",
    "read_sorted_file": "read sorted file",
    "materialized_from_subquery": "materialized subquery",
    "materialized": "materialized",
    "block-nl-join": "block nested loop join",
    "expression_cache": "expression cache",
    "window_functions_computation": "window functions",
    "windowing": "window functions",
}
# Steps shown through their children only (MariaDB wraps every filesort in one).
_MYSQL_TRANSPARENT = {"read_sorted_file"}


def mysql_plan(document: Any) -> PlanNode:
    """The tree of an ``EXPLAIN FORMAT=JSON`` document, ``{"query_block": ...}``
    (parsed, or its text: see ``load_document``)."""
    return _mysql_node("query_block", load_document(document)["query_block"])


def _mysql_node(key: str, fields: dict[str, Any]) -> PlanNode:
    detail: dict[str, Any] = {}
    children: list[PlanNode] = []
    for name, value in fields.items():
        if _is_step(name, value):
            children.extend(_mysql_steps(name, value))
        elif _is_step_list(value):
            for item in value:
                children.extend(_mysql_items(item))
        else:
            detail[name] = value
    node = PlanNode(_mysql_label(key, fields), detail, children)
    if key == "table" and fields.get("access_type") == "ALL":
        node.warnings.append(FULL_SCAN)
        node.warnings.append(INDEX_NOT_USED if fields.get("possible_keys") else NO_INDEX)
    if key == "filesort" or fields.get("using_filesort") is True:
        node.warnings.append(FILESORT)
    if key == "temporary_table" or fields.get("using_temporary_table") is True:
        node.warnings.append(TEMPORARY_TABLE)
    return node


def _mysql_items(item: Any) -> list[PlanNode]:
    """The steps in one item of a list (``nested_loop``, ``subqueries``, ...). The
    item's other fields (MySQL 8's ``dependent``, ``using_temporary_table``...)
    belong to its first step."""
    if not isinstance(item, dict):
        return []
    steps = [name for name, value in item.items() if _is_step(name, value)]
    if not steps:
        return []
    extra = {name: value for name, value in item.items() if name not in steps}
    nodes = []
    for position, name in enumerate(steps):
        nodes.extend(_mysql_steps(name, {**extra, **item[name]} if position == 0 else item[name]))
    return nodes


def _mysql_steps(name: str, fields: dict[str, Any]) -> list[PlanNode]:
    node = _mysql_node(name, fields)
    return node.children if name in _MYSQL_TRANSPARENT else [node]


def _is_step(name: str, value: Any) -> bool:
    # A known step, or an unknown wrapper around one.
    return isinstance(value, dict) and (
        name in _MYSQL_STEPS
        or any(_is_step(key, inner) or _is_step_list(inner) for key, inner in value.items())
    )


def _is_step_list(value: Any) -> bool:
    return isinstance(value, list) and any(
        isinstance(item, dict) and any(_is_step(key, inner) for key, inner in item.items())
        for item in value
    )


def _mysql_label(key: str, fields: dict[str, Any]) -> str:
    message = fields.get("message")
    if key == "table":
        name = fields.get("table_name")
        if name is None:
            return str(message or "table")
        access = fields.get("access_type")
        label = f"{access} on `{name}`" if access else f"`{name}`"
        if fields.get("key"):
            label += f" using {fields['key']}"
        return label
    label = _MYSQL_STEPS.get(key) or key.replace("_", " ").replace("-", " ")
    if key == "query_block" and "select_id" in fields:
        label += f" #{fields['select_id']}"
    elif key == "union_result" and fields.get("table_name"):
        label += f" {fields['table_name']}"
    elif key == "filesort" and fields.get("sort_key"):
        label += f" on {fields['sort_key']}"
    elif key == "block-nl-join" and fields.get("join_type"):
        label += f" ({fields['join_type']})"
    if message:
        label += f": {message}"
    return label
