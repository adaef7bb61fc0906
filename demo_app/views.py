from __future__ import annotations

from collections.abc import Callable

from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.template.loader import render_to_string

import tracer
from demo_app.models import Book
from tracer.analysis.nplusone import n_plus_ones

PAGES = [
    (
        "books_n_plus_one",
        "Books, N+1",
        "50 books; each book.author in the template runs its own query: 51 statements.",
    ),
    (
        "books_select_related",
        "Books, select_related",
        'The same page with select_related("author"): 1 statement.',
    ),
]


def index(request: HttpRequest) -> HttpResponse:
    return render(request, "demo_app/index.html", {"pages": PAGES})


def books_n_plus_one(request: HttpRequest) -> HttpResponse:
    return _books(request, lambda: Book.objects.order_by("title")[:50], PAGES[0])


def books_select_related(request: HttpRequest) -> HttpResponse:
    return _books(
        request, lambda: Book.objects.select_related("author").order_by("title")[:50], PAGES[1]
    )


def _books(
    request: HttpRequest, books: Callable[[], QuerySet[Book]], page: tuple[str, str, str]
) -> HttpResponse:
    # The page shows its own trace: the QuerySet built and the list rendered.
    with tracer.capture(request.path) as trace:
        book_list = render_to_string("demo_app/book_list.html", {"books": books()})
    return render(
        request,
        "demo_app/books.html",
        {"book_list": book_list, "page": page, "trace": trace, "n_plus_ones": n_plus_ones(trace)},
    )
