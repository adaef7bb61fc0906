"""An ``async def`` view on the async ORM: ``aget()``, ``acount()``, ``async for``. The
ORM runs each query in a worker thread; the tracer still records it where the view
awaited it, with the view's line."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string

from demo_app.models import Author
from demo_app.page import arecording, show


async def author(request: HttpRequest) -> HttpResponse:
    async with arecording(request) as trace:
        found = await Author.objects.aget(name="Author 01")
        count = await found.books.acount()
        books = [book async for book in found.books.order_by("title")]
    result = render_to_string(
        "demo_app/results/author.html", {"author": found, "count": count, "books": books}
    )
    return show(request, trace, result)
