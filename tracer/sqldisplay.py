"""SQL for people to read: collapsed, formatted, highlighted, interpolated, redacted.

Nothing here runs while recording. A statement is collapsed first (long value lists and
bulk-insert rows shortened, huge texts cut), so that sqlparse and pygments, which are
slow on big inputs, only ever see a few kilobytes; their results are cached on the
collapsed text, which keeps the caches small too.

Values bound to columns whose names contain one of ``TRACER["REDACT_COLUMNS"]``
(``password``, ``token``, ``secret``, ``key`` by default) are shown as ``********``:
placeholders' params (``redacted_params``) and literals written in the SQL text
(``redact_literals``). ``format_sql``, ``highlight`` and ``interpolate`` redact unless
told not to.
"""

from __future__ import annotations

import datetime
import json
import math
import re
import uuid
from collections.abc import Iterable, Mapping
from decimal import Decimal
from functools import lru_cache
from itertools import islice
from typing import Any

import sqlparse
from django.utils.safestring import SafeString, mark_safe
from pygments import highlight as pygmentize
from pygments.formatters import HtmlFormatter, TerminalFormatter
from pygments.lexers import MySqlLexer, SqlLexer

from tracer import sqlscan

#: What a redacted value is shown as.
MASK = "********"
#: Items of a value list (and rows of a bulk insert) kept when it is collapsed.
KEEP = 3
#: Characters kept of a statement that is still longer once collapsed.
MAX_LENGTH = 10_000
#: sqlparse's reindenting costs about 6 ms per 1,000 characters (on a slow machine);
#: longer texts only get their keywords upper-cased.
REINDENT_LENGTH = 4_000
#: The prefix of the CSS classes of highlighted SQL (``tracer-sql-k`` for a keyword).
CSS_PREFIX = "tracer-sql-"

# Collapsing --------------------------------------------------------------------------
#
# One pass of one regular expression. Quoted text and comments always match (to the
# end of the text if unterminated), so nothing inside them is collapsed; the lists and
# rows are sequences whose repetitions each start with a character the one before
# cannot consume, so a failed attempt gives back at most what it read, once: linear
# time, no catastrophic backtracking.

_V = r"""(?:'(?:[^']|'')*'|%s|%\([^)]*\)s|[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?
    |NULL|TRUE|FALSE)(?:::\w+)?"""
_ROW = r"""\((?:[^()'"]|'(?:[^']|'')*'|"(?:[^"]|"")*"|\((?:[^()'"]|'(?:[^']|'')*')*\))*\)"""
_COLLAPSE = re.compile(
    rf"""
      (?P<skip>'(?:[^']|'')*(?:'|\Z)|"(?:[^"]|"")*(?:"|\Z)|`[^`]*(?:`|\Z)
        |--[^\n]*|/\*(?:[^*]|\*(?!/))*(?:\*/|\Z))
    | (?P<list>(?P<open>\bIN\s*\(|\bARRAY\s*\[)\s*{_V}(?:\s*,\s*{_V})*\s*[)\]])
    | (?P<rows>\bVALUES\s*{_ROW}(?:\s*,\s*{_ROW})*)
    """,
    re.VERBOSE | re.IGNORECASE,
)
_ITEM = re.compile(_V, re.VERBOSE | re.IGNORECASE)
_ROW_ITEM = re.compile(_ROW, re.VERBOSE)
_QUOTED = re.compile(
    r"""'(?:[^']|'')*(?:'|\Z)|"(?:[^"]|"")*(?:"|\Z)|`[^`]*(?:`|\Z)
    |/\*(?:[^*]|\*(?!/))*(?:\*/|\Z)|--[^\n]*""",
    re.VERBOSE,
)


