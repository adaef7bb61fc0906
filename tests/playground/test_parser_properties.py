"""Property-based tests of the playground's parser on hostile text: nothing outside the
allow-list ever runs, a refusal is a PlaygroundError pointing inside the text, and no
statement reaches a database, while parsing or unfolding.

What "runs" is watched with a profile hook (``sys.setprofile``) and an audit hook:

- every function the parser itself calls (the boundary: a frame whose nearest caller,
  seen through the tracer's QuerySet instrumentation, is the playground's code) must be
  one the allow-list names: a chained QuerySet method, a manager's ``get_queryset``, an
  allowed callable's constructor, an operator or ``asc``/``desc`` of an allowed
  expression, or one of a few named helpers reading model metadata;
- no frame of the project's own code (demo_app, tests) is ever entered, at any depth:
  canaries (a QuerySet and manager method, a model property and method) are planted
  where only a disallowed path could reach them;
- nothing that evaluates or writes is ever entered (``QuerySet._fetch_all``,
  ``SQLCompiler.execute_sql``, ``Model.save`` ...), at any depth;
- no audit event but the parser's own ``compile`` of the text (no exec, open, import,
  subprocess, socket ...);
- no statement reaches a driver (counted below every execute wrapper).
"""

from __future__ import annotations

import builtins
import io
import re
import sys
import sysconfig
import tokenize
import unicodedata
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import hypothesis
import pytest
from django.apps import apps
from django.conf import settings
from django.db.backends.utils import CursorWrapper
from django.db.models import Model
from django.db.models.manager import BaseManager
from django.db.models.query import QuerySet
from django.db.models.sql.compiler import SQLCompiler
from hypothesis import example, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

import tracer.playground
from tracer import pipeline, recorder
from tracer.backend.cursor import TracedCursorMixin
from tracer.playground import allowed, expression, unfold
from tracer.playground.parser import MAX_LENGTH, PlaygroundError, parse

PLAYGROUND = str(Path(tracer.playground.__file__).parent) + "/"
#: The parser's modules: the code that reads the text and builds what it says.
PARSER = tuple(
    f"{PLAYGROUND}{name}.py" for name in ("allowed", "building", "expression", "parser", "syntax")
)
# The tracer's QuerySet instrumentation wraps the methods: look through it.
TRANSPARENT = {pipeline.__file__, recorder.__file__}
PROJECT = str(Path(settings.BASE_DIR)) + "/"
# Hypothesis' garbage collector callback runs wherever a collection happens.
HYPOTHESIS = str(Path(hypothesis.__file__).parent) + "/"
#: The user's code: nothing of it may run while an expression is parsed.
USER_CODE = (PROJECT + "demo_app/", PROJECT + "tests/")

