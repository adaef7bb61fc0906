"""Links to the functions of the installed Django that do each stage's work."""

from __future__ import annotations

import inspect
import os
import sys
from typing import Any

import django
import pytest
from django.db.models.fields.related_descriptors import create_reverse_many_to_one_manager
from django.db.models.sql.compiler import SQLCompiler

import tracer
from demo_app.models import Author
from tests.testapp import models as testapp
from tracer import djangosource
from tracer.djangosource import SourceLink, link, stage_links

DJANGO = os.path.dirname(django.__file__)
BLOB = f"https://github.com/django/django/blob/{django.__version__}"


def source_line(found: SourceLink) -> str:
    """The line a link points at, read from the installed Django."""
    with open(os.path.join(DJANGO, found.path.removeprefix("django/"))) as source:
        return source.read().splitlines()[found.line - 1].strip()


def test_version_tags():
    assert djangosource.version_tag("5.2.19") == "5.2.19"
    assert djangosource.version_tag("6.0a1") == "6.0a1"
    assert djangosource.version_tag("6.1.dev20250601000000") == "main"
    assert djangosource.version_tag() == django.__version__


def test_a_method_of_djangos_compiler():
    found = link("django.db.models.sql.compiler.SQLCompiler", "as_sql")

    line = inspect.getsourcelines(SQLCompiler.as_sql)[1]
    assert found == SourceLink(
        "SQLCompiler.as_sql",
        "django/db/models/sql/compiler.py",
        line,
        f"{BLOB}/django/db/models/sql/compiler.py#L{line}",
    )
    assert source_line(found).startswith("def as_sql(")


def test_an_engines_compiler_links_where_the_method_is_defined():
    inherited = link("django.db.backends.mysql.compiler.SQLCompiler", "as_sql")
    own = link("django.db.backends.mysql.compiler.SQLUpdateCompiler", "as_sql")

    assert inherited == link("django.db.models.sql.compiler.SQLCompiler", "as_sql")
    assert own is not None
    assert own.label == "SQLUpdateCompiler.as_sql"
    assert own.path == "django/db/backends/mysql/compiler.py"
    assert own.url == f"{BLOB}/django/db/backends/mysql/compiler.py#L{own.line}"
    assert source_line(own).startswith("def as_sql(")


def test_methods_the_tracer_wraps_link_to_djangos_own():
    # pipeline.install() wraps QuerySet.count and BaseManager.get_queryset.
    count = link("django.db.models.query.QuerySet", "count")
    manager = link("django.db.models.manager.Manager", "get_queryset")

    assert count is not None and manager is not None
    assert (count.label, count.path) == ("QuerySet.count", "django/db/models/query.py")
    assert source_line(count) == "def count(self):"
    assert (manager.label, manager.path) == (
        "BaseManager.get_queryset",
        "django/db/models/manager.py",
    )
    assert source_line(manager) == "def get_queryset(self):"


def test_a_related_manager_made_inside_a_function():
    path = (
        "django.db.models.fields.related_descriptors."
        "create_reverse_many_to_one_manager.<locals>.RelatedManager"
    )

    found = link(path, "get_queryset")
    whole = link(path)
    inherited = link(path, "count")

    assert found is not None and whole is not None
    assert found.label == "RelatedManager.get_queryset"
    assert found.path == "django/db/models/fields/related_descriptors.py"
    assert source_line(found) == "def get_queryset(self):"
    assert found.line > inspect.getsourcelines(create_reverse_many_to_one_manager)[1]
    assert whole.label == "RelatedManager"
    assert source_line(whole).startswith("class RelatedManager(")
    # An inherited method cannot be found without the class: the class itself.
    assert inherited == whole


def test_a_function_and_a_class():
    function = link("django.db.models.query.prefetch_one_level")
    cls = link("django.db.models.sql.query.Query")

    assert function is not None and cls is not None
    assert source_line(function).startswith("def prefetch_one_level(")
    assert source_line(cls).startswith("class Query(")


def test_nothing_outside_django():
    # A module already imported, but not Django's.
    assert link("demo_app.models.Book") is None
    assert link("os.path", "join") is None
    # Not imported: never imported to find out.
    assert "tests.testapp.never_imported" not in sys.modules
    assert link("tests.testapp.never_imported.Thing", "method") is None
    assert "tests.testapp.never_imported" not in sys.modules
    assert link("django.db.models.query.QuerySet", "no_such_method") is None
    assert link("django.no_such_module.Thing") is None
    assert link(None) is None
    assert link("") is None


def test_a_user_class_inheriting_djangos_method_links_djangos():
    found = link("demo_app.models.Book", "from_db")

    assert found is not None
    assert (found.label, found.path) == ("Model.from_db", "django/db/models/base.py")


