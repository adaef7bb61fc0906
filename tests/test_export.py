"""Traces as JSON: the ``tracer-trace/1`` format (docs/trace-format.md)."""

from __future__ import annotations

import datetime
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.db import connections, transaction
from django.db.models import Value

import tracer
from demo_app.models import Author, Book, Publisher
from tracer import export
from tracer.trace import Event, Trace

pytestmark = pytest.mark.django_db(databases="__all__")

TRACE_KEYS = [
    "format",
    "id",
    "label",
    "started_at",
    "duration_ms",
    "db_ms",
    "request",
    "dropped",
    "operations",
    "events",
    "statements",
    "findings",
]
OPERATION_KEYS = [
    "index",
    "parent",
    "trigger",
    "detail",
    "model",
    "queryset",
    "code",
    "location",
    "stack",
    "template",
    "start_ms",
    "duration_ms",
    "error",
    "loaded_by",
    "instance_pk",
]
EVENT_KEYS = ["alias", "vendor", "kind", "start_ms", "duration_ms", "error"]
STATEMENT_KEYS = [
    "index",
    "operation",
    "alias",
    "vendor",
    "kind",
    "sql",
    "params",
    "start_ms",
    "location",
    "stack",
    "template",
    "stages",
]
FRAME_KEYS = ["file", "line", "function", "source"]
STAGE_KEYS = {
    "model": ["label", "table"],
    "manager": ["name", "class", "related"],
    "queryset": [
        "class",
        "code",
        "calls",
        "build_ms",
        "trigger",
        "trigger_detail",
        "trigger_location",
        "prefetch_lookups",
    ],
    "query": ["class", "state"],
    "compiler": ["class", "sql", "params", "compile_ms", "result_type"],
    "backend": [
        "alias",
        "vendor",
        "execute_ms",
        "fetch_ms",
        "fetch_calls",
        "rows_fetched",
        "rowcount",
        "convert_ms",
        "hydrate_ms",
        "iterable",
        "error",
        "in_atomic_block",
    ],
}
CALL_KEYS = ["code", "location", "duration_ms"]


def library() -> None:
    ann = Author.objects.create(name="Ann")
    pub = Publisher.objects.create(name="Pub")
    for title, price in (("One", "5.00"), ("Two", "8.00")):
        Book.objects.create(
            title=title,
            author=ann,
            publisher=pub,
            price=Decimal(price),
            published=datetime.date(2020, 1, 1),
        )


def sample() -> Trace:
    """A trace with an ORM evaluation, a nested prefetch, and raw SQL."""
    library()
    with tracer.capture("sample") as trace:
        list(Author.objects.filter(name="Ann").prefetch_related("books"))
        with connections["default"].cursor() as cursor:
            cursor.execute("SELECT %s", [1])
    return trace


def is_ms(number: Any) -> bool:
    return isinstance(number, float) and number >= 0


def test_keys_exactly_as_documented():
    data = sample().to_dict()

    assert list(data) == TRACE_KEYS
    assert data["format"] == "tracer-trace/1"
    assert data["label"] == "sample"
    assert isinstance(data["id"], str) and len(data["id"]) == 32
    assert isinstance(data["started_at"], float)
    assert is_ms(data["duration_ms"]) and is_ms(data["db_ms"])
    assert data["request"] is None
    assert data["dropped"] == {}
    assert data["events"] == []
    assert [list(o) for o in data["operations"]] == [OPERATION_KEYS] * 2
    assert [list(s) for s in data["statements"]] == [STATEMENT_KEYS] * 3
    for operation in data["operations"]:
        assert list(operation["location"]) == FRAME_KEYS
        assert [list(frame) for frame in operation["stack"]] == [FRAME_KEYS] * len(
            operation["stack"]
        )
    for statement in data["statements"]:
        assert list(statement["stages"]) == list(export.STAGES)
        for name, stage in statement["stages"].items():
            if stage is not None:
                assert list(stage) == STAGE_KEYS[name]
    queryset = data["statements"][0]["stages"]["queryset"]
    assert [list(call) for call in queryset["calls"]] == [CALL_KEYS] * 2
    assert list(queryset["calls"][0]["location"]) == FRAME_KEYS
    assert list(queryset["trigger_location"]) == FRAME_KEYS


