"""The demo's views: the index, and one module per pattern (its bad and fixed views).

``demo_app.patterns`` lists them all; ``demo_app.page`` records and shows each.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def index(request: HttpRequest) -> HttpResponse:
    from demo_app.patterns import PATTERNS, links  # the registry imports this package

    entries = [
        {"number": number, "pattern": pattern, "versions": links(pattern)}
        for number, pattern in enumerate(PATTERNS, 1)
    ]
    return render(request, "demo_app/index.html", {"entries": entries})
