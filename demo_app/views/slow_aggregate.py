"""A rank computed with correlated subqueries: for each book, the database averages the
reviews of every other book again (about 200,000 small aggregates for 100 books). One
GROUP BY over the reviews and a window function rank all 1,000 books in one pass."""

from __future__ import annotations

from typing import Any

from django.db.models import Avg, F, Func, OuterRef, Subquery, Window
from django.db.models.functions import Rank
from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string

from demo_app.models import Book, Review
from demo_app.page import recording, show

PUBLISHER = "Publisher 1"


def average_rating(book: Any) -> Subquery:
    """The average rating of ``book`` (an OuterRef), as a subquery."""
    reviews = Review.objects.filter(book=book).values("book")
    return Subquery(reviews.annotate(average=Avg("rating")).values("average"))


def bad(request: HttpRequest) -> HttpResponse:
    with recording(request) as trace:
        rated_higher = (
            Book.objects.alias(average=average_rating(OuterRef("pk")))
            .filter(average__gt=OuterRef("average"))
            .order_by()
            .annotate(count=Func(F("pk"), function="COUNT"))
            .values("count")
        )
        books = (
            Book.objects.filter(publisher__name=PUBLISHER)
            .annotate(average=average_rating(OuterRef("pk")))
            .annotate(rank=Subquery(rated_higher) + 1)
            .order_by("rank", "title")
        )
        rows = [(book.title, book.average, book.rank) for book in books]
    result = render_to_string("demo_app/results/ranks.html", {"rows": rows})
    return show(request, trace, result)


def fixed(request: HttpRequest) -> HttpResponse:
    with recording(request) as trace:
        ranked = (
            Book.objects.annotate(average=Avg("reviews__rating"))
            .annotate(rank=Window(Rank(), order_by=F("average").desc()))
            .order_by("rank", "title")
            .values_list("title", "publisher__name", "average", "rank")
        )
        rows = [
            (title, average, rank) for title, name, average, rank in ranked if name == PUBLISHER
        ]
    result = render_to_string("demo_app/results/ranks.html", {"rows": rows})
    return show(request, trace, result)
