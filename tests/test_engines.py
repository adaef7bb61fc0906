from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from tracer.engines import resolve, traced, wrapped_engine

# These tests override DATABASES on purpose, without opening connections.
pytestmark = pytest.mark.filterwarnings("ignore:Overriding setting DATABASES")

PLAIN = {
    "default": {"ENGINE": "django.db.backends.postgresql", "NAME": "app", "OPTIONS": {"a": 1}},
    "replica": {"ENGINE": "django.db.backends.sqlite3", "NAME": "r.sqlite3"},
}


def test_traced_wraps_every_alias():
    assert traced(PLAIN) == {
        "default": {
            "ENGINE": "tracer.backend",
            "WRAPPED_ENGINE": "django.db.backends.postgresql",
            "NAME": "app",
            "OPTIONS": {"a": 1},
        },
        "replica": {
            "ENGINE": "tracer.backend",
            "WRAPPED_ENGINE": "django.db.backends.sqlite3",
            "NAME": "r.sqlite3",
        },
    }


def test_traced_is_idempotent_and_copies():
    once = traced(PLAIN)
    assert traced(once) == once
    assert traced(once) is not once
    assert PLAIN["default"]["ENGINE"] == "django.db.backends.postgresql"


def test_traced_leaves_alias_without_engine():
    assert traced({"default": {}}) == {"default": {}}


def test_wrapped_engine_of_dicts():
    assert wrapped_engine(traced(PLAIN)["default"]) == "django.db.backends.postgresql"
    assert wrapped_engine(PLAIN["replica"]) == "django.db.backends.sqlite3"


def test_wrapped_engine_of_alias():
    assert wrapped_engine("default") == "django.db.backends.sqlite3"
    assert wrapped_engine("sqlite_plain") == "django.db.backends.sqlite3"


def test_resolve_from_settings_when_dict_was_copied_without_key():
    # Django (and its test suite) sometimes builds a dict from ENGINE and NAME alone.
    assert resolve({"ENGINE": "tracer.backend", "NAME": "x"}, "default") == (
        "django.db.backends.sqlite3"
    )


@override_settings(DATABASES=traced({"default": PLAIN["replica"], "b": PLAIN["replica"]}))
def test_resolve_unknown_alias_uses_the_one_shared_engine():
    assert resolve({"ENGINE": "tracer.backend"}, "elsewhere") == "django.db.backends.sqlite3"


@override_settings(DATABASES=traced(PLAIN))
def test_resolve_unknown_alias_with_several_engines_fails():
    with pytest.raises(ImproperlyConfigured, match="DATABASES\\['elsewhere'\\] uses ENGINE"):
        resolve({"ENGINE": "tracer.backend"}, "elsewhere")


@override_settings(
    DATABASES={
        **traced(PLAIN),
        "bare": {"ENGINE": "tracer.backend", "NAME": "x"},
    }
)
def test_configured_alias_without_key_is_not_guessed():
    with pytest.raises(ImproperlyConfigured) as info:
        resolve({"ENGINE": "tracer.backend", "NAME": "x"}, "bare")
    assert str(info.value) == (
        "DATABASES['bare'] uses ENGINE 'tracer.backend' but has no WRAPPED_ENGINE. "
        'Add the real engine, e.g. "WRAPPED_ENGINE": "django.db.backends.postgresql", '
        "or wrap your DATABASES with tracer.traced(DATABASES)."
    )


def test_key_in_options_gets_a_pointed_hint():
    settings_dict = {"ENGINE": "tracer.backend", "OPTIONS": {"WRAPPED_ENGINE": "x"}}
    with override_settings(DATABASES={**traced(PLAIN), "opt": settings_dict}):
        with pytest.raises(ImproperlyConfigured, match="Move WRAPPED_ENGINE out of OPTIONS"):
            resolve(settings_dict, "opt")


def test_non_string_engine():
    with pytest.raises(ImproperlyConfigured) as info:
        resolve({"ENGINE": "tracer.backend", "WRAPPED_ENGINE": 3}, "a")
    assert str(info.value).startswith(
        "DATABASES['a']['WRAPPED_ENGINE'] must be a dotted module path string, not int."
    )
