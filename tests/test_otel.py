"""OpenTelemetry export: spans per statement and stage (tracer.otel)."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.db import connections
from django.test import AsyncClient, Client, override_settings
from opentelemetry import trace as api
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.django import DjangoInstrumentor
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, StatusCode, TraceFlags

import tracer
from tests.testapp.models import Author, Book
from tracer import otel
from tracer.store import get_store

pytestmark = pytest.mark.django_db(databases="__all__")

STAGE_SPANS = [
    "queryset build",
    "compiler as_sql",
    "backend execute",
    "backend fetch",
    "backend convert",
    "backend hydrate",
]


class Switch(SpanProcessor):
    """The process-wide provider's span processor: sends ended spans to whichever
    exporter the running test gave it."""

    def __init__(self) -> None:
        self.target: SpanProcessor | None = None

    def on_end(self, span: ReadableSpan) -> None:
        if self.target is not None:
            self.target.on_end(span)


SWITCH = Switch()


def provider() -> TracerProvider:
    # OpenTelemetry's global tracer provider can be set once per process.
    current = api.get_tracer_provider()
    if isinstance(current, TracerProvider):
        return current
    made = TracerProvider()
    made.add_span_processor(SWITCH)
    api.set_tracer_provider(made)
    return made


@pytest.fixture
def export_to() -> Iterator[Callable[[SpanExporter], None]]:
    provider()

    def use(exporter: SpanExporter) -> None:
        SWITCH.target = SimpleSpanProcessor(exporter)

    with override_settings(TRACER={"OTEL": True}):
        yield use
    SWITCH.target = None


@pytest.fixture
def spans(export_to: Callable[[SpanExporter], None]) -> InMemorySpanExporter:
    exporter = InMemorySpanExporter()
    export_to(exporter)
    return exporter


def finished(exporter: InMemorySpanExporter) -> dict[str, ReadableSpan]:
    assert otel.flush(5)
    found = {span.name: span for span in exporter.get_finished_spans()}
    assert len(found) == len(exporter.get_finished_spans())
    return found


def names(exporter: InMemorySpanExporter) -> list[str]:
    assert otel.flush(5)
    return [span.name for span in exporter.get_finished_spans()]


def epoch(trace: tracer.Trace, perf_ns: int) -> int:
    return round(trace.started_at * 1e9) - trace.start_ns + perf_ns


def books() -> None:
    author = Author.objects.create(name="Ann")
    Book.objects.create(title="One", author=author, price=3)


def test_a_statement_and_its_stages(spans: InMemorySpanExporter):
    books()
    with tracer.capture("cheap books") as trace:
        line = sys._getframe().f_lineno + 1
        list(Book.objects.filter(price__lt=10).select_related("author"))
    (statement,) = trace.statements
    assert names(spans) == [*STAGE_SPANS, "SELECT testapp_book", "cheap books"]
    found = finished(spans)
    root = found["cheap books"]
    span = found["SELECT testapp_book"]
    assert root.parent is None
    assert span.parent == root.context
    assert [found[name].parent for name in STAGE_SPANS] == [span.context] * 6
    assert [found[name].kind for name in ("cheap books", "SELECT testapp_book", *STAGE_SPANS)] == [
        SpanKind.INTERNAL,
        SpanKind.CLIENT,
        *[SpanKind.INTERNAL] * 6,
    ]
    assert root.attributes == {
        "tracer.trace.id": trace.id,
        "tracer.trace.label": "cheap books",
        "tracer.trace.statements": 1,
        "tracer.trace.db_ms": trace.db_ms,
    }
    stages = trace.to_dict()["statements"][0]["stages"]
    backend = stages["backend"]
    assert span.attributes == {
        "db.system.name": "sqlite",
        "db.namespace": connections["default"].settings_dict["NAME"],
        "db.operation.name": "SELECT",
        "db.query.text": statement.sql,
        "db.collection.name": "testapp_book",
        "db.response.returned_rows": 1,
        "code.file.path": __file__,
        "code.function.name": "test_a_statement_and_its_stages",
        "code.line.number": line,
        "tracer.trace.id": trace.id,
        "tracer.statement.index": 0,
        "tracer.statement.kind": "execute",
        "tracer.operation.index": 0,
        "tracer.operation.trigger": "iteration",
        "tracer.model.label": "testapp.Book",
        "tracer.model.table": "testapp_book",
        "tracer.manager.name": "objects",
        "tracer.manager.class": "django.db.models.manager.Manager",
        "tracer.queryset.class": "django.db.models.query.QuerySet",
        "tracer.queryset.code": "Book.objects.filter(price__lt=10).select_related('author')",
        "tracer.queryset.build_ms": stages["queryset"]["build_ms"],
        "tracer.queryset.trigger": "iteration",
        "tracer.query.class": "Query",
        "tracer.compiler.class": "django.db.models.sql.compiler.SQLCompiler",
        "tracer.compiler.compile_ms": stages["compiler"]["compile_ms"],
        "tracer.compiler.result_type": "multi",
        "tracer.backend.alias": "default",
        "tracer.backend.vendor": "sqlite",
        "tracer.backend.execute_ms": backend["execute_ms"],
        "tracer.backend.fetch_ms": backend["fetch_ms"],
        "tracer.backend.fetch_calls": 2,
        "tracer.backend.rows_fetched": 1,
        "tracer.backend.rowcount": -1,
        "tracer.backend.convert_ms": backend["convert_ms"],
        "tracer.backend.hydrate_ms": backend["hydrate_ms"],
        "tracer.backend.iterable": "django.db.models.query.ModelIterable",
        "tracer.backend.in_atomic_block": True,
    }
    assert [dict(found[name].attributes or {}) for name in STAGE_SPANS] == [
        {"tracer.stage": "queryset", "tracer.queryset.calls": 2},
        {"tracer.stage": "compiler"},
        {"tracer.stage": "backend"},
        {"tracer.stage": "backend", "tracer.backend.fetch_calls": 2},
        {"tracer.stage": "backend"},
        {"tracer.stage": "backend"},
    ]
    # The execution where it ran; the other stages end to end around it, with their
    # measured durations; the statement's span around them all.
    execute = found["backend execute"]
    assert execute.start_time == epoch(trace, statement.start_ns)
    assert execute.end_time == epoch(trace, statement.start_ns + statement.duration_ns)
    durations = [
        stages["queryset"]["build_ms"],
        stages["compiler"]["compile_ms"],
        backend["execute_ms"],
        backend["fetch_ms"],
        backend["convert_ms"],
        backend["hydrate_ms"],
    ]
    stage_spans = [found[name] for name in STAGE_SPANS]
    assert [s.end_time - s.start_time for s in stage_spans] == [round(d * 1e6) for d in durations]
    assert [s.start_time for s in stage_spans[1:]] == [s.end_time for s in stage_spans[:-1]]
    assert (span.start_time, span.end_time) == (
        stage_spans[0].start_time,
        stage_spans[-1].end_time,
    )
    assert root.start_time == round(trace.started_at * 1e9)
    assert root.end_time == epoch(trace, trace.end_ns)
    assert root.start_time < span.start_time < span.end_time < root.end_time


def test_raw_sql_text_has_its_values_taken_out(spans: InMemorySpanExporter):
    books()
    with tracer.capture("raw") as trace, connections["default"].cursor() as cursor:
        line = sys._getframe().f_lineno + 1
        cursor.execute("SELECT name FROM testapp_author WHERE name = 'Ann' AND id > %s", [0])
        cursor.fetchall()
    assert names(spans) == ["backend execute", "backend fetch", "SELECT", "raw"]
    span = finished(spans)["SELECT"]
    backend = trace.to_dict()["statements"][0]["stages"]["backend"]
    assert span.attributes == {
        "db.system.name": "sqlite",
        "db.namespace": connections["default"].settings_dict["NAME"],
        "db.query.summary": "SELECT",
        "db.query.text": "SELECT name FROM testapp_author WHERE name = ? AND id > ?",
        "db.response.returned_rows": 1,
        "code.file.path": __file__,
        "code.function.name": "test_raw_sql_text_has_its_values_taken_out",
        "code.line.number": line,
        "tracer.trace.id": trace.id,
        "tracer.statement.index": 0,
        "tracer.statement.kind": "execute",
        "tracer.backend.alias": "default",
        "tracer.backend.vendor": "sqlite",
        "tracer.backend.execute_ms": backend["execute_ms"],
        "tracer.backend.fetch_ms": backend["fetch_ms"],
        "tracer.backend.fetch_calls": 1,
        "tracer.backend.rows_fetched": 1,
        "tracer.backend.rowcount": -1,
        "tracer.backend.in_atomic_block": True,
    }


def test_a_batch(spans: InMemorySpanExporter):
    with tracer.capture("batch"), connections["default"].cursor() as cursor:
        cursor.executemany("INSERT INTO testapp_author (name) VALUES (%s)", [["Bo"], ["Cy"]])
        cursor.execute("SAVEPOINT x")
    assert names(spans) == [
        "backend execute",
        "BATCH INSERT",
        "backend execute",
        "SAVEPOINT",
        "batch",
    ]
    batch = spans.get_finished_spans()[1].attributes or {}
    assert (
        batch["db.query.summary"],
        batch["db.operation.batch.size"],
        batch["db.query.text"],
    ) == ("BATCH INSERT", 2, "INSERT INTO testapp_author (name) VALUES (...)")


def test_a_failed_statement_is_an_error(spans: InMemorySpanExporter):
    with (
        pytest.raises(Exception, match="no such table"),
        tracer.capture("broken"),
        connections["default"].cursor() as cursor,
    ):
        cursor.execute("SELECT * FROM no_such_table")
    span = finished(spans)["SELECT"]
    assert span.status.status_code == StatusCode.ERROR
    assert span.status.description == "no such table: no_such_table"
    assert span.attributes is not None
    assert span.attributes["error.type"] == "django.db.utils.OperationalError"


def test_operations_of_several_statements(spans: InMemorySpanExporter):
    books()
    with tracer.capture("writes"):
        Author.objects.filter(name="Ann").delete()  # the book, then the author
        Author.objects.bulk_create([Author(name="Bo"), Author(name="Cy")])
    assert [n for n in names(spans) if n.isupper() or " testapp_" in n] == [
        "SELECT testapp_author",
        "DELETE testapp_book",
        "DELETE testapp_profile",
        "DELETE testapp_author",
        "INSERT testapp_author",
    ]


def test_spans_join_the_current_span(spans: InMemorySpanExporter):
    books()
    with (
        api.get_tracer("tests").start_as_current_span("nightly job") as job,
        tracer.capture("inside the job"),
    ):
        Author.objects.count()
    found = finished(spans)
    assert "inside the job" not in found  # the job's span is the parent
    assert found["SELECT testapp_author"].parent == job.get_span_context()
    assert found["nightly job"].parent is None


def test_nothing_when_the_current_span_is_not_sampled(spans: InMemorySpanExporter):
    unsampled = SpanContext(
        trace_id=0x5BD66EF5095369C7B0D1F8F4BD33716A,
        span_id=0xC532CB4098AC3DD2,
        is_remote=True,
        trace_flags=TraceFlags(TraceFlags.DEFAULT),
    )
    with api.use_span(NonRecordingSpan(unsampled)), tracer.capture():
        Author.objects.count()
        Author.objects.exists()
    assert names(spans) == []


def test_off_by_default(spans: InMemorySpanExporter):
    with override_settings(TRACER={}), tracer.capture():
        Author.objects.count()
    assert names(spans) == []


def test_nested_captures_export_once(spans: InMemorySpanExporter):
    with tracer.capture("outer"):
        with tracer.capture("inner"):
            Author.objects.count()
        Author.objects.exists()
    assert [n for n in names(spans) if n.startswith(("SELECT", "outer", "inner"))] == [
        "SELECT testapp_author",
        "SELECT testapp_author",
        "outer",
    ]


def test_an_export_failure_leaves_the_trace(
    spans: InMemorySpanExporter, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
):
    emit = otel._emit

    def broken(trace: tracer.Trace, *args: Any) -> None:
        if trace.label == "broken":
            raise RuntimeError("collector on fire")
        emit(trace, *args)

    get_store().clear()
    monkeypatch.setattr(otel, "_emit", broken)
    monkeypatch.setattr(otel, "_failed", False)
    with tracer.capture("broken") as trace:
        Author.objects.count()
    with tracer.capture("broken"):
        Author.objects.count()
    with tracer.capture("fine"):
        Author.objects.count()
    assert names(spans)[-1] == "fine"  # the export thread went on
    assert get_store().get(trace.id) is trace
    assert [r.getMessage() for r in caplog.records if r.name == "tracer"] == [
        "tracer could not export a trace to OpenTelemetry; later failures are not logged."
    ]


def test_export_now(spans: InMemorySpanExporter):
    with override_settings(TRACER={}), tracer.capture("later") as trace:
        Author.objects.count()
    assert names(spans) == []
    otel.export(trace)  # in this thread, at once
    assert [span.name for span in spans.get_finished_spans()][-2:] == [
        "SELECT testapp_author",
        "later",
    ]


def test_a_forked_child_starts_its_own_export_thread(spans: InMemorySpanExporter):
    with tracer.capture("parent"):
        Author.objects.count()
    assert names(spans)[-1] == "parent"
    parent_thread = otel._thread
    otel._forked()  # what os.fork() runs in the child
    with tracer.capture("child"):
        Author.objects.count()
    assert names(spans)[-1] == "child"
    assert otel._thread is not parent_thread
    assert otel._thread is not None and otel._thread.name == "tracer-otel-export"


def test_pending_traces_are_bounded(spans: InMemorySpanExporter, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(otel, "MAX_PENDING", 0)
    before = otel.dropped()
    with tracer.capture("one too many"):
        Author.objects.count()
    assert otel.dropped() == before + 1
    assert names(spans) == []


SYSTEMS = {"sqlite": "sqlite", "postgresql": "postgresql", "mysql": "mariadb"}


def test_each_engine(spans: InMemorySpanExporter, vendor: str, alias: str):
    with tracer.capture("engine"):
        Author.objects.using(alias).count()
    span = finished(spans)["SELECT testapp_author"]
    settings = connections[alias].settings_dict
    expected = {"db.system.name": SYSTEMS[vendor], "db.namespace": settings["NAME"]}
    if vendor != "sqlite":
        expected["server.address"] = "127.0.0.1"
        expected["server.port"] = int(settings["PORT"])
    assert span.attributes is not None
    assert {key: span.attributes.get(key) for key in expected} == expected
    assert span.attributes["db.query.text"].startswith("SELECT COUNT(*) AS ")


# Through opentelemetry-instrumentation-django ------------------------------------------


@pytest.fixture
def instrumented() -> Iterator[None]:
    get_store().clear()
    with override_settings(MIDDLEWARE=["tracer.middleware.TracerMiddleware"]):
        DjangoInstrumentor().instrument(tracer_provider=provider())
        try:
            yield
        finally:
            DjangoInstrumentor().uninstrument()
    get_store().clear()


def test_statements_join_the_request_span(
    spans: InMemorySpanExporter, instrumented: None, client: Client
):
    Author.objects.create(name="Ann")
    response = client.get("/authors/")
    assert response.content == b"1 authors, traced as GET /authors/"
    found = finished(spans)
    # The request's span ends when the response leaves; ours are made after the trace
    # ends, in the export thread: either may come first.
    assert sorted(found) == [
        "GET authors/",
        "SELECT testapp_author",
        "backend convert",
        "backend execute",
        "backend fetch",
        "compiler as_sql",
    ]
    request = found["GET authors/"]
    statement = found["SELECT testapp_author"]
    assert request.kind == SpanKind.SERVER
    assert statement.parent == request.context
    assert request.start_time < statement.start_time < statement.end_time < request.end_time
    assert statement.attributes is not None
    assert statement.attributes["code.function.name"] == "authors"


# A real OTLP/HTTP export -------------------------------------------------------------


class Receiver(BaseHTTPRequestHandler):
    """An OTLP/HTTP trace receiver: keeps each request's decoded protobuf."""

    received: list[ExportTraceServiceRequest] = []

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        self.received.append(request)
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[ExportTraceServiceRequest]]]:
    received: list[ExportTraceServiceRequest] = []
    handler = type("Handler", (Receiver,), {"received": received})
    server = HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1/traces", received
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_otlp_http_export(export_to: Callable[[SpanExporter], None], receiver: Any):
    endpoint, received = receiver
    exporter = OTLPSpanExporter(endpoint=endpoint, timeout=5)
    export_to(exporter)
    books()
    with tracer.capture("over the wire") as trace:
        list(Book.objects.filter(price__lt=10))
    assert otel.flush(5)
    exporter.shutdown()
    arrived = [
        span
        for request in received
        for resource in request.resource_spans
        for scope in resource.scope_spans
        if scope.scope.name == "tracer.otel"
        for span in scope.spans
    ]
    by_name = {span.name: span for span in arrived}
    assert [s.name for s in arrived] == [*STAGE_SPANS, "SELECT testapp_book", "over the wire"]
    statement = by_name["SELECT testapp_book"]
    root = by_name["over the wire"]
    assert statement.parent_span_id == root.span_id
    assert statement.trace_id == root.trace_id
    attributes = {item.key: item.value for item in statement.attributes}
    assert attributes["db.system.name"].string_value == "sqlite"
    assert attributes["db.collection.name"].string_value == "testapp_book"
    assert attributes["tracer.trace.id"].string_value == trace.id
    assert attributes["tracer.backend.rows_fetched"].int_value == 1
    assert statement.start_time_unix_nano < statement.end_time_unix_nano


def test_a_request_without_a_request_span(spans: InMemorySpanExporter, async_client: AsyncClient):
    # Under ASGI, opentelemetry-instrumentation-django makes no request span unless
    # opentelemetry-instrumentation-asgi is installed: the trace's span stands in.
    Author.objects.create(name="Ann")
    get_store().clear()
    with override_settings(MIDDLEWARE=["tracer.middleware.TracerMiddleware"]):
        response = async_to_sync(async_client.get)("/aauthors/")
    assert response.content == b"1 authors, traced as GET /aauthors/"
    found = finished(spans)
    request = found["GET tests.testapp.views.aauthors"]
    assert request.parent is None
    assert found["SELECT testapp_author"].parent == request.context
    (trace,) = get_store().traces()
    assert request.attributes == {
        "tracer.trace.id": trace.id,
        "tracer.trace.label": "GET /aauthors/",
        "tracer.trace.statements": 1,
        "tracer.trace.db_ms": trace.db_ms,
        "http.request.method": "GET",
        "url.path": "/aauthors/",
        "http.response.status_code": 200,
        "tracer.request.view": "tests.testapp.views.aauthors",
    }
    get_store().clear()
