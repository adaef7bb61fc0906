"""tracer.querystate.describe(): a Query's state, readable and free of literal values.

The tests compile queries (``get_compiler(alias).as_sql()``) as the traced compiler does
before describing them, but never execute them: no test here has database access, so
any SQL that ``describe`` ran would fail the test.
"""

from __future__ import annotations

import copy
import json
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from django.db import models
from django.db.models import (
    Case,
    Count,
    Exists,
    F,
    FilteredRelation,
    IntegerField,
    OuterRef,
    Q,
    Subquery,
    Sum,
    Value,
    When,
    Window,
)
from django.db.models.constants import OnConflict
from django.db.models.functions import Cast, Coalesce, Lower, Rank
from django.db.models.sql import DeleteQuery, InsertQuery, Query, RawQuery, UpdateQuery
from django.db.models.sql.compiler import SQLAggregateCompiler
from django.db.models.sql.where import WhereNode
from django.test.utils import isolate_apps

from demo_app.models import Author, Book, Review, Tag
from tracer import querystate
from tracer.querystate import describe

# Models with a nullable foreign key and a Meta.ordering (the demo models have neither).
# They live in an isolated registry and have no tables: they are compiled, never run.
with isolate_apps("tests.testapp"):

    class Shelf(models.Model):
        label = models.CharField(max_length=20)

        class Meta:
            app_label = "testapp"
            ordering = ["label"]

    class Volume(models.Model):
        title = models.CharField(max_length=20)
        number = models.IntegerField()
        shelf = models.ForeignKey(Shelf, models.SET_NULL, null=True, related_name="volumes")
        home = models.ForeignKey(Shelf, models.CASCADE, related_name="homed")

        class Meta:
            app_label = "testapp"
            ordering = ["-number"]


BASE: dict[str, Any] = {
    "class": "Query",
    "model": "demo_app.Book",
    "table": "demo_app_book",
    "tables": [],
    "where": None,
    "select": ["<all fields of demo_app.Book>"],
    "deferred": None,
    "annotations": {},
    "values": [],
    "extra": [],
    "group_by": None,
    "order_by": [],
    "default_ordering": None,
    "reversed": False,
    "low_mark": 0,
    "high_mark": None,
    "distinct": False,
    "distinct_fields": [],
    "select_for_update": None,
    "combinator": None,
    "select_related": False,
    "subqueries": 0,
    "errors": [],
}


def state(**changes: Any) -> dict[str, Any]:
    return {**BASE, **changes}


def table(
    alias: str,
    *,
    join: str | None = None,
    parent: str | None = None,
    on: list[list[str]] | None = None,
    relation: str | None = None,
    condition: str | None = None,
    name: str | None = None,
) -> dict[str, Any]:
    return {
        "alias": alias,
        "table": name or alias,
        "join": join,
        "parent": parent,
        "on": on or [],
        "relation": relation,
        "condition": condition,
    }


def tree(*children: Any, connector: str = "AND", negated: bool = False) -> dict[str, Any]:
    return {"connector": connector, "negated": negated, "children": list(children)}


def leaf(lookup: str, lhs: str, rhs: Any = "?") -> dict[str, Any]:
    return {"lookup": lookup, "lhs": lhs, "rhs": rhs}


BOOK = table("demo_app_book")
AUTHOR_JOIN = table(
    "demo_app_author",
    join="INNER JOIN",
    parent="demo_app_book",
    on=[["author_id", "id"]],
    relation="author",
)


def compiled(queryset: Any, using: str = "default") -> Query:
    """The query of ``queryset`` after the compiler's as_sql() ran on it."""
    query = getattr(queryset, "query", queryset)
    query.get_compiler(using).as_sql()
    return query


def described(queryset: Any, using: str = "default") -> dict[str, Any]:
    result = describe(compiled(queryset, using))
    assert json.loads(json.dumps(result)) == result  # JSON-serialisable, no tuples
    return result


