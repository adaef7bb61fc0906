"""Two traces side by side (tracer/views/compare.py)."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from tests.views.conftest import ESCAPED, HOSTILE, URL, empty, n_plus_one, select_related
from tracer.analysis.fingerprint import fingerprint
from tracer.views import compare

pytestmark = pytest.mark.django_db

AUTHOR = (
    "SELECT &quot;demo_app_author&quot;.&quot;id&quot;, &quot;demo_app_author&quot;.&quot;"
    "name&quot; FROM &quot;demo_app_author&quot; WHERE &quot;demo_app_author&quot;.&quot;id"
    "&quot; = ? LIMIT ?"
)


def shape_rows(html: str) -> list[tuple[str, str, str, str]]:
    """(state, before count, after count, change) of each shape row."""
    found = re.findall(
        r'<tr class="tracer-compare-(\w+)">.*?<td class="num">(\d*)</td>\s*'
        r'<td class="num">(\d*)</td>\s*<td class="num">([-+\d]+)</td>',
        html,
        re.DOTALL,
    )
    return found


def test_what_is_new_and_what_went_away(client: Client):
    before = n_plus_one()
    after = select_related()
    response = client.get(f"{URL}compare/", {"a": before.id, "b": after.id})
    html = response.content.decode()
    assert response.status_code == 200
    # The join is new; the plain list and the 3 author loads went away.
    assert shape_rows(html) == [
        ("new", "", "1", "+1"),
        ("gone", "3", "", "-3"),
        ("gone", "1", "", "-1"),
    ]
    assert f'<td><code class="tracer-sql">{AUTHOR}</code></td>' in html
    assert "1 new, 2 gone, 0 ran more often, 0 less often, 0 as often." in html
    assert (
        '<tr><th scope="row">Statements</th><td class="num">4</td><td class="num">1</td>'
        '<td class="num tracer-better">-3</td></tr>'
    ) in html
    assert (
        '<tr><th scope="row">N+1</th><td class="num">1</td><td class="num">0</td>'
        '<td class="num tracer-better">-1</td></tr>'
    ) in html
    assert f'Before: <a href="/__tracer__/trace/{before.id}/">books</a>' in html
    assert f'After: <a href="/__tracer__/trace/{after.id}/">books, fixed</a>' in html
    # The form shows the two picked.
    assert f'<option value="{before.id}" selected>' in html.split('name="b"')[0]
    assert f'<option value="{after.id}" selected>' in html.split('name="b"')[1]


def test_more_and_fewer(client: Client):
    three = n_plus_one(count=3)
    five = n_plus_one(count=5)
    html = client.get(f"{URL}compare/", {"a": three.id, "b": five.id}).content.decode()
    assert shape_rows(html) == [("more", "3", "5", "+2"), ("same", "1", "1", "0")]


def test_ticked_on_the_dashboard_the_earlier_is_before(client: Client):
    before = n_plus_one()
    after = select_related()
    html = client.get(f"{URL}compare/", {"trace": [after.id, before.id]}).content.decode()
    assert f'Before: <a href="/__tracer__/trace/{before.id}/">' in html
    assert shape_rows(html)[0] == ("new", "", "1", "+1")


def test_without_two_traces_the_form(client: Client):
    trace = n_plus_one()
    response = client.get(f"{URL}compare/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "tracer-compare-error" not in html
    assert html.count(f'<option value="{trace.id}">') == 2
    one = client.get(f"{URL}compare/", {"trace": trace.id})
    assert one.status_code == 400
    assert (
        '<p class="tracer-notice" role="alert" id="tracer-compare-error">Pick two traces to '
        "compare (1 picked).</p>"
    ) in one.content.decode()
    assert client.get(f"{URL}compare/", {"a": trace.id, "b": "0" * 32}).status_code == 404
    # A trace's page links here with itself as "before".
    from_trace = client.get(f"{URL}compare/", {"a": trace.id})
    assert from_trace.status_code == 200
    assert f'<option value="{trace.id}" selected>' in from_trace.content.decode()


def test_long_comparisons_are_cut(client: Client, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(compare, "COMPARE_ROWS", 1)
    before = n_plus_one()
    after = select_related()
    html = client.get(f"{URL}compare/", {"a": before.id, "b": after.id}).content.decode()
    assert len(shape_rows(html)) == 1
    assert "and 2 more shapes (smaller changes)." in html


def test_shapes_by_fingerprint():
    trace = n_plus_one()
    data = trace.to_dict()
    shapes = compare.shapes(data)
    sql = [statement["sql"] for statement in data["statements"]]
    assert list(shapes) == [fingerprint(sql[0]), fingerprint(sql[1])]
    assert [(entry["count"], entry["first"]) for entry in shapes.values()] == [(1, 0), (3, 1)]


def test_hostile_labels_are_text(client: Client):
    before = empty(HOSTILE)
    after = empty("after")
    html = client.get(f"{URL}compare/", {"a": before.id, "b": after.id}).content.decode()
    assert "<script>alert" not in html
    assert f'Before: <a href="/__tracer__/trace/{before.id}/">{ESCAPED}</a>' in html