def collapse(sql: str, keep: int = KEEP, limit: int = MAX_LENGTH) -> str:
    """Shorten what makes statements huge but says little.

    ``IN (%s, %s, ... 2,000 of them)`` becomes ``IN (%s, %s, %s /* ... 1,997 more */)``
    (also for literal values and ``ARRAY[...]``), ``VALUES (...), (...), ...`` keeps
    ``keep`` rows and says how many more there were, and a text still longer than
    ``limit`` characters is cut with a note of how much was left out. The notes are
    SQL comments, so the result still formats and highlights as SQL.
    """

    def shorten(match: re.Match[str]) -> str:
        text = match.group()
        if match.group("list") is not None:
            opening = match.group("open")
            items = _ITEM.finditer(text, len(opening))
            kept = [item.group() for item in islice(items, keep)]
            more = sum(1 for _ in items)
            if not more:
                return text
            return f"{opening}{', '.join(kept)} /* ... {more:,} more */{text[-1]}"
        if match.group("rows") is not None:
            rows = _ROW_ITEM.finditer(text, len("VALUES"))
            kept = [row.group() for row in islice(rows, keep)]
            more = sum(1 for _ in rows)
            if not more:
                return text
            return f"{text[: len('VALUES')]} {', '.join(kept)} /* ... {more:,} more rows */"
        return text

    text = _COLLAPSE.sub(shorten, sql)
    if len(text) > limit:
        text = _cut(text, limit)
    return text


def _cut(text: str, limit: int) -> str:
    """The first ``limit`` characters, with a quoted name or string cut in the middle
    closed again and a comment cut in the middle left out."""
    head = text[:limit]
    match = _QUOTED.search(text)
    while match is not None and match.end() <= limit:
        match = _QUOTED.search(text, match.end())
    if match is not None and match.start() < limit:
        quote = match.group()[0]
        if quote in "'\"`":
            body = head[match.start() + 1 :]
            if (len(body) - len(body.rstrip(quote))) % 2:
                head = head[:-1]  # half of a doubled quote
            head += quote
        else:
            head = head[: match.start()]
    return f"{head}\n/* ... truncated: {len(text) - limit:,} more characters */"


# Formatting and highlighting ------------------------------------------------------------


def format_sql(sql: str, *, vendor: str | None = None, redact: bool = True) -> str:
    """The statement collapsed, redacted and laid out by sqlparse (keywords upper-cased,
    clauses on their own lines). If sqlparse fails, the collapsed text."""
    return _formatted(collapse(sql), vendor, _columns(None) if redact else ())


@lru_cache(maxsize=512)
def _formatted(text: str, vendor: str | None, columns: tuple[str, ...]) -> str:
    if columns:
        text = redact_literals(text, columns, vendor=vendor)
    try:
        if len(text) > REINDENT_LENGTH:
            return str(sqlparse.format(text, keyword_case="upper"))
        return str(sqlparse.format(text, reindent=True, keyword_case="upper"))
    except Exception:
        return text


def highlight(sql: str, *, vendor: str | None = None, redact: bool = True) -> SafeString:
    """``format_sql()`` as HTML: ``<span>`` elements with CSS classes (prefix
    ``CSS_PREFIX``; see ``stylesheet()``), no inline styles, no wrapping element."""
    return _highlighted(format_sql(sql, vendor=vendor, redact=redact), vendor)


@lru_cache(maxsize=512)
def _highlighted(text: str, vendor: str | None) -> SafeString:
    formatter = HtmlFormatter(nowrap=True, classprefix=CSS_PREFIX)
    # pygments escapes &, < and > in every token it writes (quotes need no escaping in
    # element content).
    return mark_safe(pygmentize(text, _lexer(vendor), formatter).rstrip("\n"))


def terminal_highlight(text: str, vendor: str | None) -> str:
    """SQL text (laid out already) with ANSI colours, for a terminal."""
    return pygmentize(text, _lexer(vendor), TerminalFormatter()).rstrip("\n")


def _lexer(vendor: str | None) -> SqlLexer:
    # The generic lexer reads backticks as operators; MySQL's reads them as names.
    return MySqlLexer() if vendor == "mysql" else SqlLexer()


