"""Links to the functions in Django's source that do each stage's work.

A link points at the installed Django's own file and line on GitHub, under the tag of
the installed version (``main`` for a development version), so that what it shows is
the code that ran. Lines come from ``inspect`` when a page is rendered, and are cached.

Paths come from recorded (and possibly imported) traces: only Django's modules are
ever imported to resolve them, and a module outside Django is looked at only when the
process has already imported it. A function defined outside Django (a custom
manager's own ``get_queryset``, a third-party compiler's ``as_sql``) has no link.
"""

from __future__ import annotations

import importlib
import inspect
import linecache
import os
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from types import CodeType, ModuleType
from typing import Any

import django

GITHUB = "https://github.com/django/django/blob"
_DJANGO_DIR = os.path.dirname(os.path.abspath(django.__file__))


@dataclass(frozen=True)
class SourceLink:
    """Where a function (or class) is defined in Django's source."""

    #: What it is, as Django names it: ``SQLCompiler.as_sql``, ``prefetch_one_level``.
    label: str
    #: Its file inside the repository: ``django/db/models/sql/compiler.py``.
    path: str
    line: int
    url: str


def version_tag(version: str | None = None) -> str:
    """The git tag of a Django version (``"5.2.19"``, ``"6.0a1"``); ``"main"`` for a
    development version, which has no tag."""
    version = django.__version__ if version is None else version
    return "main" if "dev" in version else version


def url(path: str, line: int, version: str | None = None) -> str:
    """The GitHub address of ``line`` of ``path`` (``django/...``) in that version."""
    return f"{GITHUB}/{version_tag(version)}/{path}#L{line}"


@lru_cache(maxsize=1024)
def link(dotted: str | None, attribute: str | None = None) -> SourceLink | None:
    """The source of ``attribute`` as the class at ``dotted`` (``module.qualname``)
    finds it through its MRO, or of the class or function ``dotted`` itself when no
    attribute is given. None when it is not Django's, or cannot be found."""
    if not dotted:
        return None
    try:
        found = _resolve(dotted, attribute)
        if found is None:
            return None
        obj, label = found
        obj = _function(obj)
        path = _django_path(obj)
        if path is None:
            return None
        if inspect.isclass(obj):
            line = _class_line(obj)
        else:
            line = obj.co_firstlineno if isinstance(obj, CodeType) else _code(obj).co_firstlineno
        return SourceLink(label, path, line, url(path, line))
    except Exception:  # a link is a nicety: never fail the page for one
        return None


def _resolve(dotted: str, attribute: str | None) -> tuple[Any, str] | None:
    """(the object, its label): the function, class or code object."""
    module, qualname = _module(dotted)
    if module is None:
        return None
    if "<locals>" in qualname:
        # A class made inside a function (Django's related managers): found by the
        # qualified names of the code objects compiled into that function.
        outer = getattr(module, qualname.split(".", 1)[0], None)
        if outer is None:
            return None
        codes = {_qualname(code): code for code in _codes(_code(_function(outer)))}
        short = qualname.rsplit(".", 1)[-1]
        if attribute is not None and f"{qualname}.{attribute}" in codes:
            return codes[f"{qualname}.{attribute}"], f"{short}.{attribute}"
        if qualname in codes:
            return codes[qualname], short
        return None
    obj: Any = module
    for part in qualname.split("."):
        obj = getattr(obj, part)
    if attribute is None:
        return obj, qualname
    for klass in inspect.getmro(obj) if inspect.isclass(obj) else (obj,):
        if attribute in vars(klass):
            return vars(klass)[attribute], f"{klass.__qualname__}.{attribute}"
    return None


def _module(dotted: str) -> tuple[ModuleType | None, str]:
    """The longest importable module prefix of ``dotted``, and the rest."""
    parts = dotted.split(".")
    for end in range(len(parts) - 1, 0, -1):
        name = ".".join(parts[:end])
        module = sys.modules.get(name)
        if module is None and (name == "django" or name.startswith("django.")):
            try:
                module = importlib.import_module(name)
            except Exception:
                module = None
        if module is not None:
            return module, ".".join(parts[end:])
    return None, dotted


