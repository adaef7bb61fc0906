"""100 rows saved one by one: 100 INSERTs, each committed on its own (autocommit).
``bulk_create()`` inside ``transaction.atomic()`` writes them in one INSERT and one
commit. Either page deletes its rows afterwards, outside the pattern's trace."""

from __future__ import annotations

from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string

from demo_app.models import Book, Review
from demo_app.page import recording, show

#: How the text of the reviews these pages write starts: they delete them by it.
MARKER = "Written by the bulk writes page"
ROWS = 100


def bad(request: HttpRequest) -> HttpResponse:
    try:
        with recording(request) as trace:
            book = Book.objects.order_by("pk").first()
            for n in range(ROWS):
                Review(book=book, rating=n % 5 + 1, text=f"{MARKER}: {n + 1}").save()
        written = Review.objects.filter(text__startswith=MARKER).count()
    finally:
        Review.objects.filter(text__startswith=MARKER).delete()
    result = render_to_string("demo_app/results/written.html", {"book": book, "written": written})
    return show(request, trace, result)


def fixed(request: HttpRequest) -> HttpResponse:
    try:
        with recording(request) as trace:
            book = Book.objects.order_by("pk").first()
            with transaction.atomic():
                Review.objects.bulk_create(
                    Review(book=book, rating=n % 5 + 1, text=f"{MARKER}: {n + 1}")
                    for n in range(ROWS)
                )
        written = Review.objects.filter(text__startswith=MARKER).count()
    finally:
        Review.objects.filter(text__startswith=MARKER).delete()
    result = render_to_string("demo_app/results/written.html", {"book": book, "written": written})
    return show(request, trace, result)
