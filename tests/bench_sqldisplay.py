"""Cost of showing a huge statement: `.venv/bin/python tests/bench_sqldisplay.py`.

The statements are the SQL Django compiles (SQLite) for a lookup with 2,000 values in
``IN (...)`` and a bulk insert of 500 books (2,500 params). Each step is timed cold:
the format and highlight caches are cleared before every repetition (one untimed
warm-up first, which compiles pygments' lexer). Medians in milliseconds.
"""

from __future__ import annotations

import argparse
import datetime
import statistics
import sys
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import django  # noqa: E402
from django.conf import settings  # noqa: E402

settings.configure(
    DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
    INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth", "demo_app"],
    DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
    USE_TZ=True,
)
django.setup()

from django.db.models.sql import InsertQuery  # noqa: E402

from demo_app.models import Author, Book  # noqa: E402
from tracer import sqldisplay  # noqa: E402


def statements() -> dict[str, tuple[str, tuple[Any, ...]]]:
    lookup = Author.objects.filter(pk__in=range(1, 2001)).query
    select_sql, select_params = lookup.get_compiler("default").as_sql()
    books = [
        Book(
            title=f"Book {i}",
            author_id=1,
            publisher_id=1,
            price=Decimal("9.99"),
            published=datetime.date(2020, 1, 1),
        )
        for i in range(500)
    ]
    fields = [Book._meta.get_field(name) for name in ("title", "author", "publisher", "price")]
    fields.append(Book._meta.get_field("published"))
    insert = InsertQuery(Book)
    insert.insert_values(fields, books)
    [(insert_sql, insert_params)] = insert.get_compiler("default").as_sql()
    return {
        "IN (2,000 values)": (select_sql, tuple(select_params)),
        "INSERT (500 rows)": (insert_sql, tuple(insert_params)),
    }


def median_ms(step: Callable[[], object], repeat: int) -> float:
    step()  # warm-up: imports, pygments' lexer
    times = []
    for _ in range(repeat):
        sqldisplay._formatted.cache_clear()
        sqldisplay._highlighted.cache_clear()
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def steps(sql: str, params: tuple[Any, ...]) -> dict[str, Callable[[], object]]:
    return {
        "collapse": lambda: sqldisplay.collapse(sql),
        "format_sql": lambda: sqldisplay.format_sql(sql),
        "highlight": lambda: sqldisplay.highlight(sql),
        "interpolate": lambda: sqldisplay.interpolate(sql, params, "sqlite"),
        "interpolate+highlight": lambda: sqldisplay.highlight(
            sqldisplay.interpolate(sql, params, "sqlite")
        ),
        # "id" is named in both statements, so the scan runs (most statements skip it).
        "redacted_params": lambda: sqldisplay.redacted_params(sql, params, columns=["id"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=21)
    args = parser.parse_args()
    print(f"median of {args.repeat} cold runs, ms")
    for name, (sql, params) in statements().items():
        print(f"{name}: {len(sql):,} characters, {len(params):,} params")
        for label, step in steps(sql, params).items():
            print(f"  {label:<24}{median_ms(step, args.repeat):8.2f}")


if __name__ == "__main__":
    main()
