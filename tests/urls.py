from __future__ import annotations

from django.urls import include, path

from tests.testapp import views

urlpatterns = [
    path("authors/", views.authors),
    path("aauthors/", views.aauthors),
    path("broken/", views.broken),
    path("streamed/", views.streamed),
    path("books-page/", views.books_page),
    path("abooks-page/", views.abooks_page),
    path("hostile-page/", views.hostile_page),
    path("__tracer__/", include("tracer.urls")),
    path("__debug__/", include("debug_toolbar.urls")),
]