def test_filter_select_related_order_by_slice():
    queryset = (
        Book.objects.filter(price__lt=Decimal("9.99"), title__startswith="Dj")
        .select_related("author")
        .order_by("-published", "title")[10:30]
    )
    assert described(queryset) == state(
        tables=[BOOK, AUTHOR_JOIN],
        where=tree(
            leaf("lt", "demo_app_book.price"),
            leaf("startswith", "demo_app_book.title"),
        ),
        order_by=["-published", "title"],
        low_mark=10,
        high_mark=30,
        select_related={"author": {}},
    )


def test_nullable_foreign_key_is_a_left_outer_join_and_default_ordering():
    queryset = Volume.objects.select_related("shelf", "home").filter(number__gte=3)[:5]
    assert described(queryset) == state(
        model="testapp.Volume",
        table="testapp_volume",
        tables=[
            table("testapp_volume"),
            table(
                "testapp_shelf",
                join="LEFT OUTER JOIN",
                parent="testapp_volume",
                on=[["shelf_id", "id"]],
                relation="shelf",
            ),
            table(
                "T3",
                name="testapp_shelf",
                join="INNER JOIN",
                parent="testapp_volume",
                on=[["home_id", "id"]],
                relation="home",
            ),
        ],
        where=tree(leaf("gte", "testapp_volume.number")),
        select=["<all fields of testapp.Volume>"],
        default_ordering=["-number"],
        high_mark=5,
        select_related={"shelf": {}, "home": {}},
    )


def test_q_objects_with_or_and_negation():
    queryset = Book.objects.filter(
        Q(price__lt=5) | ~Q(title="Old") | Q(author__name__icontains="x"),
        ~Q(published__year=2001),
    )
    assert described(queryset) == state(
        # author is not nullable: the OR leaves the join INNER.
        tables=[BOOK, AUTHOR_JOIN],
        where=tree(
            tree(
                leaf("lt", "demo_app_book.price"),
                tree(leaf("exact", "demo_app_book.title"), negated=True),
                leaf("icontains", "demo_app_author.name"),
                connector="OR",
            ),
            tree(leaf("exact", "ExtractYear(demo_app_book.published)"), negated=True),
        ),
    )
    # A nullable one is promoted to LEFT OUTER by the OR.
    queryset = Volume.objects.filter(Q(shelf__label="a") | Q(number=1))
    result = described(queryset)
    assert result["tables"][1] == table(
        "testapp_shelf",
        join="LEFT OUTER JOIN",
        parent="testapp_volume",
        on=[["shelf_id", "id"]],
        relation="shelf",
    )
    assert result["where"] == tree(
        tree(
            leaf("exact", "testapp_shelf.label"),
            leaf("exact", "testapp_volume.number"),
            connector="OR",
        )
    )


def test_in_list_has_a_placeholder_per_distinct_value():
    queryset = Book.objects.filter(
        title__in=["a", "b", "a", None, "c"],  # The SQL has IN (%s, %s, %s).
        id__in=(1, 2),
        author__in=Author.objects.filter(name="x"),
        price__range=(1, 5),
    )
    assert described(queryset) == state(
        tables=[BOOK],
        where=tree(
            leaf("in", "demo_app_book.author_id", "Subquery(demo_app.Author)"),
            leaf("in", "demo_app_book.id", "(?, ?)"),
            leaf("range", "demo_app_book.price", "(?, ?)"),
            leaf("in", "demo_app_book.title", "(?, ?, ?)"),
        ),
        subqueries=1,
    )


def test_isnull_shows_its_boolean_which_is_in_the_sql():
    queryset = Book.objects.filter(title__isnull=False, published__isnull=True)
    assert described(queryset)["where"] == tree(
        leaf("isnull", "demo_app_book.published", True),
        leaf("isnull", "demo_app_book.title", False),
    )


