"""SQL for reading: collapsed, formatted, highlighted, interpolated and redacted, on
statements recorded through the ORM on each vendor and on hand-written SQL."""

from __future__ import annotations

import datetime
import enum
import uuid
from decimal import Decimal

import pytest
from django.contrib.auth.models import User
from django.db import connections
from django.test import override_settings
from django.utils.html import conditional_escape
from django.utils.safestring import SafeString

import tracer
from demo_app.models import Author, Book, Publisher
from tracer import sqldisplay
from tracer.recorder import DROPPED
from tracer.sqldisplay import (
    MASK,
    collapse,
    format_sql,
    highlight,
    interpolate,
    literal,
    redact_literals,
    redacted_params,
)

pytestmark = pytest.mark.django_db(databases="__all__")


def quoted(sql: str, vendor: str) -> str:
    """SQL written with "double quotes" as the vendor quotes names."""
    return sql.replace('"', "`") if vendor == "mysql" else sql


# Collapsing --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "collapsed"),
    [
        (
            'SELECT "a"."id" FROM "a" WHERE "a"."id" IN (%s, %s, %s, %s, %s) LIMIT 21',
            'SELECT "a"."id" FROM "a" WHERE "a"."id" IN (%s, %s, %s /* ... 2 more */) LIMIT 21',
        ),
        # Literals of every kind, a comma and a quote inside a string, lower case.
        (
            "SELECT 1 FROM t WHERE x not in ('a, b', 'it''s', -2.5e3, NULL, %(n)s)",
            "SELECT 1 FROM t WHERE x not in ('a, b', 'it''s', -2.5e3 /* ... 2 more */)",
        ),
        ("SELECT ARRAY[1, 2, 3, 4, 5]", "SELECT ARRAY[1, 2, 3 /* ... 2 more */]"),
        # Short lists, lists of expressions, subqueries and text inside quotes stay.
        ("SELECT 1 FROM t WHERE x IN (1, 2, 3)", "SELECT 1 FROM t WHERE x IN (1, 2, 3)"),
        (
            "SELECT 1 FROM t WHERE x IN (1, 2, 3, y, 5)",
            "SELECT 1 FROM t WHERE x IN (1, 2, 3, y, 5)",
        ),
        (
            "SELECT 1 FROM t WHERE x IN (SELECT 1 UNION SELECT 2 UNION SELECT 3 UNION SELECT 4)",
            "SELECT 1 FROM t WHERE x IN (SELECT 1 UNION SELECT 2 UNION SELECT 3 UNION SELECT 4)",
        ),
        (
            "SELECT 'x IN (1, 2, 3, 4, 5)', \"IN (1, 2, 3, 4)\" -- IN (1, 2, 3, 4)",
            "SELECT 'x IN (1, 2, 3, 4, 5)', \"IN (1, 2, 3, 4)\" -- IN (1, 2, 3, 4)",
        ),
        # Bulk inserts keep their first rows, with expressions in them.
        (
            'INSERT INTO "t" ("a", "b") VALUES (%s, %s), (%s, NOW()), (%s, %s), (%s, %s), '
            '(%s, \'(x\') RETURNING "t"."id"',
            'INSERT INTO "t" ("a", "b") VALUES (%s, %s), (%s, NOW()), (%s, %s) '
            '/* ... 2 more rows */ RETURNING "t"."id"',
        ),
        (
            "INSERT INTO t (a) VALUES (1), (2) ON DUPLICATE KEY UPDATE a = VALUES(a)",
            "INSERT INTO t (a) VALUES (1), (2) ON DUPLICATE KEY UPDATE a = VALUES(a)",
        ),
    ],
)
def test_collapse(sql, collapsed):
    assert collapse(sql) == collapsed


def test_collapse_keeps_as_many_as_asked():
    sql = "SELECT 1 FROM t WHERE x IN (1, 2, 3, 4, 5)"
    assert collapse(sql, keep=1) == "SELECT 1 FROM t WHERE x IN (1 /* ... 4 more */)"
    assert collapse(sql, keep=5) == sql


