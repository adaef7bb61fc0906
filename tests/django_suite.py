"""Django's own test suite, run on the plain engine and through tracer.backend.

Downloads the Django sdist matching the installed Django (cached in
.cache/django-suite), runs tests/runtests.py with the same labels twice, plain and
traced with TRACER = {"CAPTURE": "always"}, and prints both counts and every test
that passes plain but not traced. Exit status 1 on any regression.

    python tests/django_suite.py --vendor sqlite [--full] [labels ...]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import time
from collections import Counter
from pathlib import Path

import django

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.databases import CHECKOUT  # noqa: E402

CACHE = ROOT / ".cache" / "django-suite"

# The database layer, and what leans on it hardest; sized to fit CI time.
CI_LABELS = [
    "aggregation",
    "aggregation_regress",
    "annotations",
    "async",
    "backends",
    "basic",
    "bulk_create",
    "composite_pk",
    "constraints",
    "custom_lookups",
    "custom_managers",
    "dates",
    "datetimes",
    "db_functions",
    "db_typecasts",
    "db_utils",
    "defer",
    "delete",
    "delete_regress",
    "distinct_on_fields",
    "expressions",
    "expressions_window",
    "extra_regress",
    "filtered_relation",
    "fixtures",
    "force_insert_update",
    "from_db_value",
    "generic_relations",
    "get_earliest_or_latest",
    "get_or_create",
    "indexes",
    "inspectdb",
    "introspection",
    "known_related_objects",
    "lookup",
    "m2m_regress",
    "m2m_through",
    "many_to_many",
    "many_to_one",
    "migrations",
    "model_fields",
    "model_indexes",
    "model_inheritance",
    "model_regress",
    "multiple_database",
    "nested_foreign_keys",
    "null_queries",
    "one_to_one",
    "or_lookups",
    "ordering",
    "prefetch_related",
    "proxy_models",
    "queries",
    "queryset_pickle",
    "raw_query",
    "reverse_lookup",
    "save_delete_hooks",
    "schema",
    "select_for_update",
    "select_related",
    "select_related_regress",
    "serializers",
    "signals",
    "test_runner",
    "test_utils",
    "timezones",
    "transactions",
    "update",
]

DATABASES = {
    "sqlite": {
        "default": {"ENGINE": "django.db.backends.sqlite3"},
        "other": {"ENGINE": "django.db.backends.sqlite3"},
    },
    "postgresql": {
        alias: {
            "ENGINE": "django.db.backends.postgresql",
            "HOST": os.environ.get("TRACER_TEST_POSTGRES_HOST", "127.0.0.1"),
            "PORT": os.environ.get("TRACER_TEST_POSTGRES_PORT", "5432"),
            "USER": os.environ.get("TRACER_TEST_POSTGRES_USER", "postgres"),
            "PASSWORD": os.environ.get("TRACER_TEST_POSTGRES_PASSWORD", ""),
            "NAME": name,
        }
        for alias, name in (
            ("default", f"djsuite_{CHECKOUT}_{{mode}}"),
            ("other", f"djsuite_{CHECKOUT}_{{mode}}_other"),
        )
    },
    "mysql": {
        alias: {
            "ENGINE": "django.db.backends.mysql",
            "HOST": os.environ.get("TRACER_TEST_MYSQL_HOST", "127.0.0.1"),
            "PORT": os.environ.get("TRACER_TEST_MYSQL_PORT", "3306"),
            "USER": os.environ.get("TRACER_TEST_MYSQL_USER", "root"),
            "PASSWORD": os.environ.get("TRACER_TEST_MYSQL_PASSWORD", ""),
            "NAME": name,
            "TEST": {"CHARSET": "utf8mb4", "COLLATION": "utf8mb4_general_ci"},
        }
        for alias, name in (
            ("default", f"djsuite_{CHECKOUT}_{{mode}}"),
            ("other", f"djsuite_{CHECKOUT}_{{mode}}_other"),
        )
    },
}

SETTINGS = """\
import tracer

DATABASES = {databases}
if {traced}:
    DATABASES = tracer.traced(DATABASES)
    TRACER = {{"CAPTURE": "always"}}
SECRET_KEY = "django_tests_secret_key"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
USE_TZ = False
TEST_RUNNER = "suite_runner.Runner"
"""

RUNNER = '''\
"""Writes each test's outcome to $TRACER_SUITE_RESULTS (JSON)."""
import json
import os
import unittest

from django.test.runner import DiscoverRunner

OUTCOMES = {}
BAD = {"failure", "error", "unexpected success"}


def _set(test, outcome):
    key = test.id()
    if OUTCOMES.get(key) not in BAD:
        OUTCOMES[key] = outcome


class Result(unittest.TextTestResult):
    def addSuccess(self, test):
        super().addSuccess(test)
        _set(test, "ok")

    def addFailure(self, test, err):
        super().addFailure(test, err)
        _set(test, "failure")

    def addError(self, test, err):
        super().addError(test, err)
        _set(test, "error")

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        _set(test, "skipped")

    def addExpectedFailure(self, test, err):
        super().addExpectedFailure(test, err)
        _set(test, "expected failure")

    def addUnexpectedSuccess(self, test):
        super().addUnexpectedSuccess(test)
        _set(test, "unexpected success")

    def addSubTest(self, test, subtest, err):
        super().addSubTest(test, subtest, err)
        if err is not None:
            failed = issubclass(err[0], test.failureException)
            _set(test, "failure" if failed else "error")


