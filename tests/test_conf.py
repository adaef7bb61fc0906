from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from tracer.conf import Config, get_config


def test_defaults():
    assert get_config() == Config(
        capture="explicit", always_trace_statements=1000, always_traces_kept=20
    )


def test_override_settings_takes_effect():
    with override_settings(TRACER={"CAPTURE": "always"}):
        assert get_config().capture == "always"
    assert get_config().capture == "explicit"


@override_settings(TRACER=["CAPTURE"])
def test_invalid_raises_clear_error():
    with pytest.raises(ImproperlyConfigured, match="^TRACER must be a dict, not list.$"):
        get_config()