def test_long_statements_are_cut_with_a_note():
    assert collapse("SELECT abcdefghij FROM t", limit=12) == (
        "SELECT abcde\n/* ... truncated: 12 more characters */"
    )
    # A string or comment cut in the middle is closed, so the note stays a comment.
    assert collapse("SELECT 'abcdefghij' FROM t", limit=12) == (
        "SELECT 'abcd'\n/* ... truncated: 14 more characters */"
    )
    # ... without splitting a doubled quote.
    assert collapse("SELECT 'it''s' x", limit=11) == (
        "SELECT 'it'\n/* ... truncated: 5 more characters */"
    )
    assert collapse("SELECT 'it''s' x", limit=12) == (
        "SELECT 'it'''\n/* ... truncated: 4 more characters */"
    )
    assert collapse("SELECT 1 /* abcdefghij */", limit=12) == (
        "SELECT 1 \n/* ... truncated: 13 more characters */"
    )
    # Collapsing comes first: what is cut is what collapsing left (61 characters).
    sql = "SELECT 1 FROM t WHERE x IN (" + ", ".join(["%s"] * 50_000) + ")"
    assert collapse(sql, limit=41) == (
        "SELECT 1 FROM t WHERE x IN (%s, %s, %s \n/* ... truncated: 20 more characters */"
    )


def test_huge_and_hostile_statements_collapse_in_one_pass():
    # No time is asserted (tests/bench_sqldisplay.py measures); these finish in
    # milliseconds only because the scan is linear.
    values = "SELECT 1 FROM t WHERE x IN (" + ", ".join(["%s"] * 200_000) + ")"
    assert collapse(values) == "SELECT 1 FROM t WHERE x IN (%s, %s, %s /* ... 199,997 more */)"
    rows = "INSERT INTO t (a, b) VALUES " + ", ".join(["(%s, 'x')"] * 100_000)
    assert collapse(rows) == (
        "INSERT INTO t (a, b) VALUES (%s, 'x'), (%s, 'x'), (%s, 'x') /* ... 99,997 more rows */"
    )
    # A list that fails at its very end, unterminated quotes and comments, deep nesting.
    failing = "SELECT 1 FROM t WHERE x IN (" + "1, " * 100_000 + "y)"
    for sql in (failing, "'" * 100_001, "/*" * 100_000, "VALUES (" + "(" * 100_000):
        assert collapse(sql, limit=len(sql)) == sql


# Formatting and highlighting -----------------------------------------------------------


def test_format_recorded_statements(alias, vendor):
    ann = Author.objects.using(alias).create(name="Ann")
    pub = Publisher.objects.using(alias).create(name="Pub")
    with tracer.capture() as trace:
        list(Author.objects.using(alias).filter(pk__in=range(1, 2001)))
        Book.objects.using(alias).bulk_create(
            Book(title=f"T{i}", author=ann, publisher=pub, price=5, published="2020-01-01")
            for i in range(150)  # one batch on every vendor
        )
    lookup, insert = trace.statements
    assert format_sql(lookup.sql) == quoted(
        'SELECT "demo_app_author"."id",\n'
        '       "demo_app_author"."name"\n'
        'FROM "demo_app_author"\n'
        'WHERE "demo_app_author"."id" IN (%s,\n'
        "                                 %s,\n"
        "                                 %s /* ... 1,997 more */)",
        vendor,
    )
    if vendor == "postgresql":  # one array per column (UNNEST), nothing to collapse
        assert format_sql(insert.sql) == (
            'INSERT INTO "demo_app_book" ("title",\n'
            '                             "author_id",\n'
            '                             "publisher_id",\n'
            '                             "price",\n'
            '                             "published")\n'
            "SELECT *\n"
            "FROM UNNEST((%s)::varchar[], (%s)::bigint[], (%s)::bigint[], (%s)::numeric[], "
            '(%s)::date[]) RETURNING "demo_app_book"."id"'
        )
    else:
        # sqlparse lays out a column list in backticks on one line.
        columns = (
            '("title", "author_id", "publisher_id", "price", "published")'
            if vendor == "mysql"
            else '("title",\n'
            '                             "author_id",\n'
            '                             "publisher_id",\n'
            '                             "price",\n'
            '                             "published")'
        )
        assert format_sql(insert.sql) == quoted(
            f'INSERT INTO "demo_app_book" {columns}\n'
            "VALUES (%s, %s, %s, %s, %s),\n"
            "       (%s, %s, %s, %s, %s),\n"
            '       (%s, %s, %s, %s, %s) /* ... 147 more rows */ RETURNING "demo_app_book"."id"',
            vendor,
        )


