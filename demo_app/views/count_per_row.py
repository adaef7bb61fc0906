"""``.count()`` on each row: one COUNT query per book. ``annotate(Count(...))`` counts
them all in the query that loads the books (a JOIN and a GROUP BY)."""

from __future__ import annotations

from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string

from demo_app.models import Book
from demo_app.page import recording, show


def bad(request: HttpRequest) -> HttpResponse:
    with recording(request) as trace:
        rows = []
        for book in Book.objects.order_by("title")[:20]:
            rows.append((book, book.reviews.filter(rating__gte=4).count()))
    result = render_to_string("demo_app/results/counts.html", {"rows": rows})
    return show(request, trace, result)


def fixed(request: HttpRequest) -> HttpResponse:
    with recording(request) as trace:
        books = Book.objects.order_by("title").annotate(
            reviews_count=Count("reviews", filter=Q(reviews__rating__gte=4))
        )[:20]
        rows = [(book, book.reviews_count) for book in books]
    result = render_to_string("demo_app/results/counts.html", {"rows": rows})
    return show(request, trace, result)
