"""The wheel ships tracer's templates and static files, and works outside the checkout."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

SCRIPT = textwrap.dedent(
    """
    import django
    from django.conf import settings

    settings.configure(
        DATABASES={"default": {"ENGINE": "tracer.backend",
                               "WRAPPED_ENGINE": "django.db.backends.sqlite3",
                               "NAME": ":memory:"}},
        INSTALLED_APPS=["django.contrib.staticfiles", "tracer"],
        TEMPLATES=[{"BACKEND": "django.template.backends.django.DjangoTemplates",
                    "APP_DIRS": True}],
        STATIC_URL="/static/",
    )
    django.setup()
    from django.contrib.staticfiles import finders
    from django.db import connection
    from django.template.loader import render_to_string

    import tracer

    with tracer.capture() as trace:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    html = render_to_string("tracer/statements.html", {"trace": trace})
    print(tracer.__file__)
    print(finders.find("tracer/tracer.css"))
    print(html.count("<tr"), "SELECT 1" in html)
    """
)


def test_wheel_installs_and_renders_outside_checkout(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--outdir", str(tmp_path / "dist"), str(ROOT)],
        check=True,
        capture_output=True,
    )
    (wheel,) = (tmp_path / "dist").glob("*.whl")
    subprocess.run([sys.executable, "-m", "venv", str(tmp_path / "venv")], check=True)
    python = tmp_path / "venv" / "bin" / "python"
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", str(wheel)],
        check=True,
        capture_output=True,
    )
    result = subprocess.run(
        [str(python), "-c", SCRIPT], cwd=tmp_path, check=True, capture_output=True, text=True
    )
    package_file, css, rows = result.stdout.splitlines()
    site = tmp_path / "venv" / "lib"
    assert Path(package_file).is_relative_to(site)
    assert Path(css).is_relative_to(site)
    assert Path(css).parts[-5:] == ("site-packages", "tracer", "static", "tracer", "tracer.css")
    assert rows == "2 True"  # header row and the one statement