def stylesheet(selector: str = ".tracer-sql", style: str = "default") -> str:
    """CSS for highlighted SQL inside ``selector``, from a pygments style."""
    return str(HtmlFormatter(classprefix=CSS_PREFIX, style=style).get_style_defs(selector))


# Interpolation -------------------------------------------------------------------------

# What the drivers substitute: %% and %s / %(name)s, also inside quotes (psycopg,
# mysqlclient and Django's SQLite cursor all do), plus psycopg's %b and %t.
_PLACEHOLDER = re.compile(r"%%|%\(([^)]*)\)s|%s")
_PLACEHOLDER_PG = re.compile(r"%%|%\(([^)]*)\)[sbt]|%[sbt]")


def interpolate(sql: str, params: Any, vendor: str, *, redact: bool = True) -> str:
    """The statement with its params written in as SQL literals, for reading only.

    ``%s`` and ``%(name)s`` take the params in order or by name and ``%%`` becomes
    ``%``, as the drivers do; with ``params=None`` the SQL went to the driver as it
    is and is returned as it is. Never raises: when placeholders and params do not
    match, or params were not recorded, the SQL comes back with a ``--`` note.
    For ``executemany`` statements pass one row of params.
    """
    try:
        if redact:
            sql = redact_literals(sql, vendor=vendor)
        if params is None:
            return sql
        if isinstance(params, str):  # tracer.recorder.DROPPED, tracer.trace.UNRECORDED
            return f"{sql}\n-- params not recorded: {params}"
        if redact:
            params = redacted_params(sql, params, vendor=vendor)
        return _interpolated(sql, params, vendor)
    except Exception as exc:  # display only: never fail the page
        return f"{sql}\n-- could not interpolate the params: {type(exc).__name__}: {exc}"


def _interpolated(sql: str, params: Any, vendor: str) -> str:
    named = isinstance(params, Mapping)
    values: Any = params if named else list(params)
    pieces: list[str] = []
    position = 0
    used = 0
    problem = ""
    pattern = _PLACEHOLDER_PG if vendor == "postgresql" else _PLACEHOLDER
    for match in pattern.finditer(sql):
        pieces.append(sql[position : match.start()])
        position = match.end()
        if match.group() == "%%":
            pieces.append("%")
            continue
        name = match.group(1)
        if (name is not None) != named:
            problem = "named and positional placeholders and params do not match"
        elif name is not None:
            if name not in values:
                problem = f"no param named {name!r}"
            else:
                pieces.append(literal(values[name], vendor))
                continue
        elif used < len(values):
            pieces.append(literal(values[used], vendor))
            used += 1
            continue
        else:
            used += 1
        pieces.append(match.group())
    pieces.append(sql[position:])
    if not named and used != len(values) and not problem:
        problem = f"{used} placeholders, {len(values)} values"
    if problem:
        return f"{sql}\n-- could not interpolate the params: {problem}"
    return "".join(pieces)


