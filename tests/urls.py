from __future__ import annotations

from django.urls import include, path

from tests.testapp import views

urlpatterns = [
    path("authors/", views.authors),
    path("aauthors/", views.aauthors),
    path("broken/", views.broken),
    path("streamed/", views.streamed),
    path("__tracer__/", include("tracer.urls")),
]