def test_lineage_calls():
    queryset = "django.db.models.query.QuerySet"

    def label(code: str) -> str | None:
        found = djangosource.call_link(queryset, code)
        return None if found is None else found.label

    assert label(".filter(price__lt=10)") == "QuerySet.filter"
    assert label(".select_related('author')") == "QuerySet.select_related"
    assert label("[:5]") == "QuerySet.__getitem__"
    assert label("[3]") == "QuerySet.__getitem__"
    assert label(" | <QuerySet>") == "QuerySet.__or__"
    assert label(" & <QuerySet>") == "QuerySet.__and__"
    assert label("<something else>") is None


def test_triggers():
    queryset = "django.db.models.query.QuerySet"

    def label(trigger: str, detail: str | None = None) -> str | None:
        found = djangosource.trigger_link(queryset, trigger, detail)
        return None if found is None else found.label

    assert label("iteration") == "QuerySet.__iter__"
    assert label("len") == "QuerySet.__len__"
    assert label("index") == "QuerySet.__getitem__"
    assert label("get") == "QuerySet.get"
    assert label("aget") == "QuerySet.aget"
    assert label("async for") == "QuerySet.__aiter__"
    assert label("prefetch", "books") == "prefetch_one_level"
    assert label("related", "Book.author") == "ForwardManyToOneDescriptor.__get__"
    assert label("related", "Author.profile") == "ReverseOneToOneDescriptor.__get__"
    assert label("related", "Nothing.here") is None
    assert label("something new") is None


def test_the_query_classes_and_their_parts():
    assert djangosource.query_class_path("Query") == "django.db.models.sql.query.Query"
    assert (
        djangosource.query_class_path("UpdateQuery")
        == "django.db.models.sql.subqueries.UpdateQuery"
    )
    assert djangosource.query_class_path("ThirdPartyQuery") is None
    parts = djangosource.query_part_links("UpdateQuery")
    assert parts["where"].label == "Query.add_q"
    assert parts["limits"].label == "Query.set_limits"
    assert parts["tables"].label == "Query.setup_joins"
    assert source_line(parts["where"]).startswith("def add_q(")
    assert djangosource.query_part_links("ThirdPartyQuery") == {}


def labels(found: dict[str, list[SourceLink]]) -> dict[str, list[str]]:
    return {stage: [item.label for item in items] for stage, items in found.items()}


@pytest.mark.django_db
def test_the_stages_of_recorded_statements():
    ann = testapp.Author.objects.create(name="Ann")
    with tracer.capture() as trace:
        list(Author.objects.filter(name="Ann").values_list("name", flat=True))
        list(ann.books.all())
        Author.objects.filter(name="Bob").update(name="Rob")
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    values, related, update, raw = (stage_links(s) for s in trace.to_dict()["statements"])

    assert labels(values) == {
        "model": ["Options.contribute_to_class"],
        "manager": ["BaseManager.get_queryset"],
        "queryset": ["QuerySet.__iter__", "QuerySet._fetch_all"],
        "query": ["Query"],
        "compiler": ["SQLCompiler.as_sql", "SQLCompiler.execute_sql"],
        "backend": [
            "CursorWrapper.execute",
            "SQLiteCursorWrapper.execute",
            "FlatValuesListIterable.__iter__",
        ],
    }
    assert labels(related)["manager"] == ["RelatedManager.get_queryset"]
    assert labels(update)["query"] == ["UpdateQuery"]
    assert labels(update)["compiler"] == [
        "SQLUpdateCompiler.as_sql",
        "SQLUpdateCompiler.execute_sql",
    ]
    assert labels(update)["queryset"] == ["QuerySet.update"]
    assert labels(raw) == {"backend": ["CursorWrapper.execute", "SQLiteCursorWrapper.execute"]}


def test_stage_links_of_odd_data_are_empty_not_errors():
    odd: dict[str, Any] = {
        "kind": "transaction",
        "sql": "BEGIN",
        "stages": {"model": None, "backend": {"vendor": "oracle"}, "compiler": "?"},
    }

    assert stage_links(odd) == {"backend": []}
    assert labels(stage_links({**odd, "sql": "COMMIT"})) == {
        "backend": ["BaseDatabaseWrapper.commit"]
    }
    assert stage_links({}) == {"backend": []}


def test_links_are_cached():
    link.cache_clear()
    link("django.db.models.sql.compiler.SQLCompiler", "as_sql")
    link("django.db.models.sql.compiler.SQLCompiler", "as_sql")

    assert link.cache_info().hits == 1
