"""What the analysis found in a trace, as JSON-safe data: the ``findings`` of an export.

Every view of a trace (the standalone app, the toolbar panel, its history, a trace
loaded from a file or imported) renders from the exported data alone, so the findings
travel with it: they are computed once, from the live trace, when it is exported.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from tracer.analysis.eager import unused_prefetches, unused_select_related
from tracer.analysis.groups import duplicates, similar
from tracer.analysis.injection import risks
from tracer.analysis.nplusone import n_plus_ones
from tracer.analysis.slow import slow_statements
from tracer.trace import Trace

#: The keys of ``findings``, in the order the UI shows them.
KINDS = ("n_plus_ones", "duplicates", "slow", "unused_eager", "injection", "similar")


def findings(trace: Trace) -> dict[str, list[dict[str, Any]]]:
    """Each analysis of ``trace`` as lists of plain dicts (see docs/trace-format.md).

    One analysis that fails leaves its list empty and names itself in ``"failed"``:
    a bug in one must not hide the others, nor the trace.
    """
    found: dict[str, Any] = {kind: [] for kind in KINDS}
    failed: list[str] = []
    for kind, analyse in _ANALYSES:
        try:
            found[kind] = analyse(trace)
        except Exception:
            failed.append(kind)
    found["failed"] = failed
    return found


def trace_findings(trace: Trace) -> dict[str, list[dict[str, Any]]]:
    """``findings(trace)``, kept on a finished trace: its export and its summary share
    one analysis."""
    cached = trace._findings
    if cached is None:
        cached = findings(trace)
        if trace.finished:
            trace._findings = cached
    return cached


def _n_plus_ones(trace: Trace) -> list[dict[str, Any]]:
    return [
        {**asdict(item), "duration_ms": item.duration_ms, "db_ms": item.db_ms}
        for item in n_plus_ones(trace)
    ]


def _groups(groups: Any) -> list[dict[str, Any]]:
    return [
        {
            "fingerprint": group.fingerprint,
            "shape": group.shape,
            "count": group.count,
            "indexes": group.indexes,
            "duration_ms": group.duration_ms,
            "locations": [
                {"location": where, "count": count} for where, count in group.locations.items()
            ],
        }
        for group in groups
    ]


def _slow(trace: Trace) -> list[dict[str, Any]]:
    return [
        {"index": slow.index, "duration_ms": slow.ms, "location": slow.location}
        for slow in slow_statements(trace)
    ]


def _unused_eager(trace: Trace) -> list[dict[str, Any]]:
    found = [
        {"kind": "prefetch_related", **asdict(item), "duration_ms": item.duration_ms}
        for item in unused_prefetches(trace)
    ]
    found += [{"kind": "select_related", **asdict(item)} for item in unused_select_related(trace)]
    # In the order they ran (a prefetch runs inside the evaluation that asked for it).
    found.sort(key=lambda item: item["operation"])
    return found


def _injection(trace: Trace) -> list[dict[str, Any]]:
    return [asdict(item) for item in risks(trace)]


_ANALYSES = (
    ("n_plus_ones", _n_plus_ones),
    ("duplicates", lambda trace: _groups(duplicates(trace))),
    ("slow", _slow),
    ("unused_eager", _unused_eager),
    ("injection", _injection),
    ("similar", lambda trace: _groups(similar(trace))),
)


def live_summary(trace: Trace) -> dict[str, Any]:
    """``summary(trace.to_dict())``, equal to it, from the live records: without
    exporting the trace (a list of a hundred traces would export them all)."""
    from tracer.export import _ms, build_ns, owned

    orm_ns = 0
    seen: set[int] = set()
    for statement in trace.statements:
        operation = statement.operation
        compile = statement.compile
        if operation is not None and owned(statement) and id(operation) not in seen:
            seen.add(id(operation))
            orm_ns += build_ns(operation)
        if compile is not None:
            orm_ns += compile.compile_ns or 0
            orm_ns += (compile.convert_ns or 0) + (compile.hydrate_ns or 0)
    return _row(
        {"id": trace.id, "label": trace.label, "started_at": trace.started_at},
        trace.request,
        len(trace.statements),
        (_ms(trace.duration_ns), _ms(trace.db_ns), orm_ns),
        trace_findings(trace),
        trace.dropped,
    )


def summary(data: dict[str, Any]) -> dict[str, Any]:
    """The figures a list of traces shows, from exported data (``trace.to_dict()``).

    ``orm_ms`` is the Python time of the ORM as the stages measured it: building
    QuerySets (once per operation), compiling SQL, converting values and building
    instances.
    """
    statements = data.get("statements") or []
    orm_ns = 0
    seen: set[int] = set()
    for statement in statements:
        stages = statement.get("stages") or {}
        queryset = stages.get("queryset")
        compiler = stages.get("compiler") or {}
        backend = stages.get("backend") or {}
        operation = statement.get("operation")
        if queryset and operation is not None and operation not in seen:
            seen.add(operation)
            orm_ns += _ns(queryset.get("build_ms"))
        orm_ns += _ns(compiler.get("compile_ms"))
        orm_ns += _ns(backend.get("convert_ms")) + _ns(backend.get("hydrate_ms"))
    return _row(
        {
            "id": data.get("id"),
            "label": data.get("label", ""),
            "started_at": data.get("started_at"),
        },
        data.get("request"),
        len(statements),
        (data.get("duration_ms"), data.get("db_ms"), orm_ns),
        data.get("findings") or {},
        data.get("dropped") or {},
    )


def _row(
    names: dict[str, Any],
    request: dict[str, Any] | None,
    statements: int,
    times: tuple[float | None, float | None, int],
    found: dict[str, Any],
    dropped: dict[str, int],
) -> dict[str, Any]:
    """A summary's keys, in order, from its parts: live or exported alike."""
    request = request or {}
    duration_ms, db_ms, orm_ns = times
    return {
        **names,
        "method": request.get("method"),
        "path": request.get("path"),
        "status": request.get("status"),
        "statements": statements,
        "duration_ms": duration_ms,
        "db_ms": db_ms,
        "orm_ms": orm_ns / 1e6,
        "n_plus_ones": len(found.get("n_plus_ones") or ()),
        "duplicates": len(found.get("duplicates") or ()),
        "slow": len(found.get("slow") or ()),
        "dropped": sum(dropped.values()),
    }


def _ns(ms: Any) -> int:
    return round(ms * 1e6) if isinstance(ms, (int, float)) else 0
