"""sqlcommenter comments on the SQL sent to the database (tracer.sqlcomment)."""

from __future__ import annotations

import inspect
import sys
from collections.abc import Iterator
from typing import Any

import django
import pytest
from django.db import connections, transaction
from django.template import loader
from django.test import Client, override_settings
from opentelemetry import trace as api
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, TraceState

import tracer
from tests.testapp import views
from tests.testapp.models import Author, Book
from tracer import sqlcomment

pytestmark = pytest.mark.django_db(databases="__all__")

FRAMEWORK = f"framework='django%3A{django.get_version()}'"
HERE = "tests%2Ftest_sqlcomment.py"

# A statement that reads back its own text as the server received it.
OWN_TEXT = {
    "postgresql": "SELECT query FROM pg_stat_activity WHERE pid = pg_backend_pid()",
    "mysql": "SELECT info FROM information_schema.processlist WHERE id = CONNECTION_ID()",
}


@pytest.fixture
def comments() -> Iterator[None]:
    with override_settings(TRACER={"SQL_COMMENTS": True}):
        yield


@pytest.fixture
def sqlite_sent(comments: None) -> Iterator[list[str]]:
    """The statements SQLite ran on the default alias (its trace callback: params
    written in, anything after a final ";" left out)."""
    connection = connections["default"]
    connection.ensure_connection()
    sent: list[str] = []
    connection.connection.set_trace_callback(sent.append)
    try:
        yield sent
    finally:
        connection.connection.set_trace_callback(None)


def here() -> int:
    """The line of the caller's next line."""
    return sys._getframe(1).f_lineno + 1


def test_the_server_receives_the_comment(comments: None, server_vendor: str):
    alias = {"postgresql": "postgresql", "mysql": "mysql"}[server_vendor]
    sql = OWN_TEXT[server_vendor]
    with tracer.capture() as trace, connections[alias].cursor() as cursor:
        line = here()
        cursor.execute(sql)
        (received,) = cursor.fetchone()
    assert received == f"{sql} /*file='{HERE}%3A{line}',{FRAMEWORK}*/"
    assert [s.sql for s in trace.statements] == [sql]  # what your code sent


def test_the_server_receives_the_comment_with_params(comments: None, server_vendor: str):
    alias = {"postgresql": "postgresql", "mysql": "mysql"}[server_vendor]
    sql = OWN_TEXT[server_vendor] + " AND %s = 1"
    with tracer.capture() as trace, connections[alias].cursor() as cursor:
        line = here()
        cursor.execute(sql, [1])
        (received,) = cursor.fetchone()
    # The comment's "%" were doubled for the driver's interpolation, which undid it.
    assert received == f"{sql.replace('%s', '1')} /*file='{HERE}%3A{line}',{FRAMEWORK}*/"
    assert [(s.sql, s.params) for s in trace.statements] == [(sql, [1])]


def test_sqlite_receives_the_comment(sqlite_sent: list[str]):
    with tracer.capture(), connections["default"].cursor() as cursor:
        line = here()
        cursor.execute("SELECT %s, 'a%%b'", ["x"])
        cursor.execute("SELECT '100%'")
    assert sqlite_sent == [
        f"SELECT 'x', 'a%b' /*file='{HERE}%3A{line}',{FRAMEWORK}*/",
        f"SELECT '100%' /*file='{HERE}%3A{line + 1}',{FRAMEWORK}*/",
    ]


def test_orm_statements_carry_their_call_site(sqlite_sent: list[str]):
    Author.objects.create(name="Ann")
    sqlite_sent.clear()
    with tracer.capture() as trace:
        line = here()
        names = [a.name for a in Author.objects.filter(name__startswith="A")]
    assert names == ["Ann"]
    (statement,) = trace.statements
    assert sqlite_sent == [
        statement.sql.replace("%s", "'A%'") + f" /*file='{HERE}%3A{line}',{FRAMEWORK}*/"
    ]


def test_results_are_the_same(alias: str):
    ann = Author.objects.using(alias).create(name="Ann 100%")
    Book.objects.using(alias).create(title="A_b", author=ann, price=5)

    def run() -> tuple[list[Any], list[str]]:
        with tracer.capture() as trace, connections[alias].cursor() as cursor:
            cursor.execute("SELECT name FROM testapp_author WHERE name LIKE 'Ann%' ORDER BY name")
            raw = [tuple(row) for row in cursor.fetchall()]
            cursor.execute(
                "SELECT name FROM testapp_author WHERE name LIKE 'Ann%%' AND id > %s", [0]
            )
            raw_params = [tuple(row) for row in cursor.fetchall()]
            results = [
                raw,
                raw_params,
                list(Author.objects.using(alias).filter(name__contains="0%").values_list("name")),
                list(Book.objects.using(alias).filter(title__contains="_").values_list("title")),
                Author.objects.using(alias).filter(books__price__gt=1).count(),
            ]
        return results, [s.sql for s in trace.statements]

    plain = run()
    with override_settings(TRACER={"SQL_COMMENTS": True}):
        commented = run()
    assert commented == plain
    assert plain[0] == [
        [("Ann 100%",)],
        [("Ann 100%",)],
        [("Ann 100%",)],
        [("A_b",)],
        1,
    ]


