"""The demo bookstore that `make demo` serves."""

from __future__ import annotations

import re

import pytest
from django.core.management import call_command
from django.test import override_settings

from demo_app.models import Author, Book, Review

pytestmark = [pytest.mark.django_db, pytest.mark.urls("demo_app.urls")]


def test_seed_is_deterministic_and_idempotent(capsys):
    call_command("seed")
    assert capsys.readouterr().out == (
        "Seeded 50 authors, 10 publishers, 1000 books, 5000 reviews, 5 stores.\n"
    )
    first = list(Book.objects.order_by("pk").values_list("title", "price")[:3])
    call_command("seed")
    assert capsys.readouterr().out == "Bookstore already seeded (1000 books).\n"
    assert (Author.objects.count(), Book.objects.count(), Review.objects.count()) == (
        50,
        1000,
        5000,
    )
    assert list(Book.objects.order_by("pk").values_list("title", "price")[:3]) == first


def statement_count(html: str) -> int:
    return int(re.search(r"<strong>(\d+)</strong> statement", html).group(1))


@override_settings(DEBUG=True)
def test_pages_show_what_they_recorded(client):
    call_command("seed", stdout=None)
    assert client.get("/").status_code == 200
    n_plus_one = client.get("/books/n-plus-one/").content.decode()
    fixed = client.get("/books/select-related/").content.decode()
    assert statement_count(n_plus_one) == 51
    assert statement_count(fixed) == 1
    assert "INNER JOIN &quot;demo_app_author&quot;" in fixed  # escaped SQL


@override_settings(DEBUG=True)
def test_pages_show_where_each_statement_came_from(client):
    call_command("seed", stdout=None)
    html = client.get("/books/n-plus-one/").content.decode()
    where = re.findall(
        r'<td class="tracer-where">\s*<span class="tracer-trigger">(\w+)</span> <code>(.*?)</code>'
        r"<br>\s*(\S+)",
        html,
    )
    assert where[0] == (
        "iteration",
        "Book.objects.order_by(&#x27;title&#x27;)[:50]",
        "demo_app/book_list.html:4",
    )
    assert where[1:] == [("related", "Book.author", "demo_app/book_list.html:5")] * 50
