"""Template tags for pages of your own that show a trace: ``{% load tracer_tags %}``
(``tracer/statements.html`` uses them)."""

from __future__ import annotations

from typing import Any

from django import template

from tracer.trace import Trace
from tracer.views.display import Marks, items, mapping, number, statement_row

register = template.Library()


@register.simple_tag
def statement_rows(trace: Trace) -> list[dict[str, Any]]:
    """Each statement of ``trace`` as the tracer app lists it (what triggered it, where,
    its SQL collapsed and cut, its params cut: ``display.statement_row``), with its
    compile and hydration times from the export (None where it has none)."""
    data = trace.to_dict()
    operations = items(data.get("operations"))
    marks = Marks(mapping(data.get("findings")))
    rows = []
    for statement in items(data.get("statements")):
        row = statement_row(statement, operations, marks)
        stages = mapping(mapping(statement).get("stages"))
        compiler = mapping(stages.get("compiler"))
        backend = mapping(stages.get("backend"))
        row["compile_ms"] = _ms(compiler.get("compile_ms")) if compiler else None
        row["hydrate_ms"] = _ms(backend.get("hydrate_ms"))
        row["fetch_calls"] = int(number(backend.get("fetch_calls")))
        rows.append(row)
    return rows


def _ms(value: Any) -> str | None:
    return None if value is None else f"{number(value):.3f}"
