from __future__ import annotations

from django.apps import AppConfig


class TracerConfig(AppConfig):
    name = "tracer"
    verbose_name = "Query pipeline tracer"

    def ready(self) -> None:
        from tracer import checks

        checks.register()