def test_values_of_a_sample_trace():
    data = sample().to_dict()

    evaluation, prefetch = data["operations"]
    assert evaluation["index"] == 0
    assert evaluation["parent"] is None
    assert evaluation["trigger"] == "iteration"
    assert evaluation["detail"] is None
    assert evaluation["model"] == "demo_app.Author"
    assert evaluation["queryset"] == "django.db.models.query.QuerySet"
    assert evaluation["code"] == "Author.objects.filter(name='Ann').prefetch_related('books')"
    assert evaluation["template"] is None
    assert evaluation["error"] is None
    assert is_ms(evaluation["start_ms"]) and is_ms(evaluation["duration_ms"])
    assert prefetch["index"] == 1
    assert prefetch["parent"] == 0
    assert (prefetch["trigger"], prefetch["detail"]) == ("prefetch", "books")
    assert prefetch["model"] == "demo_app.Book"

    select, prefetched, raw = data["statements"]
    assert [s["index"] for s in data["statements"]] == [0, 1, 2]
    assert [s["operation"] for s in data["statements"]] == [0, 1, None]
    assert select["kind"] == "execute"
    assert select["params"] == ["Ann"]
    assert is_ms(select["start_ms"])
    assert select["location"] == evaluation["location"]
    assert select["stack"] == evaluation["stack"]
    assert raw["sql"] == "SELECT %s"
    assert raw["params"] == [1]
    assert raw["stages"]["model"] is None
    assert [name for name, stage in raw["stages"].items() if stage is None] == [
        "model",
        "manager",
        "queryset",
        "query",
        "compiler",
    ]
    assert raw["stages"]["backend"]["rows_fetched"] == 0
    assert prefetched["stages"]["manager"]["related"]["accessor"] == "books"


def test_json_safe():
    data = sample().to_dict()
    text = json.dumps(data, allow_nan=False)
    # Only JSON types: loading the text gives back equal data (no tuples, no objects).
    assert json.loads(text) == data


def test_null_stage_is_json_null():
    with tracer.capture() as trace:
        with connections["default"].cursor() as cursor:
            cursor.execute("SELECT 1")
    text = json.dumps(trace.to_dict())
    stages = json.loads(text)["statements"][0]["stages"]
    assert stages["model"] is None
    assert '"model": null' in text


def test_statement_stages_property_matches_the_export():
    trace = sample()
    data = trace.to_dict()
    assert [s.stages for s in trace.statements] == [s["stages"] for s in data["statements"]]


# Round trip ----------------------------------------------------------------------------------


def test_from_dict_round_trip():
    trace = sample()
    data = trace.to_dict()
    loaded = Trace.from_dict(json.loads(json.dumps(data)))

    assert loaded.to_dict() == data
    assert loaded.id == trace.id
    assert loaded.label == "sample"
    assert loaded.started_at == trace.started_at
    assert loaded.finished
    assert loaded.dropped == {}
    assert loaded.request is None
    assert len(loaded.statements) == 3
    for original, copy in zip(trace.statements, loaded.statements, strict=True):
        assert copy.alias == original.alias
        assert copy.vendor == original.vendor
        assert copy.kind == original.kind
        assert copy.sql == original.sql
        assert copy.params == export.value(original.params)
        assert copy.in_atomic_block == original.in_atomic_block
        assert copy.fetch_calls == original.fetch_calls
        assert copy.rows_fetched == original.rows_fetched
        assert copy.rowcount == original.rowcount
        assert copy.error is None
        assert abs(copy.duration_ns - original.duration_ns) <= 1
    # The loaded trace exports exactly the data it came from.
    assert export.to_dict(loaded) is loaded._exported


def test_from_dict_of_its_own_export_is_stable():
    data = sample().to_dict()
    again = Trace.from_dict(data)
    assert Trace.from_dict(again.to_dict()).to_dict() == data


def test_round_trip_of_an_error():
    with tracer.capture() as trace:
        with pytest.raises(Exception, match="no_such_table"):
            with transaction.atomic():
                with connections["default"].cursor() as cursor:
                    cursor.execute("SELECT * FROM no_such_table")
    data = trace.to_dict()
    failed = [s for s in data["statements"] if s["sql"] == "SELECT * FROM no_such_table"]
    error = failed[0]["stages"]["backend"]["error"]
    assert error == {
        "type": "django.db.utils.OperationalError",
        "message": "no such table: no_such_table",
    }
    loaded = Trace.from_dict(json.loads(json.dumps(data)))
    index = failed[0]["index"]
    assert loaded.statements[index].error == (
        "django.db.utils.OperationalError",
        "no such table: no_such_table",
    )


