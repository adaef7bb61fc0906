"""The statements a write method would send, compiled and never run.

Each function follows what Django 5.2's own method does (``QuerySet.update()``,
``delete()``, ``create()`` through ``Model.save()``, ``bulk_create()`` ...) up to the
compiler's ``as_sql()``, and stops there. Where a statement depends on what an
earlier one returns (the rows ``delete()`` collects, the row ``get_or_create()``
finds), the earlier one is shown, and the later one with ``Unknown`` params, or
with a note instead of SQL.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db import connections
from django.db.models import AutoField, Model, sql
from django.db.models.constants import OnConflict
from django.db.models.deletion import Collector, get_candidate_relations_to_delete
from django.db.models.expressions import Case, Value, When
from django.db.models.fields import Field
from django.db.models.functions import Cast
from django.utils.functional import partition

from tracer.export import value
from tracer.guard import QueryAttempted, first_statement
from tracer.playground.compiling import (
    Compiled,
    Unknown,
    as_in_transaction,
    compile_inserts,
    compile_query,
    from_attempt,
)

__all__ = ["Planned", "plan"]

#: A write's statements, in the order they would run, and notes on them.
Planned = tuple[list[Compiled], list[str]]


def plan(
    method: str, queryset: Any, args: tuple[Any, ...], kwargs: dict[str, Any], using: str
) -> Planned:
    """The statements ``queryset.<method>(*args, **kwargs)`` would send on ``using``.

    Raises what Django would raise before sending anything (TypeError, ValueError,
    FieldError ...)."""
    queryset = queryset.using(using)
    return _PLANS[method](queryset, using, *args, **kwargs)


# update() ----------------------------------------------------------------------------


def _update(queryset: Any, using: str, **kwargs: Any) -> Planned:
    queryset._not_support_combined_queries("update")
    if queryset.query.is_sliced:
        raise TypeError("Cannot update a query once a slice has been taken.")
    query = queryset.query.chain(sql.UpdateQuery)
    query.add_update_values(kwargs)
    # Inline annotations in order_by(), as QuerySet.update() does.
    from django.core import exceptions

    new_order_by = []
    for col in query.order_by:
        alias = col
        descending = False
        if isinstance(alias, str) and alias.startswith("-"):
            alias = alias.removeprefix("-")
            descending = True
        if annotation := query.annotations.get(alias):
            if getattr(annotation, "contains_aggregate", False):
                raise exceptions.FieldError(
                    f"Cannot update when ordering by an aggregate: {annotation}"
                )
            if descending:
                annotation = annotation.desc()
            new_order_by.append(annotation)
        else:
            new_order_by.append(col)
    query.order_by = tuple(new_order_by)
    query.clear_select_clause()
    return _update_statements(query, using, "update")


def _update_statements(query: Any, using: str, purpose: str) -> Planned:
    try:
        return [compile_query(query, using, purpose)], []
    except QueryAttempted as attempt:
        # The compiler needs the primary keys first: an UPDATE across a join on
        # MySQL/MariaDB (which cannot select from the table it updates), or one
        # that also updates parent tables (multi-table inheritance).
        table = query.get_meta().db_table
        select = from_attempt(
            attempt,
            using,
            "select the primary keys to update",
            "Django runs this first and reads the primary keys it returns.",
        )
        update = Compiled(
            purpose,
            note=(
                f"Then UPDATE {table} ... WHERE its primary key IN (the keys returned): "
                "its SQL holds them, so it is only known once the SELECT has run."
            ),
        )
        return [select, update], []


# delete() ----------------------------------------------------------------------------


def _delete(queryset: Any, using: str) -> Planned:
    queryset._not_support_combined_queries("delete")
    if queryset.query.is_sliced:
        raise TypeError("Cannot use 'limit' or 'offset' with delete().")
    if queryset.query.distinct_fields:
        raise TypeError("Cannot call delete() after .distinct(*fields).")
    if queryset._fields is not None:
        raise TypeError("Cannot call delete() after .values() or .values_list()")
    del_query = queryset._chain()
    del_query._for_write = True
    del_query.query.select_for_update = False
    del_query.query.select_related = False
    del_query.query.clear_ordering(force=True)
    collector = Collector(using=using, origin=queryset)
    model = queryset.model
    if collector.can_fast_delete(del_query):
        query = del_query.query.clone()
        query.__class__ = sql.DeleteQuery
        return [
            compile_query(
                query,
                using,
                "delete",
                "Nothing depends on these rows (no cascades, no signal receivers): one DELETE.",
            )
        ], []
    # Django loads the rows first: to follow the relations to them and send signals.
    with first_statement(using) as stopped:
        collector.collect(del_query)
    statements = []
    if stopped.attempt is not None:
        statements.append(
            from_attempt(
                stopped.attempt,
                using,
                "collect the rows to delete",
                "Django loads the rows first, to follow the relations to them and send "
                "the delete signals.",
            )
        )
    notes = [
        f"{related.related_model._meta.label}.{related.field.name}: {related.on_delete.__name__}"
        for related in get_candidate_relations_to_delete(model._meta)
    ]
    if notes:
        notes = [
            "For the rows collected, Django then handles what points to them "
            "(on_delete): " + "; ".join(notes) + "."
        ]
    statements.append(_by_keys(model, using, "delete"))
    return statements, notes


def _by_keys(model: type[Model], using: str, purpose: str) -> Compiled:
    """``DELETE FROM table WHERE pk IN (...)`` for the collected keys."""
    query = sql.DeleteQuery(model)
    pk = model._meta.pk
    query.add_filter(f"{pk.attname}__in", [_stand_in(pk)])
    compiled = compile_query(query, using, purpose, "Once per batch of the keys collected.")
    compiled.params = [value(Unknown("the primary keys collected"))]
    compiled.raw_params = None
    return compiled


def _stand_in(field: Field) -> Any:
    """A value of the field's type, compiled in place of one only known later."""
    return field.to_python(1)


