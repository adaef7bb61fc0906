"""One linear scan of a SQL text: its values (placeholders and literals) and the column
each one is bound to.

``"auth_user"."password" = %s``, ``UPPER("u"."name"::text) = UPPER(%s)``, ``"id" IN
(%s, %s)``, ``UPDATE "t" SET "a" = %s`` and the rows of ``INSERT INTO "t" ("a", "b")
VALUES (...), (...)`` (or PostgreSQL's ``SELECT * FROM UNNEST(...)``) all bind their
values to a column. Redaction (tracer.sqldisplay) and the injection analysis
(tracer.analysis.injection) read the same bindings. It is a heuristic reader, not a
parser: it never fails, and when in doubt it binds a value to the nearest column on
its left, so that redaction errs towards hiding.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from functools import lru_cache

# Standard SQL quoting (SQLite, PostgreSQL): no backslash escapes, so Django's own
# ``ESCAPE '\'`` is one literal. Unterminated strings run to the end: every
# alternative always matches, so a scan never backtracks past a token.
_COMMON = r"""
| (?P<space>\s+)
| (?P<comment>--[^\n]*|/\*(?:[^*]|\*(?!/))*(?:\*/|\Z))
| (?P<param>%\((?P<name>[^)]*)\)s|%s)
| (?P<percent>%%)
| (?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)
| (?P<word>[^\W\d]\w*)
| (?P<op>::|->>|->|\#>>|\#>|<=>|<>|!=|<=|>=|@>|<@|\?\||\?&|&&|@@|!~\*?|~\*|\|\|
    |[=<>+\-*/%|&^~!@\#?])
| (?P<punct>[(),.;\[\]])
| (?P<other>.)
"""
_STANDARD = re.compile(
    r"""
  (?P<string>[EeNnXxBb]?'(?:[^']|'')*(?:'|\Z))
| (?P<ident>"(?:[^"]|"")*(?:"|\Z)|`(?:[^`]|``)*(?:`|\Z))
"""
    + _COMMON,
    re.VERBOSE | re.DOTALL,
)
# MySQL: backslash escapes, and "..." is a string (Django quotes names with backticks).
_MYSQL = re.compile(
    r"""
  (?P<string>[NnXxBb]?'(?:[^'\\]|''|\\.)*(?:'|\Z)|"(?:[^"\\]|""|\\.)*(?:"|\Z))
| (?P<ident>`(?:[^`]|``)*(?:`|\Z))
"""
    + _COMMON,
    re.VERBOSE | re.DOTALL,
)

# Words that end what a column was compared with: clause and boolean keywords.
_RESET = frozenset(
    """
    AND OR WHERE SET ON SELECT FROM THEN WHEN ELSE END CASE LIMIT OFFSET HAVING BY
    RETURNING JOIN UNION EXCEPT INTERSECT ESCAPE INTERVAL AS VALUES USING INTO UPDATE
    DELETE INSERT FETCH FOR EXISTS DISTINCT ORDER GROUP WINDOW OVER PARTITION LEFT
    RIGHT INNER OUTER CROSS FULL NATURAL LATERAL
    """.split()
)
# Words that compare the column on their left with what follows.
_COMPARE_WORDS = frozenset(
    "LIKE ILIKE IN BETWEEN IS NOT SIMILAR TO REGEXP RLIKE GLOB MATCH BINARY".split()
)
# Constants and other keywords: never a column.
_OTHER_KEYWORDS = frozenset(
    """
    NULL TRUE FALSE DEFAULT ASC DESC NULLS FIRST LAST COLLATE ALL ANY SOME ONLY ROWS ROW
    DO NOTHING CONFLICT DUPLICATE KEY IGNORE REPLACE TABLE WITH ZONE UNNEST CURRENT_DATE
    CURRENT_TIME CURRENT_TIMESTAMP
    """.split()
)
_KEYWORDS = _RESET | _COMPARE_WORDS | _OTHER_KEYWORDS
_COMPARE_OPS = frozenset("= <> != < > <= >= <=> ~ ~* !~ !~* @> <@ && ? ?| ?& @@".split())


@dataclass(frozen=True)
class Value:
    """A placeholder or a literal, where it is in the text and what it is bound to."""

    #: "param" (``%s``, ``%(name)s``), "string" or "number".
    kind: str
    start: int
    end: int
    text: str
    #: The column it is bound to, unquoted, as written; None when it is not.
    column: str | None
    #: How: "compare" (``=``, ``LIKE``, ``>`` ...), "in" (an ``IN (...)`` list),
    #: "insert" (a column of an INSERT), "other" (arithmetic), or None.
    via: str | None
    #: A ``%(name)s`` placeholder's name.
    name: str | None = None
    #: The offset of the ``(`` of the IN list it is in, so a list can be taken whole.
    group: int | None = None


def values(sql: str, vendor: str | None = None) -> tuple[Value, ...]:
    """Every placeholder and literal of ``sql`` in order, with its binding."""
    if len(sql) > _CACHED_LENGTH:
        return _values(sql, vendor)
    return _cached_values(sql, vendor)


_CACHED_LENGTH = 4096


def unquote(identifier: str) -> str:
    """``"a""b"`` -> ``a"b``, ```a``` -> ``a``; other text as it is."""
    if len(identifier) >= 2 and identifier[0] in '"`' and identifier[-1] == identifier[0]:
        quote = identifier[0]
        return identifier[1:-1].replace(quote * 2, quote)
    return identifier


# (kind, text, start, end, placeholder name) of one token.
_Token = tuple[str, str, int, int, str | None]


def _tokens(sql: str, vendor: str | None) -> list[_Token]:
    pattern = _MYSQL if vendor == "mysql" else _STANDARD
    return [
        (m.lastgroup or "other", m.group(), m.start(), m.end(), m.group("name"))
        for m in pattern.finditer(sql)
        if m.lastgroup not in ("space", "comment")
    ]


class _Frame:
    """An open parenthesis: ``kind`` is "in" (an IN list), "row" (a VALUES row or
    UNNEST's arguments, bound column by column), "columns" (an INSERT's column list)
    or "group" (anything else)."""

    __slots__ = ("kind", "start", "position", "column")

    def __init__(self, kind: str, start: int, column: str | None) -> None:
        self.kind = kind
        self.start = start
        self.position = 0
        self.column = column


class _Reader:
    """Reads tokens left to right, once, keeping the column the next value is bound to."""

    def __init__(self, sql: str, tokens: list[_Token]) -> None:
        self.sql = sql
        self.tokens = tokens
        self.found: list[Value] = []
        self.stack: list[_Frame] = []
        self.column: str | None = None
        self.via: str | None = None
        self.between = False
        # INSERT progress: "" (none), "table", "columns" (the table was named),
        # "rows-next" (its column list was read), "rows" (VALUES or UNNEST seen).
        self.insert = ""
        self.insert_columns: list[str] | None = None
        self.table_end = -1
        self.rows_depth = -1

    def read(self) -> tuple[Value, ...]:
        tokens = self.tokens
        for i, token in enumerate(tokens):
            previous = tokens[i - 1] if i else None
            following = tokens[i + 1] if i + 1 < len(tokens) else None
            kind, text = token[0], token[1]
            if kind in ("param", "string", "number"):
                self.value(token, previous, tokens[i - 2] if i >= 2 else None)
            elif kind == "ident" or (kind == "word" and text.upper() not in _KEYWORDS):
                self.name(token, previous, following)
            elif kind == "word":
                self.keyword(text.upper())
            elif kind == "op":
                self.operator(token, previous, following)
            elif text == "(":
                self.open(token, previous)
            elif text == ")":
                self.close()
            elif text == ",":
                self.comma()
        return tuple(self.found)

    def value(self, token: _Token, previous: _Token | None, before: _Token | None) -> None:
        kind, _, start, end, name = token
        if kind == "number" and previous is not None and _is_sign(previous, start, before):
            start = previous[2]
        frame = self.stack[-1] if self.stack else None
        group = frame.start if frame is not None and frame.kind == "in" else None
        self.found.append(
            Value(kind, start, end, self.sql[start:end], self.column, self.via, name, group)
        )

    def name(self, token: _Token, previous: _Token | None, following: _Token | None) -> None:
        kind, text = token[0], token[1]
        frame = self.stack[-1] if self.stack else None
        if self.insert == "table" or (
            self.insert == "columns" and previous is not None and previous[1] == "."
        ):
            self.insert, self.table_end = "columns", token[3]  # the table's (qualified) name
        elif frame is not None and frame.kind == "columns":
            if self.insert_columns is not None and (following is None or following[1] != "."):
                self.insert_columns.append(unquote(text))
        elif previous is not None and previous[1] == "::":
            pass  # a type
        elif kind == "word" and following is not None and following[1] == "(":
            pass  # a function
        else:
            self.column, self.via = unquote(text), None

    def keyword(self, word: str) -> None:
        if word == "INSERT":
            self.insert, self.insert_columns = "table", None
        elif word in ("VALUES", "UNNEST") and self.insert in ("columns", "rows-next"):
            self.insert, self.rows_depth = "rows", len(self.stack)
        elif word == "AND" and self.between:
            self.between = False  # BETWEEN x AND y: y is compared too
            return
        if word in _RESET:
            frame = self.stack[-1] if self.stack else None
            if word == "SELECT" and frame is not None and frame.kind == "in":
                frame.kind = "group"  # IN (SELECT ...): a subquery, not a list
            if self.insert == "rows" and word != "VALUES" and len(self.stack) == self.rows_depth:
                self.insert = ""  # RETURNING, ON CONFLICT ...: the rows are over
            self.column, self.via, self.between = None, None, False
        elif word in _COMPARE_WORDS:
            self.via = "in" if word == "IN" else "compare"
            self.between = self.between or word == "BETWEEN"

    def operator(self, token: _Token, previous: _Token | None, following: _Token | None) -> None:
        text = token[1]
        if text in _COMPARE_OPS:
            self.via = "compare"
            last = self.found[-1] if self.found else None
            if last is not None and previous is not None and previous[2] == last.start:
                if last.via is None:  # 'abc' = "col": the left side is compared too
                    self.found[-1] = replace(last, via="compare")
        elif (
            text == "-"
            and following is not None
            and following[0] == "number"
            and _is_sign(token, following[2], previous)
        ):
            pass  # the sign of the number that follows
        elif text != "::":
            self.via = "other"

    def open(self, token: _Token, previous: _Token | None) -> None:
        word = previous[1].upper() if previous is not None and previous[0] == "word" else ""
        start = token[2]
        if word == "IN":
            frame = _Frame("in", start, self.column)
            self.via = "in"
        elif self.insert == "columns" and previous is not None and previous[3] == self.table_end:
            frame = _Frame("columns", start, None)
            self.insert_columns = []
        elif (
            self.insert == "rows"
            and len(self.stack) == self.rows_depth
            and (word in ("VALUES", "UNNEST") or (previous is not None and previous[1] == ","))
        ):
            frame = _Frame("row", start, _nth(self.insert_columns, 0))
            self.column, self.via = frame.column, "insert"
        else:
            frame = _Frame("group", start, None)
        self.stack.append(frame)

    def close(self) -> None:
        if not self.stack:
            return
        frame = self.stack.pop()
        if frame.kind == "columns":
            self.insert = "rows-next"
            self.column, self.via = None, None
        elif frame.kind == "row":
            self.column, self.via = None, None
        # After a group the column stays: UPPER("u"."name") = UPPER(%s).

    def comma(self) -> None:
        frame = self.stack[-1] if self.stack else None
        if frame is None or frame.kind == "group":
            self.column, self.via = None, None
        elif frame.kind == "row":
            frame.position += 1
            frame.column = _nth(self.insert_columns, frame.position)
            self.column, self.via = frame.column, "insert"
        elif frame.kind == "in":
            self.column, self.via = frame.column, "in"


def _values(sql: str, vendor: str | None) -> tuple[Value, ...]:
    return _Reader(sql, _tokens(sql, vendor)).read()


_cached_values = lru_cache(maxsize=2048)(_values)


def _is_sign(minus: _Token, number_start: int, before: _Token | None) -> bool:
    """Whether ``minus`` is a ``-`` sign written against the number at ``number_start``
    (``= -5``, ``(-5``), not a subtraction (``"a" - 5``); ``before`` comes before it."""
    if minus[1] != "-" or minus[3] != number_start:
        return False
    if before is None:
        return True
    kind, text = before[0], before[1]
    return kind == "op" or text in ("(", ",") or (kind == "word" and text.upper() in _KEYWORDS)


def _nth(columns: list[str] | None, index: int) -> str | None:
    return columns[index] if columns is not None and index < len(columns) else None
