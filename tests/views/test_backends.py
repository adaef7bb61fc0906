"""The backend anatomy page: two aliases side by side, read without a connection,
where they differ marked; ``?connect=1`` reads what needs the server."""

from __future__ import annotations

import html
import re

import pytest
from django.conf import settings
from django.db import OperationalError, connections
from django.test import override_settings

import tracer
from tracer.anatomy import NEEDS_SERVER
from tracer.views.backends import chosen

pytestmark = pytest.mark.django_db(databases="__all__")

PAGE = "/__tracer__/backends/"


@pytest.fixture
def postgresql() -> None:
    if "postgresql" in settings.UNAVAILABLE:
        pytest.skip(settings.UNAVAILABLE["postgresql"])


@pytest.fixture
def never_connect(monkeypatch: pytest.MonkeyPatch) -> None:
    """Opening any of the aliases' own connections fails the test."""

    def refuse() -> None:
        raise AssertionError("the page opened a connection")

    for alias in connections:
        monkeypatch.setattr(connections[alias], "ensure_connection", refuse)


def section(page: str, name: str) -> str:
    """The HTML of the page's section ``tracer-backend-<name>``."""
    start = page.index(f'aria-labelledby="tracer-backend-{name}"')
    return page[start : page.index("</section>", start)]


def table(fragment: str, number: int = 0) -> str:
    """The HTML of the ``number``-th table in ``fragment``."""
    return fragment.split("<table")[number + 1].split("</table>")[0]


def rows(fragment: str) -> dict[str, tuple[bool, list[list[str]]]]:
    """Each row of the tables in ``fragment``: whether it is marked as differing, and
    each cell's lines of text (its source links left out)."""
    found = {}
    for row in re.findall(r"<tr[ >].*?</tr>", fragment, flags=re.S):
        name = re.search(r'<th scope="row"><code>([^<]+)</code>', row)
        if name is None:
            continue
        cells = []
        for cell in re.findall(r"<td>(.*?)</td>", row, flags=re.S):
            cell = re.sub(r'<span class="tracer-source-links">.*?</span>(?=$)', "", cell)
            cell = re.sub(r"</code>|</span>", "\n", cell)
            lines = html.unescape(re.sub(r"<[^>]+>", "", cell)).split("\n")
            cells.append([line for line in lines if line])
        found[html.unescape(name.group(1))] = ('class="tracer-differs"' in row, cells)
    return found


def test_sqlite_and_postgresql_side_by_side(client, postgresql, never_connect):
    response = client.get(PAGE, {"a": "default", "b": "postgresql"})

    assert response.status_code == 200
    page = response.content.decode()
    flags = rows(section(page, "flags"))
    assert {name: flags[name] for name in FLAGS} == FLAGS
    lookups = rows(table(section(page, "lookups")))
    assert {name: lookups[name] for name in LOOKUPS} == LOOKUPS
    patterns = rows(table(section(page, "lookups"), 1))
    assert patterns["contains"] == (
        True,
        [["LIKE '%%' || {} || '%%' ESCAPE '\\'"], ["LIKE '%%' || {} || '%%'"]],
    )
    types = rows(section(page, "types"))
    assert {name: types[name] for name in TYPES} == TYPES
    operations = rows(section(page, "operations"))
    assert operations["quote_name('book')"] == (False, [['"book"'], ['"book"']])
    assert operations["max_name_length()"] == (True, [["None"], ["63"]])
    assert operations["limit_offset_sql(10, 20)"] == (
        False,
        [["LIMIT 10 OFFSET 10"], ["LIMIT 10 OFFSET 10"]],
    )