# create() and get_or_create() ---------------------------------------------------------------


def _create(queryset: Any, using: str, **kwargs: Any) -> Planned:
    model = queryset.model
    reverse = frozenset(kwargs).intersection(model._meta._reverse_one_to_one_field_names)
    if reverse:
        raise ValueError("The following fields do not exist in this model: " + ", ".join(reverse))
    return _insert(model(**kwargs), using, "create")


def _insert(obj: Model, using: str, purpose: str) -> Planned:
    """The INSERT of ``obj.save(force_insert=True)``: Model._save_table()."""
    model = type(obj)
    meta = model._meta
    notes = []
    obj._prepare_related_fields_for_save(operation_name="save")
    if meta.parents:
        parents = ", ".join(parent._meta.label for parent in meta.all_parents)
        notes.append(
            f"{meta.label} inherits from {parents}: their rows are inserted first, each "
            "with its own INSERT; this is the last one."
        )
    if meta.order_with_respect_to:
        notes.append("A SELECT of the highest _order runs first (order_with_respect_to).")
    if not obj._is_pk_set(meta):
        setattr(obj, meta.pk.attname, meta.pk.get_pk_value_on_save(obj))
    pk_set = obj._is_pk_set(meta)
    fields = [
        f
        for f in meta.local_concrete_fields
        if not f.generated and (pk_set or f is not meta.auto_field)
    ]
    query = sql.InsertQuery(model)
    query.insert_values(fields, [obj], raw=False)
    return compile_inserts(query, using, meta.db_returning_fields, purpose), notes


def _get(queryset: Any, using: str, purpose: str, note: str, **kwargs: Any) -> Compiled:
    locking = bool(queryset.query.select_for_update)
    with as_in_transaction(connections[using], locking), first_statement(using) as stopped:
        queryset.get(**kwargs)
    if stopped.attempt is None:  # pragma: no cover - get() always queries
        return Compiled(purpose, note="No statement.")
    return from_attempt(stopped.attempt, using, purpose, note)


def _get_or_create(queryset: Any, using: str, defaults: Any = None, **kwargs: Any) -> Planned:
    queryset._for_write = True
    lookup = _get(queryset, using, "get", "Looks the row up.", **kwargs)
    params = queryset._extract_model_params(defaults, **kwargs)
    inserts, notes = _insert(queryset.model(**params), using, "create")
    for insert in inserts:
        insert.note = "Only if no row was found, inside a savepoint."
    return [lookup, *inserts], notes


