"""Values of a SQL text and the columns they are bound to."""

from __future__ import annotations

import pytest

from tracer.sqlscan import unquote, values


def bindings(sql: str, vendor: str | None = None) -> list[tuple[str, str | None, str | None]]:
    return [(v.text, v.column, v.via) for v in values(sql, vendor)]


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        # SQLite's LIKE with its ESCAPE '\' (one literal, not an escaped quote).
        (
            'SELECT "u"."id" FROM "u" WHERE ("u"."password" LIKE %s ESCAPE \'\\\' '
            'AND "u"."password" IN (%s, %s) AND "u"."name" = %s) LIMIT 21',
            [
                ("%s", "password", "compare"),
                ("'\\'", None, None),
                ("%s", "password", "in"),
                ("%s", "password", "in"),
                ("%s", "name", "compare"),
                ("21", None, None),
            ],
        ),
        # PostgreSQL's casts and functions around both sides.
        (
            'SELECT 1 FROM "u" WHERE ("u"."password"::text LIKE %s '
            'AND UPPER("u"."username"::text) = UPPER(%s))',
            [("1", None, None), ("%s", "password", "compare"), ("%s", "username", "compare")],
        ),
        # MySQL's LIKE BINARY, UPDATE ... SET, a negative number.
        (
            "UPDATE `u` SET `password` = %s, `n` = -5 WHERE `u`.`password` LIKE BINARY %s",
            [("%s", "password", "compare"), ("-5", "n", "compare"), ("%s", "password", "compare")],
        ),
        # Bulk insert rows, column by column; RETURNING ends them.
        (
            'INSERT INTO "s"."u" ("password", "name") VALUES (%s, %s), (%s, NOW()) '
            'RETURNING "u"."id"',
            [
                ("%s", "password", "insert"),
                ("%s", "name", "insert"),
                ("%s", "password", "insert"),
            ],
        ),
        # PostgreSQL's bulk insert: one array per column.
        (
            'INSERT INTO "u" ("password", "joined") SELECT * FROM '
            "UNNEST((%s)::varchar[], (%s)::timestamp with time zone[])",
            [("%s", "password", "insert"), ("%s", "joined", "insert")],
        ),
        # Comparisons written either way round, BETWEEN, IN (SELECT ...).
        (
            "SELECT * FROM t WHERE 'x' = name AND n BETWEEN 5 AND 10 "
            "AND k IN (SELECT k FROM s WHERE z = 2)",
            [
                ("'x'", None, "compare"),
                ("5", "n", "compare"),
                ("10", "n", "compare"),
                ("2", "z", "compare"),
            ],
        ),
        # Function arguments, arithmetic and INTERVAL: values, but not compared.
        (
            "SELECT DATE_TRUNC('month', d), COALESCE(a, 'x') FROM t "
            "WHERE d > NOW() - INTERVAL '1 day' AND p * 2 > 10",
            [
                ("'month'", None, None),
                ("'x'", None, None),
                ("'1 day'", None, None),
                ("2", "p", "other"),
                ("10", "p", "compare"),
            ],
        ),
        # JSON paths: keys are not compared, the value is.
        (
            "SELECT 1 FROM t WHERE data->>'name' = 'bob' AND data #> '{a}' ?| %s",
            [
                ("1", None, None),
                ("'name'", "data", "other"),
                ("'bob'", "data", "compare"),
                ("'{a}'", "data", "other"),
                ("%s", "data", "compare"),
            ],
        ),
        # INSERT ... SELECT: no rows.
        (
            "INSERT INTO t (a) SELECT COUNT(*) FROM s WHERE b = %s",
            [("%s", "b", "compare")],
        ),
        # Named placeholders; comments skipped.
        (
            'SELECT %(a)s /* = %s */ FROM t WHERE "token" = %(b)s -- %s',
            [("%(a)s", None, None), ("%(b)s", "token", "compare")],
        ),
    ],
)
def test_bindings(sql, expected):
    assert bindings(sql) == expected


def test_mysql_strings():
    assert bindings("SELECT 1 FROM t WHERE password = 'it\\'s' AND `name` = \"bob\"", "mysql") == [
        ("1", None, None),
        ("'it\\'s'", "password", "compare"),
        ('"bob"', "name", "compare"),
    ]
    # Elsewhere "..." is a name and a backslash is just a character.
    assert bindings("SELECT 1 FROM t WHERE \"name\" = 'a\\' AND x = 2") == [
        ("1", None, None),
        ("'a\\'", "name", "compare"),
        ("2", "x", "compare"),
    ]


def test_values_know_their_place_and_list():
    sql = "SELECT 1 FROM t WHERE a IN (%s, 'x') AND b = %(n)s"
    first, second, third, fourth = values(sql)
    assert (first.kind, first.start, first.end, first.group) == ("number", 7, 8, None)
    assert (second.kind, sql[second.start : second.end], second.group) == ("param", "%s", 27)
    assert (third.kind, third.text, third.group) == ("string", "'x'", 27)
    assert (fourth.name, fourth.group) == ("n", None)


def test_unterminated_text_does_not_fail():
    assert bindings("SELECT * FROM t WHERE a = 'open") == [("'open", "a", "compare")]
    assert bindings('SELECT ("a" = %s') == [("%s", "a", "compare")]
    assert bindings("SELECT ) = 1, (((") == [("1", None, "compare")]


def test_unquote():
    assert [unquote(x) for x in ('"a""b"', "`a``b`", "plain", '"')] == ['a"b', "a`b", "plain", '"']
