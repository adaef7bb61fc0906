"""``manage.py tracequery "<expression>"``: the pipeline of a QuerySet expression.

Prints the manager, each chained call with what it changed in the Query, the
compiler and the SQL with its params, compiled without a database round trip.
``--run`` also runs it (reads only, in a transaction that is rolled back, with a
statement timeout and a row limit) and prints the rows, the time of each stage and
the EXPLAIN; ``--json`` prints JSON instead: the pipeline, or with ``--run`` the
trace of the run (``tracer-trace/1``).
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DEFAULT_DB_ALIAS

from tracer.playground import PlaygroundError, run, unfold
from tracer.playground.running import ROW_LIMIT, TIMEOUT_MS
from tracer.playground.text import pipeline_lines, result_lines


class Command(BaseCommand):
    help = (
        "Show how Django turns a QuerySet expression into SQL, stage by stage; "
        "--run runs it in a transaction that is rolled back."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "expression",
            help="A QuerySet expression, e.g. 'Book.objects.filter(price__lt=10)[:5]'.",
        )
        parser.add_argument(
            "--database",
            default=DEFAULT_DB_ALIAS,
            help="The database alias to compile for and run on (default: %(default)s).",
        )
        parser.add_argument(
            "--app",
            help="An app label whose models bare names (Book) refer to first.",
        )
        parser.add_argument(
            "--run",
            action="store_true",
            help="Run it (reads only; rolled back) and show rows, timings and EXPLAIN.",
        )
        parser.add_argument(
            "--json",
            action="store_true",
            help="Print JSON: the pipeline, or with --run the trace (tracer-trace/1).",
        )
        parser.add_argument(
            "--rows",
            type=int,
            default=ROW_LIMIT,
            help="With --run: rows read at most (default: %(default)s).",
        )
        parser.add_argument(
            "--timeout",
            type=int,
            default=TIMEOUT_MS,
            help="With --run: milliseconds each statement may take (default: %(default)s).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        expression = options["expression"]
        database = options["database"]
        app = options["app"]
        if options["rows"] < 1 or options["timeout"] < 1:
            raise CommandError("--rows and --timeout must be positive.")
        try:
            if options["run"]:
                result = run(
                    expression,
                    database,
                    row_limit=options["rows"],
                    timeout_ms=options["timeout"],
                    app=app,
                )
                pipeline = result.pipeline
            else:
                result = None
                pipeline = unfold(expression, database, app=app)
        except PlaygroundError as error:
            raise CommandError(f"{error.message}\n\n{error.pointer()}") from None
        if options["json"]:
            data = result.trace if result is not None and result.trace is not None else None
            if data is None:
                data = pipeline.to_dict() if result is None else result.to_dict()
            self.stdout.write(json.dumps(data, indent=2, ensure_ascii=False))
            return
        color = not options["no_color"] and (options.get("force_color") or self.stdout.isatty())
        heading = self.style.SQL_TABLE if color else str
        lines = pipeline_lines(pipeline, color=bool(color), heading=heading)
        if result is not None:
            lines += ["", *result_lines(result, heading=heading)]
        self.stdout.write("\n".join(lines))