def _update_or_create(
    queryset: Any,
    using: str,
    defaults: Any = None,
    create_defaults: Any = None,
    **kwargs: Any,
) -> Planned:
    update_defaults = defaults or {}
    if create_defaults is None:
        create_defaults = update_defaults
    queryset._for_write = True
    lookup = _get(
        queryset.select_for_update(),
        using,
        "get",
        "Looks the row up and locks it, inside a transaction.",
        **kwargs,
    )
    model = queryset.model
    params = queryset._extract_model_params(create_defaults, **kwargs)
    inserts, notes = _insert(model(**params), using, "create")
    for insert in inserts:
        insert.note = "Only if no row was found, inside a savepoint."
    update = _save_update(model, update_defaults, using)
    return [lookup, *inserts, update], notes


def _save_update(model: type[Model], update_defaults: dict[str, Any], using: str) -> Compiled:
    """``obj.save(update_fields=...)`` on the row found, as update_or_create() does."""
    note = "Only if a row was found: sets the defaults on it."
    meta = model._meta
    update_fields = set(update_defaults)
    if not meta._non_pk_concrete_field_names.issuperset(update_fields):
        return Compiled(
            "update",
            note=note + " Saves every field of the row found (a default is not a "
            "concrete field), with the values read from it.",
        )
    pk_fields = meta.pk_fields
    for field in meta.local_concrete_fields:
        if not (field in pk_fields or field.__class__.pre_save is Field.pre_save):
            update_fields.add(field.name)
    obj = model(**update_defaults)
    setattr(obj, meta.pk.attname, _stand_in(meta.pk))
    obj._state.adding = False
    values = [
        (f, None, f.pre_save(obj, False))
        for f in meta.local_concrete_fields
        if f not in pk_fields
        and not f.generated
        and (f.name in update_fields or f.attname in update_fields)
    ]
    if not values:
        return Compiled("update", note=note + " No field to set: no UPDATE.")
    query = model._base_manager.using(using).filter(pk=obj.pk).query.chain(sql.UpdateQuery)
    query.add_update_fields(values)
    query.annotations = {}
    compiled = compile_query(query, using, "update", note)
    if isinstance(compiled.params, list) and compiled.params:
        # The primary key is the last param: the WHERE holds nothing else.
        compiled.params[-1] = value(Unknown("the primary key of the row found"))
        compiled.raw_params = None
    return compiled


# bulk_create() and bulk_update() -----------------------------------------------------------


def _bulk_create(
    queryset: Any,
    using: str,
    objs: Any,
    batch_size: Any = None,
    ignore_conflicts: bool = False,
    update_conflicts: bool = False,
    update_fields: Any = None,
    unique_fields: Any = None,
) -> Planned:
    model = queryset.model
    if batch_size is not None and batch_size <= 0:
        raise ValueError("Batch size must be a positive integer.")
    for parent in model._meta.all_parents:
        if parent._meta.concrete_model is not model._meta.concrete_model:
            raise ValueError("Can't bulk create a multi-table inherited model")
    objs = list(objs)
    if not all(isinstance(obj, model) for obj in objs):
        raise TypeError(f"bulk_create() takes {model.__name__} instances.")
    if not objs:
        return [], ["No objects: no statement."]
    opts = model._meta
    if unique_fields:
        unique_fields = [
            opts.get_field(opts.pk.name if name == "pk" else name) for name in unique_fields
        ]
    if update_fields:
        update_fields = [opts.get_field(name) for name in update_fields]
    on_conflict = queryset._check_bulk_create_options(
        ignore_conflicts, update_conflicts, update_fields, unique_fields
    )
    fields = [f for f in opts.concrete_fields if not f.generated]
    queryset._prepare_for_bulk_create(objs)
    objs_without_pk, objs_with_pk = partition(lambda o: o._is_pk_set(), objs)
    statements: list[Compiled] = []
    insert = _batched_inserts(
        queryset, using, batch_size, on_conflict, update_fields, unique_fields
    )
    if objs_with_pk:
        statements += insert(objs_with_pk, fields)
    if objs_without_pk:
        statements += insert(objs_without_pk, [f for f in fields if not isinstance(f, AutoField)])
    return statements, []


