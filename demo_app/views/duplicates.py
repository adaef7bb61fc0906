"""A helper called in a loop runs the same query, with the same params, on every
row. Its answer does not change between rows: ask once, before the loop."""

from __future__ import annotations

from decimal import Decimal

from django.db.models import Avg
from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string

from demo_app.models import Book
from demo_app.page import recording, show


def average_price() -> Decimal:
    return Book.objects.aggregate(average=Avg("price"))["average"]


def bad(request: HttpRequest) -> HttpResponse:
    with recording(request) as trace:
        rows = []
        for book in Book.objects.order_by("title")[:20]:
            rows.append((book, book.price > average_price()))
    result = render_to_string("demo_app/results/prices.html", {"rows": rows})
    return show(request, trace, result)


def fixed(request: HttpRequest) -> HttpResponse:
    with recording(request) as trace:
        average = average_price()
        rows = [(book, book.price > average) for book in Book.objects.order_by("title")[:20]]
    result = render_to_string("demo_app/results/prices.html", {"rows": rows})
    return show(request, trace, result)