def _function(obj: Any) -> Any:
    """The plain function behind a method, property or wrapper (the tracer's own
    instrumentation wraps some of Django's methods with functools.wraps)."""
    if isinstance(obj, (staticmethod, classmethod)):
        obj = obj.__func__
    elif isinstance(obj, property):
        obj = obj.fget
    if callable(obj) and not inspect.isclass(obj):
        obj = inspect.unwrap(obj)
    return obj


def _class_line(cls: type) -> int:
    """The line of a class statement. For a module-level class, the first line that
    starts with ``class Name``: inspect parses the whole module to find it (a quarter
    of a second for django/db/models/sql/query.py)."""
    if "." not in cls.__qualname__:
        pattern = re.compile(rf"class {re.escape(cls.__name__)}\b")
        for number, text in enumerate(linecache.getlines(inspect.getsourcefile(cls) or ""), 1):
            if pattern.match(text):
                return number
    return inspect.getsourcelines(cls)[1]


def _code(function: Any) -> CodeType:
    code = getattr(function, "__code__", None)
    if not isinstance(code, CodeType):
        raise TypeError(f"{function!r} has no code")
    return code


def _codes(code: CodeType) -> Iterator[CodeType]:
    yield code
    for constant in code.co_consts:
        if isinstance(constant, CodeType):
            yield from _codes(constant)


def _qualname(code: CodeType) -> str:
    return getattr(code, "co_qualname", code.co_name)  # co_qualname: Python 3.11+


def _django_path(obj: Any) -> str | None:
    """``django/...`` for an object defined in the installed Django, else None."""
    filename = obj.co_filename if isinstance(obj, CodeType) else inspect.getsourcefile(obj)
    if not filename:
        return None
    filename = os.path.abspath(filename)
    if os.path.commonpath([filename, _DJANGO_DIR]) != _DJANGO_DIR:
        return None
    relative = os.path.relpath(filename, _DJANGO_DIR).replace(os.sep, "/")
    return f"django/{relative}"


# What does each stage's work ---------------------------------------------------------

#: Triggers that are not the name of the QuerySet method they run through.
TRIGGER_METHODS = {
    "iteration": "__iter__",
    "len": "__len__",
    "bool": "__bool__",
    "index": "__getitem__",
    "async for": "__aiter__",
}
#: The module of each of Django's Query classes (the query stage records the name).
QUERY_CLASSES = {
    "Query": "django.db.models.sql.query",
    "RawQuery": "django.db.models.sql.query",
    "InsertQuery": "django.db.models.sql.subqueries",
    "UpdateQuery": "django.db.models.sql.subqueries",
    "DeleteQuery": "django.db.models.sql.subqueries",
    "AggregateQuery": "django.db.models.sql.subqueries",
}
#: The Query method that builds each part of the query state.
QUERY_PARTS = {
    "tables": "setup_joins",
    "where": "add_q",
    "annotations": "add_annotation",
    "group_by": "set_group_by",
    "order_by": "add_ordering",
    "limits": "set_limits",
    "select_related": "add_select_related",
    "deferred": "add_deferred_loading",
    "combinator": "combine",
}
_CURSORS = {
    "sqlite": "django.db.backends.sqlite3.base.SQLiteCursorWrapper",
    "mysql": "django.db.backends.mysql.base.CursorWrapper",
}
_CURSOR_METHODS = {"execute": "execute", "executemany": "executemany", "callproc": "callproc"}
_TRANSACTIONS = {"COMMIT": "commit", "ROLLBACK": "rollback"}


def _links(*found: SourceLink | None) -> list[SourceLink]:
    seen: list[SourceLink] = []
    for item in found:
        if item is not None and item not in seen:
            seen.append(item)
    return seen


def query_class_path(name: str | None) -> str | None:
    """``Query`` -> ``django.db.models.sql.query.Query``; None for a class that is not
    Django's (a third-party Query subclass is recorded by its name only)."""
    module = QUERY_CLASSES.get(name or "")
    return None if module is None else f"{module}.{name}"


