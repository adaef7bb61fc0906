"""The demo bookstore that `make demo` serves."""

from __future__ import annotations

import re

import pytest
from django.core.management import call_command
from django.test import override_settings

from demo_app.models import Author, Book, Review
from tracer.testing import assert_max_queries, assert_no_n_plus_one

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


def test_the_n_plus_one_page_says_what_it_is_and_how_to_fix_it(client):
    call_command("seed", stdout=None)
    with pytest.raises(AssertionError) as info:
        with assert_no_n_plus_one():
            html = client.get("/books/n-plus-one/").content.decode()
    assert str(info.value).startswith(
        "1 N+1 found:\n- 50 queries (a foreign key or one-to-one loaded for each instance: "
        "Book.author) for 50 instances at demo_app/book_list.html:5, loaded at "
        "demo_app/book_list.html:4 by Book.objects.order_by('title')[:50]. Join them into "
        "the query that loads the instances: add .select_related('author').\n"
        "  Fix: Book.objects.order_by('title').select_related('author')[:50]\n"
    )
    assert "<strong>N+1: Book.author</strong>, 50 queries for 50 instances" in html
    assert (
        "Fix: <code>Book.objects.order_by(&#x27;title&#x27;).select_related(&#x27;author&#x27;)"
        "[:50]</code>" in html
    )


def test_the_fixed_page_keeps_its_budget(client):
    call_command("seed", stdout=None)
    with assert_max_queries(1), assert_no_n_plus_one():
        html = client.get("/books/select-related/").content.decode()
    assert "N+1" not in html
