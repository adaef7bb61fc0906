"""The pytest plugin (registered as ``tracer``): query budgets as a fixture, and a
report of every test's queries.

- ``query_tracer`` fixture: ``with query_tracer.max_queries(3): ...``, also
  ``num_queries(n)``, ``no_n_plus_one()`` and ``no_duplicates()``
  (see ``tracer.testing``).
- ``--tracer-report=DIR``: record each test and write ``DIR/tracer-report.json``
  (per test: its queries, N+1s and duplicates, and the trace in the
  ``tracer-trace/1`` format) and ``DIR/tracer-report.html``.
"""

from __future__ import annotations

import json
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("tracer", "Django query tracer")
    group.addoption(
        "--tracer-report",
        metavar="DIR",
        default=None,
        help="record every test's queries and write tracer-report.json and .html to DIR",
    )


class QueryTracer:
    """The ``query_tracer`` fixture: tracer.testing's assertions as methods."""

    def num_queries(self, count: int, using: str | None = None) -> Any:
        from tracer.testing import assert_num_queries

        return assert_num_queries(count, using)

    def max_queries(self, count: int, using: str | None = None) -> Any:
        from tracer.testing import assert_max_queries

        return assert_max_queries(count, using)

    def no_n_plus_one(self, minimum: int | None = None) -> Any:
        from tracer.testing import assert_no_n_plus_one

        return assert_no_n_plus_one(minimum)

    def no_duplicates(self) -> Any:
        from tracer.testing import assert_no_duplicates

        return assert_no_duplicates()


@pytest.fixture
def query_tracer() -> QueryTracer:
    return QueryTracer()


class _Report:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.tests: list[dict[str, Any]] = []
        self.outcomes: dict[str, str] = {}

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Generator[None, Any, None]:
        from tracer.recorder import capture

        with capture(item.nodeid) as trace:
            yield
        try:
            self.tests.append(_summary(item.nodeid, trace))
        except Exception as exc:  # a report problem must not fail the test run
            self.tests.append({"test": item.nodeid, "error": f"{type(exc).__name__}: {exc}"})

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when == "call" or report.outcome != "passed":
            self.outcomes.setdefault(report.nodeid, report.outcome)

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        for test in self.tests:
            test["outcome"] = self.outcomes.get(test["test"], "unknown")
        self.directory.mkdir(parents=True, exist_ok=True)
        data = {"format": "tracer-report/1", "tests": self.tests}
        (self.directory / "tracer-report.json").write_text(
            json.dumps(data, indent=1, default=str), encoding="utf-8"
        )
        (self.directory / "tracer-report.html").write_text(_html(self.tests), encoding="utf-8")


def _summary(nodeid: str, trace: Any) -> dict[str, Any]:
    from tracer.analysis.groups import duplicates
    from tracer.analysis.nplusone import n_plus_ones
    from tracer.testing import queries

    return {
        "test": nodeid,
        "queries": len(queries(trace)),
        "db_ms": trace.db_ms,
        "n_plus_ones": [
            {
                "relation": n.relation,
                "kind": n.kind,
                "queries": n.queries,
                "location": n.location,
                "loaded_at": n.loaded_at,
                "fix": n.fixed_code or n.fix,
                "explanation": n.explanation,
            }
            for n in n_plus_ones(trace)
        ],
        "duplicates": [
            {"count": g.count, "sql": g.shape, "locations": dict(g.locations)}
            for g in duplicates(trace)
        ],
        "trace": trace.to_dict(),
    }


def _html(tests: list[dict[str, Any]]) -> str:
    from html import escape

    rows = []
    for test in sorted(tests, key=lambda t: -t.get("queries", 0)):
        problems = [
            f"<li><b>N+1</b> {escape(n['explanation'])}<br><code>{escape(n['fix'])}</code></li>"
            for n in test.get("n_plus_ones", ())
        ] + [
            f"<li><b>{d['count']}&times; duplicate</b> <code>{escape(d['sql'])}</code></li>"
            for d in test.get("duplicates", ())
        ]
        rows.append(
            f"<tr><td>{escape(test['test'])}</td><td>{escape(test.get('outcome', ''))}</td>"
            f"<td>{test.get('queries', '')}</td><td>{test.get('db_ms', 0):.2f}</td>"
            f"<td><ul>{''.join(problems)}</ul>{escape(test.get('error', ''))}</td></tr>"
        )
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>tracer report</title>"
        "<style>body{font:14px system-ui,sans-serif;margin:2em}table{border-collapse:"
        "collapse}td,th{border:1px solid #ccc;padding:4px 8px;vertical-align:top;"
        "text-align:left}code{white-space:pre-wrap}</style></head><body>"
        f"<h1>Queries per test</h1><p>{len(tests)} tests recorded.</p><table><tr>"
        "<th>test</th><th>outcome</th><th>queries</th><th>db ms</th><th>problems</th></tr>"
        + "".join(rows)
        + "</table></body></html>"
    )


def pytest_configure(config: pytest.Config) -> None:
    directory = config.getoption("--tracer-report", default=None)
    if directory:
        config.pluginmanager.register(_Report(Path(directory)), "tracer-report")