FLAGS = {
    "nulls_order_largest": (True, [["False"], ["True"]]),
    "order_by_nulls_first": (True, [["True"], ["False"]]),
    "supports_order_by_nulls_modifier": (False, [["True"], ["True"]]),
    "has_select_for_update": (True, [["False"], ["True"]]),
    "has_select_for_update_skip_locked": (True, [["False"], ["True"]]),
    "has_select_for_no_key_update": (True, [["False"], ["True"]]),
    # A property on SQLite (its library's version), read without a connection.
    "can_return_columns_from_insert": (False, [["True"], ["True"]]),
    "max_query_params": (True, [["999"], ["None"]]),
    "can_rollback_ddl": (False, [["True"], ["True"]]),
    "has_native_uuid_field": (True, [["False"], ["True"]]),
    # SQLite asks the database whether it has JSON: not read, so not compared.
    "supports_json_field": (False, [[NEEDS_SERVER], ["True"]]),
    "can_distinct_on_fields": (True, [["False"], ["True"]]),
    "supports_covering_indexes": (True, [["False"], ["True"]]),
}
LOOKUPS = {
    "exact": (False, [["= %s", '"name" = %s', "param: 'Ann'"]] * 2),
    "iexact": (
        True,
        [
            ["LIKE %s ESCAPE '\\'", "\"name\" LIKE %s ESCAPE '\\'", "param: 'Ann'"],
            ["= UPPER(%s)", 'UPPER("name"::text) = UPPER(%s)', "param: 'Ann'"],
        ],
    ),
    "contains": (
        True,
        [
            ["LIKE %s ESCAPE '\\'", "\"name\" LIKE %s ESCAPE '\\'", "param: '%Ann%'"],
            ["LIKE %s", '"name"::text LIKE %s', "param: '%Ann%'"],
        ],
    ),
    "istartswith": (
        True,
        [
            ["LIKE %s ESCAPE '\\'", "\"name\" LIKE %s ESCAPE '\\'", "param: 'Ann%'"],
            ["LIKE UPPER(%s)", 'UPPER("name"::text) LIKE UPPER(%s)', "param: 'Ann%'"],
        ],
    ),
    "regex": (
        True,
        [
            ["REGEXP %s", '"name" REGEXP %s', "param: '^A'"],
            ["~ %s", '"name"::text ~ %s', "param: '^A'"],
        ],
    ),
    "gt": (False, [["> %s", '"name" > %s', "param: 'Ann'"]] * 2),
}
TYPES = {
    "AutoField": (
        True,
        [["integer", "then AUTOINCREMENT"], ["integer", "then GENERATED BY DEFAULT AS IDENTITY"]],
    ),
    "CharField": (
        False,
        [
            [
                "varchar(%(max_length)s)",
                "computed by django.db.backends.sqlite3.base._get_varchar_column()",
            ],
            [
                "varchar(%(max_length)s)",
                "computed by django.db.backends.postgresql.base._get_varchar_column()",
            ],
        ],
    ),
    "UUIDField": (True, [["char(32)"], ["uuid"]]),
    "JSONField": (
        True,
        [["text", 'CHECK ((JSON_VALID("%(column)s") OR "%(column)s" IS NULL))'], ["jsonb"]],
    ),
    "DateField": (False, [["date"], ["date"]]),
    "PositiveIntegerField": (
        True,
        [
            ["integer unsigned", 'CHECK ("%(column)s" >= 0)'],
            ["integer", 'CHECK ("%(column)s" >= 0)'],
        ],
    ),
}


def test_the_classes_of_each_role_with_links_to_django(client, postgresql, never_connect):
    page = client.get(PAGE, {"a": "default", "b": "postgresql"}).content.decode()
    classes = rows(section(page, "classes"))

    assert classes["DatabaseFeatures"] == (
        False,
        [
            [
                "django.db.backends.sqlite3.features.DatabaseFeatures",
                "derives from django.db.backends.base.features.BaseDatabaseFeatures",
            ],
            [
                "django.db.backends.postgresql.features.DatabaseFeatures",
                "derives from django.db.backends.base.features.BaseDatabaseFeatures",
            ],
        ],
    )
    assert classes["DatabaseValidation"][1][0][:2] == [
        "django.db.backends.base.validation.BaseDatabaseValidation",
        "Django's base class, as it is: the engine changes nothing here",
    ]
    assert classes["Compiler module"][1][1][:3] == [
        "django.db.backends.postgresql.compiler",
        "django.db.backends.postgresql.compiler.SQLCompiler",
        "django.db.backends.postgresql.compiler.SQLInsertCompiler",
    ]
    assert [role for role in classes] == [
        "DatabaseWrapper",
        "CursorWrapper",
        "DatabaseFeatures",
        "DatabaseOperations",
        "DatabaseSchemaEditor",
        "DatabaseIntrospection",
        "DatabaseValidation",
        "DatabaseClient",
        "DatabaseCreation",
        "Compiler module",
    ]
    # Two engines' classes always differ: no row is marked.
    assert not any(differs for differs, _ in classes.values())
    link = re.search(
        r'<a href="(https://github.com/django/django/blob/[^"]+/django/db/backends/sqlite3/'
        r'features.py#L\d+)"[^>]*>DatabaseFeatures</a>',
        page,
    )
    assert link is not None
    # A tracer alias says what the proxy adds to the engine's classes.
    assert (
        "The connection is a <code>tracer.backend.base.DatabaseWrapper</code>, a class "
        "derived from <code>django.db.backends.postgresql.base.DatabaseWrapper</code>"
    ) in page


