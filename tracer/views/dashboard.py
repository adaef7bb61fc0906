"""The list of recent traces: filtered, sorted and paged from the query string, so that
every view of it can be bookmarked; live while on its first page."""

from __future__ import annotations

import datetime
import hashlib
from typing import Any

from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import urlencode

from tracer.access import tracer_view
from tracer.store import BADGES, SORT_KEYS, ListQuery, get_store
from tracer.views.htmx import is_htmx, vary_on_htmx

#: Traces per page.
PAGE_SIZE = 50
#: How often the first page asks whether the list changed.
POLL_SECONDS = 2
#: Methods the filter offers (any other is accepted from the query string too).
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
#: The sortable columns: (sort key, header, its first click sorts descending).
COLUMNS = (
    ("started_at", "Time", True),
    ("path", "Path", False),
    ("status", "Status", False),
    ("statements", "Statements", True),
    ("db_ms", "DB ms", True),
    ("orm_ms", "ORM ms", True),
    ("duration_ms", "Total ms", True),
)
BADGE_LABELS = {"n_plus_ones": "N+1", "duplicates": "Duplicates", "slow": "Slow"}
DEFAULT_SORT = ListQuery.sort


class Filters:
    """The list's filters, sort and page, read from a query string (invalid values
    fall back to the defaults), and written back into links."""

    def __init__(self, params: QueryDict) -> None:
        self.path = params.get("path", "").strip()[:200]
        method = params.get("method", "").strip().upper()
        self.method = method if method.isalpha() and len(method) <= 10 else ""
        self.min_statements = _natural(params.get("min"), 0)
        chosen = params.getlist("badge")
        self.badges = tuple(badge for badge in BADGES if badge in chosen)
        sort = params.get("sort", DEFAULT_SORT)
        self.sort = sort if sort.lstrip("-") in SORT_KEYS else DEFAULT_SORT
        self.page = max(1, _natural(params.get("page"), 1))

    def query(self, page: int | None = None) -> ListQuery:
        page = self.page if page is None else page
        return ListQuery(
            path=self.path,
            method=self.method,
            min_statements=self.min_statements,
            badges=self.badges,
            sort=self.sort,
            offset=(page - 1) * PAGE_SIZE,
            limit=PAGE_SIZE,
        )

    def params(self, **changes: Any) -> list[tuple[str, Any]]:
        """The non-default settings as query-string pairs, with ``changes``."""
        values: dict[str, Any] = {
            "path": self.path,
            "method": self.method,
            "min": self.min_statements or "",
            "badge": self.badges,
            "sort": "" if self.sort == DEFAULT_SORT else self.sort,
            "page": "" if self.page == 1 else self.page,
        }
        values.update(changes)
        pairs: list[tuple[str, Any]] = []
        for key, value in values.items():
            if isinstance(value, tuple):
                pairs.extend((key, item) for item in value)
            elif value not in ("", None) and not (key == "sort" and value == DEFAULT_SORT):
                pairs.append((key, value))
        return pairs

    def link(self, **changes: Any) -> str:
        """``?query`` of this list with ``changes`` (``""`` drops a setting); ``""``
        when all are defaults."""
        pairs = self.params(**changes)
        return "?" + urlencode(pairs) if pairs else ""

    @property
    def active(self) -> bool:
        return bool(self.path or self.method or self.min_statements or self.badges)


def _natural(value: str | None, default: int) -> int:
    try:
        return max(0, int(value)) if value else default
    except ValueError:
        return default


@tracer_view
def dashboard(request: HttpRequest) -> HttpResponse:
    """The page, or for htmx the list alone. A poll (``?poll=<version>``) gets 204 No
    Content while the list is what the client shows."""
    filters = Filters(request.GET)
    store = get_store()
    rows, total = store.summaries(filters.query())
    last_page = max(1, -(-total // PAGE_SIZE))
    if filters.page > last_page:
        filters.page = last_page
        rows, total = store.summaries(filters.query())
    version = _version(rows, total)
    if is_htmx(request) and request.GET.get("poll") == version:
        return vary_on_htmx(HttpResponse(status=204))
    context = {
        "filters": filters,
        "rows": [row(summary) for summary in rows],
        "total": total,
        "page": filters.page,
        "pages": _pages(filters, last_page),
        "columns": {column["key"]: column for column in _columns(filters)},
        "methods": METHODS,
        "badges": [(badge, BADGE_LABELS[badge], badge in filters.badges) for badge in BADGES],
        "live": filters.page == 1,
        "poll_seconds": POLL_SECONDS,
        "poll_link": filters.link(poll=version),
    }
    if not is_htmx(request):
        return vary_on_htmx(render(request, "tracer/dashboard.html", context))
    response = render(request, "tracer/_traces.html", context)
    if "poll" not in request.GET:
        # The address bar shows the list's canonical query, not the form's empty fields.
        response["HX-Push-Url"] = reverse("tracer:dashboard") + filters.link()
    return vary_on_htmx(response)


def _version(rows: list[dict[str, Any]], total: int) -> str:
    """What the client's list shows, in short: a trace is never changed once stored,
    so the ids on the page and the total say whether anything moved."""
    ids = ",".join(str(row["id"]) for row in rows)
    return hashlib.blake2b(f"{total}:{ids}".encode(), digest_size=8).hexdigest()


def row(summary: dict[str, Any]) -> dict[str, Any]:
    """A summary (``tracer.findings.summary``) with what the list shows of it."""
    started_at = summary["started_at"]
    label = summary["label"] or ""
    return {
        **summary,
        "started": (
            datetime.datetime.fromtimestamp(started_at, tz=datetime.timezone.utc)
            if isinstance(started_at, (int, float))
            else None
        ),
        "imported": label.startswith("imported: "),
        "labelled_by_request": label == f"{summary['method']} {summary['path']}",
        "failed": summary["status"] is None and summary["method"] is not None,
    }


def _columns(filters: Filters) -> list[dict[str, Any]]:
    key, descending = filters.sort.lstrip("-"), filters.sort.startswith("-")
    columns = []
    for column, header, first_descending in COLUMNS:
        if column == key:
            sort = column if descending else f"-{column}"
            state = "descending" if descending else "ascending"
        else:
            sort = f"-{column}" if first_descending else column
            state = None
        columns.append(
            {
                "key": column,
                "header": header,
                "sort": state,
                "link": filters.link(sort=sort, page=""),
            }
        )
    return columns


def _pages(filters: Filters, last_page: int) -> dict[str, Any]:
    page = filters.page
    return {
        "last": last_page,
        "previous": filters.link(page=page - 1 if page > 2 else "") if page > 1 else None,
        "next": filters.link(page=page + 1) if page < last_page else None,
    }