def test_f_expressions_are_rendered_and_values_are_not():
    queryset = (
        Book.objects.filter(price__gt=F("id") * 2 + 1, title=Lower("title"))
        .annotate(
            double=F("price") * Value(2),
            label=Value("x"),
            none=Value(None, output_field=IntegerField()),
        )
        .order_by(F("price").desc(nulls_last=True), "pk")
    )
    assert described(queryset) == state(
        tables=[BOOK],
        where=tree(
            leaf("gt", "demo_app_book.price", "(demo_app_book.id * ?) + ?"),
            leaf("exact", "demo_app_book.title", "Lower(demo_app_book.title)"),
        ),
        annotations={"double": "demo_app_book.price * ?", "label": "?", "none": "NULL"},
        order_by=["F(price) DESC NULLS LAST", "pk"],
    )


def test_annotate_and_aggregate_group_by():
    queryset = (
        Author.objects.values("name")
        .annotate(n=Count("books"), total=Sum("books__price"))
        .filter(n__gt=1)
        .order_by("-n")
    )
    books = table(
        "demo_app_book",
        join="LEFT OUTER JOIN",
        parent="demo_app_author",
        on=[["id", "author_id"]],
        relation="books",
    )
    assert described(queryset) == state(
        model="demo_app.Author",
        table="demo_app_author",
        tables=[table("demo_app_author"), books],
        where=tree(leaf("gt", "Count(demo_app_book.id)")),  # The HAVING condition.
        select=["demo_app_author.name"],
        annotations={"n": "Count(demo_app_book.id)", "total": "Sum(demo_app_book.price)"},
        values=["name"],
        group_by=["demo_app_author.name"],
        order_by=["-n"],
    )
    # Without values(): grouped by every selected column.
    queryset = Author.objects.annotate(n=Count("books", distinct=True))
    assert described(queryset)["group_by"] is True
    assert described(queryset)["annotations"] == {"n": "Count(DISTINCT demo_app_book.id)"}


def test_functions_case_window_cast_and_filtered_aggregate():
    queryset = Book.objects.annotate(
        lower=Lower("title"),
        price_band=Case(When(price__lt=10, then=Value("cheap")), default=Value("dear")),
        rank=Window(Rank(), partition_by=F("author"), order_by=F("price").desc()),
        whole=Cast("price", IntegerField()),
        good=Coalesce(Sum("reviews__rating", filter=Q(reviews__rating__gt=2)), 0),
    )
    assert described(queryset)["annotations"] == {
        "lower": "Lower(demo_app_book.title)",
        "price_band": "CASE WHEN demo_app_book.price < ? THEN ? ELSE ? END",
        "rank": (
            "Rank() OVER (PARTITION BY demo_app_book.author_id ORDER BY demo_app_book.price DESC)"
        ),
        "whole": "Cast(demo_app_book.price AS IntegerField)",
        "good": (
            "Coalesce(Sum(demo_app_review.rating) FILTER (WHERE demo_app_review.rating > ?), ?)"
        ),
    }


def test_values_and_values_list():
    queryset = Book.objects.values("title", "author__name")
    assert described(queryset) == state(
        tables=[BOOK, AUTHOR_JOIN],
        select=["demo_app_book.title", "demo_app_author.name"],
        values=["title", "author__name"],
    )
    queryset = Book.objects.values_list("pk", flat=True).distinct()
    assert described(queryset) == state(
        tables=[BOOK], select=["demo_app_book.id"], values=["pk"], distinct=True
    )


def test_distinct_defer_and_reverse():
    queryset = Book.objects.distinct().defer("title", "price").order_by("published").reverse()
    assert described(queryset) == state(
        tables=[BOOK],
        deferred={"mode": "defer", "fields": ["price", "title"]},
        order_by=["published"],
        reversed=True,
        distinct=True,
    )
    # DISTINCT ON does not compile on SQLite: described as built.
    queryset = Book.objects.only("title").order_by("author", "title").distinct("author")
    assert describe(queryset.query) == state(
        tables=[BOOK],
        deferred={"mode": "only", "fields": ["title"]},
        order_by=["author", "title"],
        distinct=True,
        distinct_fields=["author"],
    )


