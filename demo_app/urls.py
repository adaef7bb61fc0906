from importlib.util import find_spec

from django.urls import include, path

from demo_app import views

urlpatterns = [
    path("", views.index, name="index"),
    path("books/n-plus-one/", views.books_n_plus_one, name="books_n_plus_one"),
    path("books/select-related/", views.books_select_related, name="books_select_related"),
    path("__tracer__/", include("tracer.urls")),
]

if find_spec("debug_toolbar") is not None:
    urlpatterns.append(path("__debug__/", include("debug_toolbar.urls")))
