"""Check, then create: two requests can both find no row, and both create it. The page
plays two requests, A and B, interleaved as a busy server can run them.
``get_or_create()`` writes in a savepoint and, if the INSERT breaks the unique
constraint, reads the row the other request made. Both pages run in a transaction
that is rolled back: they leave the database as it was."""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string

from demo_app.models import Tag
from demo_app.page import recording, show

NAME = "staff picks"  # Tag.name is unique


def bad(request: HttpRequest) -> HttpResponse:
    steps = []
    with recording(request) as trace:
        with transaction.atomic():
            a_found = Tag.objects.filter(name=NAME).exists()
            b_found = Tag.objects.filter(name=NAME).exists()
            steps += [f"A checks: found {a_found}", f"B checks: found {b_found}"]
            if not a_found:
                Tag.objects.create(name=NAME)
                steps.append("A creates the tag")
            if not b_found:
                try:
                    Tag.objects.create(name=NAME)
                    steps.append("B creates the tag")
                except IntegrityError as error:
                    steps.append(f"B creates the tag, and fails: IntegrityError: {error}")
            transaction.set_rollback(True)
    result = render_to_string("demo_app/results/steps.html", {"steps": steps})
    return show(request, trace, result)


def fixed(request: HttpRequest) -> HttpResponse:
    steps = []
    with recording(request) as trace:
        with transaction.atomic():
            a_tag, a_created = Tag.objects.get_or_create(name=NAME)
            steps.append(f"A: get_or_create, created {a_created}")
            b_tag, b_created = Tag.objects.get_or_create(name=NAME)
            steps.append(f"B: get_or_create, created {b_created}, the same tag: {a_tag == b_tag}")
            transaction.set_rollback(True)
    result = render_to_string("demo_app/results/steps.html", {"steps": steps})
    return show(request, trace, result)