# What the parser calls that is not named by the allow-list: reading model metadata
# and its own settings. (file ending, qualified name).
INFRASTRUCTURE = {
    ("django/apps/registry.py", "Apps.get_models"),
    ("django/db/models/options.py", "Options.label"),
    ("django/db/models/options.py", "Options.get_field"),
    ("django/db/models/fields/reverse_related.py", "ForeignObjectRel.get_accessor_name"),
    ("django/utils/functional.py", "cached_property.__get__"),
    ("tracer/sqldisplay.py", "is_secret"),
}
#: Standard library modules the parser uses itself.
STDLIB = {
    f"{sysconfig.get_paths()['stdlib']}/{name}.py"
    for name in ("ast", "contextlib", "tokenize", "warnings")
}
#: Built-in (C) functions the parser may call itself, by name; methods of built-in
#: types by (type, name).
BUILTINS = {
    "isinstance",
    "len",
    "getattr",
    "hasattr",
    "min",
    "max",
    "sorted",
    "any",
    "all",
    "repr",
    "iter",
    "next",
    "perf_counter_ns",
    "iter_child_nodes",
}
BUILTIN_METHODS = {
    ("str", name)
    for name in (
        "startswith",
        "endswith",
        "strip",
        "lstrip",
        "rstrip",
        "join",
        "encode",
        "decode",
        "find",
        "rfind",
        "index",
        "count",
        "lower",
        "split",
        "replace",
        "isidentifier",
    )
} | {
    ("bytes", "decode"),
    ("list", "append"),
    ("list", "extend"),
    ("list", "pop"),
    ("list", "reverse"),
    ("dict", "get"),
    ("dict", "items"),
    ("dict", "setdefault"),
    ("set", "add"),
    ("frozenset", "__contains__"),
    ("re.Pattern", "finditer"),
    ("re.Match", "end"),
}
#: Audit events the parser may raise besides compiling the text it was given
#: (``ast.parse`` names it ``<unknown>``): Django's copying of query objects
#: (``obj.__class__ = ...``, ``id()``) and reading a function's signature
#: (``__defaults__``). Anything else (exec, import, open, os.*, subprocess, socket ...)
#: is an escape.
AUDIT_ALLOWED = {"builtins.id", "object.__setattr__", "object.__getattr__"}
#: Entered at any depth, these would mean a query was evaluated or data written.
FORBIDDEN = (
    QuerySet._fetch_all,
    QuerySet._iterator,
    QuerySet.update,
    QuerySet.delete,
    QuerySet._insert,
    QuerySet._update,
    SQLCompiler.execute_sql,
    Model.save,
    Model.save_base,
    Model.delete,
    Model.full_clean,
)
OPERATOR_DUNDERS = (
    "__or__",
    "__and__",
    "__xor__",
    "__ror__",
    "__rand__",
    "__rxor__",
    "__add__",
    "__sub__",
    "__mul__",
    "__truediv__",
    "__mod__",
    "__pow__",
    "__radd__",
    "__rsub__",
    "__rmul__",
    "__rtruediv__",
    "__rmod__",
    "__rpow__",
    "__neg__",
    "__pos__",
    "__invert__",
)


def _code(function: Any) -> Any:
    function = getattr(function, "__func__", function)
    while hasattr(function, "__wrapped__"):
        function = function.__wrapped__
    return getattr(function, "__code__", None)


def allowed_codes() -> set[Any]:
    """The code of everything the allow-list lets the parser call."""
    found: set[Any] = set()

    def add(owner: Any, name: str) -> None:
        code = _code(getattr(owner, name, None))
        if code is not None:
            found.add(code)

    classes: list[Any] = [*allowed.CALLABLES.values(), *apps.get_models()]
    for model in apps.get_models():
        for manager in model._meta.managers:
            add(type(manager), "get_queryset")
            queryset_class = type(manager.get_queryset())
            classes.append(queryset_class)
            for name in (*allowed.CHAIN, "__getitem__", "__or__", "__and__", "__xor__"):
                add(queryset_class, name)
    for cls in classes:
        if not isinstance(cls, type):
            continue
        for name in ("__new__", "__init__", *OPERATOR_DUNDERS, *allowed.EXPRESSION_METHODS):
            if isinstance(cls, type) and issubclass(cls, QuerySet) and name != "__init__":
                continue  # a QuerySet's own methods: the chained ones only, above
            add(cls, name)
    # What the parser makes: its own dataclasses (their __init__ is generated code).
    found.update(_code(cls.__init__) for cls in (expression.Expression, expression.MethodCall))
    return found


#: Taken once, from the allow-list as shipped (a test below widens it on purpose).
ALLOWED_CODES = allowed_codes()


