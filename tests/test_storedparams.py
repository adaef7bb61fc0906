from __future__ import annotations

import datetime
import json
import math
import uuid
from decimal import Decimal
from typing import Any

import pytest

from tracer.storedparams import Unencodable, decode, encode

UTC = datetime.timezone.utc
PLUS_TWO = datetime.timezone(datetime.timedelta(hours=2))


def through_json(value: Any) -> Any:
    """``value`` encoded, written as JSON text, read back and decoded."""
    return decode(json.loads(json.dumps(encode(value))))


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        (None, None),
        (True, True),
        (False, False),
        (0, 0),
        (10**30, 10**30),
        (1.0, 1.0),
        (-2.5e-7, -2.5e-7),
        ("", ""),
        ("naïve ☃ <script>", "naïve ☃ <script>"),
        (b"\x00\xff", {"bytes": "AP8="}),
        (Decimal("10.50"), {"decimal": "10.50"}),
        (Decimal("-0"), {"decimal": "-0"}),
        (Decimal("1E+3"), {"decimal": "1E+3"}),
        (datetime.date(2024, 5, 6), {"date": "2024-05-06"}),
        (datetime.datetime(2024, 5, 6, 7, 8, 9), {"datetime": "2024-05-06T07:08:09"}),
        (
            datetime.datetime(2024, 5, 6, 7, 8, 9, 10, tzinfo=UTC),
            {"datetime": "2024-05-06T07:08:09.000010+00:00"},
        ),
        (
            datetime.datetime(2024, 5, 6, 7, 8, 9, tzinfo=PLUS_TWO),
            {"datetime": "2024-05-06T07:08:09+02:00"},
        ),
        (datetime.time(7, 8, 9, 123456), {"time": "07:08:09.123456"}),
        (datetime.time(7, 8, tzinfo=PLUS_TWO), {"time": "07:08:00+02:00"}),
        (datetime.timedelta(days=-1, seconds=5, microseconds=7), {"timedelta": [-1, 5, 7]}),
        (
            uuid.UUID("12345678-1234-5678-1234-567812345678"),
            {"uuid": "12345678123456781234567812345678"},
        ),
        ([1, "a", None], [1, "a", None]),
        ((1, (2.5, "b")), {"tuple": [1, {"tuple": [2.5, "b"]}]}),
        ([[Decimal("1")], []], [[{"decimal": "1"}], []]),
        (
            {"name": "x", "at": datetime.date(2024, 1, 1)},
            {"dict": {"name": "x", "at": {"date": "2024-01-01"}}},
        ),
        ({"dict": 1}, {"dict": {"dict": 1}}),  # a param named like a tag
    ],
)
def test_round_trip(value, encoded):
    assert encode(value) == encoded
    back = through_json(value)
    assert back == value
    assert type(back) is type(value)


def test_bool_int_and_float_stay_apart():
    assert [type(v) for v in through_json([True, 1, 1.0, "1"])] == [bool, int, float, str]


def test_aware_values_keep_their_offset():
    for value in (
        datetime.datetime(2024, 5, 6, 7, 8, 9, tzinfo=PLUS_TWO),
        datetime.datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC),
        datetime.time(7, 8, tzinfo=PLUS_TWO),
    ):
        back = through_json(value)
        assert back.utcoffset() == value.utcoffset()
    assert through_json(datetime.datetime(2024, 1, 1, tzinfo=UTC)).tzinfo is UTC


def test_non_finite_floats():
    nan, inf, minus_inf = through_json([math.nan, math.inf, -math.inf])
    assert math.isnan(nan)
    assert (inf, minus_inf) == (math.inf, -math.inf)


def test_binary_views_come_back_as_bytes():
    assert through_json([bytearray(b"ab"), memoryview(b"cd")]) == [b"ab", b"cd"]


def test_subclasses_come_back_as_their_base():
    class Flag(int):
        pass

    class Name(str):
        pass

    back = through_json([Flag(3), Name("x")])
    assert back == [3, "x"]
    assert [type(v) for v in back] == [int, str]


class Opaque:
    pass


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (Opaque(), "tests.test_storedparams.Opaque"),
        ([1, [Opaque()]], "tests.test_storedparams.Opaque"),
        ({1: "x"}, "builtins.dict"),
        ({"a", "b"}, "builtins.set"),
        (object(), "builtins.object"),
    ],
)
def test_unencodable(value, message):
    with pytest.raises(Unencodable) as raised:
        encode(value)
    assert str(raised.value) == message
    assert isinstance(raised.value, ValueError)


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"decimal": "1", "date": "2024-01-01"},
        {"nope": 1},
        {"type": "decimal.Decimal", "repr": "Decimal('1')"},  # an export's rendering
        {"dict": [1]},
        {"bytes": "not base64!"},
        {"date": "yesterday"},
        {"timedelta": [1, 2]},
    ],
)
def test_decode_refuses_what_encode_did_not_make(data):
    with pytest.raises(ValueError):
        decode(data)
