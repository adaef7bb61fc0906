"""Traced DatabaseOperations: the engine's own, handing out traced compilers while
anything records, and the engine's own compilers when nothing does."""

from __future__ import annotations

import threading
from typing import Any

from tracer import recorder
from tracer.backend.compiler import traced_compiler_class


class TracedOperationsMixin:
    # The engine's compiler class by name, per traced operations class: what an
    # idle connection hands out (no recording code runs on its queries).
    _tracer_compilers: dict[str, type]
    # Their traced subclasses by name: what a connection hands out while anything records.
    _tracer_traced: dict[str, type]

    def compiler(self, compiler_name: str) -> type:
        if recorder.tracing:
            try:
                return self._tracer_traced[compiler_name]
            except KeyError:
                traced = traced_compiler_class(super().compiler(compiler_name))  # type: ignore[misc]
                self._tracer_traced[compiler_name] = traced
                return traced
        try:
            return self._tracer_compilers[compiler_name]
        except KeyError:
            engine: type = super().compiler(compiler_name)  # type: ignore[misc]
            self._tracer_compilers[compiler_name] = engine
            return engine


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
                "_tracer_compilers": {},
                "_tracer_traced": {},
            }
            _classes[operations_class] = type(operations_class)(
                operations_class.__name__, (TracedOperationsMixin, operations_class), namespace
            )
    return _classes[operations_class]
