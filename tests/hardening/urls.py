"""Views whose every statement carries the request's own tag (the concurrency and
memory tests, tests/hardening/)."""

from __future__ import annotations

from django.db import connections
from django.http import HttpRequest, HttpResponse
from django.urls import include, path

from tests.testapp.models import Author

#: Statements per request of ``tagged``: half raw SQL, half ORM counts.
TAGGED_STATEMENTS = 100
#: Statements per request of ``atagged`` (async ORM counts).
ATAGGED_STATEMENTS = 10


def tagged(request: HttpRequest, alias: str, tag: str) -> HttpResponse:
    """Raw ``SELECT %s`` and ORM counts, each with ``tag-i`` as its param: half and
    half, ``TAGGED_STATEMENTS`` or ``?n=`` of them. Answers with the trace's id."""
    count = int(request.GET.get("n", TAGGED_STATEMENTS))
    half = count // 2
    with connections[alias].cursor() as cursor:
        for i in range(half):
            cursor.execute("SELECT %s", [f"{tag}-{i}"])
            assert cursor.fetchone() == (f"{tag}-{i}",)
    for i in range(half, count):
        Author.objects.using(alias).filter(name=f"{tag}-{i}").count()
    return HttpResponse(request.tracer_trace.id)


async def atagged(request: HttpRequest, alias: str, tag: str) -> HttpResponse:
    for i in range(ATAGGED_STATEMENTS):
        await Author.objects.using(alias).filter(name=f"{tag}-{i}").acount()
    return HttpResponse(request.tracer_trace.id)


urlpatterns = [
    path("tagged/<str:alias>/<str:tag>/", tagged),
    path("atagged/<str:alias>/<str:tag>/", atagged),
    path("__tracer__/", include("tracer.urls")),
]