def test_format_is_cached_on_the_collapsed_text():
    sqldisplay._formatted.cache_clear()
    first = "SELECT a FROM t WHERE b IN (" + ", ".join(["%s"] * 10) + ")"
    second = "SELECT a FROM t WHERE b IN (" + ", ".join(["%s"] * 20) + ")"
    assert format_sql(first) is format_sql(first)
    # Two lists of different lengths still collapse to different texts.
    assert format_sql(second) != format_sql(first)
    info = sqldisplay._formatted.cache_info()
    assert (info.hits, info.misses, info.maxsize) == (2, 2, 512)


def test_format_falls_back_to_the_collapsed_text():
    # sqlparse refuses nesting this deep (SQLParseError).
    sql = "SELECT " + "(" * 2_000 + "1" + ")" * 2_000 + " FROM t WHERE x IN (1, 2, 3, 4)"
    assert format_sql(sql) == collapse(sql)


def test_long_statements_are_not_reindented():
    columns = ", ".join(f'"t"."column_{i}"' for i in range(300))
    sql = f'select {columns} from "t" where "t"."id" = %s'
    assert len(sql) > sqldisplay.REINDENT_LENGTH
    assert format_sql(sql) == f'SELECT {columns} FROM "t" WHERE "t"."id" = %s'


def test_highlight_escapes_and_uses_classes():
    html = highlight('select \'<script>alert("&")</script>\' as "a"')
    assert isinstance(html, SafeString)
    assert conditional_escape(html) is html  # templates will not escape it again
    assert html == (
        '<span class="tracer-sql-k">SELECT</span><span class="tracer-sql-w"> </span>'
        '<span class="tracer-sql-s1">\'&lt;script&gt;alert("&amp;")&lt;/script&gt;\'</span>'
        '<span class="tracer-sql-w"> </span>'
        '<span class="tracer-sql-k">AS</span><span class="tracer-sql-w"> </span>'
        '<span class="tracer-sql-ss">"a"</span>'
    )
    assert "style=" not in html


def test_highlight_reads_backticks_as_names_for_mysql():
    assert highlight("SELECT `a`", vendor="mysql") == (
        '<span class="tracer-sql-k">SELECT</span><span class="tracer-sql-w"> </span>'
        '<span class="tracer-sql-n tracer-sql-n-Quoted">`a`</span>'
    )
    assert ".tracer-sql .tracer-sql-k {" in sqldisplay.stylesheet()


# Interpolation ------------------------------------------------------------------------


