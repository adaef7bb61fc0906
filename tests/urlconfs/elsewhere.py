"""The tracer app mounted somewhere other than __tracer__/."""

from __future__ import annotations

from django.urls import include, path

from tests.testapp import views

urlpatterns = [
    path("authors/", views.authors),
    path("internal/queries/", include("tracer.urls")),
]
