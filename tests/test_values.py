"""Exported values read back for display."""

from __future__ import annotations

import datetime
import math
import uuid
from decimal import Decimal

from tracer import sqldisplay
from tracer.export import value
from tracer.values import Opaque, python, text, type_name

UTC = datetime.timezone.utc


def test_exported_values_come_back_as_python_values():
    originals = [
        Decimal("10.50"),
        datetime.datetime(2024, 5, 6, 7, 8, 9, 10, tzinfo=UTC),
        datetime.datetime(
            2024, 5, 6, 7, 8, 9, tzinfo=datetime.timezone(datetime.timedelta(hours=2))
        ),
        datetime.date(2024, 5, 6),
        datetime.time(7, 8, 9),
        datetime.timedelta(days=-1, seconds=5),
        uuid.UUID("12345678-1234-5678-1234-567812345678"),
        b"\x00\xffab",
        float("inf"),
        "text",
        3,
        None,
        [Decimal("1"), "a"],
    ]

    assert python([value(item) for item in originals]) == originals
    assert math.isnan(python(value(float("nan"))))


def test_anything_else_stays_opaque():
    exported = [
        {"type": "myapp.Money", "repr": "Money('10 EUR')"},
        # What a repr could try: never evaluated.
        {"type": "decimal.Decimal", "repr": "__import__('os').system('true')"},
        {"type": "datetime.datetime", "repr": "datetime.datetime(2024, 5, 6" + "..."},
        {"type": "decimal.Decimal", "repr": "datetime.date(2024, 5, 6)"},  # not what it says
    ]

    found = python(exported)

    assert [type(item) for item in found] == [Opaque] * 4
    assert [str(item) for item in found] == [item["repr"] for item in exported]
    assert sqldisplay.literal(found[0], "sqlite") == "'Money(''10 EUR'')'"


def test_interpolating_exported_params():
    params = python(value([Decimal("10"), datetime.date(2024, 5, 6), "O'Brien", None]))

    written = sqldisplay.interpolate("SELECT %s, %s, %s, %s", params, "postgresql")

    assert written == "SELECT 10, '2024-05-06', 'O''Brien', NULL"


def test_text_and_type_name():
    assert text(value(Decimal("10"))) == "Decimal('10')"
    assert text("a'b") == '"a\'b"'
    assert text([1, value(Decimal("2")), None]) == "[1, Decimal('2'), None]"
    assert text({"a": True}) == "{'a': True}"
    assert type_name(value(Decimal("10"))) == "decimal.Decimal"
    assert type_name("a") == "str"
    assert type_name(None) == "NoneType"
