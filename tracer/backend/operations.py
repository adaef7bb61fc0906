"""Traced DatabaseOperations: the engine's own, handing out traced compilers."""

from __future__ import annotations

import threading
from typing import Any

from tracer.backend.compiler import traced_compiler_class


class TracedOperationsMixin:
    def compiler(self, compiler_name: str) -> type:
        return traced_compiler_class(super().compiler(compiler_name))  # type: ignore[misc]


_classes: dict[type, type] = {}
_lock = threading.Lock()


def traced_operations_class(operations_class: type) -> type:
    """The traced subclass of an engine's operations class (built once, cached)."""
    with _lock:
        if operations_class not in _classes:
            namespace: dict[str, Any] = {
                "__module__": operations_class.__module__,
                "__qualname__": operations_class.__qualname__,
                "__doc__": operations_class.__doc__,
            }
            _classes[operations_class] = type(operations_class)(
                operations_class.__name__, (TracedOperationsMixin, operations_class), namespace
            )
    return _classes[operations_class]
