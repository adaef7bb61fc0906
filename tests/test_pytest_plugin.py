"""The pytest plugin, run as a user runs it: pytest in a subprocess on a test file."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

TESTS = """
import datetime
import pytest
from demo_app.models import Author, Book, Publisher

@pytest.fixture
def books(db):
    publisher = Publisher.objects.create(name="P")
    author = Author.objects.create(name="Ann")
    for i in range(3):
        Book.objects.create(title=f"B{i}", author=author, publisher=publisher, price=1,
                            published=datetime.date(2020, 1, 1))

def test_n_plus_one(books):
    for book in Book.objects.all():
        book.author.name

def test_budget_fixture(books, query_tracer):
    with query_tracer.max_queries(1):
        list(Book.objects.select_related("author"))
    with pytest.raises(AssertionError, match="N\\\\+1 found"):
        with query_tracer.no_n_plus_one():
            [b.author.name for b in Book.objects.all()]
"""


def test_report_and_fixture(tmp_path):
    (tmp_path / "test_user.py").write_text(TESTS)
    report = tmp_path / "report"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "--rootdir",
            str(ROOT),
            "-c",
            str(ROOT / "pyproject.toml"),
            f"--tracer-report={report}",
            str(tmp_path / "test_user.py"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout
    data = json.loads((report / "tracer-report.json").read_text())
    assert data["format"] == "tracer-report/1"
    tests = {t["test"].rsplit("::", 1)[-1]: t for t in data["tests"]}
    assert sorted(tests) == ["test_budget_fixture", "test_n_plus_one"]
    first = tests["test_n_plus_one"]
    assert (first["outcome"], first["queries"]) == ("passed", 4)
    assert [n["relation"] for n in first["n_plus_ones"]] == ["Book.author"]
    assert first["n_plus_ones"][0]["fix"] == "Book.objects.select_related('author')"
    assert first["trace"]["format"] == "tracer-trace/1"
    assert len(first["trace"]["statements"]) == 4
    html = (report / "tracer-report.html").read_text()
    assert "Book.objects.select_related(&#x27;author&#x27;)" in html
    assert "test_n_plus_one" in html
