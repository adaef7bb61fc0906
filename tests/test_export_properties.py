"""Property-based tests of the export (``trace.to_dict()``) and the pages drawn from it,
on statements run for real with hostile params: arbitrary unicode (RTL, combining,
surrogates), NUL, bytes, bytearray and memoryview, megabytes, nested lists and dicts,
objects whose repr raises or is huge.

Whatever the driver makes of the params (it may refuse them: the statement is recorded
with its error), the export never raises, is strict JSON, round-trips through
``Trace.from_dict``, and the trace's and statement's pages show it escaped and cut to
the documented sizes.
"""

from __future__ import annotations

import datetime
import html
import json
import re
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from django.db import connections, transaction
from django.test import Client, override_settings
from hypothesis import example, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

import tracer
from tracer import export
from tracer.store import get_store
from tracer.trace import Trace
from tracer.views import display

pytestmark = pytest.mark.django_db(databases="__all__")

URL = "/__tracer__/"
#: Markup that must never reach a page unescaped.
CANARY = "<tracer-canary x=1>"


class ReprRaises:
    def __repr__(self) -> str:
        raise RuntimeError("no repr <tracer-canary x=1>")

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text("ReprRaises()")  # how hypothesis reports an example


class HugeRepr:
    def __repr__(self) -> str:
        return CANARY + "r" * 1_000_000

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text("HugeRepr()")


def _recursive() -> list[Any]:
    items: list[Any] = [CANARY]
    items.append(items)
    return items


TEXT = st.one_of(
    st.text(max_size=30),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=30),
    st.sampled_from(
        [
            CANARY,
            "\x00",
            "a\x00b",
            "\u202eevil\u202c",  # right-to-left override
            "e\u0301\u0327\u0308",  # combining marks
            "\ud800",  # a lone surrogate
            "\U0001f600",
            "'); DROP TABLE x; --",
            "\\",
            "%s %(x)s %%",
            "</textarea></pre><script>alert(1)</script>",
        ]
    ),
)
SCALARS = st.one_of(
    TEXT,
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.decimals(),
    st.binary(max_size=20),
    st.binary(max_size=20).map(bytearray),
    st.binary(max_size=20).map(memoryview),
    st.dates(),
    st.datetimes(timezones=st.just(datetime.timezone.utc)),
    st.uuids(),
)
NESTED = st.recursive(
    SCALARS,
    lambda child: st.one_of(
        st.lists(child, max_size=3),
        st.lists(child, max_size=3).map(tuple),
        st.dictionaries(st.text(max_size=5), child, max_size=3),
        st.dictionaries(st.integers(), child, max_size=2),
    ),
    max_leaves=6,
)
WEIRD = st.sampled_from(["huge text", "huge bytes", "repr raises", "huge repr", "recursive"]).map(
    lambda kind: {
        "huge text": CANARY + "x" * 2_000_000,
        "huge bytes": b"<" * 1_000_000,
        "repr raises": ReprRaises(),
        "huge repr": HugeRepr(),
        "recursive": _recursive(),
    }[kind]
)
PARAMS = st.lists(st.one_of(SCALARS, SCALARS, NESTED, WEIRD), min_size=1, max_size=3)


@pytest.fixture
def shown() -> Iterator[Client]:
    with override_settings(DEBUG=True, INTERNAL_IPS=["127.0.0.1"], ROOT_URLCONF="tests.urls"):
        get_store().clear()
        yield Client()
        get_store().clear()


def recorded(alias: str, params: list[Any]) -> Trace:
    """``SELECT %s, ...`` with ``params`` run on ``alias`` (its error recorded, if the
    driver refuses them), in a savepoint so that a failure leaves the test's
    transaction usable."""
    sql = "SELECT " + ", ".join(["%s"] * len(params))
    with tracer.capture("hostile params") as trace:
        try:
            with transaction.atomic(using=alias):
                with connections[alias].cursor() as cursor:
                    cursor.execute(sql, params)
                    cursor.fetchall()
        except Exception:
            pass
    return trace


def statement_of(trace: Trace) -> int:
    """The position of the SELECT among the savepoint statements."""
    kinds = [statement.sql for statement in trace.statements]
    return next(i for i, sql in enumerate(kinds) if str(sql).startswith("SELECT "))


