"""``manage.py tracequery``: the pipeline in a terminal, --run, --json, refusals."""

from __future__ import annotations

import datetime
import json
import re
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from demo_app.models import Author, Book, Publisher, Tag

pytestmark = pytest.mark.django_db(databases="__all__")


def tracequery(*args: str) -> str:
    out = StringIO()
    call_command("tracequery", *args, stdout=out)
    return out.getvalue()


def test_the_pipeline_of_a_simple_expression():
    output = tracequery(
        'Tag.objects.filter(name="a").order_by("name")[:5]', "--app", "demo_app", "--no-color"
    )
    assert output == (
        'Tag.objects.filter(name="a").order_by("name")[:5]\n'
        "\n"
        "Model     demo_app.Tag (table demo_app_tag)\n"
        "Manager   Tag.objects (django.db.models.manager.Manager)\n"
        "QuerySet  django.db.models.query.QuerySet\n"
        "\n"
        '.filter(name="a")\n'
        "    where  demo_app_tag.name = ?\n"
        "\n"
        '.order_by("name")\n'
        "    order_by  name\n"
        "\n"
        "[:5]\n"
        "    high_mark  5\n"
        "\n"
        "Statement: rows\n"
        "    Compiler  django.db.models.sql.compiler.SQLCompiler (Query)\n"
        "    SQL\n"
        '        SELECT "demo_app_tag"."id",\n'
        '               "demo_app_tag"."name"\n'
        '        FROM "demo_app_tag"\n'
        '        WHERE "demo_app_tag"."name" = %s\n'
        '        ORDER BY "demo_app_tag"."name" ASC\n'
        "        LIMIT 5\n"
        "    Params    ['a']\n"
    )


def test_a_write_is_compiled_never_run():
    Tag.objects.create(name="a")
    output = tracequery(
        'Tag.objects.filter(name="a").update(name="b")', "--app", "demo_app", "--run", "--no-color"
    )
    assert output.endswith(
        '.update(name="b")  (writes: never run)\n'
        "\n"
        "Statement: update\n"
        "    Compiler  django.db.models.sql.compiler.SQLUpdateCompiler (UpdateQuery)\n"
        "    SQL\n"
        '        UPDATE "demo_app_tag"\n'
        '        SET "name" = %s\n'
        '        WHERE "demo_app_tag"."name" = %s\n'
        "    Params    ['b', 'a']\n"
        "\n"
        "Note: update() changes data: it is compiled, never run.\n"
        "\n"
        "Not run: update() changes data: it is never run.\n"
    )
    assert list(Tag.objects.values_list("name", flat=True)) == ["a"]


def test_run_prints_rows_timings_and_the_plan():
    for name in "ab":
        Tag.objects.create(name=name)
    output = tracequery(
        'Tag.objects.order_by("-name")', "--app", "demo_app", "--run", "--no-color"
    )
    rows = output.split("Rows: 2\n", 1)[1]
    assert rows.startswith(
        "    id | name\n"
        "    ---+-----\n"
        f"    {Tag.objects.get(name='b').pk:<2} | b\n"
        f"    {Tag.objects.get(name='a').pk:<2} | a\n"
        "\n"
        "Timings (ms)\n"
    )
    assert re.search(
        # No convert time: no converter ran (none is needed for these columns on SQLite).
        r"\n    #1 iterator, 2 rows: build \d+\.\d{3}, compile \d+\.\d{3}, execute \d+\.\d{3}, "
        r"fetch \d+\.\d{3}, hydrate \d+\.\d{3}\n    run in all: \d+\.\d{3}\n\n",
        output,
    )
    assert output.endswith(
        "EXPLAIN (EXPLAIN QUERY PLAN)\n"
        "    QUERY PLAN\n"
        "        SCAN demo_app_tag USING COVERING INDEX sqlite_autoindex_demo_app_tag_1\n"
        "\n"
        "Note: Read with iterator(): the first 100 rows at most.\n"
    )


def test_run_numbers_statements_from_one_as_the_app_does():
    author = Author.objects.create(name="Ann")
    Book.objects.create(
        title="One",
        author=author,
        publisher=Publisher.objects.create(name="House"),
        price=Decimal("5"),
        published=datetime.date(2020, 1, 1),
    )
    output = tracequery(
        'Author.objects.prefetch_related("books")[:5]', "--app", "demo_app", "--run", "--no-color"
    )
    numbered = re.findall(r"\n    (#\d+ \w+), (\d+) rows?: ", output)
    assert numbered == [("#1 iteration", "1"), ("#2 prefetch", "1")]


def test_run_limits_rows(vendor, alias):
    for name in "abc":
        Tag.objects.using(alias).create(name=name)
    output = tracequery(
        'Tag.objects.order_by("name").values_list("name", flat=True)',
        "--app",
        "demo_app",
        "--run",
        "--rows",
        "2",
        "--database",
        alias,
        "--no-color",
    )
    assert "Rows: 2 (more rows not read)\n    name\n    ----\n    a\n    b\n" in output


def test_json_is_the_pipeline_or_the_trace():
    data = json.loads(tracequery('Tag.objects.filter(name="a")', "--app", "demo_app", "--json"))
    assert (data["code"], data["kind"], data["steps"][0]["changes"][0]["text"]) == (
        'Tag.objects.filter(name="a")',
        "rows",
        "demo_app_tag.name = ?",
    )
    trace = json.loads(
        tracequery('Tag.objects.filter(name="a")', "--app", "demo_app", "--json", "--run")
    )
    assert trace["format"] == "tracer-trace/1"
    assert trace["label"] == 'playground: Tag.objects.filter(name="a")'
    [statement] = trace["statements"]
    assert statement["stages"]["queryset"]["code"] == (
        'Tag.objects.filter(name="a").iterator(chunk_size=101)'
    )


def test_colors_highlight_the_sql():
    output = tracequery("Tag.objects.all()", "--app", "demo_app", "--force-color")
    assert "\x1b[" in output
    assert "SELECT" in output


def test_a_refusal_points_at_the_part():
    with pytest.raises(CommandError) as info:
        tracequery('Tag.objects.filter(name=open("x"))', "--app", "demo_app")
    message = str(info.value)
    assert message.endswith('\n\nTag.objects.filter(name=open("x"))\n                        ^^^^')
    assert message.startswith("open is not allowed: names must be installed models")


def test_bad_limits():
    with pytest.raises(CommandError) as info:
        tracequery("Tag.objects.all()", "--app", "demo_app", "--rows", "0")
    assert str(info.value) == "--rows and --timeout must be positive."
