"""Instructions one workload run costs, counted by valgrind's callgrind: figures that
a noisy, shared machine does not move (`make bench-instructions`).

For each workload of tests/bench.py and each mode (plain engine, tracer idle, tracer
recording), a child process runs under callgrind with collection off
(``--collect-atstart=no``) and toggled on only inside ``operator.call`` (the C function
``_operator_call``). The child sets up Django, warms up, then makes exactly one
``operator.call(workload, alias)`` from a call stack about 35 frames deep, as in a
view: what is counted is that run, not Python's, Django's or the capture block's
start-up and end. Each child works on its own copy of the prepared database (children
sharing one file lock each other out on updates), with a fixed hash seed (random
seeds alone move figures by several percent) and the collector off.

Counts are exact for one process layout, but the layout itself (the size of the
environment, paths) moves them by up to 1%: each figure is the median over --layouts
runs whose environment differs in size only.

    python tests/bench_instructions.py [--workloads lookup,update] [--modes plain,idle]

Needs valgrind (apt-get install valgrind) and a Python whose binary or libpython keeps
its symbols (``_operator_call``). Takes about a minute per child; --jobs 2 by default.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from benchargs import names

ROOT = Path(__file__).resolve().parent.parent
MODES = ("plain", "idle", "recording")
#: Short names for tests/bench.py's workloads.
WORKLOADS = {
    "lookup": "point_lookups",
    "page": "select_related_pages",
    "fetch": "big_fetch",
    "update": "updates_in_transaction",
    "nplusone": "n_plus_one_page",
}
#: The C function whose calls are counted (operator.call).
TOGGLE = "_operator_call"
DEPTH = 35


def child(mode: str, workload: str) -> None:
    """Run in the measured process: set up, warm up, then one counted run."""
    import gc
    import operator
    from contextlib import nullcontext

    sys.path.insert(0, str(ROOT / "tests"))
    import bench  # configures Django on TRACER_BENCH_DB

    function = getattr(bench, WORKLOADS[workload])
    alias = bench.ALIAS[mode]
    bench.connections[alias].ensure_connection()
    for _ in range(2):  # caches, connection state, the compiler classes
        bench.run_once(mode, function)
    context = bench.tracer.capture() if mode == "recording" else nullcontext()
    gc.collect()
    gc.disable()
    with context:
        bench.deep(DEPTH, lambda: operator.call(function, alias))


def instructions(mode: str, workload: str, prepared: str, layout: int) -> int:
    with tempfile.TemporaryDirectory(prefix="tracer-callgrind-") as directory:
        database = Path(directory) / "bench.sqlite3"
        shutil.copyfile(prepared, database)
        out = Path(directory) / "callgrind.out"
        done = subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                "--collect-atstart=no",
                f"--toggle-collect={TOGGLE}",
                f"--callgrind-out-file={out}",
                sys.executable,
                __file__,
                "--child",
                mode,
                workload,
            ],
            capture_output=True,
            text=True,
            env={
                **os.environ,
                "PYTHONHASHSEED": "0",
                "TRACER_BENCH_DB": str(database),
                "TRACER_BENCH_LAYOUT": "x" * (layout * 72),
            },
        )
        if done.returncode != 0:
            raise SystemExit(f"{workload} {mode} failed:\n{done.stderr[-3000:]}")
        match = re.search(r"^(?:summary|totals): (\d+)", out.read_text(), re.MULTILINE)
        if not match or int(match.group(1)) == 0:
            raise SystemExit(f"callgrind counted nothing in {TOGGLE} (no symbols?)")
        return int(match.group(1))


def prepare() -> str:
    """A migrated and seeded database; each child works on a copy of it."""
    database = str(Path(tempfile.mkdtemp(prefix="tracer-bench-")) / "bench.sqlite3")
    subprocess.run(
        [sys.executable, "-c", _PREPARE],
        check=True,
        env={**os.environ, "TRACER_BENCH_DB": database},
        cwd=ROOT / "tests",
    )
    return database


_PREPARE = """
import bench
from django.core.management import call_command
call_command("migrate", verbosity=0)
call_command("seed", stdout=open("/dev/null", "w"))
"""


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--child", nargs=2, metavar=("MODE", "WORKLOAD"))
    parser.add_argument("--workloads", type=names(WORKLOADS), default=list(WORKLOADS))
    parser.add_argument("--modes", type=names(MODES), default=list(MODES))
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--layouts", type=int, default=3)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return

    prepared = prepare()
    modes = args.modes
    workloads = args.workloads
    runs = [(workload, mode) for workload in workloads for mode in modes]
    layouts = range(args.layouts)
    with ThreadPoolExecutor(args.jobs) as pool:
        figures = list(
            pool.map(
                lambda run: instructions(run[1], run[0], prepared, run[2]),
                [(*run, layout) for run in runs for layout in layouts],
            )
        )
    counts = {
        run: int(statistics.median(figures[i * len(layouts) : (i + 1) * len(layouts)]))
        for i, run in enumerate(runs)
    }
    shutil.rmtree(Path(prepared).parent, ignore_errors=True)

    print(
        f"instructions of one workload run (callgrind, inside {TOGGLE}, {DEPTH} frames "
        f"deep; median of {args.layouts} layouts)"
    )
    print(f"{'workload':10} " + " ".join(f"{mode:>22}" for mode in modes))
    for workload in workloads:
        plain = counts.get((workload, "plain"))
        cells = []
        for mode in modes:
            count = counts[(workload, mode)]
            ratio = f" {count / plain:6.3f}x" if plain else ""
            cells.append(f"{count:>14,}{ratio}")
        print(f"{workload:10} " + " ".join(f"{cell:>22}" for cell in cells), flush=True)


if __name__ == "__main__":
    main()