class Monitor:
    """Watches one parse: what ran that should not have (``escapes``)."""

    def __init__(self, codes: set[Any], own: set[Any], *, evaluates: bool) -> None:
        self.codes = codes
        self.own = own
        # Unfolding an evaluating call lets Django go as far as its first statement.
        self.forbidden = set() if evaluates else {_code(function) for function in FORBIDDEN}
        self.escapes: list[str] = []
        #: The INFRASTRUCTURE entries seen.
        self.infrastructure: set[tuple[str, str]] = set()
        self.active = False

    def profile(self, frame: Any, event: str, arg: Any) -> None:
        self.active = False  # reading frame.f_back raises audit events of its own
        try:
            if event == "call":
                self.call(frame)
            elif event == "c_call" and frame.f_code.co_filename in PARSER:
                self.c_call(arg)
        finally:
            self.active = True

    def call(self, frame: Any) -> None:
        code = frame.f_code
        if code in self.own or code.co_filename.startswith(HYPOTHESIS):
            return
        filename = code.co_filename
        if filename.startswith(USER_CODE):
            self.escapes.append(f"the project's code ran: {code.co_qualname}")
            return
        if code in self.forbidden:
            self.escapes.append(f"entered {code.co_qualname}")
            return
        if filename.startswith(PLAYGROUND) or filename in TRANSPARENT:
            return
        caller = frame.f_back
        while caller is not None and caller.f_code.co_filename in TRANSPARENT:
            caller = caller.f_back
        if caller is None or caller.f_code.co_filename not in PARSER:
            return  # deeper than the parser's own calls
        if code in self.codes or filename in STDLIB:
            return
        if (_tail(filename), code.co_qualname) in INFRASTRUCTURE:
            self.infrastructure.add((_tail(filename), code.co_qualname))
            return
        instance = frame.f_locals.get("self")
        if code.co_name == "__str__" and isinstance(instance, BaseException):
            return  # an error's message, for the refusal
        self.escapes.append(f"the parser called {code.co_qualname} ({_tail(filename)})")

    def c_call(self, function: Any) -> None:
        owner = getattr(function, "__self__", None)
        name = function.__name__
        if owner is None or owner is builtins or type(owner).__name__ == "module":
            if name in BUILTINS:
                return
        else:
            kind = type(owner)
            key = kind.__qualname__ if kind.__module__ == "builtins" else kind.__qualname__
            if (key, name) in BUILTIN_METHODS or (
                f"{kind.__module__}.{kind.__qualname__}",
                name,
            ) in BUILTIN_METHODS:
                return
        self.escapes.append(f"the parser called the built-in {name} of {owner!r:.60}")

    def audit(self, event: str, args: tuple[Any, ...]) -> None:
        if not self.active or event in AUDIT_ALLOWED:
            return
        if event == "compile" and args[1] == "<unknown>" or event == "sys.setprofile":
            return
        self.escapes.append(f"audit event {event}: {args!r:.80}")


def _tail(filename: str) -> str:
    parts = Path(filename).parts
    for anchor in ("django", "tracer"):
        if anchor in parts:
            return "/".join(parts[len(parts) - parts[::-1].index(anchor) - 1 :])
    return filename


_MONITOR: list[Monitor] = []


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if _MONITOR:
        _MONITOR[-1].audit(event, args)


sys.addaudithook(_audit)


# Canaries: callables only a disallowed path reaches. Each records that it ran.

CANARIES: list[str] = []


def _canary(name: str) -> Callable[..., Any]:
    def canary(*args: Any, **kwargs: Any) -> Any:
        CANARIES.append(name)
        return None

    return canary


