"""EXPLAIN of recorded statements, on the three real engines: plans, refusals, and
that explaining changes nothing (no rows, no recorded statements)."""

from __future__ import annotations

import json
import sqlite3
import zlib
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db import DatabaseError, connections, transaction
from django.db.models import Count
from django.test import override_settings

import tracer
from tests.conftest import TRACED
from tests.testapp.models import Author, Book
from tracer import recorder
from tracer.analysis.explain import (
    NotExplainable,
    UnknownStatement,
    UnknownTrace,
    explain,
    explain_statement,
)
from tracer.analysis.plans import (
    FILESORT,
    FULL_SCAN,
    NO_INDEX,
    SORT_ON_DISK,
    TEMP_BTREE,
    TEMPORARY_TABLE,
    Plan,
    PlanNode,
)
from tracer.filestore import SECRET_PARAMS, SECRET_SQL, SQLiteStore
from tracer.store import get_store
from tracer.trace import UNRECORDED, Statement

pytestmark = pytest.mark.django_db(databases="__all__")


def books(alias: str) -> list[Book]:
    ann = Author.objects.using(alias).create(name="Ann")
    bob = Author.objects.using(alias).create(name="Bob")
    return [
        Book.objects.using(alias).create(title=title, author=author, price=Decimal(price))
        for title, author, price in (("One", ann, "5"), ("Two", ann, "8"), ("Three", bob, "20"))
    ]


def recorded(run: Callable[[], Any]) -> tracer.Trace:
    """The trace of ``run()``, stored (as every finished outermost capture is)."""
    with tracer.capture() as trace:
        run()
    assert get_store().get(trace.id) is trace
    return trace


def tree(node: PlanNode) -> Any:
    """A node as (label, warnings, [children...]), for exact comparison."""
    return (node.label, node.warnings, [tree(child) for child in node.children])


@contextmanager
def nothing_recorded() -> Iterator[None]:
    """Inside a capture, which must record nothing of what the block runs."""
    with tracer.capture() as around:
        try:
            yield
        finally:
            assert around.statements == []
            assert around.events == []


def explained(trace: tracer.Trace, index: int = 0, *, analyze: bool = False) -> Plan:
    with nothing_recorded():
        return explain(trace.id, index, analyze=analyze)


# Plans -------------------------------------------------------------------------------


def test_filter_on_an_unindexed_column_is_a_full_scan(alias, vendor):
    books(alias)
    trace = recorded(lambda: list(Book.objects.using(alias).filter(title="Two")))

    plan = explained(trace, 0)

    assert isinstance(plan, Plan)
    assert (plan.vendor, plan.sql, plan.analyzed) == (vendor, trace.statements[0].sql, False)
    if vendor == "sqlite":
        assert plan.command == "EXPLAIN QUERY PLAN"
        assert tree(plan.root) == ("QUERY PLAN", [], [("SCAN testapp_book", [FULL_SCAN], [])])
        assert plan.warnings == [("SCAN testapp_book", FULL_SCAN)]
        [[_, parent, _, detail]] = plan.raw
        assert (parent, detail) == (0, "SCAN testapp_book")
    elif vendor == "postgresql":
        assert plan.command == "EXPLAIN (FORMAT JSON)"
        assert tree(plan.root) == ("Seq Scan on testapp_book", [FULL_SCAN], [])
        assert plan.root.detail["Filter"] == "((title)::text = 'Two'::text)"
        assert "Actual Rows" not in plan.root.detail
        assert plan.raw[0]["Plan"]["Node Type"] == "Seq Scan"
    else:
        assert plan.command == "EXPLAIN FORMAT=JSON"
        assert tree(plan.root) == (
            "query block #1",
            [],
            [("ALL on `testapp_book`", [FULL_SCAN, NO_INDEX], [])],
        )
        table = plan.root.children[0].detail
        assert table["attached_condition"] == "testapp_book.title = 'Two'"
        assert "possible_keys" not in table
        assert plan.raw["query_block"]["select_id"] == 1


