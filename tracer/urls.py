"""The standalone app: ``path("__tracer__/", include("tracer.urls"))``."""

from __future__ import annotations

from django.urls import path

from tracer.views import compare, dashboard, statements, traces, transfer

app_name = "tracer"

urlpatterns = [
    path("", dashboard.dashboard, name="dashboard"),
    path("trace/<str:trace_id>/", traces.trace, name="trace"),
    path("trace/<str:trace_id>/statements/", traces.statements, name="statements"),
    path("trace/<str:trace_id>/groups/", traces.groups, name="groups"),
    path("trace/<str:trace_id>/export/", transfer.export, name="export"),
    path("trace/<str:trace_id>/statement/<int:index>/", statements.statement, name="statement"),
    path(
        "trace/<str:trace_id>/statement/<int:index>/explain/",
        statements.explain,
        name="explain",
    ),
    path("import/", transfer.import_trace, name="import"),
    path("compare/", compare.compare, name="compare"),
]
