"""A view loops over books and asks each for its tags: one query per book.
``prefetch_related("tags")`` loads every book's tags in one more query."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string

from demo_app.models import Book
from demo_app.page import recording, show


def bad(request: HttpRequest) -> HttpResponse:
    with recording(request) as trace:
        rows = []
        for book in Book.objects.order_by("-published", "title")[:30]:
            rows.append((book, [tag.name for tag in book.tags.all()]))
    result = render_to_string("demo_app/results/tags.html", {"rows": rows})
    return show(request, trace, result)


def fixed(request: HttpRequest) -> HttpResponse:
    with recording(request) as trace:
        rows = []
        for book in Book.objects.order_by("-published", "title").prefetch_related("tags")[:30]:
            rows.append((book, [tag.name for tag in book.tags.all()]))
    result = render_to_string("demo_app/results/tags.html", {"rows": rows})
    return show(request, trace, result)