def test_primary_key_lookup_has_no_warnings(alias, vendor):
    book = books(alias)[1]
    trace = recorded(lambda: Book.objects.using(alias).get(pk=book.pk))

    plan = explained(trace, 0)

    assert plan.warnings == []
    if vendor == "sqlite":
        [search] = plan.root.children
        assert search.label == "SEARCH testapp_book USING INTEGER PRIMARY KEY (rowid=?)"
    elif vendor == "postgresql":
        # get() adds LIMIT 21.
        assert tree(plan.root) == (
            "Limit",
            [],
            [("Index Scan using testapp_book_pkey on testapp_book", [], [])],
        )
        assert plan.root.children[0].detail["Index Cond"] == f"(id = {book.pk})"
    else:
        assert tree(plan.root) == (
            "query block #1",
            [],
            [("const on `testapp_book` using PRIMARY", [], [])],
        )


def test_order_by_an_unindexed_column_sorts(alias, vendor):
    books(alias)
    trace = recorded(lambda: list(Book.objects.using(alias).order_by("title")))

    plan = explained(trace, 0)

    if vendor == "sqlite":
        assert tree(plan.root) == (
            "QUERY PLAN",
            [],
            [
                ("SCAN testapp_book", [FULL_SCAN], []),
                ("USE TEMP B-TREE FOR ORDER BY", [TEMP_BTREE], []),
            ],
        )
    elif vendor == "postgresql":
        # A sort is only marked when ANALYZE shows it spilled to disk.
        assert tree(plan.root) == ("Sort", [], [("Seq Scan on testapp_book", [FULL_SCAN], [])])
        assert plan.root.detail["Sort Key"] == ["title"]
    else:
        assert tree(plan.root) == (
            "query block #1",
            [],
            [
                (
                    "filesort on testapp_book.title",
                    [FILESORT],
                    [("ALL on `testapp_book`", [FULL_SCAN, NO_INDEX], [])],
                )
            ],
        )


def test_group_by_and_order_by_an_aggregate(alias, vendor):
    books(alias)
    query = Book.objects.using(alias).values("author").annotate(n=Count("id")).order_by("n")
    trace = recorded(lambda: list(query))

    plan = explained(trace, 0)

    if vendor == "sqlite":
        assert tree(plan.root) == (
            "QUERY PLAN",
            [],
            [
                ("SCAN testapp_book USING COVERING INDEX testapp_book_author_id_b4b7b7bf", [], []),
                ("USE TEMP B-TREE FOR ORDER BY", [TEMP_BTREE], []),
            ],
        )
    elif vendor == "postgresql":
        assert [node.label for node in plan.root.walk()] == [
            "Sort",
            "HashAggregate",
            "Seq Scan on testapp_book",
        ]
        assert plan.warnings == [("Seq Scan on testapp_book", FULL_SCAN)]
    else:
        assert tree(plan.root) == (
            "query block #1",
            [],
            [
                (
                    "filesort on count(testapp_book.`id`)",
                    [FILESORT],
                    [
                        (
                            "temporary table",
                            [TEMPORARY_TABLE],
                            [
                                (
                                    "index on `testapp_book` using "
                                    "testapp_book_author_id_b4b7b7bf_fk_testapp_author_id",
                                    [],
                                    [],
                                )
                            ],
                        )
                    ],
                )
            ],
        )


def test_a_with_query_that_only_reads_is_explained(alias, connection, vendor):
    books(alias)
    table = connection.ops.quote_name("testapp_book")
    sql = f"WITH cheap AS (SELECT id FROM {table} WHERE price < %s) SELECT COUNT(*) FROM cheap"

    def run() -> None:
        with connection.cursor() as cursor:
            cursor.execute(sql, [10])
            assert cursor.fetchone() == (2,)

    trace = recorded(run)
    plan = explained(trace, 0)
    assert plan.sql == sql
    # Each engine folds the CTE into the query.
    assert (
        tree(plan.root)
        == {
            "sqlite": ("QUERY PLAN", [], [("SCAN testapp_book", [FULL_SCAN], [])]),
            "postgresql": ("Aggregate", [], [("Seq Scan on testapp_book", [FULL_SCAN], [])]),
            "mysql": (
                "query block #1",
                [],
                [("ALL on `testapp_book`", [FULL_SCAN, NO_INDEX], [])],
            ),
        }[vendor]
    )


