"""Views for the middleware, toolbar panel and browser tests (tests/urls.py)."""

from __future__ import annotations

from collections.abc import Iterator

from asgiref.sync import sync_to_async
from django.db import connection
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.template.loader import render_to_string

from demo_app.models import Book as DemoBook
from tests.testapp.models import Author, Book


def authors(request: HttpRequest) -> HttpResponse:
    count = Author.objects.count()
    return HttpResponse(f"{count} authors, traced as {request.tracer_trace.label}")


async def aauthors(request: HttpRequest) -> HttpResponse:
    count = await Author.objects.acount()
    return HttpResponse(f"{count} authors, traced as {request.tracer_trace.label}")


def broken(request: HttpRequest) -> HttpResponse:
    Author.objects.count()
    raise ValueError("broken view")


def streamed(request: HttpRequest) -> StreamingHttpResponse:
    def content() -> Iterator[str]:
        yield f"{Author.objects.count()} authors"

    Author.objects.exists()
    return StreamingHttpResponse(content())


# HTML pages, for the debug-toolbar panel (it is inserted before </body>).


def _page(body: str) -> HttpResponse:
    return HttpResponse(f"<!doctype html><html><body>{body}</body></html>")


def books_page(request: HttpRequest) -> HttpResponse:
    """An N+1: each book's author loaded by the template."""
    books = Book.objects.order_by("id")
    return _page(render_to_string("testapp/n_plus_one.html", {"books": books}))


async def abooks_page(request: HttpRequest) -> HttpResponse:
    """The same N+1 from an async view."""
    books = [book async for book in Book.objects.order_by("id")]
    names = [await sync_to_async(lambda book=book: book.author.name)() for book in books]
    return _page("".join(f"<p>{name}</p>" for name in names))


def hostile_page(request: HttpRequest) -> HttpResponse:
    """Raw SQL with markup in it, which every view must show as text."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT '<script>alert(1)</script>', %s", ["<b>bold</b>"])
        cursor.fetchall()
    return _page("hostile")


# The browser tests (tests/browser/): pages of the demo bookstore's models, and one that
# sends hostile text through the tracer.

#: Books each book page lists.
BOOKS_SHOWN = 8
#: SQL whose literals and param a page must show as text, never run as markup.
HOSTILE_SQL = (
    "SELECT %s AS param, name FROM testapp_author"
    " WHERE name = '<script>window.__pwned = 1</script>' OR name = '<img src=x onerror=alert(2)>'"
)
HOSTILE_PARAM = "<script>window.__pwned = 3</script>"


def books_n_plus_one(request: HttpRequest) -> HttpResponse:
    """Each book's author is loaded by the template, one query per book."""
    books = DemoBook.objects.order_by("title")[:BOOKS_SHOWN]
    return render(request, "testapp/books.html", {"books": books})


def books_select_related(request: HttpRequest) -> HttpResponse:
    """The same page, fixed: one query."""
    books = DemoBook.objects.select_related("author").order_by("title")[:BOOKS_SHOWN]
    return render(request, "testapp/books.html", {"books": books})


def books_on(request: HttpRequest, alias: str) -> HttpResponse:
    """The N+1 page on another database."""
    books = DemoBook.objects.using(alias).order_by("title")[:BOOKS_SHOWN]
    return render(request, "testapp/books.html", {"books": books})


def hostile(request: HttpRequest, name: str) -> HttpResponse:
    """Raw SQL with markup in its literals and its param; the path (``name``) is the
    caller's. Answers in plain text, so the page itself runs nothing."""
    with connection.cursor() as cursor:
        cursor.execute(HOSTILE_SQL, [HOSTILE_PARAM])
        cursor.fetchall()
    return HttpResponse("recorded", content_type="text/plain")