def literal(value: Any, vendor: str) -> str:
    """A param as the SQL literal the driver would send (close enough to paste)."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        if vendor == "postgresql":
            return "true" if value else "false"
        return "1" if value else "0"
    if isinstance(value, int):
        return int.__repr__(value)  # not an IntEnum's name
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else _quote(repr(value), vendor)
    if isinstance(value, Decimal):
        return str(value) if value.is_finite() else _quote(str(value), vendor)
    if isinstance(value, str):
        return _quote(value, vendor)
    if isinstance(value, datetime.datetime):
        return _quote(value.isoformat(sep=" "), vendor)
    if isinstance(value, (datetime.date, datetime.time)):
        return _quote(value.isoformat(), vendor)
    if isinstance(value, datetime.timedelta):
        if vendor == "postgresql":
            return f"'{value.total_seconds()} seconds'::interval"
        return _quote(str(value), vendor)
    if isinstance(value, uuid.UUID):
        return _quote(str(value), vendor)
    if isinstance(value, (bytes, bytearray, memoryview)):
        hexadecimal = bytes(value).hex()
        return f"'\\x{hexadecimal}'::bytea" if vendor == "postgresql" else f"X'{hexadecimal}'"
    if isinstance(value, (list, tuple)):
        items = ", ".join(literal(item, vendor) for item in value)
        if vendor == "postgresql":
            return f"ARRAY[{items}]" if items else "'{}'"
        return f"({items})"
    if type(value).__name__ in ("Json", "Jsonb") and hasattr(value, "obj"):
        return _quote(json.dumps(value.obj, default=str), vendor)  # psycopg's JSON wrappers
    return _quote(str(value), vendor)


def _quote(text: str, vendor: str | None) -> str:
    if vendor == "mysql":
        text = text.replace("\\", "\\\\")  # MySQL reads backslash escapes in strings
    return "'" + text.replace("'", "''") + "'"


# Redaction -----------------------------------------------------------------------------


def redacted_params(
    sql: str, params: Any, columns: Iterable[str] | None = None, *, vendor: str | None = None
) -> Any:
    """A copy of ``params`` with the values bound to secret-looking columns (names
    containing one of ``columns``, by default ``TRACER["REDACT_COLUMNS"]``) replaced
    by ``MASK``; an array param (PostgreSQL's bulk insert) item by item.

    When the placeholders found in ``sql`` cannot be matched one to one with the
    params, and the SQL names such a column, every param is masked rather than risk
    showing one. For ``executemany`` statements pass one row of params.
    """
    parts = _columns(columns)
    if not parts or params is None or isinstance(params, str) or not isinstance(sql, str):
        return params
    if not _mentions(sql, parts):
        return params
    placeholders = [v for v in sqlscan.values(sql, vendor) if v.kind == "param"]
    if isinstance(params, Mapping):
        secret = {v.name for v in placeholders if v.name is not None and _secret(v, parts)}
        if any(v.name is None for v in placeholders):
            secret = set(params)
        return {key: _mask(value) if key in secret else value for key, value in params.items()}
    given = list(params)
    if len(placeholders) != len(given) or any(v.name is not None for v in placeholders):
        masked = [_mask(value) for value in given]
    else:
        masked = [
            _mask(value) if _secret(v, parts) else value
            for v, value in zip(placeholders, given, strict=True)
        ]
    return tuple(masked) if isinstance(params, tuple) else masked


def redact_literals(
    sql: str, columns: Iterable[str] | None = None, *, vendor: str | None = None
) -> str:
    """``sql`` with the literals bound to secret-looking columns written as
    ``'********'``: ``password = 'x'``, ``"api_key" IN ('a', 'b')``, the columns of
    ``INSERT INTO t (token) VALUES ('x')``."""
    parts = _columns(columns)
    if not parts or not isinstance(sql, str) or not _mentions(sql, parts):
        return sql
    pieces: list[str] = []
    position = 0
    for value in sqlscan.values(sql, vendor):
        if value.kind != "param" and _secret(value, parts):
            pieces.append(sql[position : value.start])
            pieces.append(f"'{MASK}'")
            position = value.end
    if not pieces:
        return sql
    pieces.append(sql[position:])
    return "".join(pieces)


def _columns(columns: Iterable[str] | None) -> tuple[str, ...]:
    if columns is None:
        from tracer.conf import get_config

        return get_config().redact_columns
    return tuple(part.lower() for part in columns)


def _mentions(sql: str, parts: tuple[str, ...]) -> bool:
    # Most statements name no such column: one pass over the text, no scan.
    lowered = sql.lower()
    return any(part in lowered for part in parts)


def is_secret(name: str | None, columns: Iterable[str] | None = None) -> bool:
    """Whether a column or lookup name (``password``, ``user__api_key__in``) contains
    one of ``columns`` (by default ``TRACER["REDACT_COLUMNS"]``), any case."""
    if not name:
        return False
    lowered = name.lower()
    return any(part in lowered for part in _columns(columns))


def _secret(value: sqlscan.Value, parts: tuple[str, ...]) -> bool:
    return is_secret(value.column, parts)


def _mask(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [MASK] * len(value)
    return MASK