def test_a_plain_alias_is_the_engine_alone(client, never_connect):
    page = client.get(PAGE, {"a": "default", "b": "sqlite_plain"}).content.decode()

    heads = re.findall(r'<section class="tracer-backend-head".*?</section>', page, flags=re.S)
    assert "wrapped by <code>tracer.backend</code>" in heads[0]
    assert "wrapped by" not in heads[1]
    # The same engine: nothing differs.
    assert 'class="tracer-differs"' not in page


def test_values_that_need_the_server_are_offered_with_a_connection(client, postgresql):
    page = client.get(PAGE, {"a": "default", "b": "postgresql"}).content.decode()
    assert '<a href="?a=default&amp;b=postgresql&amp;connect=1">Read them</a>' in page

    with tracer.capture() as trace:
        connected = client.get(PAGE, {"a": "default", "b": "postgresql", "connect": "1"})

    flags = rows(section(connected.content.decode(), "flags"))
    assert flags["supports_json_field"] == (False, [["True"], ["True"]])
    # What it sent to read them belongs to no trace.
    assert trace.statements == []


def test_a_database_down_leaves_the_page_up(client, postgresql, monkeypatch):
    def down() -> None:
        raise OperationalError("connection refused")

    monkeypatch.setattr(connections["postgresql"], "ensure_connection", down)

    page = client.get(PAGE, {"a": "default", "b": "postgresql", "connect": "1"}).content.decode()

    assert (
        '<p class="tracer-notice">Could not connect (OperationalError: connection refused): '
        "values that need the server are not read.</p>"
    ) in page
    assert rows(section(page, "flags"))["nulls_order_largest"] == (True, [["False"], ["True"]])


def test_mysql_column_types_need_the_server(client, never_connect):
    if "mysql" in settings.UNAVAILABLE:
        pytest.skip(settings.UNAVAILABLE["mysql"])

    page = client.get(PAGE, {"a": "mysql", "b": "default"}).content.decode()

    assert (
        html.escape(
            "data_types depends on the server: shown as the engine's class has it (_data_types), "
            "before the server's version adds to it."
        )
        in page
    )
    assert rows(section(page, "types"))["UUIDField"] == (False, [["char(32)"], ["char(32)"]])


def test_the_default_pair_is_two_vendors():
    aliases = list(settings.DATABASES)
    vendors = {alias: connections[alias].vendor for alias in aliases}

    a, b = chosen({})

    assert a == aliases[0]
    assert b == next(alias for alias in aliases if vendors[alias] != vendors[a])
    assert chosen({"a": "default", "b": "default"}) == ["default"]
    assert chosen({"a": "nope", "b": "default"}) == [aliases[0], "default"]


def test_hidden_unless_the_show_callback_allows(client):
    with override_settings(DEBUG=False):
        assert client.get(PAGE).status_code == 404


def test_hostile_settings_are_text(client, monkeypatch):
    # An alias name is the project's own, but the page escapes it like anything else.
    monkeypatch.setitem(settings.DATABASES, "<b>x</b>", {**settings.DATABASES["sqlite_plain"]})

    page = client.get(PAGE, {"a": "<b>x</b>"}).content.decode()

    assert "<b>x</b>" not in page
    assert "<code>&lt;b&gt;x&lt;/b&gt;</code>" in page
