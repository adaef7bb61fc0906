"""Exported traces (``tracer-trace/1``) shaped for the pages: statement rows, fingerprint
groups, the waterfall, the time split.

Everything here reads the exported data only (docs/trace-format.md). A trace imported
from a file may lack keys or hold odd values that ``Trace.from_dict`` does not check
(findings, operations), so every read is guarded: a page shows less, never a 500.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from typing import Any

from tracer.analysis.fingerprint import fingerprint, normalize
from tracer.findings import KINDS
from tracer.sqldisplay import collapse
from tracer.stacks import short_path

#: Characters of SQL shown in a list row (the statement's own view shows all of it).
ROW_SQL_CHARS = 600
#: Characters of a group's SQL shape.
GROUP_SQL_CHARS = 400
#: Characters of params shown in a list row.
ROW_PARAMS_CHARS = 160
#: Params shown of a long list, before "... N more".
ROW_PARAMS_ITEMS = 20
#: Locations listed per group.
GROUP_LOCATIONS = 3
#: Findings shown of each kind; the rest are counted (the groups list them all).
FINDINGS_SHOWN = 20


# Reading guarded values -----------------------------------------------------------------


def number(value: Any) -> float:
    """A finite int or float as a float; anything else 0.0."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return 0.0


def mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def items(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def indexes(value: Any) -> list[int]:
    return [i for i in items(value) if isinstance(i, int) and not isinstance(i, bool)]


def text(value: Any) -> str:
    return value if isinstance(value, str) else "" if value is None else str(value)


# Places ---------------------------------------------------------------------------------


def place(location: Any, template: Any = None) -> str:
    """``"template:line"`` when a template ran it, else ``"file:line"`` of the first
    frame in your code, else ``""``."""
    template = mapping(template)
    if template.get("name"):
        return f"{text(template['name'])}:{text(template.get('line'))}"
    location = mapping(location)
    if location.get("file"):
        return f"{short_path(text(location['file']))}:{text(location.get('line'))}"
    return ""


# Findings --------------------------------------------------------------------------------


class Marks:
    """Which statements a finding points at, to mark their rows."""

    def __init__(self, found: dict[str, Any]) -> None:
        self.n_plus_one = _members(found.get("n_plus_ones"), "statements")
        self.duplicate = _members(found.get("duplicates"), "indexes")
        # The statements that repeat an earlier one: a duplicate group's first is not.
        self.repeat = self.duplicate - {
            members[0]
            for members in (
                indexes(mapping(g).get("indexes")) for g in items(found.get("duplicates"))
            )
            if members
        }
        self.slow = {
            i for i in indexes([mapping(s).get("index") for s in items(found.get("slow"))])
        }
        self.injection = _members(found.get("injection"), "indexes")

    def among(self, members: range) -> list[str]:
        """The CSS suffix of each mark on any of the statements ``members``."""
        kinds = (
            ("duplicate", self.duplicate),
            ("injection", self.injection),
            ("nplusone", self.n_plus_one),
            ("slow", self.slow),
        )
        return [name for name, marked in kinds if not marked.isdisjoint(members)]

    def of(self, index: int) -> list[tuple[str, str]]:
        """(CSS suffix, label) of each mark on statement ``index``."""
        marks = []
        if index in self.n_plus_one:
            marks.append(("nplusone", "N+1"))
        if index in self.duplicate:
            marks.append(("duplicate", "duplicate"))
        if index in self.slow:
            marks.append(("slow", "slow"))
        if index in self.injection:
            marks.append(("injection", "injection risk"))
        return marks


def _members(found: Any, key: str) -> set[int]:
    return {i for item in items(found) for i in indexes(mapping(item).get(key))}


def findings(data: dict[str, Any]) -> dict[str, Any]:
    """The trace's findings to show: of each kind (missing kinds empty) the first
    ``FINDINGS_SHOWN``, locations shortened like the rows', SQL collapsed; with
    ``total`` and ``more`` (not shown) counts per kind. Duplicates are split in
    ``duplicates_alone`` and ``duplicates_in_n_plus_one``: loading one author for
    several books repeats a statement, and the N+1's fix removes those too."""
    found = mapping(data.get("findings"))
    every = {kind: [mapping(item) for item in items(found.get(kind))] for kind in KINDS}
    in_n_plus_one = _members(every["n_plus_ones"], "statements")
    alone: list[dict[str, Any]] = []
    within: list[dict[str, Any]] = []
    for group in every["duplicates"]:
        members = indexes(group.get("indexes"))
        (within if members and in_n_plus_one.issuperset(members) else alone).append(group)
    every["duplicates_alone"] = alone
    every["duplicates_in_n_plus_one"] = within
    shown: dict[str, Any] = {
        kind: [_shortened(item) for item in listed[:FINDINGS_SHOWN]]
        for kind, listed in every.items()
    }
    for key in ("duplicates_alone", "duplicates_in_n_plus_one"):
        for group in shown[key]:
            group["shape"] = collapse(text(group.get("shape")), limit=GROUP_SQL_CHARS)
            group["places"] = _places(group.get("locations"))
            members = indexes(group.get("indexes"))
            group["first"] = members[0] if members else None
    for risk in shown["injection"]:
        risk["sql"] = collapse(text(risk.get("sql")), limit=ROW_SQL_CHARS)
    shown["total"] = {kind: len(listed) for kind, listed in every.items()}
    shown["more"] = {kind: max(0, len(listed) - FINDINGS_SHOWN) for kind, listed in every.items()}
    shown["failed"] = [text(name) for name in items(found.get("failed"))]
    # Things to fix: repeats within an N+1 are part of it (its fix removes them).
    shown["count"] = sum(
        len(every[kind])
        for kind in (*KINDS, "duplicates_alone")
        if kind not in ("similar", "duplicates")
    )
    return shown


def _shortened(item: dict[str, Any]) -> dict[str, Any]:
    item = dict(item)
    for key in ("location", "loaded_at"):
        if isinstance(item.get(key), str):
            item[key] = short_path(item[key])
    return item


def _places(locations: Any) -> list[tuple[str, int]]:
    found = [mapping(entry) for entry in items(locations)]
    return [
        (short_path(text(entry.get("location"))), int(number(entry.get("count"))))
        for entry in found
    ]


# Statement rows ----------------------------------------------------------------------------


def statement_row(
    statement: dict[str, Any], operations: list[Any], marks: Marks
) -> dict[str, Any]:
    """One statement as a list shows it: what triggered it, where, its SQL collapsed
    and cut, its params cut, its times and rows, and its marks."""
    statement = mapping(statement)
    index = statement.get("index")
    stages = mapping(statement.get("stages"))
    backend = mapping(stages.get("backend"))
    queryset = mapping(stages.get("queryset"))
    operation = _operation(operations, statement.get("operation"))
    execute_ms = number(backend.get("execute_ms"))
    fetch_ms = number(backend.get("fetch_ms"))
    error = mapping(backend.get("error"))
    rowcount = backend.get("rowcount")
    rows = backend.get("rows_fetched") or (
        rowcount if isinstance(rowcount, int) and rowcount >= 0 else None
    )
    return {
        "index": index,
        "trigger": text(operation.get("trigger") or statement.get("kind")),
        "detail": text(operation.get("detail") or queryset.get("code") or operation.get("code")),
        "where": place(statement.get("location"), statement.get("template")),
        "sql": collapse(text(statement.get("sql")), limit=ROW_SQL_CHARS),
        "params": params_text(statement.get("params")),
        # Formatted here: floatformat costs more than the rest of a row.
        "execute_ms": f"{execute_ms:.3f}",
        "fetch_ms": f"{fetch_ms:.3f}",
        "rows": rows,
        "error": f"{text(error.get('type'))}: {text(error.get('message'))}" if error else "",
        "marks": marks.of(index) if isinstance(index, int) else [],
    }


def _operation(operations: list[Any], position: Any) -> dict[str, Any]:
    if isinstance(position, int) and 0 <= position < len(operations):
        return mapping(operations[position])
    return {}


def params_text(params: Any) -> str:
    """Exported params written like Python values, cut to ``ROW_PARAMS_CHARS``."""
    if params is None:
        return ""
    if isinstance(params, str):  # the "<dropped: past SOFT_CAP>" markers
        return params
    shown = value_text(params)
    if len(shown) > ROW_PARAMS_CHARS:
        shown = shown[: ROW_PARAMS_CHARS - 1] + "…"
    return shown


def value_text(value: Any) -> str:
    """An exported value (see *Values* in docs/trace-format.md) as Python writes it."""
    if isinstance(value, list):
        head = ", ".join(value_text(item) for item in value[:ROW_PARAMS_ITEMS])
        more = len(value) - ROW_PARAMS_ITEMS
        return f"[{head}, ... {more:,} more]" if more > 0 else f"[{head}]"
    if isinstance(value, dict):
        if set(value) == {"type", "repr"}:
            return text(value["repr"])
        pairs = list(value.items())[:ROW_PARAMS_ITEMS]
        return "{" + ", ".join(f"{k!r}: {value_text(v)}" for k, v in pairs) + "}"
    return repr(value)


def statement_rows(
    data: dict[str, Any], positions: Iterable[int], marks: Marks
) -> list[dict[str, Any]]:
    statements = items(data.get("statements"))
    operations = items(data.get("operations"))
    return [statement_row(statements[i], operations, marks) for i in positions]


# Groups --------------------------------------------------------------------------------


def groups(data: dict[str, Any], marks: Marks) -> list[dict[str, Any]]:
    """Every statement in a group of its fingerprint: the analysis' similar groups
    (two statements or more, largest first), then the shapes that ran once (and the
    BEGINs and COMMITs, which the analysis leaves out), in the order they first ran."""
    statements = items(data.get("statements"))
    found = mapping(data.get("findings"))
    shown = []
    covered: set[int] = set()
    for group in items(found.get("similar")):
        group = mapping(group)
        members = [i for i in indexes(group.get("indexes")) if i < len(statements)]
        if not members:
            continue
        covered.update(members)
        shown.append(
            _group(
                text(group.get("fingerprint")),
                text(group.get("shape")),
                members,
                number(group.get("duration_ms")),
                _places(group.get("locations")),
                marks,
            )
        )
    rest: dict[str, tuple[str, list[int], list[float], Counter[str]]] = {}
    for position, statement in enumerate(statements):
        if position in covered:
            continue
        statement = mapping(statement)
        sql = text(statement.get("sql"))
        vendor = statement.get("vendor")
        key = fingerprint(sql, vendor)
        entry = rest.get(key)
        if entry is None:
            entry = rest[key] = (normalize(sql, vendor), [], [], Counter())
        backend = mapping(mapping(statement.get("stages")).get("backend"))
        entry[1].append(position)
        entry[2].append(number(backend.get("execute_ms")) + number(backend.get("fetch_ms")))
        entry[3][place(statement.get("location"), statement.get("template")) or "?"] += 1
    for key, (shape, members, times, where) in rest.items():
        shown.append(_group(key, shape, members, sum(times), where.most_common(), marks))
    return shown


def _group(
    key: str,
    shape: str,
    members: list[int],
    duration_ms: float,
    places: list[tuple[str, int]],
    marks: Marks,
) -> dict[str, Any]:
    return {
        "fingerprint": key,
        "shape": collapse(shape, limit=GROUP_SQL_CHARS),
        "count": len(members),
        "first": members[0],
        "duration_ms": duration_ms,
        "mean_ms": duration_ms / len(members),
        "places": places[:GROUP_LOCATIONS],
        "more_places": max(0, len(places) - GROUP_LOCATIONS),
        "duplicates": sum(1 for i in members if i in marks.repeat),
        "n_plus_one": any(i in marks.n_plus_one for i in members),
    }


def fingerprint_members(data: dict[str, Any], key: str) -> list[int]:
    """The positions of the statements of fingerprint ``key``."""
    for group in items(mapping(data.get("findings")).get("similar")):
        if mapping(group).get("fingerprint") == key:
            return indexes(mapping(group).get("indexes"))
    statements = items(data.get("statements"))
    return [
        position
        for position, statement in enumerate(statements)
        if fingerprint(text(mapping(statement).get("sql")), mapping(statement).get("vendor"))
        == key
    ]


# Time -------------------------------------------------------------------------------------


def time_split(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """The trace's time in three parts, with their share of it: the database
    (execute and fetch), the ORM's Python (building QuerySets, compiling, converting,
    building instances), and the rest (your code, templates, Django)."""
    total = number(summary.get("duration_ms"))
    db = number(summary.get("db_ms"))
    orm = number(summary.get("orm_ms"))
    parts = [
        ("db", "Database", db),
        ("orm", "ORM (Python)", orm),
        ("other", "Everything else", max(0.0, total - db - orm)),
    ]
    whole = max(total, db + orm) or 1.0
    return [
        {"key": key, "label": label, "ms": ms, "percent": _percent(ms / whole * 100)}
        for key, label, ms in parts
    ]


def _percent(value: float) -> str:
    """A CSS percentage, short and never negative."""
    return f"{max(0.0, value):.3f}%"


def dropped(data: dict[str, Any]) -> list[str]:
    """What the caps dropped, in words."""
    words = {
        "params": "{:,} statements past SOFT_CAP lost their params",
        "stacks": "{:,} statements past SOFT_CAP lost their stacks",
        "statements": "{:,} statements past HARD_CAP were only counted, not kept",
    }
    found = []
    for kind, count in mapping(data.get("dropped")).items():
        amount = int(number(count))
        if amount:
            phrase = words.get(kind)
            found.append(phrase.format(amount) if phrase else f"{amount:,} {text(kind)} dropped")
    return found
