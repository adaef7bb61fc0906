"""The ``TRACER`` setting: one dict, every key has a default."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver

CAPTURE_MODES = ("explicit", "always")

DEFAULTS: dict[str, Any] = {
    # "explicit": record inside tracer.capture() only.
    # "always": also record every statement outside any trace, into rolling traces.
    "CAPTURE": "explicit",
    # With CAPTURE "always": statements per rolling trace, and finished traces kept.
    "ALWAYS_TRACE_STATEMENTS": 1000,
    "ALWAYS_TRACES_KEPT": 20,
}


@dataclass(frozen=True)
class Config:
    capture: str
    always_trace_statements: int
    always_traces_kept: int


def config_problems(value: Any) -> list[str]:
    """Describe what is wrong with a TRACER setting value (empty when valid)."""
    if not isinstance(value, dict):
        return [f"TRACER must be a dict, not {type(value).__name__}."]
    problems = [
        f"TRACER has an unknown key {key!r}; known keys: {', '.join(sorted(DEFAULTS))}."
        for key in value
        if key not in DEFAULTS
    ]
    capture = value.get("CAPTURE", DEFAULTS["CAPTURE"])
    if capture not in CAPTURE_MODES:
        problems.append(
            f"TRACER['CAPTURE'] is {capture!r}; use one of {', '.join(map(repr, CAPTURE_MODES))}."
        )
    for key in ("ALWAYS_TRACE_STATEMENTS", "ALWAYS_TRACES_KEPT"):
        number = value.get(key, DEFAULTS[key])
        if not isinstance(number, int) or isinstance(number, bool) or number < 1:
            problems.append(f"TRACER[{key!r}] must be a positive integer, not {number!r}.")
    return problems


@lru_cache(maxsize=1)
def get_config() -> Config:
    user = getattr(settings, "TRACER", {})
    problems = config_problems(user)
    if problems:
        raise ImproperlyConfigured(" ".join(problems))
    merged = {**DEFAULTS, **user}
    return Config(
        capture=merged["CAPTURE"],
        always_trace_statements=merged["ALWAYS_TRACE_STATEMENTS"],
        always_traces_kept=merged["ALWAYS_TRACES_KEPT"],
    )


@receiver(setting_changed)
def _reset_config(*, setting: str, **kwargs: Any) -> None:
    # So that override_settings(TRACER=...) takes effect in tests.
    if setting == "TRACER":
        get_config.cache_clear()
