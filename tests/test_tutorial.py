"""docs/tutorial.md: every command and snippet in it works, and what it states as exact
is what the demo does.

- Statement counts are written bold (``**51 statements**``) after a link to the demo
  page they are about, in the same paragraph; they must be the registry's
  (demo_app/patterns.py).
- The playground expression, the doctest and the ``tracequery`` commands run: the
  commands verbatim in a subprocess with the demo's settings (on a new SQLite file,
  compiling only, which connects to nothing), their printed output compared exactly;
  with ``--run`` and the doctest on the seeded bookstore of each engine
  (tests/test_demo.py's fixture).
- Python and template snippets are the demo's own code, verbatim.
- The times quoted are those the screenshots show (docs/screenshots/tutorial/
  figures.json, written with them by docs/tutorial_screenshots.py), and every
  screenshot shown is there and small.
- What the text says about the N+1 pages (lines, counts, SQL) is what they record.
"""

from __future__ import annotations

import doctest
import json
import os
import re
import shlex
import subprocess
import sys
from collections import Counter
from io import StringIO
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
from django.core.management import call_command
from django.urls import resolve

from demo_app.patterns import version_of
from demo_app.views import (
    duplicates,
    hydration,
    loop_n_plus_one,
    template_n_plus_one,
)
from tests.test_demo import bookstore, shown_trace, url  # noqa: F401 (a fixture)
from tracer.analysis.groups import duplicates as duplicate_groups
from tracer.analysis.nplusone import n_plus_ones
from tracer.playground import unfold
from tracer.trace import Trace

ROOT = Path(__file__).resolve().parent.parent
TUTORIAL = ROOT / "docs" / "tutorial.md"
TEXT = TUTORIAL.read_text()
SHOTS = ROOT / "docs" / "screenshots" / "tutorial"
FIGURES = json.loads((SHOTS / "figures.json").read_text())
DEMO = "http://127.0.0.1:8000"

FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.M | re.S)


def blocks(kind: str) -> list[str]:
    """The fenced code blocks of this kind, in order."""
    return [body for info, body in FENCE.findall(TEXT) if info == kind]


def prose() -> str:
    """The text without its code blocks."""
    return FENCE.sub("", TEXT)


def paragraphs() -> list[str]:
    return [" ".join(part.split()) for part in re.split(r"\n\s*\n", prose())]


def demo_links(text: str) -> list[tuple[int, str]]:
    """(offset, URL name) of each link to a demo pattern page in ``text``."""
    found = []
    for match in re.finditer(rf"\]\(({re.escape(DEMO)}[^)\s]*)\)", text):
        path = urlsplit(match.group(1)).path
        name = resolve(path, urlconf="demo_app.urls").url_name
        if name != "index" and not path.startswith("/__tracer__/"):
            found.append((match.start(), name))
    return found


# Statement counts --------------------------------------------------------------------------


def claimed_counts() -> list[tuple[str, int]]:
    """(URL name, count) of each bold statement count, for the demo page linked last
    before it in its paragraph."""
    claims = []
    for paragraph in paragraphs():
        links = demo_links(paragraph)
        for match in re.finditer(r"\*\*(\d+) statements?\*\*", paragraph):
            before = [name for offset, name in links if offset < match.start()]
            assert before, f"a statement count with no demo page before it: {paragraph!r}"
            claims.append((before[-1], int(match.group(1))))
    return claims


def test_the_statement_counts_are_the_registrys():
    pages = [
        "books_n_plus_one",
        "books_select_related",
        "loop-n-plus-one-bad",
        "loop-n-plus-one-fixed",
        "hydration-bad",
        "hydration-fixed",
        "duplicates-bad",
    ]
    assert claimed_counts() == [(name, version_of(name)[1].statements) for name in pages]