GOOD_STATEMENT: dict[str, Any] = {
    "alias": "default",
    "vendor": "sqlite",
    "kind": "execute",
    "sql": "SELECT 1",
    "params": None,
    "stages": {
        "backend": {
            "in_atomic_block": False,
            "execute_ms": 0.5,
            "fetch_ms": 0.0,
            "fetch_calls": 0,
            "rows_fetched": 0,
            "rowcount": -1,
            "error": None,
        }
    },
}


def trace_data(**changes: Any) -> dict[str, Any]:
    data = {
        "format": "tracer-trace/1",
        "id": "0" * 32,
        "label": "",
        "started_at": 0.0,
        "duration_ms": 1.0,
        "db_ms": 0.5,
        "request": None,
        "dropped": {},
        "operations": [],
        "events": [],
        "statements": [GOOD_STATEMENT],
    }
    data.update(changes)
    return {key: item for key, item in data.items() if item is not ...}


def with_backend(**changes: Any) -> dict[str, Any]:
    backend = {**GOOD_STATEMENT["stages"]["backend"], **changes}
    return {**GOOD_STATEMENT, "stages": {"backend": backend}}


def test_minimal_data_loads():
    loaded = Trace.from_dict(trace_data())
    assert len(loaded.statements) == 1
    assert loaded.statements[0].duration_ns == 500_000
    assert loaded.statements[0].sql == "SELECT 1"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], "Not a tracer-trace/1 trace: expected a dict, got list."),
        ("{}", "Not a tracer-trace/1 trace: expected a dict, got str."),
        ({}, "Not a tracer-trace/1 trace (format: None)."),
        (
            {"format": "tracer-trace/2"},
            "Not a tracer-trace/1 trace (format: 'tracer-trace/2').",
        ),
        (
            trace_data(id=...),
            "Malformed tracer-trace/1 trace: the trace has no 'id' key.",
        ),
        (
            trace_data(started_at="yesterday"),
            "Malformed tracer-trace/1 trace: the trace['started_at'] is a str: 'yesterday'.",
        ),
        (
            trace_data(operations=...),
            "Malformed tracer-trace/1 trace: the trace has no 'operations' key.",
        ),
        (
            trace_data(statements={}),
            "Malformed tracer-trace/1 trace: the trace['statements'] is a dict: {}.",
        ),
        (
            trace_data(statements=[[]]),
            "Malformed tracer-trace/1 trace: statements[0] is a list, not a dict.",
        ),
        (
            trace_data(statements=[{**GOOD_STATEMENT, "stages": {}}]),
            "Malformed tracer-trace/1 trace: statements[0]['stages'] has no 'backend' key.",
        ),
        (
            trace_data(statements=[GOOD_STATEMENT, with_backend(execute_ms="fast")]),
            "Malformed tracer-trace/1 trace: "
            "statements[1]['stages']['backend']['execute_ms'] is a str: 'fast'.",
        ),
        (
            trace_data(statements=[with_backend(error={"type": "x"})]),
            "Malformed tracer-trace/1 trace: "
            "statements[0]['stages']['backend']['error'] has no 'message' key.",
        ),
    ],
    ids=[
        "list",
        "string",
        "no format",
        "other format",
        "no id",
        "bad started_at",
        "no operations",
        "statements not a list",
        "statement not a dict",
        "no backend stage",
        "bad execute_ms",
        "bad error",
    ],
)
def test_from_dict_of_bad_data(data, message):
    with pytest.raises(ValueError) as info:
        Trace.from_dict(data)
    assert str(info.value) == message


# Values --------------------------------------------------------------------------------------


def test_decimal_and_datetime_params():
    moment = datetime.datetime(2024, 5, 6, 7, 8, 9, tzinfo=datetime.timezone.utc)
    with tracer.capture() as trace:
        with connections["default"].cursor() as cursor:
            cursor.execute("SELECT %s, %s, %s", [Decimal("10.50"), moment, "text"])
    data = json.loads(json.dumps(trace.to_dict()))
    assert data["statements"][0]["params"] == [
        {"type": "decimal.Decimal", "repr": "Decimal('10.50')"},
        {
            "type": "datetime.datetime",
            "repr": "datetime.datetime(2024, 5, 6, 7, 8, 9, tzinfo=datetime.timezone.utc)",
        },
        "text",
    ]


