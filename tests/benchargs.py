"""Command-line arguments the benchmarks share (importing this configures nothing)."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable


def names(known: Iterable[str]) -> Callable[[str], list[str]]:
    """An argparse type: a comma-separated list of names, each one of ``known``
    (``--workloads update,lookup``), refused with the names there are."""
    known = list(known)

    def parse(value: str) -> list[str]:
        chosen = [name.strip() for name in value.split(",") if name.strip()]
        unknown = [name for name in chosen if name not in known]
        if unknown or not chosen:
            wrong = ", ".join(map(repr, unknown)) if unknown else "no names"
            raise argparse.ArgumentTypeError(f"{wrong}; choose from {', '.join(known)}")
        return chosen

    return parse
