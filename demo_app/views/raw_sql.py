"""Raw SQL with a value formatted into its text: the tracer sees it at the cursor (no
ORM stages) and flags the literal, an injection risk once the value comes from a
request. Params keep the value out of the SQL."""

from __future__ import annotations

from django.db import connection
from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string

from demo_app.page import recording, show

#: A constant here, so the bad page is safe to run; from request.GET it would not be.
WORD = "River"


def bad(request: HttpRequest) -> HttpResponse:
    with recording(request) as trace:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT id, title, price FROM demo_app_book "
                f"WHERE title LIKE '%{WORD}%' ORDER BY id"
            )
            rows = cursor.fetchall()
    result = render_to_string("demo_app/results/raw.html", {"rows": rows})
    return show(request, trace, result)


def fixed(request: HttpRequest) -> HttpResponse:
    with recording(request) as trace:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT id, title, price FROM demo_app_book WHERE title LIKE %s ORDER BY id",
                [f"%{WORD}%"],
            )
            rows = cursor.fetchall()
    result = render_to_string("demo_app/results/raw.html", {"rows": rows})
    return show(request, trace, result)
