"""System checks: misconfiguration reported at startup, with stable ids.

tracer.E001  a tracer alias has no WRAPPED_ENGINE
tracer.E002  WRAPPED_ENGINE is not a module path, or does not load
tracer.E003  WRAPPED_ENGINE is tracer.backend itself
tracer.E004  the TRACER setting is invalid
tracer.W001  WRAPPED_ENGINE on an alias whose ENGINE is not tracer.backend (ignored)
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.db.utils import load_backend

from tracer import engines
from tracer.conf import config_problems


def register() -> None:
    checks.register(check_databases)
    checks.register(check_settings)


def check_databases(**kwargs: Any) -> list[checks.CheckMessage]:
    messages: list[checks.CheckMessage] = []
    for alias, config in settings.DATABASES.items():
        engine = config.get("ENGINE")
        if engine not in (engines.ENGINE, engines.ENGINE + ".base"):
            if "WRAPPED_ENGINE" in config:
                messages.append(
                    checks.Warning(
                        f"DATABASES[{alias!r}] has WRAPPED_ENGINE but its ENGINE is "
                        f"{engine!r}, so it is not traced.",
                        hint=f'Set "ENGINE": "{engines.ENGINE}" to trace it, or remove '
                        "WRAPPED_ENGINE.",
                        id="tracer.W001",
                    )
                )
            continue
        wrapped = config.get("WRAPPED_ENGINE")
        problem = (
            engines.missing(alias, config) if not wrapped else engines.invalid(alias, wrapped)
        )
        if problem is None:
            try:
                load_backend(wrapped)
            except ImproperlyConfigured as exc:
                problem = engines.unloadable(alias, wrapped, exc)
        if problem is not None:
            messages.append(checks.Error(problem.msg, hint=problem.hint, id=problem.id))
    return messages


def check_settings(**kwargs: Any) -> list[checks.CheckMessage]:
    return [
        checks.Error(problem, id="tracer.E004")
        for problem in config_problems(getattr(settings, "TRACER", {}))
    ]
