"""Statement fingerprints: the SQL's shape, with its values taken out.

Two statements are *similar* when their fingerprints are equal: the same SQL apart from
literal values, placeholders and the length of value lists (``IN (%s, %s, %s)`` and
``IN (%s)`` are one shape; so are bulk inserts of 2 and of 100 rows). Computed lazily
(never on the recording path) and cached per SQL text.
"""

from __future__ import annotations

import hashlib
import re
from functools import lru_cache

# One pass over the SQL. Quoted identifiers are kept as they are; comments dropped;
# string, numeric and hex literals and every placeholder style become "?". In standard
# SQL strings a backslash is an ordinary character (SQLite's LIKE ... ESCAPE '\'); in
# PostgreSQL's E'...' strings, and in every MySQL string, it escapes the next one.
_PATTERN = r"""
      (?P<ident>"(?:[^"]|"")*"|`(?:[^`]|``)*`)             # "name", `name`
    | (?P<comment>/\*.*?\*/|--[^\n]*)                      # /* ... */ (sqlcommenter), -- ...
    | (?P<string>STRINGS)                                  # 'text', E'...', X'ff', N'...'
    | (?P<param>%\([^)]*\)s|%s|\$\d+|\?|(?<![:\w]):[A-Za-z_]\w*)  # %s %(n)s $1 ? :name
    | (?P<number>(?<![\w.])(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?(?![\w.]))
    | (?P<space>\s+)
    """
_STANDARD_STRINGS = r"[Ee]'(?:[^'\\]|''|\\.)*'|[XxBbNn]?'(?:[^']|'')*'"
_BACKSLASH_STRINGS = r"[XxBbNn]?'(?:[^'\\]|''|\\.)*'"
_TOKENS = re.compile(_PATTERN.replace("STRINGS", _STANDARD_STRINGS), re.VERBOSE | re.DOTALL)
#: MySQL and MariaDB (unless NO_BACKSLASH_ESCAPES is set, which Django does not do).
_MYSQL_TOKENS = re.compile(_PATTERN.replace("STRINGS", _BACKSLASH_STRINGS), re.VERBOSE | re.DOTALL)
# A parenthesised list of values only: "(?)", "(?, ?, ?)".
_VALUE_LIST = re.compile(r"\(\s*\?(?:\s*,\s*\?)*\s*\)")
# Repeated value lists: VALUES (...), (...), (...).
_ROWS = re.compile(r"\(\.\.\.\)(?:\s*,\s*\(\.\.\.\))+")


def _token(match: re.Match[str]) -> str:
    kind = match.lastgroup
    if kind == "ident":
        return match.group()
    if kind == "comment":
        return " "
    if kind == "space":
        return " "
    return "?"


def normalize(sql: str, vendor: str | None = None) -> str:
    """The SQL with literals and placeholders as ``?`` and value lists as ``(...)``.

    ``vendor`` (``connection.vendor``) says how strings are quoted: backslashes escape
    on ``"mysql"`` only."""
    mysql = vendor == "mysql"
    if len(sql) > _CACHED_LENGTH:  # a huge statement is not worth keeping around
        return _normalize(sql, mysql)
    return _cached_normalize(sql, mysql)


# Statements up to this many characters are cached (4,096 of them at most).
_CACHED_LENGTH = 4096


def _normalize(sql: str, mysql: bool = False) -> str:
    text = (_MYSQL_TOKENS if mysql else _TOKENS).sub(_token, sql)
    text = _VALUE_LIST.sub("(...)", text)
    text = _ROWS.sub("(...)", text)
    return " ".join(text.split())


_cached_normalize = lru_cache(maxsize=4096)(_normalize)


def fingerprint(sql: str, vendor: str | None = None) -> str:
    """A short stable id of the SQL's shape (16 hex digits of its normalized form)."""
    return _digest(normalize(sql, vendor))


@lru_cache(maxsize=4096)
def _digest(normalized: str) -> str:
    return hashlib.blake2b(normalized.encode(), digest_size=8).hexdigest()
