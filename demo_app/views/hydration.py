"""5,000 rows made into 15,000 model instances (each review, its book, the book's
publisher) to read two values of each: building the instances costs far more than
the query. ``values_list()`` returns plain tuples of just those two values."""

from __future__ import annotations

from collections import defaultdict

from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string

from demo_app.models import Review
from demo_app.page import recording, show


def bad(request: HttpRequest) -> HttpResponse:
    with recording(request) as trace:
        ratings = defaultdict(list)
        for review in Review.objects.select_related("book__publisher"):
            ratings[review.book.publisher.name].append(review.rating)
    result = render_to_string("demo_app/results/ratings.html", {"rows": _averages(ratings)})
    return show(request, trace, result)


def fixed(request: HttpRequest) -> HttpResponse:
    with recording(request) as trace:
        ratings = defaultdict(list)
        for publisher, rating in Review.objects.values_list("book__publisher__name", "rating"):
            ratings[publisher].append(rating)
    result = render_to_string("demo_app/results/ratings.html", {"rows": _averages(ratings)})
    return show(request, trace, result)


def _averages(ratings: dict[str, list[int]]) -> list[tuple[str, int, float]]:
    return [(name, len(found), sum(found) / len(found)) for name, found in sorted(ratings.items())]
