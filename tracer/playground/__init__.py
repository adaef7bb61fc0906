"""The playground: a QuerySet expression parsed with an allow-list (never evaluated
as Python), unfolded stage by stage, compiled without a database round trip, and
run on request inside a transaction that is always rolled back.

>>> from tracer.playground import run, unfold
>>> pipeline = unfold('Book.objects.filter(price__lt=10).order_by("title")[:5]')
>>> result = run('Book.objects.filter(price__lt=10).order_by("title")[:5]')
"""

from __future__ import annotations

from tracer.playground.parser import Expression, MethodCall, PlaygroundError, parse
from tracer.playground.running import RunResult, run
from tracer.playground.unfold import Change, Pipeline, Step, unfold

__all__ = [
    "Change",
    "Expression",
    "MethodCall",
    "Pipeline",
    "PlaygroundError",
    "RunResult",
    "Step",
    "parse",
    "run",
    "unfold",
]
