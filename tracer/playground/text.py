"""An unfolded pipeline and a run's result as plain text, for a terminal
(``manage.py tracequery``). SQL is laid out by tracer.sqldisplay and, when colours
are wanted, highlighted by pygments' terminal formatter."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tracer.playground.compiling import Compiled
from tracer.playground.running import RunResult
from tracer.playground.unfold import Pipeline
from tracer.sqldisplay import format_sql, terminal_highlight

__all__ = ["pipeline_lines", "plan_lines", "result_lines", "sql_text"]

INDENT = "    "
#: Characters kept of a cell in a table of rows.
CELL_WIDTH = 40

Style = Callable[[str], str]


def _plain(text: str) -> str:
    return text


def sql_text(sql: str, vendor: str, *, color: bool) -> str:
    """The SQL laid out on lines (sqldisplay.format_sql), highlighted for a terminal."""
    text = format_sql(sql, vendor=vendor)
    return terminal_highlight(text, vendor) if color else text


def _param(item: Any) -> str:
    if isinstance(item, dict) and set(item) == {"type", "repr"}:
        return str(item["repr"])
    if isinstance(item, list):
        return "[" + ", ".join(_param(part) for part in item) + "]"
    return repr(item)


def params_text(params: Any) -> str:
    if params is None:
        return "(none)"
    if isinstance(params, list):
        return "[" + ", ".join(_param(item) for item in params) + "]"
    return _param(params)


def _indented(text: str, prefix: str = INDENT) -> list[str]:
    return [prefix + line if line else line for line in text.split("\n")]


def pipeline_lines(
    pipeline: Pipeline, *, color: bool = False, heading: Style = _plain
) -> list[str]:
    """The pipeline stage by stage: model, manager, each call with the Query state it
    changed, then each statement's compiler, SQL and params."""
    manager = pipeline.manager
    lines = [
        pipeline.code,
        "",
        f"{heading('Model')}     {pipeline.model['label']} (table {pipeline.model['table']})",
        f"{heading('Manager')}   {manager['code']} ({manager['class']})",
        f"{heading('QuerySet')}  {manager['queryset_class']}",
    ]
    for step in pipeline.steps:
        lines.append("")
        lines.append(heading(step.code))
        if not step.changes:
            lines.append(f"{INDENT}(the Query is unchanged)")
        width = max((len(change.key) for change in step.changes), default=0)
        for change in step.changes:
            first, *rest = change.text.split("\n") or [""]
            lines.append(f"{INDENT}{change.key.ljust(width)}  {first}")
            lines += [f"{INDENT}{' ' * width}  {line}" for line in rest]
    if pipeline.terminal is not None:
        lines.append("")
        kind = "runs a query" if pipeline.terminal["kind"] == "evaluate" else "writes: never run"
        lines.append(heading(pipeline.terminal["code"]) + f"  ({kind})")
    for number, statement in enumerate(pipeline.statements, 1):
        lines.append("")
        lines += statement_lines(
            statement,
            pipeline.vendor,
            number if len(pipeline.statements) > 1 else None,
            color=color,
            heading=heading,
        )
    if pipeline.notes:
        lines.append("")
        lines += [f"Note: {note}" for note in pipeline.notes]
    return lines


def statement_lines(
    statement: Compiled,
    vendor: str,
    number: int | None,
    *,
    color: bool = False,
    heading: Style = _plain,
) -> list[str]:
    title = "Statement" if number is None else f"Statement {number}"
    lines = [heading(f"{title}: {statement.purpose}")]
    if statement.note:
        lines.append(f"{INDENT}{statement.note}")
    if statement.compiler:
        lines.append(f"{INDENT}Compiler  {statement.compiler} ({statement.query})")
    if statement.sql is not None:
        lines.append(f"{INDENT}SQL")
        lines += _indented(sql_text(statement.sql, vendor, color=color), INDENT * 2)
        lines.append(f"{INDENT}Params    {params_text(statement.params)}")
    return lines


def result_lines(result: RunResult, *, heading: Style = _plain) -> list[str]:
    """What running gave: rows (or the error), timings per statement and stage, and
    the plan of the first SELECT."""
    lines: list[str] = []
    if not result.ran:
        return [f"Not run: {note}" for note in result.notes]
    if result.error is not None:
        lines.append(heading("Error") + f"  {result.error['type']}: {result.error['message']}")
    else:
        shown = len(result.rows)
        more = " (more rows not read)" if result.truncated else ""
        lines.append(heading(f"Rows: {shown}{more}"))
        lines += _indented(table(result.columns, result.rows)) if result.columns else []
    lines.append("")
    lines.append(heading("Timings (ms)"))
    for timing in result.timings:
        parts = [
            f"{name} {timing[key]:.3f}"
            for name, key in (
                ("build", "build_ms"),
                ("compile", "compile_ms"),
                ("execute", "execute_ms"),
                ("fetch", "fetch_ms"),
                ("convert", "convert_ms"),
                ("hydrate", "hydrate_ms"),
            )
            if timing[key] is not None
        ]
        trigger = timing["trigger"] or "sql"
        lines.append(
            f"{INDENT}#{timing['index'] + 1} {trigger}, {timing['rows']} rows: " + ", ".join(parts)
        )
    if result.run_ms is not None:
        lines.append(f"{INDENT}run in all: {result.run_ms:.3f}")
    if result.explain is not None:
        lines.append("")
        lines.append(heading(f"EXPLAIN ({result.explain['command']})"))
        lines += plan_lines(result.explain["root"], 1)
    elif result.explain_error:
        lines.append("")
        lines.append(f"No EXPLAIN: {result.explain_error}")
    if result.notes:
        lines.append("")
        lines += [f"Note: {note}" for note in result.notes]
    return lines


def plan_lines(node: dict[str, Any], depth: int) -> list[str]:
    """A plan tree (PlanNode.to_dict()), one node per line, children indented."""
    warnings = f"  [{', '.join(node['warnings'])}]" if node["warnings"] else ""
    lines = [f"{INDENT * depth}{node['label']}{warnings}"]
    for child in node["children"]:
        lines += plan_lines(child, depth + 1)
    return lines


def table(columns: list[str], rows: list[list[Any]]) -> str:
    """Rows as a text table, cells cut to CELL_WIDTH characters."""
    cells = [[_cut(column) for column in columns]] + [
        [_cut(_cell(cell)) for cell in row] for row in rows
    ]
    widths = [max(len(row[index]) for row in cells) for index in range(len(columns))]
    lines = [
        " | ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in cells
    ]
    lines.insert(1, "-+-".join("-" * width for width in widths))
    return "\n".join(lines)


def _cell(cell: Any) -> str:
    if cell is None:
        return "NULL"
    return str(cell)


def _cut(text: str) -> str:
    text = text.replace("\n", " ")
    return text if len(text) <= CELL_WIDTH else text[: CELL_WIDTH - 3] + "..."
