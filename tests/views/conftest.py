"""Real traces of the demo models, recorded for the views to show."""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterator
from decimal import Decimal

import pytest
from django.test import override_settings

import tracer
from demo_app.models import Author, Book, Publisher
from tracer.store import get_store
from tracer.trace import Trace

URL = "/__tracer__/"
HOSTILE = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"


@pytest.fixture(autouse=True)
def shown() -> Iterator[None]:
    """The tracer's pages are shown (DEBUG on, the test client's address internal)
    and mounted at /__tracer__/ (tests/urls.py)."""
    with override_settings(DEBUG=True, INTERNAL_IPS=["127.0.0.1"], ROOT_URLCONF="tests.urls"):
        yield


@pytest.fixture(autouse=True)
def store() -> Iterator[None]:
    get_store().clear()
    yield
    get_store().clear()


def books(count: int) -> None:
    """``count`` books, each by its own author."""
    publisher = Publisher.objects.create(name="Pub")
    for number in range(count):
        author = Author.objects.create(name=f"Author {number}")
        Book.objects.create(
            title=f"Book {number}",
            author=author,
            publisher=publisher,
            price=Decimal("9.99"),
            published=datetime.date(2020, 1, 1),
        )


def n_plus_one(label: str = "books", count: int = 3) -> Trace:
    """A stored trace with an N+1: ``count`` books, then each one's author."""
    if Book.objects.count() < count:
        books(count - Book.objects.count())
    names = []
    with tracer.capture(label) as trace:
        for book in Book.objects.order_by("id")[:count]:
            names.append(book.author.name)
    return trace


def select_related(label: str = "books, fixed", count: int = 3) -> Trace:
    """The same loop fixed: one statement."""
    names = []
    with tracer.capture(label) as trace:
        for book in Book.objects.select_related("author").order_by("id")[:count]:
            names.append(book.author.name)
    return trace


def empty(label: str) -> Trace:
    with tracer.capture(label) as trace:
        pass
    return trace


def rows(html: str, prefix: str = "tracer-trace-") -> list[str]:
    """The ids of the rows whose element id starts with ``prefix``, in order."""
    return re.findall(rf'<tr id="{prefix}([^"]+)"', html)