def test_every_link_into_the_demo_resolves():
    links = re.findall(rf"{re.escape(DEMO)}(/[^)>\s]*)", TEXT)
    assert len(links) == 12
    for link in links:
        resolve(urlsplit(link).path, urlconf="demo_app.urls")


# The playground ----------------------------------------------------------------------------

EXPRESSION = (
    'Book.objects.filter(price__lt=20).select_related("author").order_by("-published")[:10]'
)


def test_the_playground_link_is_the_expression_shown():
    [link] = re.findall(rf"\]\(({re.escape(DEMO)}/__tracer__/playground/\?[^)]*)\)", TEXT)
    assert parse_qs(urlsplit(link).query) == {"q": [EXPRESSION]}
    assert unquote(link).endswith(EXPRESSION)
    assert blocks("python")[0] == EXPRESSION + "\n"


def test_the_playground_expression_compiles_to_what_the_text_says(bookstore):  # noqa: F811
    pipeline = unfold(EXPRESSION, "default", app="demo_app")
    [statement] = pipeline.statements
    assert [step.code for step in pipeline.steps] == [
        ".filter(price__lt=20)",
        '.select_related("author")',
        '.order_by("-published")',
        "[:10]",
    ]
    joined = statement.sql.replace("`", '"')
    assert 'INNER JOIN "demo_app_author" ON ("demo_app_book"."author_id" = ' in joined
    assert joined.endswith('ORDER BY "demo_app_book"."published" DESC LIMIT 10')
    assert [repr(param) for param in statement.raw_params] == ["Decimal('20')"]
    assert "The param is `Decimal('20')`" in TEXT


# The doctest -------------------------------------------------------------------------------


def test_the_shell_session_runs_as_shown(bookstore):  # noqa: F811
    [session] = blocks("pycon")
    test = doctest.DocTestParser().get_doctest(session, {}, "tutorial", str(TUTORIAL), 0)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    out = StringIO()
    runner.run(test, out=out.write)
    assert runner.failures == 0, out.getvalue()
    assert runner.tries == 7


# tracequery --------------------------------------------------------------------------------


def commands(program: str) -> list[tuple[str, str | None]]:
    """Each shell command of the tutorial that runs ``program``, with the text block
    right after its block (its output), if any."""
    found = []
    parts = FENCE.findall(TEXT)
    for position, (info, body) in enumerate(parts):
        if info != "sh":
            continue
        following = parts[position + 1] if position + 1 < len(parts) else None
        shown = following[1] if following and following[0] == "text" else None
        # Only the block right after in the text, not one further down.
        if shown is not None and TEXT.index(shown) - TEXT.index(body) > len(body) + 20:
            shown = None
        for line in body.splitlines():
            if program in line:
                found.append((line, shown))
    return found


SETTINGS = """\
from demo_app.settings import *  # noqa: F403

DATABASES["default"]["NAME"] = {name!r}  # noqa: F405
"""


