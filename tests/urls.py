from __future__ import annotations

from django.urls import path

from tests import views

urlpatterns = [
    path("authors/", views.authors),
    path("aauthors/", views.aauthors),
    path("broken/", views.broken),
    path("streamed/", views.streamed),
]