def test_interpolated_statement_runs_and_finds_the_same_rows(alias, vendor):
    name = "Ann O'Brien \\ 100%"
    ann = Author.objects.using(alias).create(name=name)
    pub = Publisher.objects.using(alias).create(name="Pub")
    Book.objects.using(alias).create(
        title="50% off", author=ann, publisher=pub, price=Decimal("5.50"), published="2020-01-01"
    )
    with tracer.capture() as trace:
        found = list(
            Book.objects.using(alias)
            .filter(
                author__name=name,
                price__gte=Decimal("5.50"),
                published=datetime.date(2020, 1, 1),
                title__contains="%",
            )
            .values_list("id", flat=True)
        )
    [statement] = trace.statements
    text = interpolate(statement.sql, statement.params, vendor)
    # MySQL reads backslash escapes in strings; the others do not.
    name_literal = "'Ann O''Brien \\\\ 100%'" if vendor == "mysql" else "'Ann O''Brien \\ 100%'"
    title = {
        "sqlite": "\"demo_app_book\".\"title\" LIKE '%\\%%' ESCAPE '\\'",
        "postgresql": '"demo_app_book"."title"::text LIKE \'%\\%%\'',
        "mysql": '"demo_app_book"."title" LIKE BINARY \'%\\\\%%\'',
    }[vendor]
    assert text == quoted(
        'SELECT "demo_app_book"."id" AS "id" FROM "demo_app_book" INNER JOIN "demo_app_author" '
        'ON ("demo_app_book"."author_id" = "demo_app_author"."id") '
        f'WHERE ("demo_app_author"."name" = {name_literal} '
        'AND "demo_app_book"."price" >= 5.50 '
        'AND "demo_app_book"."published" = \'2020-01-01\' '
        f"AND {title})",
        vendor,
    )
    assert len(found) == 1
    with connections[alias].cursor() as cursor:
        cursor.execute(text)  # no params: the driver gets the text as it is
        assert [row[0] for row in cursor.fetchall()] == found


def test_interpolate_named_params_percent_signs_and_types(alias, vendor):
    sql = "SELECT %(a)s, %(b)s, '100%%', %(c)s, %(d)s, %(a)s"
    params = {"a": "it's", "b": None, "c": True, "d": 2.5}
    with tracer.capture() as trace:
        with connections[alias].cursor() as cursor:
            cursor.execute(sql, params)
            expected = cursor.fetchone()
    [statement] = trace.statements
    text = interpolate(statement.sql, statement.params, vendor)
    true = "true" if vendor == "postgresql" else "1"
    assert text == f"SELECT 'it''s', NULL, '100%', {true}, 2.5, 'it''s'"
    with connections[alias].cursor() as cursor:
        cursor.execute(text)
        assert cursor.fetchone() == expected


class Colour(enum.IntEnum):
    RED = 1


@pytest.mark.parametrize(
    ("value", "vendor", "sql"),
    [
        (None, "sqlite", "NULL"),
        (False, "mysql", "0"),
        (False, "postgresql", "false"),
        (Colour.RED, "sqlite", "1"),
        (float("inf"), "postgresql", "'inf'"),
        (Decimal("NaN"), "postgresql", "'NaN'"),
        (Decimal("-1.50"), "sqlite", "-1.50"),
        ("a\\'b", "mysql", "'a\\\\''b'"),
        ("a\\'b", "postgresql", "'a\\''b'"),
        (
            datetime.datetime(2020, 1, 2, 3, 4, 5, 6, tzinfo=datetime.timezone.utc),
            "postgresql",
            "'2020-01-02 03:04:05.000006+00:00'",
        ),
        (datetime.date(2020, 1, 2), "postgresql", "'2020-01-02'"),
        (datetime.time(3, 4), "postgresql", "'03:04:00'"),
        (datetime.timedelta(days=1, seconds=1), "postgresql", "'86401.0 seconds'::interval"),
        (
            uuid.UUID("12345678-1234-5678-1234-567812345678"),
            "postgresql",
            "'12345678-1234-5678-1234-567812345678'",
        ),
        (b"\x00\xff", "postgresql", "'\\x00ff'::bytea"),
        (memoryview(b"\x00\xff"), "sqlite", "X'00ff'"),
        (["a", None, 1], "postgresql", "ARRAY['a', NULL, 1]"),
        ([], "postgresql", "'{}'"),
        ((1, 2), "mysql", "(1, 2)"),
        (object.__new__(type("Thing", (), {"__str__": lambda self: "t'"})), "sqlite", "'t'''"),
    ],
)
def test_literal(value, vendor, sql):
    assert literal(value, vendor) == sql