def query_part_links(name: str | None) -> dict[str, SourceLink]:
    """Links, by part of the query state (``where``, ``order_by``...), to the Query
    method that builds that part, for the Query class ``name``."""
    path = query_class_path(name)
    found = {part: link(path, method) for part, method in QUERY_PARTS.items()}
    return {part: item for part, item in found.items() if item is not None}


def call_link(queryset_class: str | None, code: str) -> SourceLink | None:
    """The QuerySet method of a lineage call as the export writes it: ``.filter(...)``,
    ``[:5]``, `` | <QuerySet>``."""
    if code.startswith("["):
        name = "__getitem__"
    elif code.startswith("."):
        name = code[1:].split("(", 1)[0]
    else:
        name = {"|": "__or__", "&": "__and__", "^": "__xor__"}.get(code.strip()[:1], "")
    return link(queryset_class, name) if name.isidentifier() else None


def trigger_link(
    queryset_class: str | None, trigger: str | None, detail: str | None
) -> SourceLink | None:
    """The function through which ``trigger`` ran the query."""
    if trigger == "prefetch":
        return link("django.db.models.query.prefetch_one_level")
    if trigger == "related":
        return _descriptor_link(detail)
    if trigger is None:
        return None
    return link(queryset_class, TRIGGER_METHODS.get(trigger, trigger))


def _descriptor_link(detail: str | None) -> SourceLink | None:
    """``Book.author`` -> the ``__get__`` of the descriptor on the installed model."""
    if not detail or "." not in detail:
        return None
    from django.apps import apps

    model_name, attribute = detail.split(".", 1)
    for model in apps.get_models():
        if model.__name__ == model_name and attribute in vars(model):
            descriptor = type(vars(model)[attribute])
            return link(f"{descriptor.__module__}.{descriptor.__qualname__}", "__get__")
    return None


def stage_links(statement: dict[str, Any]) -> dict[str, list[SourceLink]]:
    """For each stage of an exported statement, the functions of Django that did its
    work (see docs/trace-format.md for the data). A stage the statement did not go
    through has none."""
    stages = statement.get("stages") or {}

    def stage(name: str) -> dict[str, Any]:
        found = stages.get(name)
        return found if isinstance(found, dict) else {}

    model, manager, queryset = stage("model"), stage("manager"), stage("queryset")
    query, compiler, backend = stage("query"), stage("compiler"), stage("backend")
    links: dict[str, list[SourceLink]] = {}
    if model:
        links["model"] = _links(link("django.db.models.options.Options", "contribute_to_class"))
    if manager:
        links["manager"] = _links(link(manager.get("class"), "get_queryset"))
    if queryset:
        path = queryset.get("class")
        links["queryset"] = _links(
            trigger_link(path, queryset.get("trigger"), queryset.get("trigger_detail")),
            link(path, "_fetch_all") if compiler.get("result_type") == "multi" else None,
        )
    if query:
        links["query"] = _links(link(query_class_path(query.get("class"))))
    if compiler:
        path = compiler.get("class")
        links["compiler"] = _links(link(path, "as_sql"), link(path, "execute_sql"))
    kind = statement.get("kind")
    owners: list[str | None]
    if kind == "transaction":
        method = _TRANSACTIONS.get(str(statement.get("sql")).upper())
        owners = ["django.db.backends.base.base.BaseDatabaseWrapper"]
    else:
        method = _CURSOR_METHODS.get(str(kind))
        owners = [
            "django.db.backends.utils.CursorWrapper",
            _CURSORS.get(str(backend.get("vendor"))),
        ]
    cursor = [link(owner, method) for owner in owners] if method else []
    iterable = backend.get("iterable")
    links["backend"] = _links(
        *cursor,
        link(compiler.get("class"), "apply_converters")
        if backend.get("convert_ms") is not None
        else None,
        link(iterable, "__iter__"),
        link("django.db.models.base.Model", "from_db")
        if iterable == "django.db.models.query.ModelIterable"
        else None,
    )
    return links