def test_select_for_update():
    queryset = Book.objects.select_for_update(skip_locked=True, of=("self", "author")).filter(pk=1)
    assert described(queryset) == state(
        tables=[BOOK],
        where=tree(leaf("exact", "demo_app_book.id")),
        select_for_update={
            "nowait": False,
            "skip_locked": True,
            "of": ["self", "author"],
            "no_key": False,
        },
    )
    queryset = Book.objects.select_for_update(nowait=True, no_key=True)
    assert described(queryset)["select_for_update"] == {
        "nowait": True,
        "skip_locked": False,
        "of": [],
        "no_key": True,
    }


def test_union():
    cheap = Book.objects.filter(price__lt=5).values("title")
    queryset = cheap.union(Book.objects.filter(title="x").values("title"), all=True)
    queryset = queryset.order_by("title")[:3]
    part = state(tables=[BOOK], select=["demo_app_book.title"], values=["title"])
    assert described(queryset) == state(
        # The query keeps a copy of the first part's where; the SQL does not use it.
        select=["demo_app_book.title"],
        values=["title"],
        order_by=["title"],
        high_mark=3,
        combinator={
            "kind": "union",
            "all": True,
            "queries": 2,
            "parts": [
                {**part, "where": tree(leaf("lt", "demo_app_book.price"))},
                {**part, "where": tree(leaf("exact", "demo_app_book.title"))},
            ],
        },
        subqueries=2,
    )


def test_subquery_and_exists():
    reviews = Review.objects.filter(book=OuterRef("pk"))
    queryset = (
        Book.objects.filter(Exists(reviews.filter(rating__gte=4)))
        .filter(~Exists(reviews.filter(rating=1)))
        .exclude(Exists(reviews.filter(rating=2)))
        .annotate(best=Subquery(reviews.order_by("-rating").values("rating")[:1]))
        .filter(
            price__gt=Subquery(Book.objects.filter(author=OuterRef("author")).values("price")[:1])
        )
    )
    assert described(queryset) == state(
        tables=[BOOK],
        where=tree(
            "Exists(demo_app.Review)",
            "NOT Exists(demo_app.Review)",
            tree("Exists(demo_app.Review)", negated=True),
            leaf("gt", "demo_app_book.price", "Subquery(demo_app.Book)"),
        ),
        annotations={"best": "Subquery(demo_app.Review)"},
        subqueries=5,
    )
    # The nested query refers to the outer one: OuterRef before it is resolved...
    assert describe(reviews.query)["where"] == tree(
        leaf("exact", "demo_app_review.book_id", "OuterRef(pk)")
    )
    # ... and the outer query's column after.
    inner = queryset.query.annotations["best"].query
    assert describe(inner)["where"] == tree(leaf("exact", "U0.book_id", "demo_app_book.id"))


def test_filtered_relation_condition():
    queryset = Author.objects.annotate(
        cheap=FilteredRelation("books", condition=Q(books__price__lt=5))
    ).filter(cheap__title="x")
    assert described(queryset)["tables"] == [
        table("demo_app_author"),
        table(
            "cheap",
            name="demo_app_book",
            join="INNER JOIN",
            parent="demo_app_author",
            on=[["id", "author_id"]],
            relation="books",
            condition="cheap__price__lt=?",  # Django rewrites it to the alias.
        ),
    ]


@pytest.fixture
def aggregate_queries(monkeypatch: pytest.MonkeyPatch) -> list[Query]:
    """The AggregateQuery objects that count() and aggregate() compile (not run)."""
    queries: list[Query] = []

    def execute_sql(self: SQLAggregateCompiler, *args: Any, **kwargs: Any) -> Any:
        self.as_sql()
        queries.append(self.query)
        return (0,)

    monkeypatch.setattr(SQLAggregateCompiler, "execute_sql", execute_sql)
    return queries


def test_count_of_a_distinct_query_is_an_aggregate_query(aggregate_queries: list[Query]):
    assert Book.objects.using("sqlite_plain").filter(price__gt=1).distinct().count() == 0
    [query] = aggregate_queries
    assert describe(query) == state(
        **{"class": "AggregateQuery"},
        select=[],
        annotations={"__count": "Count(*)"},
        subqueries=1,
        inner=state(
            tables=[BOOK],
            where=tree(leaf("gt", "demo_app_book.price")),
            distinct=True,
        ),
    )


