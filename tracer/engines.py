"""Which real engine a tracer alias wraps, and how settings say so."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ImproperlyConfigured

#: The ``ENGINE`` value of a traced alias.
ENGINE = "tracer.backend"
_SELF = {ENGINE, ENGINE + ".base"}


@dataclass(frozen=True)
class Problem:
    """A misconfigured alias, said the same way by the backend and the system checks."""

    id: str
    msg: str
    hint: str

    def error(self) -> ImproperlyConfigured:
        return ImproperlyConfigured(f"{self.msg} {self.hint}")


def traced(databases: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Return a copy of a ``DATABASES`` dict with every alias going through the tracer.

    Each alias keeps its settings; its ``ENGINE`` moves to ``WRAPPED_ENGINE``. Aliases
    already traced, or without an ``ENGINE``, are copied unchanged, so calling this
    twice gives the same result as calling it once.
    """
    result: dict[str, dict[str, Any]] = {}
    for alias, config in databases.items():
        engine = config.get("ENGINE")
        if engine and engine not in _SELF:
            result[alias] = {**config, "ENGINE": ENGINE, "WRAPPED_ENGINE": engine}
        else:
            result[alias] = dict(config)
    return result


def wrapped_engine(alias_or_settings: str | Mapping[str, Any] = "default") -> str:
    """The real engine behind an alias (or a settings dict): for a tracer alias its
    ``WRAPPED_ENGINE``, otherwise its ``ENGINE``.

    For code that reads ``settings.DATABASES[alias]["ENGINE"]`` to decide what
    database it talks to; ``connection.vendor`` is right in either case.
    """
    if isinstance(alias_or_settings, str):
        from django.conf import settings

        alias = alias_or_settings
        settings_dict = settings.DATABASES[alias]
    else:
        alias, settings_dict = "", alias_or_settings
    if settings_dict.get("ENGINE") in _SELF:
        return resolve(settings_dict, alias)
    return settings_dict.get("ENGINE") or "django.db.backends.dummy"


def resolve(settings_dict: Mapping[str, Any], alias: str) -> str:
    """Find the engine a tracer alias wraps, or raise ImproperlyConfigured.

    Django and its test suite sometimes build a fresh settings dict from ``ENGINE``
    and ``NAME`` alone, so when the dict has no ``WRAPPED_ENGINE`` it is looked up in
    ``settings.DATABASES[alias]``, then taken from the one engine all tracer aliases
    share.
    """
    engine = settings_dict.get("WRAPPED_ENGINE")
    if not engine:
        from django.conf import settings

        databases = settings.DATABASES
        configured = databases.get(alias)
        if configured is not None and configured.get("ENGINE") in _SELF:
            engine = configured.get("WRAPPED_ENGINE")
            if not engine:
                raise missing(alias, configured).error()
        else:
            shared = {
                config.get("WRAPPED_ENGINE")
                for config in databases.values()
                if config.get("ENGINE") in _SELF and config.get("WRAPPED_ENGINE")
            }
            if len(shared) != 1:
                raise missing(alias, settings_dict).error()
            engine = shared.pop()
    problem = invalid(alias, engine)
    if problem is not None:
        raise problem.error()
    return engine


def missing(alias: str, settings_dict: Mapping[str, Any]) -> Problem:
    hint = (
        'Add the real engine, e.g. "WRAPPED_ENGINE": "django.db.backends.postgresql", '
        "or wrap your DATABASES with tracer.traced(DATABASES)."
    )
    if "WRAPPED_ENGINE" in settings_dict.get("OPTIONS", {}):
        hint = (
            "Move WRAPPED_ENGINE out of OPTIONS (OPTIONS go to the driver's connect()) "
            "to the alias itself, next to ENGINE."
        )
    return Problem(
        "tracer.E001",
        f"DATABASES[{alias!r}] uses ENGINE {ENGINE!r} but has no WRAPPED_ENGINE.",
        hint,
    )


def invalid(alias: str, engine: Any) -> Problem | None:
    """A problem with a WRAPPED_ENGINE value that can be seen without importing it."""
    if not isinstance(engine, str):
        return Problem(
            "tracer.E002",
            f"DATABASES[{alias!r}]['WRAPPED_ENGINE'] must be a dotted module path "
            f"string, not {type(engine).__name__}.",
            'Use the engine\'s module path, e.g. "django.db.backends.sqlite3".',
        )
    if engine.rstrip(".") in _SELF:
        return Problem(
            "tracer.E003",
            f"DATABASES[{alias!r}]['WRAPPED_ENGINE'] is {engine!r}: the tracer cannot "
            "wrap itself.",
            'Set WRAPPED_ENGINE to the real engine, e.g. "django.db.backends.sqlite3".',
        )
    return None


def unloadable(alias: str, engine: str, exc: BaseException) -> Problem:
    return Problem(
        "tracer.E002",
        f"DATABASES[{alias!r}]['WRAPPED_ENGINE'] = {engine!r} could not be loaded: {exc}",
        "Check the engine's module path and that its driver is installed.",
    )