def test_a_request_names_its_view_and_route(sqlite_sent: list[str], client: Client):
    with override_settings(
        MIDDLEWARE=["tracer.middleware.TracerMiddleware"], TRACER={"SQL_COMMENTS": True}
    ):
        client.get("/authors/")
    (sent,) = sqlite_sent
    line = inspect.getsourcelines(views.authors)[1] + 1
    assert sent.endswith(
        " /*controller='tests.testapp.views.authors',"
        f"file='tests%2Ftestapp%2Fviews.py%3A{line}',"
        f"{FRAMEWORK},"
        "route='authors%2F'*/"
    )


def test_traceparent_of_the_current_span(sqlite_sent: list[str]):
    context = SpanContext(
        trace_id=0x5BD66EF5095369C7B0D1F8F4BD33716A,
        span_id=0xC532CB4098AC3DD2,
        is_remote=True,
        trace_flags=TraceFlags(TraceFlags.SAMPLED),
        trace_state=TraceState([("congo", "t61rcWkgMzE")]),
    )
    with api.use_span(NonRecordingSpan(context)), tracer.capture():
        line = here()
        Author.objects.exists()
    (sent,) = sqlite_sent
    assert sent.endswith(
        f" /*file='{HERE}%3A{line}',{FRAMEWORK},"
        "traceparent='00-5bd66ef5095369c7b0d1f8f4bd33716a-c532cb4098ac3dd2-01',"
        "tracestate='congo%3Dt61rcWkgMzE'*/"
    )


def test_left_alone(sqlite_sent: list[str]):
    Author.objects.create(name="Ann")
    sqlite_sent.clear()
    Author.objects.count()  # nothing records
    with tracer.capture(), connections["default"].cursor() as cursor:
        cursor.execute("SELECT 1 /* mine */")
        cursor.execute("SELECT 2 -- mine")
        cursor.executemany("UPDATE testapp_author SET name = %s", [["Bo"], ["Cy"]])
        with transaction.atomic():  # SAVEPOINT and RELEASE
            cursor.execute("SELECT 3;")
    assert sqlite_sent[0] == 'SELECT COUNT(*) AS "__count" FROM "testapp_author"'
    assert sqlite_sent[1:5] == [
        "SELECT 1 /* mine */",
        "SELECT 2 -- mine",
        "UPDATE testapp_author SET name = 'Bo'",
        "UPDATE testapp_author SET name = 'Cy'",
    ]
    assert sqlite_sent[5].startswith('SAVEPOINT "s')
    assert sqlite_sent[6].startswith("SELECT 3 /*file=")  # before the ";"
    assert sqlite_sent[7].startswith('RELEASE SAVEPOINT "s')
    assert len(sqlite_sent) == 8


def test_off_by_default():
    with tracer.capture(), connections["default"].cursor() as cursor:
        assert sqlcomment.commented("SELECT 1", None, tracer.current_trace()) == "SELECT 1"  # type: ignore[arg-type]
        cursor.execute("SELECT 1")


def test_values_are_url_encoded_and_quoted():
    assert sqlcomment._pair("route", "books/<int:pk>/ it's") == (
        "route='books%2F%3Cint%3Apk%3E%2F%20it%27s'"
    )


def test_the_template_line_that_ran_it(sqlite_sent: list[str]):
    author = Author.objects.create(name="Ann")
    Book.objects.create(title="One", author=author, price=3)
    sqlite_sent.clear()
    template = loader.get_template("testapp/n_plus_one.html")
    with tracer.capture():
        line = here()
        template.render({"books": Book.objects.all()})
    evaluation, related = sqlite_sent
    assert evaluation.endswith(
        f" /*file='{HERE}%3A{line}',{FRAMEWORK},template='testapp%2Fn_plus_one.html%3A2'*/"
    )
    assert related.endswith(
        f" /*file='{HERE}%3A{line}',{FRAMEWORK},template='testapp%2Fn_plus_one.html%3A3'*/"
    )
