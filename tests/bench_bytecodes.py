"""Bytecodes each workload runs, plain, idle and recording, and which of the
tracer's functions run them when it records: `make bench-bytecodes`, or
`python tests/bench_bytecodes.py [--workloads update] [--top 20]`.

Counts are exact (``sys.settrace`` opcode events) and do not move with machine load.
They track wall-clock cost better than CPU instructions do: the tracer's work is all
Python bytecode, while much of the plain engine's instructions are SQLite's C code,
which runs faster per instruction. On this bench's workloads (2026-11-22) the
bytecode ratio read within 4 points of the wall ratio (the fastest of 21 interleaved
runs) for updates, lookups and the N+1 page, and 8 points under it for select_related
pages; the instruction ratio (`make bench-instructions`) reads half of the overhead.

For each workload of tests/bench.py: one warm-up run of each mode (plain engine;
tracer installed, nothing recording; recording, inside ``tracer.capture()``), then one
counted run of each from a call stack 35 frames deep. It prints the bytecodes per
operation, the idle and recording ratios to plain, the tracer's own bytecodes when
recording, and with ``--top N`` the tracer functions that ran the most then (bytecodes
and calls per operation).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections import Counter
from contextlib import nullcontext
from types import FrameType
from typing import Any

import bench  # tests/bench.py: configures Django, holds the workloads
from benchargs import names
from django.core.management import call_command

import tracer
from tracer import pipeline

WORKLOADS = {
    "lookup": (bench.point_lookups, 3000),
    "page": (bench.select_related_pages, 300),
    "fetch": (bench.big_fetch, 1),
    "update": (bench.updates_in_transaction, 500),
    "nplusone": (bench.n_plus_one_page, 1),
}
_TRACER = os.path.dirname(os.path.abspath(tracer.__file__)) + os.sep


def count(mode: str, workload: Any) -> tuple[Counter[Any], Counter[Any]]:
    """(bytecodes, calls) per code object for one run of ``workload`` in ``mode``."""
    if mode == "plain":
        pipeline.uninstall()
    else:
        pipeline.install()
    alias = bench.ALIAS[mode]
    ops: Counter[Any] = Counter()
    calls: Counter[Any] = Counter()

    def trace(frame: FrameType, event: str, arg: Any) -> Any:
        frame.f_trace_opcodes = True
        if event == "opcode":
            ops[frame.f_code] += 1
        elif event == "call":
            calls[frame.f_code] += 1
        return trace

    for counted in (False, True):
        context = tracer.capture() if mode == "recording" else nullcontext()
        with context:
            if counted:
                sys.settrace(trace)
            try:
                bench.deep(35, lambda: workload(alias))
            finally:
                sys.settrace(None)
    return ops, calls


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workloads", type=names(WORKLOADS), default=list(WORKLOADS))
    parser.add_argument("--top", type=int, default=0, help="list the N busiest tracer functions")
    args = parser.parse_args()

    call_command("migrate", verbosity=0)
    call_command("seed", stdout=open(os.devnull, "w"))
    print(
        f"{'workload':10} {'plain bc/op':>12} {'idle':>8} {'recording bc/op':>16} {'ratio':>7} "
        f"{'tracer':>8}"
    )
    for name in args.workloads:
        workload, per = WORKLOADS[name]
        plain, _ = count("plain", workload)
        idle, _ = count("idle", workload)
        recording, calls = count("recording", workload)
        plain_total = sum(plain.values()) / per
        idle_total = sum(idle.values()) / per
        recording_total = sum(recording.values()) / per
        own = {code: n for code, n in recording.items() if code.co_filename.startswith(_TRACER)}
        print(
            f"{name:10} {plain_total:12,.0f} {idle_total / plain_total:7.3f}x "
            f"{recording_total:16,.0f} {recording_total / plain_total:6.3f}x "
            f"{sum(own.values()) / per:8,.0f}",
            flush=True,
        )
        for code, n in Counter(own).most_common(args.top):
            where = code.co_filename[len(_TRACER) :]
            share = f"{n / per:8.1f} bc {calls[code] / per:6.2f} calls"
            print(f"    {share}  {where}:{code.co_qualname}")


if __name__ == "__main__":
    main()
