from django.apps import apps
from django.urls import include, path

from demo_app import views

urlpatterns = [
    path("", views.index, name="index"),
    path("books/n-plus-one/", views.books_n_plus_one, name="books_n_plus_one"),
    path("books/select-related/", views.books_select_related, name="books_select_related"),
    path("__tracer__/", include("tracer.urls")),
]

if apps.is_installed("debug_toolbar"):  # demo_app/settings.py installs it when it can
    urlpatterns.append(path("__debug__/", include("debug_toolbar.urls")))