def test_insert_query():
    query = InsertQuery(
        Tag,
        on_conflict=OnConflict.UPDATE,
        update_fields=[Tag._meta.get_field("name")],
        unique_fields=[Tag._meta.get_field("name")],
    )
    query.insert_values([Tag._meta.get_field("name")], [Tag(name="a"), Tag(name="b")])
    assert described(query) == state(
        **{"class": "InsertQuery"},
        model="demo_app.Tag",
        table="demo_app_tag",
        select=[],
        fields=["name"],
        objs=2,
        on_conflict="update",
        update_fields=["name"],
        unique_fields=["name"],
    )


def test_update_query():
    query = UpdateQuery(Book)
    query.add_update_values({"price": F("price") * 2, "title": "New", "published": None})
    query.add_q(Q(pk__lt=10))
    assert described(query) == state(
        **{"class": "UpdateQuery"},
        tables=[BOOK],
        where=tree(leaf("lt", "demo_app_book.id")),
        select=[],
        set={"price": "demo_app_book.price * ?", "title": "?", "published": "NULL"},
        related_updates=[],
    )


def test_update_across_a_relation_becomes_a_subquery():
    query = UpdateQuery(Book)
    query.add_update_values({"title": "New"})
    query.add_q(Q(author__name="x"))
    result = described(query)
    assert result["tables"] == [BOOK]  # UPDATE names one table.
    assert result["where"] == tree(leaf("in", "demo_app_book.id", "Subquery(demo_app.Book)"))


def test_delete_query():
    query = DeleteQuery(Book)
    query.add_q(Q(pk__in=[1, 2, 3]) | Q(published__lt=date(2000, 1, 1)))
    assert described(query) == state(
        **{"class": "DeleteQuery"},
        tables=[BOOK],
        where=tree(
            tree(
                leaf("in", "demo_app_book.id", "(?, ?, ?)"),
                leaf("lt", "demo_app_book.published"),
                connector="OR",
            )
        ),
        select=[],
    )


def test_raw_query():
    query = RawQuery(
        "SELECT * FROM demo_app_book WHERE id = %s AND title = %s", "default", (1, "x")
    )
    assert describe(query) == state(
        **{"class": "RawQuery"},
        model=None,
        table=None,
        select=[],
        sql="SELECT * FROM demo_app_book WHERE id = %s AND title = %s",
        params=2,
    )
    assert describe(RawQuery("SELECT 1", "default"))["params"] == 0


def test_same_sql_gives_the_same_state():
    # The state is shared by every compile of one SQL, so values must not show.
    first = described(Book.objects.filter(price__lt=1, title__in=["a", "b"]))
    second = described(Book.objects.filter(price__lt=99, title__in=["c", "d", "c"]))
    assert first == second


def test_uncompiled_query():
    assert describe(Book.objects.all().query) == state(tables=[BOOK])
    assert describe(Query(None)) == state(model=None, table=None, select=["<all fields of None>"])


def _snapshot(query: Query) -> dict[str, tuple[Any, Any]]:
    return {
        name: (value, copy.copy(value) if isinstance(value, (dict, list, set)) else None)
        for name, value in vars(query).items()
    }


@pytest.mark.parametrize(
    "make",
    [
        lambda: Book.objects.select_related("author").filter(price__lt=1).order_by("title")[:2],
        lambda: Author.objects.values("name").annotate(n=Count("books")).filter(n__gt=1),
        lambda: Author.objects.alias(n=Count("books")).annotate(m=F("n") + 1).filter(n=2),
        lambda: Book.objects.filter(Exists(Review.objects.filter(book=OuterRef("pk")))),
        lambda: Book.objects.extra(select={"one": "1"}, select_params=()).values("one"),
        lambda: Volume.objects.filter(shelf=1).select_related("home"),
    ],
)
def test_describe_does_not_mutate_the_query(make: Any):
    # Before a compile (when the caching properties have not run yet) and after it.
    for compile_first in (False, True):
        query = make().query
        sql = str(compiled(query)) if compile_first else None
        before = _snapshot(query)
        where = copy.copy(query.where.children)
        describe(query)
        describe(query)
        after = _snapshot(query)
        assert after.keys() == before.keys()  # No cached property filled in.
        for name, (value, content) in before.items():
            assert after[name][0] is value, name
            assert after[name][1] == content, name
        assert query.where.children == where
        if compile_first:
            assert str(query) == sql


