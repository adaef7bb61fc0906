"""Traces in and out as files: export one as ``tracer-trace/1`` JSON, import one back."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.utils.http import content_disposition_header
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.http import require_http_methods

from tracer.access import tracer_view
from tracer.store import get_store
from tracer.trace import Trace
from tracer.views.traces import get_trace

#: The largest file an import reads. A 5,000-statement trace exports to about 14 MB.
IMPORT_MAX_BYTES = 64 * 1024 * 1024
#: What an imported trace's label starts with.
IMPORTED = "imported: "


@tracer_view
def export(request: HttpRequest, trace_id: str) -> HttpResponse:
    """The trace as a JSON file to download."""
    data = get_trace(trace_id).to_dict()
    response = HttpResponse(json.dumps(data), content_type="application/json")
    response["Content-Disposition"] = content_disposition_header(
        as_attachment=True, filename=filename(data)
    )
    return response


def filename(data: dict[str, Any]) -> str:
    """``trace-get-books-<id>.json``: the label's words, then the id."""
    words = re.sub(r"[^a-z0-9]+", "-", str(data.get("label") or "").lower()).strip("-")[:60]
    return f"trace-{words + '-' if words else ''}{data.get('id')}.json"


def imported(data: Any) -> Trace:
    """``data`` loaded as a new trace: a new id, so that importing a trace that is in
    the store keeps both, and a label saying it was imported.

    Raises ValueError (``Trace.from_dict``'s, saying what is wrong) if it is not a
    ``tracer-trace/1`` trace."""
    if isinstance(data, dict) and isinstance(data.get("id"), str):
        label = data.get("label") or data["id"]
        if not (isinstance(label, str) and label.startswith(IMPORTED)):
            label = f"{IMPORTED}{label}"
        data = {**data, "id": uuid.uuid4().hex, "label": label}
    return Trace.from_dict(data)


@tracer_view
@csrf_protect
@require_http_methods(["GET", "POST"])
def import_trace(request: HttpRequest) -> HttpResponse:
    """The form; on POST, the trace file read, stored and shown."""
    if request.method != "POST":
        return _form(request)
    upload = request.FILES.get("trace")
    if upload is None:
        return _form(request, "Choose a trace file (.json) to import.")
    if upload.size is not None and upload.size > IMPORT_MAX_BYTES:
        return _form(
            request,
            f"The file is {upload.size:,} bytes; the largest that can be imported is "
            f"{IMPORT_MAX_BYTES:,} bytes.",
        )
    try:
        data = json.loads(upload.read())
    except (ValueError, UnicodeDecodeError) as exc:
        return _form(request, f"{upload.name} is not JSON: {exc}")
    except RecursionError:  # json's own limit on nesting
        return _form(request, f"{upload.name} is nested too deeply to be a trace.")
    try:
        trace = imported(data)
    except ValueError as exc:
        return _form(request, str(exc))
    get_store().add(trace)
    response: HttpResponseRedirect = redirect("tracer:trace", trace.id)
    return response


def _form(request: HttpRequest, error: str = "") -> HttpResponse:
    context = {"error": error, "max_bytes": IMPORT_MAX_BYTES}
    return render(request, "tracer/import.html", context, status=400 if error else 200)