def test_to_dict_is_json(alias):
    books(alias)
    trace = recorded(lambda: list(Book.objects.using(alias).filter(title="Two")))
    plan = explained(trace, 0)

    data = json.loads(json.dumps(plan.to_dict()))
    assert data["vendor"] == plan.vendor
    assert data["warnings"] == [list(pair) for pair in plan.warnings]
    assert data["root"]["label"] == plan.root.label
    assert data["raw"] == plan.raw


# PostgreSQL's ANALYZE ----------------------------------------------------------------


@pytest.fixture
def postgresql() -> str:
    if "postgresql" in settings.UNAVAILABLE:
        pytest.skip(settings.UNAVAILABLE["postgresql"])
    return "postgresql"


def test_analyze_runs_the_select_and_measures_it(postgresql):
    books(postgresql)
    trace = recorded(lambda: list(Book.objects.using(postgresql).filter(title="Two")))

    plan = explained(trace, 0, analyze=True)

    assert plan.analyzed is True
    assert plan.command == "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON)"
    assert tree(plan.root) == ("Seq Scan on testapp_book", [FULL_SCAN], [])
    detail = plan.root.detail
    assert (detail["Actual Rows"], detail["Actual Loops"], detail["Rows Removed by Filter"]) == (
        1,
        1,
        2,
    )
    assert "Shared Hit Blocks" in detail
    assert isinstance(plan.raw[0]["Execution Time"], float)


def test_analyze_marks_a_sort_that_spilled_to_disk(postgresql):
    author = Author.objects.using(postgresql).create(name="Ann")
    Book.objects.using(postgresql).bulk_create(
        Book(title=f"{n:05d}" + "x" * 150, author=author) for n in range(3000)
    )
    with connections[postgresql].cursor() as cursor:
        # Undone with the test's transaction.
        cursor.execute("SET work_mem = '64kB'")
    trace = recorded(lambda: list(Book.objects.using(postgresql).order_by("-title")))

    analyzed = explained(trace, 0, analyze=True)
    planned = explained(trace, 0)

    assert tree(analyzed.root) == (
        "Sort",
        [SORT_ON_DISK],
        [("Seq Scan on testapp_book", [FULL_SCAN], [])],
    )
    assert analyzed.root.detail["Sort Space Type"] == "Disk"
    assert analyzed.root.detail["Sort Method"] == "external merge"
    assert planned.root.warnings == []


def test_analyze_of_a_select_that_writes_fails_and_changes_nothing(postgresql):
    connection = connections[postgresql]
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE FUNCTION tracer_touch() RETURNS integer AS $$ BEGIN "
            "INSERT INTO testapp_author (name) VALUES ('touched'); RETURN 1; "
            "END $$ LANGUAGE plpgsql"
        )
    trace = recorded(lambda: run_sql(postgresql, "SELECT tracer_touch()"))
    assert Author.objects.using(postgresql).count() == 1  # it ran once, recorded

    with pytest.raises(DatabaseError, match="cannot execute INSERT in a read-only transaction"):
        explained(trace, 0, analyze=True)

    assert Author.objects.using(postgresql).count() == 1
    assert run_sql(postgresql, "SHOW transaction_read_only") == [("off",)]
    # Without ANALYZE nothing runs: the plan is a Result node.
    assert explained(trace, 0).root.label == "Result"
    assert Author.objects.using(postgresql).count() == 1


def test_analyze_cannot_advance_a_sequence(postgresql):
    [(sequence,)] = run_sql(postgresql, "SELECT pg_get_serial_sequence('testapp_author', 'id')")
    trace = recorded(lambda: run_sql(postgresql, "SELECT nextval(%s)", [sequence]))
    [(before,)] = run_sql(postgresql, f"SELECT last_value FROM {sequence}")

    # A rollback would not undo nextval(); the read-only transaction refuses it.
    with pytest.raises(DatabaseError, match=r"cannot execute nextval\(\) in a read-only"):
        explained(trace, 0, analyze=True)

    assert run_sql(postgresql, f"SELECT last_value FROM {sequence}") == [(before,)]


