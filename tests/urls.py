from __future__ import annotations

from django.urls import include, path, re_path

from tests.testapp import views

urlpatterns = [
    path("authors/", views.authors),
    path("aauthors/", views.aauthors),
    path("broken/", views.broken),
    path("streamed/", views.streamed),
    path("books-page/", views.books_page),
    path("abooks-page/", views.abooks_page),
    path("hostile-page/", views.hostile_page),
    path("books/n-plus-one/", views.books_n_plus_one),
    path("books/select-related/", views.books_select_related),
    path("books/on/<str:alias>/", views.books_on),
    re_path(r"^hostile/(?P<name>[^/]*)/$", views.hostile),
    path("__tracer__/", include("tracer.urls")),
    path("__debug__/", include("debug_toolbar.urls")),
]
