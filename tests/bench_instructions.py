"""Instructions per operation, counted by valgrind's callgrind: figures that do not move
with a noisy machine, for the modes of tests/bench.py.

Each (mode, workload) runs in its own process under callgrind, twice: once with N
repetitions of the workload and once with 5N. The difference, divided by 4N operations,
is the cost of one operation without Python's and Django's start-up. PYTHONHASHSEED is
fixed (random hash seeds alone move the figures by up to 30%) and the collector is off
while the workload runs.

    python tests/bench_instructions.py [--workloads lookup,update] [--n 200]

Needs valgrind (apt-get install valgrind). Takes a few minutes per workload.
"""

from __future__ import annotations

import argparse
import gc
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODES = ("plain", "idle", "recording")
#: Short names for tests/bench.py's workloads, and the operations one run makes.
WORKLOADS = {
    "lookup": ("point_lookups", 3000),
    "page": ("select_related_pages", 300),
    "fetch": ("big_fetch", 1),
    "update": ("updates_in_transaction", 500),
    "nplusone": ("n_plus_one_page", 1),
}


def child(mode: str, workload: str, repetitions: int) -> None:
    """Run in the measured process: tests/bench.py's set-up, one warm-up, then the
    workload ``repetitions`` times."""
    sys.path.insert(0, str(ROOT / "tests"))
    import bench  # configures Django on the prepared database

    function = getattr(bench, WORKLOADS[workload][0])
    for alias in ("traced", "toolbar"):
        bench.connections[alias].ensure_connection()
    bench.run_once(mode, function)
    gc.collect()
    gc.disable()
    for _ in range(repetitions):
        bench.run_once(mode, function)


def instructions(mode: str, workload: str, repetitions: int, database: str) -> int:
    with tempfile.TemporaryDirectory() as directory:
        out = Path(directory) / "callgrind.out"
        subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                f"--callgrind-out-file={out}",
                sys.executable,
                __file__,
                "--child",
                mode,
                workload,
                str(repetitions),
            ],
            check=True,
            capture_output=True,
            env={**os.environ, "PYTHONHASHSEED": "0", "TRACER_BENCH_DB": database},
        )
        match = re.search(r"^(?:summary|totals): (\d+)", out.read_text(), re.MULTILINE)
        assert match, "callgrind wrote no totals"
        return int(match.group(1))


def prepare() -> str:
    """A migrated and seeded database for every child to share."""
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
    parser.add_argument("--child", nargs=3, metavar=("MODE", "WORKLOAD", "N"))
    parser.add_argument("--workloads", default="lookup,update")
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--n", type=int, default=2, help="workload runs in the short process")
    args = parser.parse_args()
    if args.child:
        mode, workload, repetitions = args.child
        child(mode, workload, int(repetitions))
        return

    database = prepare()
    modes = args.modes.split(",")
    print(f"instructions per operation (callgrind, N={args.n} and {5 * args.n} runs)")
    print(f"{'workload':12} " + " ".join(f"{mode:>20}" for mode in modes))
    for workload in args.workloads.split(","):
        operations = WORKLOADS[workload][1]
        per_op = {}
        for mode in modes:
            short = instructions(mode, workload, args.n, database)
            long = instructions(mode, workload, 5 * args.n, database)
            per_op[mode] = (long - short) / (4 * args.n * operations)
        plain = per_op.get("plain")
        cells = [
            f"{per_op[mode]:>12,.0f}" + (f" {per_op[mode] / plain:5.3f}x" if plain else "")
            for mode in modes
        ]
        print(f"{workload:12} " + " ".join(f"{cell:>20}" for cell in cells), flush=True)


if __name__ == "__main__":
    main()
