from django.urls import include, path

from demo_app import views

urlpatterns = [
    path("", views.index, name="index"),
    path("books/n-plus-one/", views.books_n_plus_one, name="books_n_plus_one"),
    path("books/select-related/", views.books_select_related, name="books_select_related"),
    path("__tracer__/", include("tracer.urls")),
]
