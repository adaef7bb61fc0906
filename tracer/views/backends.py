"""The backend anatomy page: for the aliases chosen, side by side, the classes their
engine is made of, the feature flags that change the SQL, how lookups become SQL
operators, and the column types; where they differ is marked.

Rendering opens no connection and sends nothing (tracer.anatomy), so the page works
with a database down; ``?connect=1`` reads what needs the server through each
alias's own connection.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db.utils import load_backend
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.http import urlencode
from django.views.decorators.http import require_GET

from tracer import engines
from tracer.access import tracer_view
from tracer.anatomy import NEEDS_SERVER, load, sections


def chosen(params: Any) -> list[str]:
    """The aliases to show side by side: ``?a=`` and ``?b=``, else the first alias
    and the first after it of another vendor (or the second)."""
    aliases = list(settings.DATABASES)
    a = params.get("a") if params.get("a") in aliases else aliases[0]
    b = params.get("b") if params.get("b") in aliases else None
    if b is None:
        others = [alias for alias in aliases if alias != a]
        vendor = _vendor(a)
        different = [alias for alias in others if _vendor(alias) != vendor]
        b = (different or others or [None])[0]
    return [a] if b is None or b == a else [a, b]


def _vendor(alias: str) -> str | None:
    try:
        return str(load_backend(engines.wrapped_engine(alias)).DatabaseWrapper.vendor)
    except Exception:
        return None


@tracer_view
@require_GET
def backends(request: HttpRequest) -> HttpResponse:
    """The anatomy of the chosen aliases' engines, side by side."""
    picked = chosen(request.GET)
    connect = request.GET.get("connect") == "1"
    shown = [load(alias, connect=connect) for alias in picked]
    parts: dict[str, Any] = {
        "classes": sections.classes(shown),
        "operations": sections.operations(shown),
        "flags": sections.flags(shown),
        "lookups": sections.lookups(shown),
        "pattern_ops": sections.pattern_ops(shown),
        "data_types": sections.data_types(shown),
    }
    rows = [row for name, found in parts.items() if name != "flags" for row in found]
    rows += [row for topic in parts["flags"] for row in topic["rows"]]
    context = {
        **parts,
        "aliases": [{"alias": alias, "engine": _engine(alias)} for alias in settings.DATABASES],
        "picked": picked,
        "backends": shown,
        "connect": connect,
        "connect_link": "?" + urlencode({"a": picked[0], "b": picked[-1], "connect": 1}),
        "needs_server": any(cell.unknown == NEEDS_SERVER for row in rows for cell in row.cells),
    }
    return render(request, "tracer/backends.html", context)


def _engine(alias: str) -> str:
    try:
        return engines.wrapped_engine(alias)
    except Exception:  # misconfigured: the system checks say why
        return "?"
