"""Views for the middleware tests (tests/urls.py)."""

from __future__ import annotations

from collections.abc import Iterator

from django.http import HttpRequest, HttpResponse, StreamingHttpResponse

from tests.testapp.models import Author


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