def test_orm_params_in_the_compiler_stage():
    library()
    with tracer.capture() as trace:
        list(Book.objects.filter(price__lt=Decimal("10.50"), published=datetime.date(2020, 1, 1)))
    compiler = trace.to_dict()["statements"][0]["stages"]["compiler"]
    assert compiler["params"] == [
        {"type": "decimal.Decimal", "repr": "Decimal('10.50')"},
        "2020-01-01",  # SQLite's adapted date
    ]


def test_value():
    assert export.value(None) is None
    assert export.value(True) is True
    assert export.value(3) == 3
    assert export.value(1.5) == 1.5
    assert export.value("s") == "s"
    assert export.value((1, [2, (3,)])) == [1, [2, [3]]]
    assert export.value({"a": (1, Decimal("2"))}) == {
        "a": [1, {"type": "decimal.Decimal", "repr": "Decimal('2')"}]
    }
    assert export.value({1: 2}) == {"type": "builtins.dict", "repr": "{1: 2}"}
    assert export.value(b"\x00") == {"type": "builtins.bytes", "repr": "b'\\x00'"}
    assert export.value(datetime.date(2020, 1, 2)) == {
        "type": "datetime.date",
        "repr": "datetime.date(2020, 1, 2)",
    }
    long = export.value(b"x" * 500)
    assert long["repr"] == ("b'" + "x" * 195 + "...")
    assert len(long["repr"]) == 200

    class Unrepresentable:
        def __repr__(self) -> str:
            raise RuntimeError("no repr")

    assert export.value(Unrepresentable()) == {
        "type": "tests.test_export.test_value.<locals>.Unrepresentable",
        "repr": "<unrepresentable Unrepresentable: no repr>",
    }


def test_non_finite_floats_are_not_json_literals():
    assert export.value(float("nan")) == {"type": "builtins.float", "repr": "nan"}
    assert export.value(float("inf")) == {"type": "builtins.float", "repr": "inf"}
    assert export.value([float("-inf")]) == [{"type": "builtins.float", "repr": "-inf"}]
    with tracer.capture() as trace:
        with connections["default"].cursor() as cursor:
            cursor.execute("SELECT %s", [float("inf")])
    # Strict JSON (what a browser's JSON.parse accepts): no NaN or Infinity literals.
    text = json.dumps(trace.to_dict(), allow_nan=False)
    assert json.loads(text)["statements"][0]["params"] == [
        {"type": "builtins.float", "repr": "inf"}
    ]


def test_export_inside_the_capture():
    library()
    with tracer.capture() as trace:
        list(Author.objects.all())
        data = trace.to_dict()
        assert not trace.finished
    assert is_ms(data["duration_ms"])
    assert is_ms(data["operations"][0]["duration_ms"])
    assert json.loads(json.dumps(data)) == data


# Events and caps ---------------------------------------------------------------------------------


def test_events():
    trace = Trace("events")
    event = Event("default", "sqlite", "connect", trace.start_ns + 2_000_000)
    event.duration_ns = 1_500_000
    event.error = ("sqlite3.OperationalError", "unable to open database file")
    trace.events.append(event)
    trace.finish()
    [exported] = trace.to_dict()["events"]
    assert list(exported) == EVENT_KEYS
    assert exported == {
        "alias": "default",
        "vendor": "sqlite",
        "kind": "connect",
        "start_ms": 2.0,
        "duration_ms": 1.5,
        "error": {"type": "sqlite3.OperationalError", "message": "unable to open database file"},
    }


@pytest.mark.django_db(transaction=True)
def test_transaction_statements_and_autocommit_event():
    connections["default"].ensure_connection()
    with tracer.capture() as trace:
        with transaction.atomic():
            Author.objects.create(name="Ann")
    data = trace.to_dict()
    assert [(s["kind"], s["sql"].split()[0]) for s in data["statements"]] == [
        ("execute", "BEGIN"),
        ("execute", "INSERT"),
        ("transaction", "COMMIT"),
    ]
    assert [e["kind"] for e in data["events"]] == ["autocommit on"]
    # BEGIN runs as the block is entered, COMMIT once it is left.
    assert [s["stages"]["backend"]["in_atomic_block"] for s in data["statements"]] == [
        False,
        True,
        False,
    ]