def test_psycopg_json_params_are_written_as_json():
    from psycopg.types.json import Jsonb

    assert literal(Jsonb({"a": [1, "x"]}), "postgresql") == """'{"a": [1, "x"]}'"""


@pytest.mark.parametrize(
    ("sql", "params", "text"),
    [
        # No params: the driver got the text as it is, %% included.
        ("SELECT '100%%'", None, "SELECT '100%%'"),
        ("SELECT '100%%'", (), "SELECT '100%'"),
        (
            "SELECT %s, %s",
            [1],
            "SELECT %s, %s\n-- could not interpolate the params: 2 placeholders, 1 values",
        ),
        (
            "SELECT %s",
            [1, 2],
            "SELECT %s\n-- could not interpolate the params: 1 placeholders, 2 values",
        ),
        (
            "SELECT %(a)s",
            {"b": 1},
            "SELECT %(a)s\n-- could not interpolate the params: no param named 'a'",
        ),
        (
            "SELECT %s",
            {"a": 1},
            "SELECT %s\n-- could not interpolate the params: "
            "named and positional placeholders and params do not match",
        ),
        ("SELECT %s", DROPPED, f"SELECT %s\n-- params not recorded: {DROPPED}"),
        (
            "SELECT %s",
            5,
            "SELECT %s\n-- could not interpolate the params: TypeError: "
            "'int' object is not iterable",
        ),
    ],
)
def test_interpolate_never_raises(sql, params, text):
    assert interpolate(sql, params, "sqlite") == text


def test_interpolated_value_lists_collapse_when_formatted():
    sql = 'SELECT "a" FROM "t" WHERE "id" IN (' + ", ".join(["%s"] * 2_000) + ")"
    text = interpolate(sql, list(range(2_000)), "postgresql")
    assert text.endswith(", 1998, 1999)")
    assert format_sql(text) == (
        'SELECT "a"\nFROM "t"\nWHERE "id" IN (0,\n               1,\n'
        "               2 /* ... 1,997 more */)"
    )
    assert format_sql(interpolate("SELECT %s", [list(range(100))], "postgresql")) == (
        "SELECT ARRAY[0,\n             1,\n             2 /* ... 97 more */]"
    )


# Redaction ---------------------------------------------------------------------------


def test_params_of_secret_columns_are_redacted_in_orm_statements(alias, vendor):
    with tracer.capture() as trace:
        user = User(username="ann", email="ann@example.com")
        user.set_password("hunter2")
        user.save(using=alias)
        User.objects.using(alias).bulk_create(
            [User(username=f"u{i}", password=f"p{i}") for i in range(2)]
        )
        User.objects.using(alias).filter(password="old").update(password="new")
        list(
            User.objects.using(alias).filter(
                password__in=["a", "b"], username__iexact="Ann", password__contains="z"
            )
        )
        list(User.objects.using(alias).filter(username="ann").values_list("password"))
    save, bulk, update, lookup, values = (
        redacted_params(s.sql, s.params, vendor=vendor) for s in trace.statements
    )
    assert save[0] == MASK
    assert save[1:] == trace.statements[0].params[1:]
    if vendor == "postgresql":  # UNNEST: one array per column
        assert bulk[0] == [MASK, MASK]
        assert bulk[3] == ["u0", "u1"]
    else:
        assert [bulk[0], bulk[3], bulk[10], bulk[13]] == [MASK, "u0", MASK, "u1"]
    assert update == (MASK, MASK)
    assert lookup == (MASK, MASK, MASK, "Ann")
    assert values == ("ann",)  # a secret column selected hides nothing else
    # The statements themselves keep what ran.
    assert trace.statements[2].params == ("new", "old")