class Weird:
    """A node no one knows, whose every attribute fails."""

    def __getattr__(self, name: str) -> Any:
        raise RuntimeError(name)

    def __repr__(self) -> str:
        raise RuntimeError("repr")

    __str__ = __repr__


def test_survives_unknown_nodes():
    query = compiled(Book.objects.filter(price__lt=1))
    query.where.children.append(Weird())
    lookup = query.where.children[0]
    query.where.children.append(WhereNode([Weird(), Weird()], connector="XOR", negated=True))
    query.annotations["weird"] = Weird()
    query.order_by = (Weird(),)
    original_rhs = lookup.rhs
    lookup.rhs = Weird()
    try:
        result = describe(query)
    finally:
        lookup.rhs = original_rhs
    assert json.loads(json.dumps(result)) == result
    assert result["where"] == tree(
        leaf("lt", "demo_app_book.price", "Weird"),
        "Weird",
        tree("Weird", "Weird", connector="XOR", negated=True),
    )
    assert result["annotations"] == {"weird": "Weird"}
    assert result["order_by"] == ["Weird"]
    assert result["errors"] == []


class Broken:
    def __bool__(self) -> bool:
        raise RuntimeError("bool")


def test_a_part_that_fails_keeps_its_default():
    query = compiled(Book.objects.select_related("author"))
    query.alias_map = {"x": Weird()}
    query.select_related = Broken()
    result = describe(query)
    assert result["tables"] == []
    assert result["select_related"] is False
    assert result["errors"] == ["tables", "select_related"]
    assert describe(object()) == state(
        **{"class": "object"}, model=None, table=None, select=[], errors=["class"]
    )


def _from_clause(query: Query) -> list[str]:
    """The aliases that get_from_clause() used during the compile."""
    seen: list[list[str]] = []
    compiler = query.get_compiler("default")
    real = compiler.get_from_clause

    def get_from_clause() -> Any:
        seen.append(querystate.from_aliases(query))
        return real()

    compiler.get_from_clause = get_from_clause  # type: ignore[method-assign]
    compiler.as_sql()
    return seen[-1]


@pytest.mark.parametrize(
    "make",
    [
        lambda: Book.objects.filter(author=1),  # The author join is trimmed.
        lambda: Book.objects.filter(author=1).select_related("publisher"),
        lambda: Book.objects.select_related(),
        lambda: Book.objects.filter(tags__name="x"),
        lambda: Review.objects.order_by("book__author__name"),
        lambda: Review.objects.order_by("-book"),
        lambda: Review.objects.distinct().select_related("book__author").order_by("book__title"),
        lambda: Author.objects.exclude(books__tags__name="x"),
        lambda: Volume.objects.filter(shelf=1).select_related(),
        lambda: Volume.objects.filter(home__label="x").order_by("shelf"),  # Shelf is ordered.
        lambda: Volume.objects.select_related("shelf").filter(shelf__isnull=True),
    ],
)
def test_tables_match_the_from_clause(make: Any):
    query = make().query
    aliases = _from_clause(query)
    exact = describe(query, from_aliases=aliases)["tables"]
    assert [t["alias"] for t in exact] == aliases
    # Without the compiler's help, tables are reconstructed after the fact.
    assert describe(query)["tables"] == exact


def test_from_aliases_is_what_the_compiler_saw():
    query = Book.objects.select_related("author").query
    assert _from_clause(query) == ["demo_app_book", "demo_app_author"]
    # as_sql() put the reference counts back: the join looks unused afterwards.
    assert querystate.from_aliases(query) == []
    assert query.alias_refcount == {"demo_app_book": 0, "demo_app_author": 0}
