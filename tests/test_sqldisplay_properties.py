"""Property-based tests of SQL display (tracer/sqldisplay.py) on arbitrary text: it
never raises, highlighted HTML escapes everything, and cutting follows its rules."""

from __future__ import annotations

import html
import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tracer import sqldisplay

pytestmark = pytest.mark.django_db  # redaction reads the TRACER setting

SQLISH = st.one_of(
    st.text(max_size=200),
    st.lists(
        st.sampled_from(
            [
                "SELECT ",
                "* ",
                "FROM t ",
                "WHERE ",
                "password = ",
                "'x'",
                "'",
                '"',
                "`",
                "%s",
                "%(a)s",
                "%%",
                "IN (",
                "1, ",
                "2",
                ")",
                "VALUES (1, 'a'), ",
                "(2, 'b')",
                "-- c\n",
                "/* c ",
                "*/",
                "<script>",
                "&amp;",
                "\x00",
                "\u202e",
                "e\u0301",
                "\ud800",
                "\\",
                "ARRAY[",
                "]",
                "::int",
                "\n",
            ]
        ),
        max_size=40,
    ).map("".join),
)
VENDORS = st.sampled_from([None, "sqlite", "postgresql", "mysql", "oracle"])
NOTE = re.compile(r"\n/\* \.\.\. truncated: ([\d,]+) more characters \*/\Z")


@given(sql=SQLISH, vendor=VENDORS)
def test_highlight_escapes_everything(sql: str, vendor: Any):
    formatted = sqldisplay.format_sql(sql, vendor=vendor)
    highlighted = str(sqldisplay.highlight(sql, vendor=vendor))
    # Only pygments' own spans are markup; everything else is escaped text.
    text = re.sub(r'<span class="tracer-sql-[\w -]+">|</span>', "", highlighted)
    assert "<" not in text and ">" not in text
    # (pygments drops leading and trailing newlines)
    assert html.unescape(text) == formatted.strip("\n")


@given(sql=SQLISH, limit=st.integers(min_value=1, max_value=300))
def test_collapse_cuts_as_documented(sql: str, limit: int):
    whole = sqldisplay.collapse(sql, limit=10**9)
    cut = sqldisplay.collapse(sql, limit=limit)
    if len(whole) <= limit:
        assert cut == whole
        return
    note = NOTE.search(cut)
    assert note is not None, cut
    assert int(note.group(1).replace(",", "")) == len(whole) - limit
    head = cut[: note.start()]
    # The first `limit` characters, less a comment cut in the middle or half of a
    # doubled quote, plus a closing quote.
    assert len(head) <= limit + 1
    assert whole.startswith(head) or whole.startswith(head[:-1])


@given(
    sql=SQLISH,
    params=st.one_of(
        st.none(),
        st.text(max_size=10),
        st.lists(st.one_of(st.none(), st.text(max_size=10), st.integers(), st.binary(max_size=5))),
        st.dictionaries(st.text(max_size=3), st.integers(), max_size=3),
    ),
    vendor=st.sampled_from(["sqlite", "postgresql", "mysql"]),
)
def test_interpolate_never_raises(sql: str, params: Any, vendor: str):
    written = sqldisplay.interpolate(sql, params, vendor)
    assert isinstance(written, str)
