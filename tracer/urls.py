"""The standalone app: ``path("__tracer__/", include("tracer.urls"))``."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse
from django.urls import path

from tracer.access import tracer_view
from tracer.views import statements

app_name = "tracer"


# TEMPORARY (branch stmtui only): the dashboard and trace pages are built on another
# branch; base.html links to the dashboard and the statement page to its trace. When
# the branches merge, drop these two routes and this view, and keep the other
# branch's "dashboard" and "trace".
@tracer_view
def _elsewhere(request: HttpRequest, trace_id: str = "") -> HttpResponse:
    raise Http404("This page is built on another branch.")


urlpatterns = [
    path("", _elsewhere, name="dashboard"),
    path("traces/<str:trace_id>/", _elsewhere, name="trace"),
    # The statement view (tracer.views.statements).
    path(
        "traces/<str:trace_id>/statements/<int:index>/",
        statements.statement,
        name="statement",
    ),
    path(
        "traces/<str:trace_id>/statements/<int:index>/explain/",
        statements.explain,
        name="explain",
    ),
]
