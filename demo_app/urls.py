from django.apps import apps
from django.urls import include, path

from demo_app import views
from demo_app.patterns import PATTERNS

urlpatterns = [
    path("", views.index, name="index"),
    # Every pattern page, from the registry (demo_app/patterns.py).
    *(
        path(pattern.path(version), version.view, name=pattern.name(version))
        for pattern in PATTERNS
        for version in pattern.versions
    ),
    path("__tracer__/", include("tracer.urls")),
]

if apps.is_installed("debug_toolbar"):  # demo_app/settings.py installs it when it can
    urlpatterns.append(path("__debug__/", include("debug_toolbar.urls")))
