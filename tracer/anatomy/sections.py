"""The anatomy page's sections, each a list of rows with one cell per backend: the
classes, ``DatabaseOperations`` called, the feature flags, the lookups as SQL,
``pattern_ops`` and the column types."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from importlib import import_module
from typing import Any

from django.db.models import CharField

from tracer import djangosource
from tracer.anatomy.flags import FLAGS
from tracer.anatomy.reading import (
    NEEDS_SERVER,
    Backend,
    Cell,
    NotConnected,
    Row,
    path,
    reading,
    text,
)

#: The classes a backend is made of: (role, attribute of its DatabaseWrapper class
#: or None for the class itself, what it does).
ROLES = (
    (
        "DatabaseWrapper",
        None,
        "The connection: opens it, makes cursors, runs transactions; holds the "
        "operators, the column types and the classes below.",
    ),
    (
        "DatabaseFeatures",
        "features_class",
        "What the database can do: flags the ORM reads to choose its SQL (below).",
    ),
    (
        "DatabaseOperations",
        "ops_class",
        "The bits of SQL the compiler asks for: quoting names, LIMIT/OFFSET, date "
        "functions, casts; and which compiler module writes the SQL.",
    ),
    (
        "DatabaseSchemaEditor",
        "SchemaEditorClass",
        "Writes the DDL of migrations: CREATE TABLE, ALTER TABLE, indexes, constraints.",
    ),
    (
        "DatabaseIntrospection",
        "introspection_class",
        "Reads the schema back (tables, columns, keys, constraints) for inspectdb and migrations.",
    ),
    (
        "DatabaseValidation",
        "validation_class",
        "System checks of model fields on this database.",
    ),
    ("DatabaseClient", "client_class", "manage.py dbshell: the command-line client."),
    ("DatabaseCreation", "creation_class", "Creates and destroys the test database."),
)
#: Django's cursor wrapper, around the engine's own cursor classes.
DJANGO_CURSOR = "django.db.backends.utils.CursorWrapper"
#: The compiler classes of a compiler module.
COMPILERS = (
    "SQLCompiler",
    "SQLInsertCompiler",
    "SQLUpdateCompiler",
    "SQLDeleteCompiler",
    "SQLAggregateCompiler",
)
#: The lookups shown, each with the value of its example: ``name__<lookup>=value``.
LOOKUPS = (
    ("exact", "Ann"),
    ("iexact", "Ann"),
    ("contains", "Ann"),
    ("icontains", "Ann"),
    ("startswith", "Ann"),
    ("istartswith", "Ann"),
    ("endswith", "Ann"),
    ("iendswith", "Ann"),
    ("regex", "^A"),
    ("iregex", "^A"),
    ("gt", "Ann"),
    ("gte", "Ann"),
    ("lt", "Ann"),
    ("lte", "Ann"),
)
#: DatabaseOperations calls shown: (label, call).
OPERATIONS: tuple[tuple[str, Callable[[Any], Any]], ...] = (
    ("quote_name('book')", lambda ops: ops.quote_name("book")),
    ("max_name_length()", lambda ops: ops.max_name_length()),
    ("limit_offset_sql(10, 20)", lambda ops: ops.limit_offset_sql(10, 20)),
    ("no_limit_value()", lambda ops: ops.no_limit_value()),
    ("prep_for_like_query('50%_off')", lambda ops: ops.prep_for_like_query("50%_off")),
    ("pk_default_value()", lambda ops: ops.pk_default_value()),
    ("explain_prefix", lambda ops: ops.explain_prefix),
    ("compiler_module", lambda ops: ops.compiler_module),
)
#: The example column of the lookups.
COLUMN = "name"


def classes(backends: list[Backend]) -> list[Row]:
    rows = []
    for role, attribute, explanation in ROLES:
        cells = []
        for backend in backends:
            cls = backend.wrapper_class
            if cls is not None and attribute is not None:
                cls = getattr(cls, attribute, None)
            cells.append(_class_cell(cls))
        rows.append(Row(role, cells, explanation, compare=False))
    rows.insert(
        1,
        Row(
            "CursorWrapper",
            [_cursor_cell(backend) for backend in backends],
            "connection.cursor() returns Django's CursorWrapper around the driver's "
            "cursor; the engine's own classes adapt params and placeholders (%s to ? on "
            "SQLite).",
            compare=False,
        ),
    )
    rows.append(
        Row(
            "Compiler module",
            [_compilers_cell(backend) for backend in backends],
            "The SQLCompiler classes that write a Query as SQL "
            "(DatabaseOperations.compiler_module).",
            compare=False,
        )
    )
    return rows


def _class_cell(cls: Any) -> Cell:
    if not isinstance(cls, type):
        return Cell(unknown="not available")
    parents = [path(base) for base in cls.__bases__ if base is not object]
    more = [f"derives from {', '.join(parents)}"] if parents else []
    if cls.__module__.startswith("django.db.backends.base."):
        more = ["Django's base class, as it is: the engine changes nothing here"]
    return Cell(path(cls), more=more, links=_found(djangosource.link(path(cls))))


def _found(*links: djangosource.SourceLink | None) -> list[djangosource.SourceLink]:
    return [link for link in links if link is not None]


def _cursor_cell(backend: Backend) -> Cell:
    if backend.wrapper_class is None:
        return Cell(unknown="not available")
    module = import_module(backend.wrapper_class.__module__)
    own = [
        path(value)
        for name, value in vars(module).items()
        if isinstance(value, type) and "Cursor" in name and value.__module__ == module.__name__
    ]
    return Cell(
        DJANGO_CURSOR,
        more=[f"around {dotted}" for dotted in own],
        links=_found(*(djangosource.link(dotted) for dotted in [DJANGO_CURSOR, *own])),
    )


def _compilers_cell(backend: Backend) -> Cell:
    ops = getattr(backend.wrapper_class, "ops_class", None)
    name = getattr(ops, "compiler_module", None)
    if not isinstance(name, str):
        return Cell(unknown="not available")
    try:
        module = import_module(name)
    except Exception as exc:
        return Cell(name, unknown=f"{type(exc).__name__}: {exc}")
    found = [getattr(module, compiler, None) for compiler in COMPILERS]
    paths = [path(cls) for cls in found if isinstance(cls, type)]
    # Where each class gets its as_sql(): the engine's own, or Django's generic one.
    links = _found(*(djangosource.link(dotted, "as_sql") for dotted in paths))
    return Cell(name, more=paths, links=links)


def flags(backends: list[Backend]) -> list[dict[str, Any]]:
    """The feature flags, by topic: each read from the features class, or from an
    instance when it is a property."""
    topics = []
    for topic, names in FLAGS:
        rows = []
        for name, explanation in names:
            cells = [_flag(backend, name) for backend in backends]
            if all(cell.unknown == "not a flag of this Django" for cell in cells):
                continue
            rows.append(Row(name, cells, explanation))
        topics.append({"title": topic, "rows": rows})
    return topics


def _flag(backend: Backend, name: str) -> Cell:
    features = getattr(backend.wrapper_class, "features_class", None)
    if features is None:
        return Cell(unknown="not available")
    try:
        static = inspect.getattr_static(features, name)
    except AttributeError:
        return Cell(unknown="not a flag of this Django")
    if not hasattr(static, "__get__"):  # a plain value; else a property, read on the instance
        return Cell(text(static))
    with reading(backend):
        return backend.read(getattr(backend.wrapper, "features", None), name)


def lookups(backends: list[Backend]) -> list[Row]:
    """Each lookup as its engine writes it for ``name__<lookup>=value``: the column
    (cast by ``ops.lookup_cast``), the operator (``connection.operators``) and the
    param (the value made a LIKE pattern where the lookup is one)."""
    rows = []
    for lookup, value in LOOKUPS:
        cells = []
        for backend in backends:
            with reading(backend):
                cells.append(_lookup(backend, lookup, value))
        rows.append(Row(lookup, cells, f'{COLUMN}__{lookup}="{value}"'))
    return rows


def _lookup(backend: Backend, lookup: str, value: str) -> Cell:
    operators = _dict_attribute(backend, "operators")
    if operators is None:
        return Cell(unknown=NEEDS_SERVER)
    operator = operators.get(lookup)
    if operator is None:
        return Cell(
            unknown="not in connection.operators: DatabaseOperations.regex_lookup() writes it"
            if "regex" in lookup
            else "not in connection.operators"
        )
    ops = getattr(backend.wrapper, "ops", None)
    try:
        column = ops.quote_name(COLUMN) if ops is not None else COLUMN
        cast = ops.lookup_cast(lookup, "CharField") if ops is not None else "%s"
        param = _param(ops, lookup, value)
    except NotConnected:
        return Cell(operator, unknown=NEEDS_SERVER)
    return Cell(operator, more=[f"{cast % column} {operator}", f"param: {param!r}"])


def _param(ops: Any, lookup: str, value: str) -> str:
    lookup_class = CharField().get_lookup(lookup)
    pattern = getattr(lookup_class, "param_pattern", None)
    if pattern is None or ops is None:
        return value
    return str(pattern % ops.prep_for_like_query(value))


def pattern_ops(backends: list[Backend]) -> list[Row]:
    """``connection.pattern_ops``: the pattern lookups when the value is an expression
    (an F(), a column), built in SQL around it."""
    names: list[str] = []
    found = [_dict_attribute(backend, "pattern_ops") for backend in backends]
    for patterns in found:
        names += [name for name in patterns or {} if name not in names]
    rows = [
        Row(
            name,
            [
                Cell(patterns[name]) if patterns and name in patterns else Cell(unknown="none")
                for patterns in found
            ],
        )
        for name in names
    ]
    rows.append(
        Row(
            "pattern_esc",
            [backend.read(backend.wrapper_class, "pattern_esc") for backend in backends],
            "How %, _ and \\ inside the expression are escaped.",
        )
    )
    return rows


def data_types(backends: list[Backend]) -> list[Row]:
    """``connection.data_types``: the column type of each field type, with its suffix
    (``data_types_suffix``) and check (``data_type_check_constraints``)."""
    maps = [
        (
            _dict_attribute(backend, "data_types") or _server_free(backend, "data_types"),
            _dict_attribute(backend, "data_types_suffix") or {},
            _dict_attribute(backend, "data_type_check_constraints") or {},
        )
        for backend in backends
    ]
    names: list[str] = []
    for types, _, _ in maps:
        names += [name for name in types or {} if name not in names]
    rows = []
    for name in names:
        cells = []
        for types, suffixes, checks in maps:
            if types is None:
                cells.append(Cell(unknown=NEEDS_SERVER))
            elif name not in types:
                cells.append(Cell(unknown="none: a field of another kind"))
            else:
                more = []
                if suffixes.get(name):
                    more.append(f"then {suffixes[name]}")
                if checks.get(name):
                    more.append(f"CHECK ({checks[name]})")
                notes: list[str] = []
                cells.append(Cell(_column_type(types[name], notes), more=more, notes=notes))
        rows.append(Row(name, cells))
    return rows


class _Placeholders(dict[str, str]):
    """Field data as the schema editor passes it, each value left a placeholder."""

    def __missing__(self, key: str) -> str:
        return f"%({key})s"


def _column_type(found: Any, notes: list[str]) -> str:
    """A column type; one that is a function of the field (CharField's varchar, with
    or without a length) is written with placeholders, and said to be computed."""
    if not callable(found):
        return str(found)
    notes.append(f"computed by {getattr(found, '__module__', '?')}.{found.__qualname__}()")
    try:
        return str(found(_Placeholders()))
    except Exception:  # a function that needs real values: its name says enough
        return "(computed)"


def _server_free(backend: Backend, name: str) -> dict[str, Any] | None:
    """MySQL's ``data_types`` depend on the server (MariaDB has a native uuid): its
    class keeps the rest as ``_data_types``."""
    found = inspect.getattr_static(backend.wrapper_class, f"_{name}", None)
    if not isinstance(found, dict):
        return None
    backend.notes.append(
        f"{name} depends on the server: shown as the engine's class has it (_{name}), "
        "before the server's version adds to it."
    )
    return found


def _dict_attribute(backend: Backend, name: str) -> dict[str, Any] | None:
    """A dict of the wrapper (``operators``, ``data_types``...): the class's, or the
    instance's when it is a property (MySQL's data_types depend on the server)."""
    cls = backend.wrapper_class
    if cls is None:
        return None
    static = inspect.getattr_static(cls, name, None)
    if isinstance(static, dict):
        return static
    if backend.wrapper is None:
        return None
    try:
        with reading(backend):
            value = getattr(backend.wrapper, name)
    except Exception:  # NotConnected, or the engine's own code failed
        return None
    return value if isinstance(value, dict) else None


def operations(backends: list[Backend]) -> list[Row]:
    rows = []
    for label, call in OPERATIONS:
        cells = []
        for backend in backends:
            with reading(backend):
                cells.append(_call(getattr(backend.wrapper, "ops", None), call))
        rows.append(Row(label, cells))
    return rows


def _call(ops: Any, call: Callable[[Any], Any]) -> Cell:
    if ops is None:
        return Cell(unknown="not available")
    try:
        return Cell(text(call(ops)))
    except NotConnected:
        return Cell(unknown=NEEDS_SERVER)
    except Exception as exc:
        return Cell(unknown=f"{type(exc).__name__}: {exc}")