def check_export(trace: Trace) -> dict[str, Any]:
    data = trace.to_dict()
    text = json.dumps(data, allow_nan=False)  # strict JSON, no default=
    loaded = json.loads(text)
    assert loaded == data
    copy = Trace.from_dict(loaded)
    assert copy.to_dict() == loaded
    assert json.dumps(copy.to_dict(), allow_nan=False) == text
    return data


def check_values(item: Any) -> None:
    """Every exported value is a JSON scalar, a list, a dict with string keys, or a
    ``{"type", "repr"}`` whose repr is cut to 200 characters."""
    if isinstance(item, list):
        for child in item:
            check_values(child)
    elif isinstance(item, dict):
        if set(item) == {"type", "repr"} and isinstance(item["repr"], str):
            assert len(item["repr"]) <= 200
            if len(item["repr"]) == 200:
                assert item["repr"].endswith("...")
        for child in item.values():
            check_values(child)


def text_of(page: str) -> str:
    """A page's text: tags out, entities decoded."""
    return html.unescape(re.sub(r"<[^>]*>", "", page))


@hypothesis_settings(max_examples=15)
@given(params=PARAMS)
# Found by this test: a 2 MB param made a 2 MB statement page (its params table).
@example(params=[CANARY + "x" * 2_000_000])
@example(params=["\ud800", "a\x00b"])
@example(params=[_recursive(), ReprRaises(), b"<" * 1_000_000])
def test_hostile_params_export_and_show(alias: str, shown: Client, params: list[Any]):
    trace = recorded(alias, params)
    data = check_export(trace)
    index = statement_of(trace)
    statement = data["statements"][index]
    check_values(statement["params"])

    # The list row: params cut to ROW_PARAMS_CHARS, SQL collapsed.
    row = display.statement_row(statement, data["operations"], display.Marks({}))
    assert len(row["params"]) <= display.ROW_PARAMS_CHARS

    for url in (f"{URL}trace/{trace.id}/", f"{URL}trace/{trace.id}/statement/{index + 1}/"):
        response = shown.get(url)
        assert response.status_code == 200, url
        page = response.content.decode()
        assert CANARY not in page
        assert "<script>alert(1)" not in page
        # Bounded: a megabyte param is not a megabyte page.
        assert len(page) < 300_000, (url, len(page))
    if any(isinstance(param, str) and CANARY in param for param in params):
        assert "<tracer-canary" in text_of(page)


@given(params=PARAMS)
# Found by this test: a list holding itself made to_dict() raise RecursionError.
@example(params=[_recursive()])
@example(params=[[[[[[[[[[[1]]]]]]]]]]])
def test_to_dict_of_any_params(params: list[Any]):
    """Statements made directly (as a driver could be given them): to_dict() never
    raises and is strict JSON."""
    from tracer.trace import Statement

    trace = Trace("made")
    statement = Statement("default", "sqlite", "execute", "SELECT %s", tuple(params), False)
    trace.statements.append(statement)
    trace.finish()
    data = check_export(trace)
    check_values(data["statements"][0]["params"])


def test_deep_nesting_is_cut_not_crashing():
    nested: Any = "x"
    for _ in range(5_000):
        nested = [nested]
    trace = Trace("deep")
    from tracer.trace import Statement

    trace.statements.append(
        Statement("default", "sqlite", "execute", "SELECT %s", (nested,), False)
    )
    trace.finish()
    data = check_export(trace)
    assert data["statements"][0]["params"][0] is not None


def test_value_and_reprs_keep_their_documented_size():
    assert export.value(HugeRepr()) == {
        "type": "tests.test_export_properties.HugeRepr",
        "repr": CANARY + "r" * (197 - len(CANARY)) + "...",
    }
    assert export.value(ReprRaises()) == {
        "type": "tests.test_export_properties.ReprRaises",
        "repr": "<unrepresentable ReprRaises: no repr <tracer-canary x=1>>",
    }
    assert export.value(Decimal("1.5")) == {"type": "decimal.Decimal", "repr": "Decimal('1.5')"}
    assert export.value(uuid.UUID(int=0))["repr"] == "UUID('00000000-0000-0000-0000-000000000000')"