def _batched_inserts(
    queryset: Any,
    using: str,
    batch_size: Any,
    on_conflict: Any,
    update_fields: Any,
    unique_fields: Any,
) -> Callable[[list[Model], list[Field]], list[Compiled]]:
    """QuerySet._batched_insert(), compiling each batch's InsertQuery."""
    connection = connections[using]
    model = queryset.model

    def insert(objs: list[Model], fields: list[Field]) -> list[Compiled]:
        max_batch_size = max(connection.ops.bulk_batch_size(fields, objs), 1)
        size = min(batch_size, max_batch_size) if batch_size else max_batch_size
        bulk_return = connection.features.can_return_rows_from_bulk_insert
        returning = None
        if bulk_return and (on_conflict is None or on_conflict == OnConflict.UPDATE):
            returning = model._meta.db_returning_fields
        result = []
        for start in range(0, len(objs), size):
            query = sql.InsertQuery(
                model,
                on_conflict=on_conflict,
                update_fields=update_fields,
                unique_fields=unique_fields,
            )
            query.insert_values(fields, objs[start : start + size], raw=False)
            result += compile_inserts(query, using, returning, "bulk_create")
        return result

    return insert


def _bulk_update(
    queryset: Any, using: str, objs: Any, fields: Any, batch_size: Any = None
) -> Planned:
    model = queryset.model
    if batch_size is not None and batch_size <= 0:
        raise ValueError("Batch size must be a positive integer.")
    if not fields:
        raise ValueError("Field names must be given to bulk_update().")
    objs = tuple(objs)
    if not all(isinstance(obj, model) for obj in objs):
        raise TypeError(f"bulk_update() takes {model.__name__} instances.")
    if not all(obj._is_pk_set() for obj in objs):
        raise ValueError("All bulk_update() objects must have a primary key set.")
    opts = model._meta
    fields = [opts.get_field(name) for name in fields]
    if any(not f.concrete or f.many_to_many for f in fields):
        raise ValueError("bulk_update() can only be used with concrete fields.")
    all_pk_fields = set(opts.pk_fields)
    for parent in opts.all_parents:
        all_pk_fields.update(parent._meta.pk_fields)
    if any(f in all_pk_fields for f in fields):
        raise ValueError("bulk_update() cannot be used with primary key fields.")
    if not objs:
        return [], ["No objects: no statement."]
    for obj in objs:
        obj._prepare_related_fields_for_save(operation_name="bulk_update", fields=fields)
    connection = connections[using]
    max_batch_size = connection.ops.bulk_batch_size([opts.pk, opts.pk] + fields, objs)
    size = min(batch_size, max_batch_size) if batch_size else max_batch_size
    requires_casting = connection.features.requires_casted_case_in_updates
    statements: list[Compiled] = []
    for start in range(0, len(objs), size):
        batch = objs[start : start + size]
        update_kwargs = {}
        for field in fields:
            whens = []
            for obj in batch:
                attr = getattr(obj, field.attname)
                if not hasattr(attr, "resolve_expression"):
                    attr = Value(attr, output_field=field)
                whens.append(When(pk=obj.pk, then=attr))
            case = Case(*whens, output_field=field)
            update_kwargs[field.attname] = (
                Cast(case, output_field=field) if requires_casting else case
            )
        pks = [obj.pk for obj in batch]
        found, _ = _update(queryset.filter(pk__in=pks), using, **update_kwargs)
        for compiled in found:
            compiled.purpose = "bulk_update"
        statements += found
    return statements, []


_PLANS: dict[str, Callable[..., Planned]] = {
    "update": _update,
    "delete": _delete,
    "create": _create,
    "get_or_create": _get_or_create,
    "update_or_create": _update_or_create,
    "bulk_create": _bulk_create,
    "bulk_update": _bulk_update,
}