def test_analyze_refuses_a_locking_select(postgresql):
    books(postgresql)

    def run() -> None:
        with transaction.atomic(using=postgresql):
            list(Book.objects.using(postgresql).select_for_update().filter(title="Two"))

    trace = recorded(run)
    [index] = [i for i, s in enumerate(trace.statements) if s.sql.startswith("SELECT")]

    with pytest.raises(NotExplainable, match=r"locks rows \(FOR UPDATE, FOR SHARE\)"):
        explained(trace, index, analyze=True)
    plan = explained(trace, index)
    assert tree(plan.root) == ("LockRows", [], [("Seq Scan on testapp_book", [FULL_SCAN], [])])


@pytest.mark.parametrize("vendor", ["mysql", "sqlite"])
def test_analyze_only_on_postgresql(vendor):
    if vendor in settings.UNAVAILABLE:
        pytest.skip(settings.UNAVAILABLE[vendor])
    alias = TRACED[vendor]
    trace = recorded(lambda: list(Author.objects.using(alias).all()))
    with pytest.raises(NotExplainable, match=f"offered on PostgreSQL only, not on {vendor}"):
        explained(trace, 0, analyze=True)


# Refusals ----------------------------------------------------------------------------


def run_sql(alias: str, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
    with connections[alias].cursor() as cursor:
        cursor.execute(sql, params)
        return list(cursor.fetchall()) if cursor.description else []


def snapshot(alias: str) -> list[tuple[Any, ...]]:
    return list(Book.objects.using(alias).order_by("pk").values_list("pk", "title", "price"))


def test_writes_are_refused_and_never_re_run(alias, vendor):
    book = books(alias)[0]
    author = book.author

    def run() -> None:
        Book.objects.using(alias).create(title="New", author=author, price=1)
        Book.objects.using(alias).filter(pk=book.pk).update(price=99)
        Book.objects.using(alias).filter(title="New").delete()

    trace = recorded(run)
    writes = {
        word: index
        for index, statement in enumerate(trace.statements)
        if (word := statement.sql.split()[0]) in ("INSERT", "UPDATE", "DELETE")
    }
    assert sorted(writes) == ["DELETE", "INSERT", "UPDATE"]
    before = snapshot(alias)

    for word, index in writes.items():
        with pytest.raises(NotExplainable) as refused:
            explained(trace, index)
        assert str(refused.value) == f"Only a SELECT is explained, not {word}."
        with pytest.raises(NotExplainable):
            explained(trace, index, analyze=True)

    assert snapshot(alias) == before


def test_a_with_query_that_writes_is_refused(postgresql):
    books(postgresql)
    sql = (
        "WITH gone AS (DELETE FROM testapp_book WHERE title = %s RETURNING id) "
        "SELECT COUNT(*) FROM gone"
    )
    trace = recorded(lambda: run_sql(postgresql, sql, ["Two"]))
    before = snapshot(postgresql)
    assert len(before) == 2

    with pytest.raises(NotExplainable, match="^A statement containing DELETE is never re-run.$"):
        explained(trace, 0)
    assert snapshot(postgresql) == before


def test_unknown_trace_and_index(alias):
    trace = recorded(lambda: list(Author.objects.using(alias).all()))

    with (
        nothing_recorded(),
        pytest.raises(UnknownTrace, match="^No trace 'nope' in the store: unknown, or evicted"),
    ):
        explain("nope", 0)
    for index, number in ((1, 2), (-1, 0)):
        with pytest.raises(UnknownStatement) as error:
            explained(trace, index)
        assert str(error.value) == (
            f"Trace {trace.id!r} has 1 statement(s); there is none at index {index} "
            f"(statement #{number} as the pages number them)."
        )
    assert isinstance(error.value, ValueError)


def test_evicted_trace_is_unknown():
    trace = recorded(lambda: list(Author.objects.all()))
    with override_settings(TRACER={"STORE_TRACES": 1}):
        recorded(lambda: None)
        with pytest.raises(UnknownTrace):
            explained(trace, 0)


def test_statements_whose_params_were_not_kept(connection):
    with override_settings(TRACER={"SOFT_CAP": 1}):
        trace = recorded(lambda: [run_sql(connection.alias, "SELECT %s", [n]) for n in range(2)])
    assert trace.statements[1].params == recorder.DROPPED

    with pytest.raises(NotExplainable) as error:
        explained(trace, 1)
    assert str(error.value) == "Its params were not kept (<dropped: past SOFT_CAP>)."


def test_executemany_is_refused(alias, connection):
    sql = f"INSERT INTO {connection.ops.quote_name('testapp_author')} (name) VALUES (%s)"

    def run() -> None:
        with connection.cursor() as cursor:
            cursor.executemany(sql, [["a"], ["b"]])
            cursor.executemany(sql, ([name] for name in "cd"))

    trace = recorded(run)
    assert [s.params for s in trace.statements] == [[["a"], ["b"]], UNRECORDED]
    count = Author.objects.using(alias).count()

    for index in (0, 1):
        with pytest.raises(NotExplainable) as error:
            explained(trace, index)
        assert str(error.value) == (
            "An executemany() ran its SQL once per set of params; it is not explained."
        )
    assert Author.objects.using(alias).count() == count == 4


@pytest.mark.django_db(databases="__all__", transaction=True)
def test_transaction_statements_are_refused_outside_any_transaction(alias, connection):
    def run() -> None:
        with transaction.atomic(using=alias):
            Author.objects.using(alias).create(name="Ann")
            with transaction.atomic(using=alias):
                list(Author.objects.using(alias).all())

    # Opened before recording: a connection opened inside would add its set-up
    # statements (MySQL's SETs) when this test runs first.
    connection.ensure_connection()
    trace = recorded(run)
    messages = []
    for index, statement in enumerate(trace.statements):
        try:
            explained(trace, index)
        except NotExplainable as refused:
            messages.append((statement.sql.split()[0], str(refused)))
        else:
            messages.append((statement.sql.split()[0], "explained"))

    # BEGIN is SQL on SQLite, a driver call elsewhere.
    if connection.vendor == "sqlite":
        begin = ("BEGIN", "Only a SELECT is explained, not BEGIN.")
    else:
        begin = ("BEGIN", "A transaction statement is not explained.")
    assert messages == [
        begin,
        ("INSERT", "Only a SELECT is explained, not INSERT."),
        ("SAVEPOINT", "Only a SELECT is explained, not SAVEPOINT."),
        ("SELECT", "explained"),
        ("RELEASE", "Only a SELECT is explained, not RELEASE."),
        ("COMMIT", "A transaction statement is not explained."),
    ]
    # Explaining opened and rolled back a transaction of its own.
    assert connection.get_autocommit()
    assert not connection.in_atomic_block
    assert Author.objects.using(alias).count() == 1


def test_unknown_vendor_or_alias():
    trace = recorded(lambda: list(Author.objects.all()))
    statement = trace.statements[0]

    statement.vendor = "oracle"
    with (
        nothing_recorded(),
        pytest.raises(NotExplainable, match="^EXPLAIN is not supported on oracle.$"),
    ):
        explain_statement(statement)
    statement.vendor, statement.alias = "sqlite", "gone"
    with (
        nothing_recorded(),
        pytest.raises(NotExplainable, match="^There is no database alias 'gone' now.$"),
    ):
        explain_statement(statement)


def test_a_trace_loaded_from_an_export_is_refused():
    trace = recorded(lambda: list(Author.objects.filter(name="Ann")))
    loaded = tracer.Trace.from_dict(trace.to_dict())
    assert loaded.id == trace.id
    get_store().add(loaded)  # in the original's place

    with nothing_recorded(), pytest.raises(NotExplainable, match="loaded from an export"):
        explain(loaded.id, 0)
    get_store().add(trace)
    assert explained(trace, 0).warnings == [("SCAN testapp_author", FULL_SCAN)]


# Traces from the file store: loaded from JSON, explained with the params it kept ----


@contextmanager
def file_store(tmp_path: Path, **tracer_settings: Any) -> Iterator[SQLiteStore]:
    """``TRACER["STORE_PATH"]`` set: every finished trace goes to a SQLite file."""
    path = str(tmp_path / "traces.sqlite3")
    with override_settings(TRACER={"STORE_PATH": path, **tracer_settings}):
        store = get_store()
        assert isinstance(store, SQLiteStore)
        try:
            yield store
        finally:
            store.close()


def written(store: SQLiteStore, trace: tracer.Trace) -> tracer.Trace:
    """``trace`` as the file store gives it back once written: loaded from its JSON."""
    store.add(trace)
    assert store.flush(5)
    loaded = store.get(trace.id)
    assert loaded is not None and loaded is not trace and loaded.imported
    return loaded


def test_a_trace_from_the_file_store_is_explained_with_the_params_it_ran_with(
    alias, vendor, tmp_path
):
    books(alias)
    query = Book.objects.using(alias).filter(title="Two", price__lt=Decimal("10"))
    trace = recorded(lambda: list(query))
    expected = explained(trace, 0)

    with file_store(tmp_path) as store:
        loaded = written(store, trace)
        # What the statement shows, and what EXPLAIN runs it with:
        rendered = {"type": "decimal.Decimal", "repr": "Decimal('10')"}
        assert loaded.statements[0].params == [rendered, "Two"]
        assert trace.statements[0].params == (Decimal("10"), "Two")
        assert store.raw_params(trace.id, 0) == (Decimal("10"), "Two")
        plan = explained(trace, 0)

    assert (plan.sql, plan.command, tree(plan.root)) == (
        expected.sql,
        expected.command,
        tree(expected.root),
    )
    if vendor == "postgresql":
        assert plan.root.detail["Filter"] == expected.root.detail["Filter"]


def test_the_file_store_refuses_what_the_memory_store_refuses(tmp_path):
    books("default")
    trace = recorded(lambda: Book.objects.filter(title="Two").update(title="Deux"))
    with pytest.raises(NotExplainable) as in_memory:
        explained(trace, 0)

    with file_store(tmp_path) as store:
        written(store, trace)
        with pytest.raises(NotExplainable) as from_file:
            explained(trace, 0)
    assert (
        str(from_file.value) == str(in_memory.value) == "Only a SELECT is explained, not UPDATE."
    )


def test_the_file_store_keeps_no_values_of_secret_looking_columns(tmp_path):
    books("default")
    title = "".join(["T", "wo"])  # not in the source lines the trace shows
    with file_store(tmp_path, REDACT_COLUMNS=["title"]) as store:
        with tracer.capture() as trace:
            list(Book.objects.filter(title=title))
            run_sql(
                "default", f"SELECT id FROM testapp_book WHERE title = '{title}' AND id > %s", [0]
            )
        assert store.flush(5)
        with closing(sqlite3.connect(store.path)) as connection:
            rows = connection.execute("SELECT params, data FROM trace_data").fetchall()
        assert [(json.loads(p), title in zlib.decompress(data).decode()) for p, data in rows] == [
            ({"0": {"problem": SECRET_PARAMS}, "1": {"problem": SECRET_SQL}}, False)
        ]
        refusals = []
        for index in (0, 1):
            with pytest.raises(NotExplainable) as error:
                explained(trace, index)
            refusals.append(str(error.value))
    assert refusals == [SECRET_PARAMS, SECRET_SQL]
    assert SECRET_PARAMS == (
        "Its params hold values of secret-looking columns (TRACER['REDACT_COLUMNS']), "
        "which the file store does not write to disk."
    )
    assert SECRET_SQL == (
        "Its SQL holds values of secret-looking columns (TRACER['REDACT_COLUMNS']), "
        "which the file store does not write to disk."
    )


class Opaque:
    pass


def test_the_file_store_refuses_params_it_cannot_keep(tmp_path):
    trace = tracer.Trace()
    statement = Statement("default", "sqlite", "execute", "SELECT %s", [Opaque()], False)
    trace.statements.append(statement)
    trace.finish()

    with file_store(tmp_path) as store:
        written(store, trace)
        with pytest.raises(NotExplainable) as error:
            explained(trace, 0)
    assert str(error.value) == (
        "Its params include a tests.analysis.test_explain.Opaque, which the file store "
        "does not keep (it keeps None, bool, int, float, str, bytes, Decimal, date, time, "
        "datetime, timedelta, UUID, and lists and tuples of them)."
    )


def test_a_trace_loaded_from_an_export_is_refused_from_the_file_store_too(tmp_path):
    trace = recorded(lambda: list(Author.objects.filter(name="Ann")))
    with file_store(tmp_path) as store:
        written(store, tracer.Trace.from_dict(trace.to_dict()))
        with pytest.raises(NotExplainable, match="loaded from an export"):
            explained(trace, 0)


# Nothing recorded, nothing changed ---------------------------------------------------


def test_explaining_records_nothing_even_when_capturing_always(alias):
    books(alias)
    trace = recorded(lambda: list(Book.objects.using(alias).filter(title="Two")))

    with override_settings(TRACER={"CAPTURE": "always"}):
        Author.objects.using(alias).count()
        ambient = recorder.active_trace()
        assert ambient is not None
        count = len(ambient.statements)
        explain(trace.id, 0)
        assert len(ambient.statements) == count
        assert recorder.active_trace() is ambient


def test_the_connection_is_left_as_it_was(alias, connection):
    books(alias)
    trace = recorded(lambda: list(Book.objects.using(alias).filter(title="Two")))
    state = (connection.in_atomic_block, connection.savepoint_ids[:], connection.needs_rollback)

    explained(trace, 0)

    assert (connection.in_atomic_block, connection.savepoint_ids, connection.needs_rollback) == (
        state
    )
    assert Book.objects.using(alias).filter(title="Two").count() == 1


@pytest.fixture
def touch(connection: Any) -> Iterator[Callable[[], int]]:
    """A SQL function ``tracer_touch()`` that adds an author and returns 1; yields how
    many times it ran, where that can be seen from outside the transaction."""
    vendor = connection.vendor
    calls = []
    with connection.cursor() as cursor:
        if vendor == "sqlite":
            connection.connection.create_function("tracer_touch", 0, lambda: calls.append(1) or 1)
            # SQLite functions cannot write: record the calls only.
        elif vendor == "postgresql":
            cursor.execute(
                "CREATE FUNCTION tracer_touch() RETURNS integer AS $$ BEGIN "
                "INSERT INTO testapp_author (name) VALUES ('touched'); RETURN 1; "
                "END $$ LANGUAGE plpgsql"
            )
        else:
            # A user variable is not transactional: it shows calls a rollback undid.
            cursor.execute("SET @tracer_touched = 0")
            cursor.execute(
                "CREATE FUNCTION tracer_touch() RETURNS INT MODIFIES SQL DATA BEGIN "
                "INSERT INTO testapp_author (name) VALUES ('touched'); "
                "SET @tracer_touched = @tracer_touched + 1; RETURN 1; END"
            )

    def count() -> int:
        if vendor == "sqlite":
            return len(calls)
        if vendor == "mysql":
            return int(run_sql(connection.alias, "SELECT @tracer_touched")[0][0])
        return -1  # not observable: a PostgreSQL function's effects are transactional

    try:
        yield count
    finally:
        if vendor != "sqlite":
            with connection.cursor() as cursor:
                cursor.execute("DROP FUNCTION tracer_touch")


@pytest.mark.django_db(databases="__all__", transaction=True)
def test_explaining_a_select_that_calls_a_writing_function_changes_nothing(
    alias, connection, vendor, touch
):
    sql = "SELECT t FROM (SELECT tracer_touch() AS t) d"
    trace = recorded(lambda: run_sql(alias, sql))
    authors = Author.objects.using(alias).count()
    assert (authors, touch()) == {"sqlite": (0, 1), "postgresql": (1, -1), "mysql": (1, 1)}[vendor]

    plan = explained(trace)

    # MariaDB's EXPLAIN materializes the one-row derived table while optimizing, so it
    # runs the function: the author it adds goes with the rollback.
    assert touch() == {"sqlite": 1, "postgresql": -1, "mysql": 2}[vendor]
    assert Author.objects.using(alias).count() == authors
    if vendor == "mysql":
        [derived] = plan.root.children
        assert derived.label == "system on `<derived2>`"
        assert tree(derived.children[0]) == (
            "materialized",
            [],
            [("query block #2", [], [("No tables used", [], [])])],
        )
