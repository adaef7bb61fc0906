"""The standalone app: ``path("__tracer__/", include("tracer.urls"))``."""

from __future__ import annotations

from django.urls import path, register_converter

from tracer.views import backends, compare, dashboard, playground, statements, traces, transfer

app_name = "tracer"


class StatementNumber:
    """A statement in a URL as the pages number it, from 1; the views take its index
    in ``trace.statements``, from 0."""

    regex = "[1-9][0-9]{0,9}"

    def to_python(self, value: str) -> int:
        return int(value) - 1

    def to_url(self, value: int) -> str:
        return str(int(value) + 1)


register_converter(StatementNumber, "tracer_statement")

urlpatterns = [
    path("", dashboard.dashboard, name="dashboard"),
    path("trace/<str:trace_id>/", traces.trace, name="trace"),
    path("trace/<str:trace_id>/statements/", traces.statements, name="statements"),
    path("trace/<str:trace_id>/groups/", traces.groups, name="groups"),
    path("trace/<str:trace_id>/export/", transfer.export, name="export"),
    path(
        "trace/<str:trace_id>/statement/<tracer_statement:index>/",
        statements.statement,
        name="statement",
    ),
    path(
        "trace/<str:trace_id>/statement/<tracer_statement:index>/explain/",
        statements.explain,
        name="explain",
    ),
    path("import/", transfer.import_trace, name="import"),
    path("compare/", compare.compare, name="compare"),
    path("playground/", playground.playground, name="playground"),
    path("playground/run/", playground.playground_run, name="playground_run"),
    path("backends/", backends.backends, name="backends"),
]