class Runner(DiscoverRunner):
    def get_resultclass(self):
        return Result

    def run_suite(self, suite, **kwargs):
        result = super().run_suite(suite, **kwargs)
        from django.db import connections

        import tracer.recorder
        from tracer.backend.base import DatabaseWrapper

        recorded = {
            "traced_connection": isinstance(connections["default"], DatabaseWrapper),
            "statements": sum(len(t.statements) for t in tracer.recorder.always_traces()),
            "recorder_failures": tracer.recorder.failures(),
        }
        with open(os.environ["TRACER_SUITE_RESULTS"], "w") as f:
            json.dump({"outcomes": OUTCOMES, "tracer": recorded}, f)
        return result
'''

PASSING = {"ok", "skipped", "expected failure"}


def sdist() -> Path:
    version = django.__version__
    tests = CACHE / f"django-{version}" / "tests"
    if not (tests / "runtests.py").exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--quiet",
                "--no-binary",
                ":all:",
                "--no-deps",
                f"django=={version}",
                "-d",
                str(CACHE),
            ],
            check=True,
        )
        archive = next(CACHE.glob(f"[dD]jango-{version}.tar.gz"))
        with tarfile.open(archive) as tar:
            tar.extractall(CACHE, filter="data")
    return tests


def write_settings(vendor: str, mode: str) -> str:
    directory = CACHE / "settings"
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "suite_runner.py").write_text(RUNNER)
    databases = json.loads(json.dumps(DATABASES[vendor]).replace("{mode}", mode))
    module = f"suite_{vendor}_{mode}"
    (directory / f"{module}.py").write_text(
        SETTINGS.format(databases=repr(databases), traced=mode == "traced")
    )
    return module


def run(
    vendor: str, mode: str, labels: list[str], parallel: int, extra: list[str], tag: str = ""
) -> dict:
    tests = sdist()
    module = write_settings(vendor, mode)
    name = f"{vendor}-{mode}{'-' + tag if tag else ''}"
    results = CACHE / f"results-{name}.json"
    results.unlink(missing_ok=True)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(CACHE / "settings"), str(ROOT)]),
        "TRACER_SUITE_RESULTS": str(results),
    }
    log = CACHE / f"log-{name}.txt"
    command = [
        sys.executable,
        "runtests.py",
        f"--settings={module}",
        f"--parallel={parallel}",
        "--noinput",
        *extra,
        *labels,
    ]
    print(f"[{vendor} {mode}] {' '.join(command)}  (log: {log})", flush=True)
    start = time.monotonic()
    with open(log, "w") as out:
        process = subprocess.run(command, cwd=tests, env=env, stdout=out, stderr=subprocess.STDOUT)
    elapsed = time.monotonic() - start
    if not results.exists():
        tail = log.read_text().splitlines()[-30:]
        sys.exit(
            f"[{vendor} {mode}] runtests.py exited {process.returncode} without "
            "results:\n" + "\n".join(tail)
        )
    data = json.loads(results.read_text())
    data["seconds"] = elapsed
    data["returncode"] = process.returncode
    return data


def summary(data: dict) -> str:
    counts = Counter(data["outcomes"].values())
    parts = ", ".join(
        f"{counts[k]} {k}"
        for k in ("ok", "skipped", "expected failure", "failure", "error", "unexpected success")
    )
    return f"{len(data['outcomes'])} tests: {parts} in {data['seconds']:.0f}s"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--vendor", choices=sorted(DATABASES), default="sqlite")
    parser.add_argument("--full", action="store_true", help="the whole suite")
    parser.add_argument("--parallel", type=int, default=2)
    parser.add_argument("labels", nargs="*", help=f"default: {' '.join(CI_LABELS)}")
    args, extra = parser.parse_known_args()
    labels = [] if args.full else (args.labels or CI_LABELS)

    plain = run(args.vendor, "plain", labels, args.parallel, extra)
    traced = run(args.vendor, "traced", labels, args.parallel, extra)
    print(f"plain  ({args.vendor}): {summary(plain)}")
    print(
        f"traced ({args.vendor}): {summary(traced)}; recorded in the main process: "
        f"{traced['tracer']}"
    )
    regressions = sorted(
        test
        for test, outcome in plain["outcomes"].items()
        if outcome in PASSING and traced["outcomes"].get(test, "missing") not in PASSING
    )
    improved = sorted(
        test
        for test, outcome in traced["outcomes"].items()
        if outcome in PASSING and plain["outcomes"].get(test) not in PASSING
    )
    if regressions:
        # A test can fail for reasons of its own (wall-clock assertions on a busy
        # machine): run each regression again, alone; it counts if it fails again.
        again = run(args.vendor, "traced", regressions, 1, extra, tag="rerun")
        flaky = [t for t in regressions if again["outcomes"].get(t) in PASSING]
        for test in flaky:
            print(f"flaky, passed traced when run again alone: {test}")
        regressions = [t for t in regressions if t not in flaky]
    for test in regressions:
        print(
            f"REGRESSION {test}: plain {plain['outcomes'][test]}, "
            f"traced {traced['outcomes'].get(test, 'missing')}"
        )
    for test in improved:
        print(f"passes traced only (plain {plain['outcomes'].get(test, 'missing')}): {test}")
    if (
        plain["tracer"]["traced_connection"]
        or not traced["tracer"]["traced_connection"]
        or traced["tracer"]["recorder_failures"]
    ):
        print("the plain run was traced, the traced run was not, or the recorder failed")
        return 1
    print(f"{len(regressions)} regressions")
    return 1 if regressions else 0


if __name__ == "__main__":
    sys.exit(main())
