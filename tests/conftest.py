from __future__ import annotations

import pytest
from django.conf import settings
from django.db import connections
from hypothesis import HealthCheck, Phase
from hypothesis import settings as hypothesis_settings

# Property-based tests: the same examples on every run (derandomized, no example
# database written anywhere), few enough that they all take seconds. Examples that
# once failed are kept as explicit @example()s next to their test.
hypothesis_settings.register_profile(
    "tracer",
    derandomize=True,
    database=None,
    max_examples=60,
    deadline=None,
    print_blob=False,
    # No "explain" phase: it traces the failing example (sys.settrace), which the
    # playground's property tests would see as code they did not expect.
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
hypothesis_settings.load_profile("tracer")

#: Traced alias of each vendor; each has a plain twin named "<vendor>_plain".
TRACED = {"sqlite": "default", "postgresql": "postgresql", "mysql": "mysql"}


@pytest.fixture(params=sorted(TRACED))
def vendor(request: pytest.FixtureRequest) -> str:
    name = request.param
    if name in settings.UNAVAILABLE:
        pytest.skip(settings.UNAVAILABLE[name])
    return name


@pytest.fixture(params=["mysql", "postgresql"])
def server_vendor(request: pytest.FixtureRequest) -> str:
    """The vendors with a server (connections without a database, procedures)."""
    name = request.param
    if name in settings.UNAVAILABLE:
        pytest.skip(settings.UNAVAILABLE[name])
    return name


@pytest.fixture
def alias(vendor: str) -> str:
    return TRACED[vendor]


@pytest.fixture
def plain_alias(vendor: str) -> str:
    return f"{vendor}_plain"


@pytest.fixture
def connection(alias: str):  # type: ignore[no-untyped-def]
    return connections[alias]


@pytest.fixture
def plain_connection(plain_alias: str):  # type: ignore[no-untyped-def]
    return connections[plain_alias]


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):  # type: ignore[no-untyped-def]
    yield
    # Traced and plain aliases share a test database: close every connection so
    # that it can be dropped.
    with django_db_blocker.unblock():
        connections.close_all()
