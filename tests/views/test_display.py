"""Exported data shaped for the pages (tracer/views/display.py)."""

from __future__ import annotations

import pytest
from django.db import connection

import tracer
from tracer.views import display

pytestmark = pytest.mark.django_db


def test_params_as_python_writes_them():
    decimal = {"type": "decimal.Decimal", "repr": "Decimal('9.99')"}
    assert display.params_text(None) == ""
    assert display.params_text("<dropped: past SOFT_CAP>") == "<dropped: past SOFT_CAP>"
    assert display.params_text([1, "a", None, True, decimal]) == (
        "[1, 'a', None, True, Decimal('9.99')]"
    )
    assert display.params_text({"name": "x"}) == "{'name': 'x'}"
    assert display.params_text(list(range(25))) == (
        "[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, ... 5 more]"
    )
    assert display.params_text(["x" * 200]) == "['" + "x" * 157 + "…"


def test_time_split():
    split = display.time_split({"duration_ms": 10.0, "db_ms": 2.5, "orm_ms": 5.0})
    assert [(part["key"], part["ms"], part["percent"]) for part in split] == [
        ("db", 2.5, "25.000%"),
        ("orm", 5.0, "50.000%"),
        ("other", 2.5, "25.000%"),
    ]
    # Never negative, and never a division by zero.
    assert [part["percent"] for part in display.time_split({"duration_ms": 0})] == ["0.000%"] * 3


def test_dropped():
    assert display.dropped({"dropped": {}}) == []
    assert display.dropped({"dropped": {"params": 4000, "statements": 2, "other": 1}}) == [
        "4,000 statements past SOFT_CAP lost their params",
        "2 statements past HARD_CAP were only counted, not kept",
        "1 other dropped",
    ]


def test_groups_hold_every_statement():
    with tracer.capture() as trace:
        with connection.cursor() as cursor:
            for _ in range(2):
                cursor.execute("SELECT 1")
            cursor.execute("SELECT 2 + 2")
    data = trace.to_dict()
    groups = display.groups(data, display.Marks(data["findings"]))
    assert [(group["shape"], group["count"], group["first"]) for group in groups] == [
        ("SELECT ?", 2, 0),
        ("SELECT ? + ?", 1, 2),
    ]
    assert sum(group["count"] for group in groups) == len(data["statements"])
