"""Test-database creation, as the wrapped engine does it."""

from __future__ import annotations

import threading
from typing import Any

from tracer.engines import ENGINE


class TracedCreationMixin:
    connection: Any

    def test_db_signature(self) -> tuple[Any, ...]:
        # The signature decides which aliases share a test database. Report the
        # wrapped engine where the base class reports ENGINE, so that a tracer alias
        # and a plain alias on the same database share one test database.
        signature = super().test_db_signature()  # type: ignore[misc]
        return tuple(
            self.connection.wrapped_engine if part == ENGINE else part for part in signature
        )


_classes: dict[type, type] = {}
_lock = threading.Lock()


def traced_creation_class(creation_class: type) -> type:
    with _lock:
        if creation_class not in _classes:
            _classes[creation_class] = type(creation_class)(
                creation_class.__name__,
                (TracedCreationMixin, creation_class),
                {
                    "__module__": __name__,
                    "__qualname__": creation_class.__qualname__,
                },
            )
        return _classes[creation_class]
