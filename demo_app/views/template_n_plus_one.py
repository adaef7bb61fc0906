"""A template reads ``book.author`` on each row: one query for the books, then one per
book for its author. ``select_related("author")`` joins the authors into the first."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string

from demo_app.models import Book
from demo_app.page import recording, show


def bad(request: HttpRequest) -> HttpResponse:
    with recording(request) as trace:
        books = Book.objects.order_by("title")[:50]
        result = render_to_string("demo_app/book_list.html", {"books": books})
    return show(request, trace, result)


def fixed(request: HttpRequest) -> HttpResponse:
    with recording(request) as trace:
        books = Book.objects.select_related("author").order_by("title")[:50]
        result = render_to_string("demo_app/book_list.html", {"books": books})
    return show(request, trace, result)
