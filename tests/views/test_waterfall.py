"""The waterfall (tracer/views/waterfall.py)."""

from __future__ import annotations

import pytest

from tests.views.conftest import HOSTILE, n_plus_one
from tracer.views import display, waterfall

pytestmark = pytest.mark.django_db


def test_waterfall_runs():
    trace = n_plus_one(count=4)
    data = trace.to_dict()
    chart = waterfall.waterfall(data, display.Marks(data["findings"]), max_rows=2)
    assert chart["per_row"] == 3
    assert [(row["first"], row["last"], row["label"]) for row in chart["rows"]] == [
        (0, 2, "3 statements"),
        (3, 4, "2 statements"),
    ]
    assert [row["marks"] for row in chart["rows"]] == [["nplusone"], ["nplusone"]]
    assert [tick["percent"] for tick in chart["ticks"]] == [
        "0.000%",
        "25.000%",
        "50.000%",
        "75.000%",
        "100.000%",
    ]


def test_waterfall_of_a_statement_that_never_started():
    data = {"statements": [{"start_ms": None, "stages": {}}], "duration_ms": 1.0}
    (row,) = waterfall.waterfall(data, display.Marks({}))["rows"]
    assert row == {"first": 0, "last": 0, "label": "", "title": "#1: never started", "marks": []}


def test_rows_are_escaped():
    chart = {
        "per_row": 1,
        "rows": [
            {
                "first": 0,
                "last": 0,
                "label": HOSTILE,
                "title": HOSTILE,
                "marks": ["nplusone"],
                "execute": ("1.000%", "2.000%"),
            }
        ],
    }
    assert waterfall.rows_html(chart, "abc") == (
        '<li class="tracer-wf-row tracer-wf-nplusone" '
        'title="&lt;script&gt;alert(1)&lt;/script&gt;">'
        '<span class="tracer-wf-label"><a class="tracer-statement-link" '
        'href="/__tracer__/trace/abc/statement/1/" hx-get="/__tracer__/trace/abc/statement/1/" '
        'hx-target="#tracer-drawer-body" aria-controls="tracer-drawer">#1</a> '
        '&lt;script&gt;alert(1)&lt;/script&gt;</span><span class="tracer-wf-track">'
        '<span class="tracer-wf-exec" style="left:1.000%;width:2.000%"></span></span></li>'
    )
