"""Test databases: created once per database, cloned for --parallel (fork and spawn)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connections

ROOT = Path(__file__).resolve().parents[2]

RUN = """
import multiprocessing, sys
multiprocessing.set_start_method(sys.argv.pop(1))
from django.core.management import execute_from_command_line
execute_from_command_line(sys.argv)
"""


def test_signature_is_the_wrapped_engines(connection):
    from django.db.utils import load_backend

    engine = connection.wrapped_engine
    plain = load_backend(engine).DatabaseWrapper(
        {**connection.settings_dict, "ENGINE": engine}, connection.alias
    )
    assert connection.creation.test_db_signature() == plain.creation.test_db_signature()
    assert "tracer.backend" not in connection.creation.test_db_signature()


@pytest.mark.django_db(databases="__all__")
def test_traced_and_plain_alias_share_test_database(server_vendor):
    # (Each in-memory SQLite alias has its own test database, with or without tracer.)
    traced, plain = connections[server_vendor], connections[f"{server_vendor}_plain"]
    assert traced.settings_dict["NAME"] == plain.settings_dict["NAME"]
    assert traced.settings_dict["NAME"].startswith("test_")


@pytest.mark.parametrize("start_method", ["fork", "spawn"])
def test_parallel_test_run(vendor, start_method, tmp_path):
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "DJANGO_SETTINGS_MODULE": "tests.parallel_project.settings",
        "PARALLEL_VENDOR": vendor,
        "PARALLEL_DIR": str(tmp_path),
        "PARALLEL_START": start_method,
    }
    process = subprocess.run(
        [
            sys.executable,
            "-c",
            RUN,
            start_method,
            "test",
            "tests.parallel_project.cases",
            "--parallel",
            "2",
            "--noinput",
            "-v",
            "2",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    output = process.stdout + process.stderr
    assert process.returncode == 0, output
    assert "Ran 4 tests" in output
    # One test database for the traced and the plain alias together (but SQLite
    # in-memory test databases, used under spawn, are per alias by design).
    shared = not (vendor == "sqlite" and start_method == "spawn")
    assert output.count("Creating test database for alias") == (1 if shared else 2), output
    assert "Cloning test database for alias 'default'" in output
    reports = [json.loads(p.read_text()) for p in sorted(tmp_path.glob("*.json"))]
    assert len(reports) == 4
    for report in reports:
        # Each test ran in a worker, on a clone, with recording working there.
        assert report["pid"] != os.getpid()
        if shared:
            assert report["name"] == report["plain_name"]
        assert report["name"].rsplit("_", 1)[-1].split(".")[0] in {"1", "2"} or (
            "memorydb_default_" in report["name"]
        ), report["name"]
        assert len([s for s in report["statements"] if s.startswith("SELECT")]) == 1
