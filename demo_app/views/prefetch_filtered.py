"""A prefetch the loop cannot use: ``prefetch_related("reviews")`` loads every review,
then ``book.reviews.filter(...)`` asks the database again for each book. A
``Prefetch()`` with the filtered queryset loads just those reviews, once."""

from __future__ import annotations

from django.db.models import Prefetch
from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string

from demo_app.models import Book, Review
from demo_app.page import recording, show


def bad(request: HttpRequest) -> HttpResponse:
    with recording(request) as trace:
        books = Book.objects.prefetch_related("reviews").order_by("title")[:20]
        rows = [(book, list(book.reviews.filter(rating__gte=4))) for book in books]
    result = render_to_string("demo_app/results/reviews.html", {"rows": rows})
    return show(request, trace, result)


def fixed(request: HttpRequest) -> HttpResponse:
    with recording(request) as trace:
        good_reviews = Prefetch(
            "reviews", queryset=Review.objects.filter(rating__gte=4), to_attr="good_reviews"
        )
        books = Book.objects.prefetch_related(good_reviews).order_by("title")[:20]
        rows = [(book, book.good_reviews) for book in books]
    result = render_to_string("demo_app/results/reviews.html", {"rows": rows})
    return show(request, trace, result)
