"""docs/tutorial_screenshots.py still takes every screenshot docs/tutorial.md shows: it
serves the demo on a new database and walks through it in Chromium, as a reader
would. Into a temporary directory: the committed screenshots are left alone."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.browser.conftest import CHROMIUM, _missing
from tests.databases import CI
from tests.test_tutorial import FIGURES, SHOTS, TEXT

ROOT = Path(__file__).resolve().parents[2]


def test_the_script_takes_every_screenshot_the_tutorial_shows(tmp_path: Path) -> None:
    reason = _missing()
    if reason:
        if CI:
            pytest.fail(f"CI=true and the browser cannot run: {reason}", pytrace=False)
        pytest.skip(reason)

    result = subprocess.run(
        [sys.executable, "docs/tutorial_screenshots.py", "--out", str(tmp_path)]
        + ["--chromium", CHROMIUM],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )

    assert result.returncode == 0, result.stderr[-3000:]
    taken = sorted(path.name for path in tmp_path.glob("*.png"))
    assert taken == sorted(path.name for path in SHOTS.glob("*.png"))
    for name in taken:
        assert f"(screenshots/tutorial/{name})" in TEXT
        assert (tmp_path / name).stat().st_size <= 250_000, name
    figures = json.loads((tmp_path / "figures.json").read_text())
    assert {group: sorted(values) for group, values in figures.items()} == {
        group: sorted(values) for group, values in FIGURES.items()
    }
    assert figures["compare"]["Statements"] == ["51", "1", "-50"]
    assert figures["n_plus_one"]["Statements"] == "51"
    assert figures["n_plus_one"]["N+1"] == "1"