def test_every_key_is_documented():
    docs = (Path(__file__).resolve().parent.parent / "docs" / "trace-format.md").read_text()
    keys = {*TRACE_KEYS, *OPERATION_KEYS, *EVENT_KEYS, *STATEMENT_KEYS, *FRAME_KEYS, *CALL_KEYS}
    for stage in STAGE_KEYS.values():
        keys.update(stage)
    assert sorted(key for key in keys if f"`{key}`" not in docs) == []
    assert "tracer-trace/1" in docs


# Redaction -------------------------------------------------------------------------------


def test_secret_columns_are_masked_in_the_export(alias):
    from django.contrib.auth.models import User

    secret = "hunter" + "2"  # not in the source lines the export shows
    with tracer.capture() as trace:
        User.objects.using(alias).create(username="ann", password=secret)
        list(User.objects.using(alias).filter(password=secret, username="ann"))
    insert, select = trace.to_dict()["statements"]

    # The recorder keeps what the driver got; every export and display masks it.
    assert "hunter2" in trace.statements[0].params
    assert "hunter2" not in json.dumps(trace.to_dict())
    assert "********" in insert["params"] and "ann" in insert["params"]
    assert select["params"] == ["********", "ann"]
    assert select["stages"]["compiler"]["params"] == ["********", "ann"]
    assert select["stages"]["queryset"]["code"] == (
        f"User.objects.using({alias!r}).filter(password='********', username='ann')"
    )


def test_masking_follows_the_setting(settings):
    from django.contrib.auth.models import User

    settings.TRACER = {"REDACT_COLUMNS": ["username"]}
    with tracer.capture() as trace:
        list(User.objects.filter(password="hunter2", username="ann"))
    (select,) = trace.to_dict()["statements"]
    assert select["params"] == ["hunter2", "********"]
    assert select["stages"]["queryset"]["code"] == (
        "User.objects.filter(password='hunter2', username='********')"
    )


def test_executemany_rows_are_masked_one_by_one():
    with tracer.capture() as trace:
        with connections["default"].cursor() as cursor:
            cursor.executemany(
                "INSERT INTO demo_app_author (name) VALUES (%s)", [("token-1",), ("token-2",)]
            )
            cursor.executemany(
                "UPDATE auth_user SET password = %s WHERE id = %s", [("a", 1), ("b", 2)]
            )
    first, second = trace.to_dict()["statements"]
    assert first["params"] == [["token-1"], ["token-2"]]  # the column is "name"
    assert second["params"] == [["********", 1], ["********", 2]]


def test_secret_literals_in_raw_sql_are_masked():
    with tracer.capture() as trace:
        with connections["default"].cursor() as cursor:
            cursor.execute("SELECT id FROM auth_user WHERE password = 'hunter2' AND id > 3")
    (statement,) = trace.to_dict()["statements"]
    assert statement["sql"] == "SELECT id FROM auth_user WHERE password = '********' AND id > 3"


# Describing the user's objects never queries ---------------------------------------------


def test_a_queryset_argument_is_described_without_running_it():
    inner = Author.objects.filter(name__startswith="A")
    with tracer.capture() as trace:
        list(Book.objects.filter(author__in=inner))
    with tracer.capture() as export_trace:
        data = trace.to_dict()

    assert export_trace.statements == []
    code = data["statements"][0]["stages"]["queryset"]["code"]
    assert code == "Book.objects.filter(author__in=<QuerySet of demo_app.Author>)"


class Loud:
    """An argument whose repr() queries, as a model's __repr__ reading a relation may."""

    def __repr__(self) -> str:
        return f"<Loud {Author.objects.count()}>"

    def resolve_expression(self, *args: object, **kwargs: object) -> object:
        return Value(1)


def test_a_repr_that_queries_is_stopped():
    with tracer.capture() as trace:
        Book.objects.annotate(one=Loud()).count()
    with tracer.capture() as export_trace:
        data = trace.to_dict()

    assert export_trace.statements == []
    code = data["statements"][0]["stages"]["queryset"]["code"]
    assert code.startswith("Book.objects.annotate(one=<unrepresentable Loud: ")


def test_values_are_shown_without_memory_addresses():
    def fixed() -> Any:
        return (number for number in range(3))

    assert (
        export._repr(fixed())
        == "<generator object test_values_are_shown_without_memory_addresses.<locals>.fixed."
        "<locals>.<genexpr>>"
    )
    assert export._repr(object()) == "<object object>"
    assert export._repr("at 0x10>") == "'at 0x10>'"  # text, not an address
