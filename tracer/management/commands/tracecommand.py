"""``manage.py tracecommand <command> [its arguments]``: run another management command
inside ``tracer.capture()``.

Every statement it sends on a traced alias becomes part of one trace: a ``migrate``'s
DDL from the schema editor, an ``inspectdb``'s introspection queries, a data
command's ORM queries. The trace goes to the store (the app lists it when the store
is shared by the server's processes); ``--output FILE`` also writes it as
``tracer-trace/1`` JSON, for the app's Import page.

With ``TRACER["CAPTURE"] = "always"`` every command is recorded without it, into the
process's rolling traces, the last stored at exit as ``always: manage.py <command>``;
``tracecommand`` still gives the command one trace of its own, from its first
statement to its last, with a report and ``--output``.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser

import tracer
from tracer.recorder import command_line


class Command(BaseCommand):
    help = (
        "Run a management command inside a trace (tracer.capture()), e.g. "
        "'tracecommand migrate' or 'tracecommand inspectdb --database other'; "
        "--output writes the trace as JSON for the tracer app's Import page."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--output",
            "-o",
            help="Write the trace to this file as tracer-trace/1 JSON.",
        )
        parser.add_argument("command", help="The command to run, e.g. migrate.")
        parser.add_argument(
            "arguments",
            nargs=argparse.REMAINDER,
            help="Its arguments and options, as you would give them to it.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        command, arguments = options["command"], options["arguments"]
        # As CAPTURE "always" labels a command's rolling trace at exit ("always: " and
        # the same words).
        label = command_line(["manage.py", command, *arguments])
        trace = None
        try:
            with tracer.capture(label) as trace:
                # Its output goes where this command's goes: `tracecommand inspectdb >
                # models.py` still writes the models.
                call_command(command, *arguments, stdout=self.stdout, stderr=self.stderr)
        finally:
            # Also when it failed: the statements of a failed migration are worth reading.
            if trace is not None:
                self._report(trace, label, options["output"])

    def _report(self, trace: tracer.Trace, label: str, output: str | None) -> None:
        aliases = sorted({statement.alias for statement in trace.statements})
        self.stderr.write(
            f"Trace {trace.id} ({label!r}): {len(trace.statements)} statement(s)"
            + (f" on {', '.join(aliases)}" if aliases else "")
            + "."
        )
        if output:
            with open(output, "w", encoding="utf-8") as file:
                json.dump(trace.to_dict(), file)
            self.stderr.write(f"Written to {output}: the tracer app's Import page loads it.")