@pytest.fixture
def canaries(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    from demo_app.models import Book

    monkeypatch.setattr(QuerySet, "canary", _canary("QuerySet.canary"), raising=False)
    monkeypatch.setattr(BaseManager, "canary", _canary("Manager.canary"), raising=False)
    monkeypatch.setattr(Book, "canary", _canary("Book.canary"), raising=False)
    monkeypatch.setattr(
        Book, "canary_property", property(_canary("Book.canary_property")), raising=False
    )
    monkeypatch.setattr(builtins, "canary", _canary("builtins.canary"), raising=False)
    CANARIES.clear()
    yield
    CANARIES.clear()


class Watched:
    """Spans PlaygroundError was constructed with (before it clamps them), and
    statements that reached a driver."""

    def __init__(self) -> None:
        self.spans: list[tuple[str, int, int]] = []
        self.statements: list[Any] = []


@pytest.fixture
def watched(monkeypatch: pytest.MonkeyPatch, canaries: None) -> Watched:
    found = Watched()
    original = expression.PlaygroundError.__init__

    def init(self: Any, message: str, text: str, start: int, end: int) -> None:
        found.spans.append((message, start, end))
        original(self, message, text, start, end)

    def counted(method: Any) -> Any:
        def execute(self: Any, sql: Any, *args: Any, **kwargs: Any) -> Any:
            found.statements.append(sql)
            return method(self, sql, *args, **kwargs)

        return execute

    # Below every execute wrapper: what reaches the driver, traced or not.
    for cls in (CursorWrapper, TracedCursorMixin):
        for name in ("_execute", "_executemany"):
            monkeypatch.setattr(cls, name, counted(getattr(cls, name)))
    monkeypatch.setattr(expression.PlaygroundError, "__init__", init)
    found.own = {init.__code__, _code(counted(None))}  # type: ignore[attr-defined]
    return found


@contextmanager
def monitored(watched: Watched, *functions: Any, evaluates: bool = False) -> Iterator[Monitor]:
    """Watch the block; ``functions`` are the test's own, called in it."""
    own = {*watched.own, _code(monitored), *map(_code, functions)}  # type: ignore[attr-defined]
    monitor = Monitor(ALLOWED_CODES, own, evaluates=evaluates)
    _MONITOR.append(monitor)
    previous = sys.getprofile()
    monitor.active = True
    sys.setprofile(monitor.profile)
    try:
        yield monitor
    finally:
        sys.setprofile(previous)
        monitor.active = False
        _MONITOR.pop()


# Strategies ----------------------------------------------------------------------------

MODELS = ["Book", "Author", "Publisher", "Review", "Tag", "Store", "demo_app.Book"]
MANAGERS = ["objects", "_base_manager", "_default_manager", "canary", "books", "none"]
ALLOWED_NAMES = [
    "Q",
    "F",
    "Value",
    "Count",
    "Sum",
    "Max",
    "Subquery",
    "Exists",
    "OuterRef",
    "Prefetch",
    "Lower",
    "Concat",
    "Coalesce",
    "Case",
    "When",
    "Cast",
    "CharField",
    "ExpressionWrapper",
    "FilteredRelation",
    "Window",
    "Decimal",
    "date",
    "datetime",
    "timedelta",
    "UUID",
]
REFUSED_NAMES = [
    "open",
    "eval",
    "exec",
    "getattr",
    "setattr",
    "globals",
    "vars",
    "compile",
    "print",
    "type",
    "object",
    "os",
    "sys",
    "canary",
    "__import__",
    "__builtins__",
    "_private",
    "apps",
    "settings",
    "connection",
    "breakpoint",
]
METHODS = sorted(allowed.CHAIN | allowed.EVALUATE | allowed.WRITE | set(allowed.REFUSED)) + [
    "canary",
    "canary_property",
    "iterator",
    "aiterator",
    "acount",
    "afilter",
    "query",
    "model",
    "db",
    "as_manager",
    "save",
    "refresh_from_db",
    "asc",
    "desc",
    "resolve_expression",
    "format",
    "join",
    "__class__",
    "__init__",
    "__globals__",
    "__subclasses__",
    "__dict__",
    "__reduce__",
    "__getattribute__",
    "_clone",
    "_fetch_all",
    "_filter_or_exclude",
    "_fields",
    "_meta",
    "_result_cache",
]
KEYWORDS = [
    "title",
    "title__icontains",
    "price__lt",
    "author__name",
    "author",
    "pk",
    "id__in",
    "published__year",
    "tags__name",
    "books",
    "reviews",
    "password",
    "output_field",
    "to_attr",
    "queryset",
    "then",
    "default",
    "defaults",
    "flat",
    "nope",
    "_connector",
]
FIELDS = ["title", "price", "author", "author__name", "-published", "pk", "books", "nope", "?"]


def _string(draw: Callable[..., Any]) -> str:
    value = draw(
        st.one_of(
            st.sampled_from(FIELDS),
            st.text(max_size=8),
            st.sampled_from(["<script>", "\x00", "\u202e", "e\u0301", "\ud800", "'", '"']),
        )
    )
    return repr(value)


LITERALS = st.one_of(
    st.integers(min_value=-(10**20), max_value=10**20).map(str),
    st.floats(allow_nan=False).map(repr),
    st.sampled_from(["None", "True", "False", "...", "1j", "1e999", "0x1F", "b'x'", "1_000"]),
    st.builds(repr, st.text(max_size=10)),
    st.builds(repr, st.sampled_from(FIELDS)),
)


def _arguments(draw: Callable[..., Any], child: st.SearchStrategy[str]) -> str:
    positional = draw(st.lists(child, max_size=2))
    named = [
        f"{key}={value}"
        for key, value in draw(st.lists(st.tuples(st.sampled_from(KEYWORDS), child), max_size=2))
    ]
    extra = draw(st.sampled_from([""] * 8 + ["*{}", "**{}"]))
    parts = [*positional, *named]
    if extra:
        parts.append(extra.format(draw(child)))
    return ", ".join(parts)


@st.composite
def compound(draw: Callable[..., Any], child: st.SearchStrategy[str]) -> str:
    a = draw(child)
    shape = draw(
        st.sampled_from(
            [
                "attribute",
                "call",
                "call",
                "subscript",
                "slice",
                "binary",
                "unary",
                "compare",
                "boolean",
                "conditional",
                "lambda",
                "comprehension",
                "fstring",
                "walrus",
                "container",
                "starred",
                "yield",
            ]
        )
    )
    if shape == "attribute":
        return f"{a}.{draw(st.sampled_from(METHODS + MANAGERS))}"
    if shape == "call":
        return f"{a}({_arguments(draw, child)})"
    if shape == "subscript":
        return f"{a}[{draw(child)}]"
    if shape == "slice":
        lower, upper, step = (draw(st.sampled_from(["", "1", "-1", "2", "x"])) for _ in "abc")
        return f"{a}[{lower}:{upper}{':' + step if step else ''}]"
    if shape == "binary":
        operator = draw(
            st.sampled_from(["|", "&", "^", "+", "-", "*", "/", "%", "**", "@", "<<", "//"])
        )
        return f"({a} {operator} {draw(child)})"
    if shape == "unary":
        return f"{draw(st.sampled_from(['~', '-', '+', 'not ']))}{a}"
    if shape == "compare":
        return f"({a} {draw(st.sampled_from(['<', '==', 'is', 'in', 'not in']))} {draw(child)})"
    if shape == "boolean":
        return f"({a} {draw(st.sampled_from(['and', 'or']))} {draw(child)})"
    if shape == "conditional":
        return f"({a} if {draw(child)} else {draw(child)})"
    if shape == "lambda":
        return f"(lambda q=1: {a})"
    if shape == "comprehension":
        return draw(
            st.sampled_from([f"[x for x in {a}]", f"{{x: 1 for x in {a}}}", f"(x for x in {a})"])
        )
    if shape == "fstring":
        return f"f'{{{a}}}'"
    if shape == "walrus":
        return f"(w := {a})"
    if shape == "container":
        b = draw(child)
        return draw(st.sampled_from([f"[{a}, {b}]", f"({a},)", f"{{{a}}}", f"{{{a}: {b}}}"]))
    if shape == "starred":
        return f"[*{a}]"
    return f"(yield {a})"


@st.composite
def chains(draw: Callable[..., Any], value: st.SearchStrategy[str]) -> str:
    """``Model.manager`` and a few calls: mostly the shapes the builder accepts, so
    that the QuerySet methods and allowed callables are reached, with odd parts."""
    manager = draw(st.sampled_from(["objects"] * 6 + MANAGERS))
    text = f"{draw(st.sampled_from(MODELS))}.{manager}"
    for _ in range(draw(st.integers(min_value=0, max_value=4))):
        kind = draw(st.sampled_from(["chain"] * 5 + ["other"] * 3 + ["slice", "index", "or"]))
        if kind == "chain" and draw(st.integers(min_value=0, max_value=3)):
            method = draw(st.sampled_from(sorted(SHAPED)))
            text += f".{method}({draw(SHAPED[method])})"
        elif kind in ("chain", "other"):
            method = draw(st.sampled_from(sorted(allowed.CHAIN) if kind == "chain" else METHODS))
            text += f".{method}({_arguments(draw, value)})"
        elif kind == "slice":
            text += f"[{draw(st.sampled_from(['', '1', '2']))}:{draw(value)}]"
        elif kind == "index":
            text += f"[{draw(value)}]"
        else:
            text = f"{text} {draw(st.sampled_from(['|', '&', '^']))} {draw(value)}"
    return text


_LOOKUPS = st.lists(
    st.tuples(
        st.sampled_from(
            ["title", "title__icontains", "price__lt", "author__name", "pk", "published__year"]
        ),
        st.one_of(LITERALS, st.sampled_from(["F('price')", "Value('x')", "Decimal('2')"])),
    ),
    max_size=3,
).map(lambda pairs: ", ".join(f"{key}={value}" for key, value in pairs))
_NAMES = st.lists(
    st.sampled_from(["'title'", "'-price'", "'author__name'", "'pk'", "'?'", "'nope'"]),
    max_size=3,
).map(", ".join)
_RELATIONS = st.lists(
    st.sampled_from(["'author'", "'publisher'", "'tags'", "'reviews'", "'author__books'"]),
    max_size=2,
).map(", ".join)
_ANNOTATIONS = st.lists(
    st.tuples(
        st.sampled_from(["n", "total", "low", "title", "password"]),
        st.sampled_from(
            [
                "Count('tags')",
                "Sum('price') * 2",
                "Lower('title')",
                "F('price') + Value(1)",
                "Coalesce('title', Value('-'))",
                "Case(When(price__lt=5, then=Value('cheap')), default=Value('dear'))",
                "Window(expression=Count('pk'), order_by=F('pk').desc())",
                "ExpressionWrapper(F('price') * 2, output_field=CharField())",
            ]
        ),
    ),
    max_size=2,
).map(lambda pairs: ", ".join(f"{key}={value}" for key, value in pairs))
#: Arguments shaped as each chained method expects, so that most chains build.
SHAPED: dict[str, st.SearchStrategy[str]] = {
    "filter": _LOOKUPS,
    "exclude": _LOOKUPS,
    "annotate": _ANNOTATIONS,
    "alias": _ANNOTATIONS,
    "order_by": _NAMES,
    "values": _NAMES,
    "values_list": _NAMES.map(lambda names: names + ", flat=True" if names else ""),
    "only": _NAMES,
    "defer": _NAMES,
    "select_related": _RELATIONS,
    "prefetch_related": _RELATIONS,
    "distinct": st.just(""),
    "reverse": st.just(""),
    "all": st.just(""),
    "union": st.just("Book.objects.filter(pk=2)"),
    "dates": st.just("'published', 'year'"),
}

_LEAVES = st.one_of(
    LITERALS,
    st.sampled_from(MODELS + ALLOWED_NAMES + REFUSED_NAMES),
    st.builds("{}.objects".format, st.sampled_from(MODELS)),
    st.builds(
        "{}({!r})".format,
        st.sampled_from(["F", "Count", "Lower", "Value", "OuterRef", "Sum"]),
        st.sampled_from(FIELDS),
    ),
)
VALUES = st.recursive(_LEAVES, lambda child: compound(child), max_leaves=6)
#: Values the builder mostly accepts, and now and then a hostile one.
PLAIN = st.one_of(
    LITERALS,
    LITERALS,
    st.sampled_from(
        [
            "F('price')",
            "F('title').desc()",
            "Q(title__icontains='a') | ~Q(pk=1)",
            "Count('tags')",
            "Value(1)",
            "Lower('title')",
            "Book.objects.filter(pk=1)",
            "Subquery(Author.objects.filter(pk=OuterRef('author')).values('name')[:1])",
            "Exists(Review.objects.filter(book=OuterRef('pk')))",
            "Prefetch('reviews', queryset=Review.objects.all(), to_attr='listed')",
            "Decimal('1.5')",
            "date(2020, 1, 1)",
            "[1, 2, 3]",
            "{'a': 1}",
            "Author(name='x')",
        ]
    ),
    VALUES,
)


@st.composite
def refused_chains(draw: Callable[..., Any]) -> str:
    """A chain that builds, then one refused part: the refusals that point at a name."""
    text = f"{draw(st.sampled_from(MODELS[:3]))}.objects"
    for _ in range(draw(st.integers(min_value=0, max_value=2))):
        method = draw(st.sampled_from(["all", "filter", "order_by", "select_related"]))
        text += f".{method}({draw(SHAPED[method])})"
    refused = draw(
        st.sampled_from(
            [
                *(f".{name}()" for name in sorted(allowed.REFUSED)),
                ".afilter()",
                ".aget(pk=1)",
                ".canary()",
                ".nope()",
                "._filter_or_exclude(False)",
                "._fields",
                ".__class__",
                ".filter(_connector='OR')",
                ".filter(title=open)",
                ".filter(title=_fine)",
            ]
        )
    )
    return text + refused


EXPRESSIONS = st.one_of(
    refused_chains(), chains(PLAIN), chains(PLAIN), chains(PLAIN), chains(chains(PLAIN)), VALUES
)

#: Characters NFKC folds into ASCII: Python reads ``ｆｉｌｔｅｒ`` as ``filter``.
LOOKALIKES = {"__": "_\ufe4d", "f": "\uff46", "i": "\u2071", "o": "\u1d52", "fi": "\ufb01"}


@st.composite
def disguised(draw: Callable[..., Any]) -> str:
    """An expression, sometimes laid over lines, in lookalike letters, indented."""
    text = draw(EXPRESSIONS)
    if draw(st.integers(min_value=0, max_value=2)) == 0:
        for plain, fancy in LOOKALIKES.items():
            if draw(st.integers(min_value=0, max_value=1)) == 0:
                text = text.replace(plain, fancy)
    layout = draw(
        st.sampled_from(["", "", "lines", "indent", "comment", "crlf", "spaced", "spaced"])
    )
    if layout == "lines":
        text = text.replace(".", "\n  .").replace("(", "(\n")
    elif layout == "indent":
        text = "  \t" + text
    elif layout == "comment":
        commented = text.replace(", ", ",  # é, [x] | \u202e\n ").replace(")[", ")  # a[0]\n[")
        text = f"({commented})"
    elif layout == "crlf":
        text = text.replace(".", "\r\n.")
    elif layout == "spaced":
        text = f"({text.replace('.', '. ')})"
    return text


GARBAGE = st.one_of(
    st.text(max_size=60),
    st.text(alphabet="()[]{}.,:=*|&~'\"\\#\n\r\t _aBq0fF", max_size=40),
    st.builds(lambda n: "(" * n + ")" * n, st.integers(min_value=50, max_value=400)),
    st.builds(lambda n: "x" * n, st.sampled_from([MAX_LENGTH, MAX_LENGTH + 1])),
)
TEXTS = st.one_of(disguised(), disguised(), disguised(), GARBAGE)


# Checks ------------------------------------------------------------------------------


_NAMED = re.compile(r"(\w+)(?:\(\))?(?::| is )")
#: Refusals whose span is exactly the name they start with: (pattern, what to strip
#: from the span first).
_EXACT = (
    re.compile(r"(\w+): (?:names|attributes) starting with an underscore"),
    re.compile(r"(\w+) is not allowed: names must"),
    re.compile(r"(\w+)\(\) (?:is not a QuerySet method|is async)"),
    *(re.compile(rf"({name})\(\) ") for name in allowed.REFUSED),
)


def check_span(text: str, message: str, start: int, end: int) -> None:
    """A refusal that names a part of the text points at that part."""
    pointed = unicodedata.normalize("NFKC", text[start:end])
    for pattern in _EXACT:
        match = pattern.match(message)
        if match is not None:
            # A method's span starts at its dot.
            assert re.sub(r"^\.\s*", "", pointed) == match.group(1), (message, pointed)
            return
    match = _NAMED.match(message)
    if match is not None and start < end:
        assert match.group(1) in pointed, (message, pointed)


def check_refusal(text: str, error: PlaygroundError, watched: Watched) -> None:
    assert error.text == text
    assert error.message == str(error)
    assert error.message.strip()
    # The span as computed, before PlaygroundError clamps it into the text.
    spans = [span for span in watched.spans if span[0] == error.message]
    assert spans, error.message
    _, start, end = spans[-1]
    assert 0 <= start <= end <= len(text), (error.message, start, end, len(text))
    assert (error.start, error.end) == (start, end)
    pointer = error.pointer()
    assert "^" in pointer.splitlines()[-1]
    check_span(text, error.message, start, end)


def token_starts(text: str) -> dict[int, str] | None:
    """The offset of each operator and name token in the text (None if the
    tokenizer does not read it)."""
    lines = [0] + [match.end() for match in re.finditer(r"\r\n|\r|\n", text)]
    readline = io.StringIO(text, newline=None).readline
    try:
        tokens = list(tokenize.generate_tokens(readline))
    except (tokenize.TokenError, SyntaxError):
        return None
    return {
        lines[token.start[0] - 1] + token.start[1]: token.string
        for token in tokens
        if token.type in (tokenize.OP, tokenize.NAME)
    }


def check_expression(text: str, parsed: Any) -> None:
    assert parsed.text == text
    assert 0 <= parsed.root_start <= parsed.root_end <= len(text)
    starts = token_starts(text)
    for call in (*parsed.calls, parsed.terminal):
        if call is None:
            continue
        assert 0 <= call.start <= call.end <= len(text), call
        if starts is not None:
            # A call starts at its dot (or its name), bracket or operator, as written.
            token = starts.get(call.start)
            assert token is not None, (call, text[call.start : call.end])
            assert token in ".[|&^" or token.isidentifier(), (call, token)


def parsed_or_refused(
    text: str, watched: Watched, run: Callable[[str], Any], *, evaluates: bool = False
) -> Any:
    watched.spans.clear()
    watched.statements.clear()
    with monitored(watched, run, evaluates=evaluates) as monitor:
        try:
            result = run(text)
        except PlaygroundError as exc:
            result = exc
    assert monitor.escapes == [], (text, monitor.escapes)
    assert CANARIES == [], (text, CANARIES)
    assert watched.statements == [], (text, watched.statements)
    return result


# Properties ----------------------------------------------------------------------------


@pytest.mark.django_db
@hypothesis_settings(max_examples=500)
@given(text=TEXTS)
# Found by this test: spans counted from the NFKC name (longer than "ﬁ" as written),
# past a space after the dot, at a bracket or operator inside a comment; an operator
# named by its method in an error.
@example(text="(Book. objects. as_manager())")
@example(text="Book.objects._ﬁlter_or_exclude()")
@example(text="Book.objects.aﬁlter()")
@example(text="Book.objects.all() # [\n[:1]")
@example(text="(Book.objects.all() # x | y\n | Book.objects.all())")
@example(text="Author.objects | Book.objects")
@example(text='Book.objects.filter(title="".join(["a"]))')
@example(text="Book.objects.canary()")
@example(text="Book.canary_property.objects")
@example(text='Book.objects.filter(pk=__import__("os").system("true"))')
def test_parse_runs_only_the_allow_list(text: str, watched: Watched):
    result = parsed_or_refused(text, watched, lambda text: parse(text, app="demo_app"))
    if isinstance(result, PlaygroundError):
        check_refusal(text, result, watched)
    else:
        check_expression(text, result)


@pytest.fixture
def warm(vendor: str, alias: str) -> str:
    """The connection open and its server facts read (unfold reads MySQL's version
    once per connection, before it stops statements)."""
    unfold("Book.objects.all()", alias, app="demo_app")
    return alias


@pytest.mark.django_db(databases="__all__")
@hypothesis_settings(max_examples=150)
@given(text=st.one_of(disguised(), chains(PLAIN)))
def test_unfold_sends_nothing(text: str, warm: str, watched: Watched):
    result = parsed_or_refused(
        text, watched, lambda text: unfold(text, warm, app="demo_app"), evaluates=True
    )
    if isinstance(result, PlaygroundError):
        assert result.text == text
        assert 0 <= result.start <= result.end <= len(text)
    else:
        assert result.expression == text


# The monitor itself ------------------------------------------------------------------


@pytest.mark.django_db
def test_the_monitor_sees_an_escape(watched: Watched, monkeypatch: pytest.MonkeyPatch):
    """With ``raw`` and ``canary`` let through as chained methods, the monitor and the
    canaries catch them: these checks can fail."""
    monkeypatch.setattr(allowed, "CHAIN", allowed.CHAIN | {"raw", "canary"})
    with monitored(watched) as monitor:
        parse('Book.objects.raw("SELECT 1")', app="demo_app")
    assert monitor.escapes == ["the parser called QuerySet.raw (django/db/models/query.py)"]
    with monitored(watched) as monitor:
        parse("Book.objects.canary()", app="demo_app")
    assert monitor.escapes == ["the project's code ran: _canary.<locals>.canary"]
    assert CANARIES == ["QuerySet.canary"]


@pytest.mark.django_db
def test_the_monitor_sees_user_code_and_audit_events(watched: Watched):
    from demo_app.models import Author

    with monitored(watched) as monitor:
        str(Author(name="x"))
        eval("1")  # the audit hook must see it
    assert [escape.split(":")[0] for escape in monitor.escapes] == [
        "the project's code ran",
        "audit event compile",
        "audit event exec",
    ]
    assert monitor.escapes[0] == "the project's code ran: Author.__str__"