def test_interpolate_format_and_highlight_redact_by_default(alias, vendor):
    User.objects.using(alias).create(username="ann", password="x")
    with tracer.capture() as trace:
        User.objects.using(alias).filter(username="ann").update(password="hunter2")
        with connections[alias].cursor() as cursor:
            cursor.execute("UPDATE auth_user SET password = 'hunter2' WHERE username = 'ann'")
    update, raw = trace.statements
    assert interpolate(update.sql, update.params, vendor) == quoted(
        'UPDATE "auth_user" SET "password" = \'********\' WHERE "auth_user"."username" = \'ann\'',
        vendor,
    )
    assert "hunter2" in interpolate(update.sql, update.params, vendor, redact=False)
    assert interpolate(raw.sql, raw.params, vendor) == (
        "UPDATE auth_user SET password = '********' WHERE username = 'ann'"
    )
    assert (
        format_sql(raw.sql)
        == "UPDATE auth_user\nSET password = '********'\nWHERE username = 'ann'"
    )
    assert "hunter2" not in highlight(raw.sql)
    assert "hunter2" in format_sql(raw.sql, redact=False)


@pytest.mark.parametrize(
    ("sql", "redacted"),
    [
        (
            "SELECT * FROM users WHERE password = 'x' AND name = 'bob'",
            "SELECT * FROM users WHERE password = '********' AND name = 'bob'",
        ),
        (
            'SELECT * FROM t WHERE "t"."api_key" IN (\'a\', 1234) OR \'s\' = "secret"',
            "SELECT * FROM t WHERE \"t\".\"api_key\" IN ('********', '********') "
            "OR 's' = \"secret\"",
        ),
        (
            "INSERT INTO t (id, token) VALUES (1, 'x'), (2, 'y')",
            "INSERT INTO t (id, token) VALUES (1, '********'), (2, '********')",
        ),
        (
            "UPDATE t SET auth_token = 'x', name = 'n' WHERE LOWER(token) LIKE '%x%'",
            "UPDATE t SET auth_token = '********', name = 'n' WHERE LOWER(token) LIKE '********'",
        ),
        # Nothing secret bound: unchanged.
        ("SELECT password FROM t WHERE name = 'x'", "SELECT password FROM t WHERE name = 'x'"),
    ],
)
def test_redact_literals(sql, redacted):
    assert redact_literals(sql) == redacted


def test_mysql_double_quoted_strings_are_literals():
    sql = 'SELECT * FROM `u` WHERE `password` = "x" AND `name` = "it\\"s"'
    assert redact_literals(sql, vendor="mysql") == (
        'SELECT * FROM `u` WHERE `password` = \'********\' AND `name` = "it\\"s"'
    )


def test_unmatched_placeholders_hide_every_param():
    # A %s inside a quoted string is still a placeholder to the driver.
    sql = "SELECT * FROM t WHERE password = %s AND note = '%s'"
    assert redacted_params(sql, ["a", "b"]) == [MASK, MASK]
    assert redacted_params("SELECT * FROM t WHERE name = %s", ["a", "b"]) == ["a", "b"]
    assert redacted_params("SELECT %(p)s FROM t WHERE token = %(t)s", {"p": 1, "t": 2}) == {
        "p": 1,
        "t": MASK,
    }


def test_the_columns_come_from_the_setting():
    sql = "UPDATE t SET password = %s, pin = %s"
    assert redacted_params(sql, ["a", "1234"]) == [MASK, "1234"]
    with override_settings(TRACER={"REDACT_COLUMNS": ["PIN"]}):
        assert redacted_params(sql, ["a", "1234"]) == ["a", MASK]
        assert redact_literals("SELECT 1 WHERE pin = 1234") == "SELECT 1 WHERE pin = '********'"
    assert redacted_params(sql, ["a", "1234"], columns=()) == ["a", "1234"]
    assert redacted_params(sql, ("a", "1234"), columns=["pin"]) == ("a", MASK)
