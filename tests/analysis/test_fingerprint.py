"""Fingerprints: SQL shapes with the values taken out."""

from __future__ import annotations

import hashlib

import pytest

from tracer.analysis.fingerprint import fingerprint, normalize


@pytest.mark.parametrize(
    ("sql", "shape"),
    [
        (
            'SELECT "a"."id" FROM "a" WHERE "a"."id" IN (%s, %s, %s) LIMIT 21',
            'SELECT "a"."id" FROM "a" WHERE "a"."id" IN (...) LIMIT ?',
        ),
        (
            'SELECT "a"."id" FROM "a" WHERE "a"."id" IN (%s)',
            'SELECT "a"."id" FROM "a" WHERE "a"."id" IN (...)',
        ),
        (
            'INSERT INTO "t" ("a", "b") VALUES (%s, %s), (%s, %s), (%s, %s)',
            'INSERT INTO "t" ("a", "b") VALUES (...)',
        ),
        # Quoted identifiers keep their digits, quotes and spaces; literals go.
        (
            'SELECT "col 1", "t""2".x3 FROM "t""2" WHERE "x" = 10',
            'SELECT "col 1", "t""2".x3 FROM "t""2" WHERE "x" = ?',
        ),
        ("SELECT `a1` FROM `t` WHERE `b` = 'x'", "SELECT `a1` FROM `t` WHERE `b` = ?"),
        # Every placeholder style, and casts kept.
        ("SELECT $1, :name, %(p)s, ?, x::text FROM t", "SELECT ?, ?, ?, ?, x::text FROM t"),
        # String literals with escaped quotes, prefixed literals, numbers of each form.
        (
            "SELECT 'it''s', E'a\\'b', X'ff', N'n', 1.5e3, .5, -2 FROM t1",
            "SELECT ?, ?, ?, ?, ?, ?, -? FROM t1",
        ),
        # Comments (sqlcommenter's included) and whitespace.
        (
            "SELECT 1 /* traceparent='00-ab' */\n  FROM t -- note\n WHERE a = 2",
            "SELECT ? FROM t WHERE a = ?",
        ),
        # A list that holds more than values is not collapsed.
        ("SELECT COALESCE(a, %s) FROM t", "SELECT COALESCE(a, ?) FROM t"),
    ],
)
def test_normalize(sql, shape):
    assert normalize(sql) == shape


def test_similar_statements_share_a_fingerprint():
    assert fingerprint("SELECT * FROM t WHERE id IN (%s, %s)") == fingerprint(
        "SELECT  *  FROM t WHERE id IN (%s)"
    )
    assert fingerprint("SELECT * FROM t WHERE id = 1") == fingerprint(
        "SELECT * FROM t WHERE id = 2"
    )
    assert fingerprint("SELECT * FROM t WHERE id = 1") != fingerprint(
        "SELECT * FROM u WHERE id = 1"
    )
    # Stable across processes and versions: a digest of the shape, not hash().
    assert fingerprint("SELECT 1") == hashlib.blake2b(b"SELECT ?", digest_size=8).hexdigest()


def test_huge_statements_are_not_cached_and_stay_fast():
    from tracer.analysis import fingerprint as module

    sql = "SELECT * FROM t WHERE id IN (" + ", ".join(["%s"] * 20_000) + ")"
    before = module._cached_normalize.cache_info().currsize
    assert normalize(sql) == "SELECT * FROM t WHERE id IN (...)"
    assert module._cached_normalize.cache_info().currsize == before


def test_a_backslash_is_an_ordinary_character_in_standard_strings():
    # SQLite's LIKE lookups end in ESCAPE '\': the string is one backslash.
    sql = """SELECT * FROM "t" WHERE "a" LIKE %s ESCAPE '\\' AND "b" LIKE %s ESCAPE '\\'"""

    assert normalize(sql) == 'SELECT * FROM "t" WHERE "a" LIKE ? ESCAPE ? AND "b" LIKE ? ESCAPE ?'


def test_a_backslash_escapes_in_postgresql_e_strings_and_on_mysql():
    assert normalize("SELECT E'it\\'s', 'x'") == "SELECT ?, ?"
    assert normalize("SELECT 'it\\'s', 'secret'", "mysql") == "SELECT ?, ?"
    assert fingerprint("SELECT 'a\\'b'", "mysql") == fingerprint("SELECT 'c'", "mysql")
