"""Where the recording cost goes: `python tests/bench_parts.py [--workload NAME]`.

Runs one workload of tests/bench.py (same database, same 35-frame stack) with the
tracer recording, then again with one part of the instrumentation switched off at a
time, interleaved, and prints each variant's median ratio to plain. The difference
between "all" and a variant is roughly what that part costs. A diagnostic for work on
the hot path, not a product feature: the parts are switched off by swapping the
tracer's internal functions.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import bench  # tests/bench.py: configures Django, holds the workloads
from django.core.management import call_command
from django.db import connections

from tracer import pipeline, stacks
from tracer.backend import compiler


@contextmanager
def swapped(owner: Any, name: str, value: Any) -> Iterator[None]:
    original = getattr(owner, name)
    setattr(owner, name, value)
    try:
        yield
    finally:
        setattr(owner, name, original)


@contextmanager
def reinstalled(**replacements: Callable[..., Any]) -> Iterator[None]:
    """Install the pipeline with some of its wrapper factories replaced."""
    pipeline.uninstall()
    originals = {name: getattr(pipeline, name) for name in replacements}
    for name, value in replacements.items():
        setattr(pipeline, name, value)
    try:
        pipeline.install()
        yield
    finally:
        pipeline.uninstall()
        for name, value in originals.items():
            setattr(pipeline, name, value)
        pipeline.install()


def passthrough_compile(self: Any, *args: Any, **kwargs: Any) -> Any:
    return self._tracer_execute_sql(*args, **kwargs)


VARIANTS: dict[str, Callable[[], Any]] = {
    "all": lambda: reinstalled(),
    "no stacks": lambda: swapped(stacks, "capture_shared", lambda frame, interned: (None, None)),
    "no lineage": lambda: reinstalled(
        _chain=lambda name, original: original, _get_queryset=lambda original: original
    ),
    "no operations": lambda: reinstalled(
        _trigger=lambda trigger, method, original: original,
        _model_trigger=lambda trigger, original: original,
    ),
    "no hydration": lambda: reinstalled(_iterable_iter=lambda original, instances=False: original),
    "no compile records": lambda: swapped(
        compiler.TracedCompilerMixin, "execute_sql", passthrough_compile
    ),
    "backend only (no pipeline)": lambda: _without_pipeline(),
}


@contextmanager
def _without_pipeline() -> Iterator[None]:
    pipeline.uninstall()
    try:
        with swapped(pipeline, "install", lambda: None):  # run_once() installs it
            yield
    finally:
        pipeline.install()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workload", default="3,000 point lookups", choices=bench.WORKLOADS)
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args(sys.argv[1:])
    workload, unit = bench.WORKLOADS[args.workload]

    call_command("migrate", verbosity=0)
    call_command("seed", stdout=open("/dev/null", "w"))
    connections["traced"].ensure_connection()

    def plain() -> float:
        return bench.run_once("plain", workload)[0]

    def recording(variant: str) -> float:
        with VARIANTS[variant]():
            return bench.run_once("recording", workload)[0]

    runs: dict[str, Callable[[], float]] = {"plain": plain}
    runs.update({name: (lambda name=name: recording(name)) for name in VARIANTS})
    for run in runs.values():  # warm-up
        run()
    times: dict[str, list[float]] = {name: [] for name in runs}
    rng = random.Random(0)
    for _ in range(args.rounds):
        order = list(runs)
        rng.shuffle(order)
        for name in order:
            times[name].append(runs[name]())
    base = statistics.median(times["plain"])
    print(f"{args.workload}, {args.rounds} interleaved rounds, medians, ratio to plain")
    for name in runs:
        label = "plain" if name == "plain" else f"recording, {name}"
        print(f"  {label:40} {statistics.median(times[name]) / base:6.3f}x")


if __name__ == "__main__":
    main()
