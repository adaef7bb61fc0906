"""A project that records requests but does not mount the tracer app."""

from __future__ import annotations

from django.urls import path

from tests.testapp import views

urlpatterns = [
    path("authors/", views.authors),
    path("__tracer__/", views.authors),
]