def test_the_tracequery_commands_print_what_the_text_shows(tmp_path):
    """Verbatim, with the demo's settings; compiling opens no connection, so neither
    the SQLite file nor a PostgreSQL server is needed (PGHOST points nowhere)."""
    (tmp_path / "tutorial_settings.py").write_text(
        SETTINGS.format(name=str(tmp_path / "db.sqlite3"))
    )
    shown = [(line, output) for line, output in commands("tracequery") if "--run" not in line]
    assert len(shown) == 2
    for line, output in shown:
        words = shlex.split(line)
        env = dict(word.split("=", 1) for word in words if re.match(r"^[A-Z_]+=", word))
        words = words[len(env) :]
        assert words[:2] == [".venv/bin/python", "manage.py"]
        result = subprocess.run(
            [sys.executable, *words[1:]],
            cwd=ROOT,
            env={
                **os.environ,
                **env,
                "DJANGO_SETTINGS_MODULE": "tutorial_settings",
                "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)]),
                "PGHOST": str(tmp_path / "no-server-here"),
                "NO_COLOR": "1",
            },
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout == output
    assert not (tmp_path / "db.sqlite3").exists()


def test_tracequery_run_prints_the_timings_line_the_text_describes(bookstore):  # noqa: F811
    [(line, _)] = [item for item in commands("tracequery") if "--run" in item[0]]
    words = shlex.split(line)
    out = StringIO()
    call_command(*words[2:], "--app", "demo_app", "--no-color", stdout=out)
    [described] = re.findall(r"`(#1 iteration, 10 rows: build \.\.\..*?)`", prose())
    if bookstore.vendor != "sqlite":
        # Their drivers return Decimal and date themselves: no converters ran.
        assert "On PostgreSQL and MySQL there is no `convert`" in TEXT
        described = described.replace(", convert ...", "")
    pattern = r"[\d.]+".join(re.escape(part) for part in described.split("..."))
    assert re.search(pattern, out.getvalue()), out.getvalue()
    assert "Rows: 10" in out.getvalue()
    if bookstore.vendor == "sqlite":
        # "The run's Query plan ... says so"
        plan = out.getvalue().split("EXPLAIN (EXPLAIN QUERY PLAN)\n", 1)[1]
        for step in ("SCAN demo_app_book", "USE TEMP B-TREE FOR ORDER BY"):
            assert step in plan
            assert f"`{step}`" in TEXT


def test_the_sqlite_iexact_sentence():
    # Compiling connects to nothing: the plain SQLite alias will do.
    pipeline = unfold('Author.objects.filter(name__iexact="ann")', "sqlite_plain", app="demo_app")
    [statement] = pipeline.statements
    written = re.search(r"the same filter is `(.*?)`", prose()).group(1)
    assert statement.sql.endswith("WHERE " + written)


# Make --------------------------------------------------------------------------------------


def make(*args: str) -> str:
    # Run as a user would, not as a sub-make of `make test` (which would print
    # "Entering directory" lines and pass its own flags down).
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")}
    result = subprocess.run(
        ["make", "--no-print-directory", "-n", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_the_make_commands_exist():
    lines = [line for line, _ in commands("make ")]
    assert lines == ["make demo", "make demo DEMO_ALSO=postgresql"]
    plain = make("demo")
    assert 'install -e ".[toolbar]"' in plain
    assert "DEMO_ALSO= " in plain.splitlines()[-1] and "runserver 127.0.0.1:8000" in plain
    also = make(*shlex.split(lines[1])[1:])
    assert 'install -e ".[toolbar,postgres]"' in also
    assert "DEMO_ALSO=postgresql " in also.splitlines()[-1]
    assert "`make tutorial-screenshots`" in TEXT
    assert "docs/tutorial_screenshots.py" in make("tutorial-screenshots")


# The demo's code ---------------------------------------------------------------------------


def test_code_snippets_are_the_demos_own():
    sources = "\n".join(
        Path(module.__file__).read_text()
        for module in (template_n_plus_one, loop_n_plus_one, hydration, duplicates)
    )
    functions = [body for body in blocks("python") if body.startswith("def ")]
    assert len(functions) == 4
    for body in functions:
        assert body in sources
    [template] = blocks("django")
    assert template in (ROOT / "demo_app/templates/demo_app/book_list.html").read_text()


# The screenshots and their figures -------------------------------------------------------------

#: The figures the text quotes, by where figures.json has them.
QUOTED = [
    ("run", "build"),
    ("run", "compile"),
    ("run", "execute"),
    ("run", "fetch"),
    ("run", "convert"),
    ("run", "hydrate"),
    ("drawer", "database"),
    ("drawer", "python"),
    ("n_plus_one", "Total"),
    ("n_plus_one", "Database"),
    ("n_plus_one", "ORM (Python)"),
    ("hydration_bad", "database"),
    ("hydration_bad", "python"),
    ("hydration_bad", "building results"),
    ("hydration_bad", "converting values"),
    ("hydration_fixed", "database"),
    ("hydration_fixed", "python"),
    ("hydration_fixed", "building results"),
]


def test_the_times_quoted_are_those_of_the_screenshots():
    for group, key in QUOTED:
        shown = FIGURES[group][key].removesuffix(" ms")
        assert f"{shown} ms" in TEXT, (group, key, shown)
    # The drawer shows the run's statement: the same figures.
    assert FIGURES["drawer"]["QuerySet calls"] == FIGURES["run"]["build"]
    before, after, _ = FIGURES["compare"]["Total ms"]
    assert before == FIGURES["n_plus_one"]["Total"].removesuffix(" ms")
    assert f"the total went from {before} ms to {after} ms" in TEXT
    orm_before, orm_after, _ = FIGURES["compare"]["ORM ms"]
    assert f"the ORM's Python from\n{orm_before} ms to {orm_after} ms" in TEXT
    assert FIGURES["compare"]["Statements"] == ["51", "1", "-50"]


def test_every_screenshot_shown_is_there_and_small():
    shown = re.findall(r"!\[[^\]]+\]\(screenshots/tutorial/([\w-]+\.png)\)", TEXT)
    assert len(shown) == len(set(shown)) == 22
    assert sorted(shown) == sorted(path.name for path in SHOTS.glob("*.png"))
    for name in shown:
        assert (SHOTS / name).stat().st_size <= 250_000, name


# What the N+1 pages record -------------------------------------------------------------------


def page_trace(client: Any, name: str) -> Trace:
    return shown_trace(client.get(url(name)).content.decode())


@pytest.mark.urls("demo_app.urls")
def test_the_template_n_plus_one_is_as_the_text_says(bookstore, client):  # noqa: F811
    trace = page_trace(client, "books_n_plus_one")
    [found] = n_plus_ones(trace)
    assert (found.relation, found.queries, found.instances) == ("Book.author", 50, 50)
    assert (found.location, found.loaded_at) == (
        "demo_app/book_list.html:5",
        "demo_app/book_list.html:4",
    )
    assert f"Fix: {found.fixed_code}\n" in TEXT
    authors = Counter(str(s.params[0]) for s in trace.statements[1:])
    assert len(authors) == 30 and sum(authors.values()) - len(authors) == 20
    assert len([n for n in authors.values() if n > 1]) == len(duplicate_groups(trace)) == 16
    assert "only 30 different authors" in TEXT and "16 authors are loaded more than once" in TEXT
    assert "20 of\nthe 50 loads repeat one already run" in TEXT
    assert all(s.sql.endswith("LIMIT 21") for s in trace.statements[1:])


@pytest.mark.urls("demo_app.urls")
def test_the_view_loop_n_plus_one_is_as_the_text_says(bookstore, client):  # noqa: F811
    [found] = n_plus_ones(page_trace(client, "loop-n-plus-one-bad"))
    assert (found.relation, found.queries) == ("Book.tags", 30)
    here = "demo_app/views/loop_n_plus_one.py"
    assert found.location.endswith(f"{here}:17") and found.loaded_at.endswith(f"{here}:16")
    assert "`loop_n_plus_one.py:17`, and the\nbooks were loaded at line 16" in TEXT
    fixed = page_trace(client, "loop-n-plus-one-fixed")
    assert 'WHERE "demo_app_book_tags"."book_id" IN (' in fixed.statements[1].sql.replace("`", '"')
    assert fixed.statements[1].sql.count("%s") == 30


@pytest.mark.urls("demo_app.urls")
def test_the_duplicates_page_is_as_the_text_says(bookstore, client):  # noqa: F811
    [group] = duplicate_groups(page_trace(client, "duplicates-bad"))
    assert group.count == 20
    [(where, count)] = group.locations.items()
    assert where.endswith("demo_app/views/duplicates.py:17") and count == 20
