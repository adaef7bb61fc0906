"""The Model -> Manager -> QuerySet stages: class-level instrumentation of Django's
``QuerySet``, ``BaseManager``, ``Model``, related-object descriptors and prefetching.

Installed once (when the first traced connection class is built). Each wrapper
first asks the recorder whether anything records; when nothing does, that one check
is the whole cost. When something records:

- chained QuerySet calls (``filter``, ``select_related``, ``[:50]`` ...) made by code
  outside the ORM add a ``Call`` to the QuerySet's lineage (an attribute on the
  clone that pickling and deep copies drop);
- ``get_queryset()`` roots the lineage at the ``Manager`` it came from;
- evaluation triggers (iteration, ``len``, ``count``, ``get``, ``save``, a lazy
  related access, a prefetch ...) start an ``Operation`` that the statements run
  inside it belong to. Triggers the ORM fires inside an operation (``get()`` calling
  ``len()``) are part of it; those from other code (a ``save()`` override running
  a query, a prefetch) nest under it;
- an evaluation with ``select_related`` (or a prefetch of a foreign key or
  one-to-one) is watched: reads of what it joined (``book.author``) mark it used (see
  ``recorder.watch``). The descriptor that serves those reads is wrapped only while
  some trace watches one, so with none it costs nothing at all.
"""

from __future__ import annotations

import functools
import os
import sys
import threading
from collections.abc import AsyncIterator, Callable
from itertools import chain
from time import perf_counter_ns
from types import CodeType
from typing import Any

from django.core.exceptions import FieldDoesNotExist
from django.db.models import Model
from django.db.models.fields.related_descriptors import (
    ForwardManyToOneDescriptor,
    ReverseOneToOneDescriptor,
)
from django.db.models.manager import BaseManager
from django.db.models.query import QuerySet, RawQuerySet
from django.db.models.query_utils import DeferredAttribute
from django.template.defaulttags import ForNode

from tracer import recorder, stacks
from tracer.recorder import active_trace
from tracer.trace import Call, Manager, Operation, Trace, describe_error

#: The attribute a QuerySet's lineage rides on. It has a class default (None), so
#: that reading it never touches the instance's ``__dict__``: in CPython 3.11+ that
#: turns the QuerySet's inline attribute values into a dict, which slows down every
#: attribute access the ORM makes on it afterwards.
LINEAGE = "_tracer_lineage"

#: QuerySet methods that return a new QuerySet: calls of them make up a lineage.
CHAIN_METHODS = (
    "all",
    "filter",
    "exclude",
    "complex_filter",
    "select_related",
    "prefetch_related",
    "annotate",
    "alias",
    "order_by",
    "distinct",
    "extra",
    "reverse",
    "defer",
    "only",
    "using",
    "select_for_update",
    "values",
    "values_list",
    "dates",
    "datetimes",
    "none",
    "union",
    "intersection",
    "difference",
    "raw",
    "__and__",
    "__or__",
    "__xor__",
)

#: QuerySet methods that run SQL, and the trigger name each records.
TRIGGERS = {
    "__iter__": "iteration",
    "__len__": "len",
    "__bool__": "bool",
    "count": "count",
    "exists": "exists",
    "contains": "contains",
    "get": "get",
    "first": "first",
    "last": "last",
    "earliest": "earliest",
    "latest": "latest",
    "aggregate": "aggregate",
    "update": "update",
    "delete": "delete",
    "bulk_create": "bulk_create",
    "bulk_update": "bulk_update",
    "get_or_create": "get_or_create",
    "update_or_create": "update_or_create",
    "create": "create",
    "in_bulk": "in_bulk",
    "iterator": "iterator",
    "explain": "explain",
}
# Triggers made by Python itself (for, len(), bool()), not a call in the code.
_IMPLICIT = frozenset(("iteration", "len", "bool"))
# Triggers that are no-ops once the QuerySet's results are cached.
_CACHED_NOOP = frozenset(("__iter__", "__len__", "__bool__"))

RAW_TRIGGERS = {
    "__iter__": "iteration",
    "__len__": "len",
    "__bool__": "bool",
    "iterator": "iterator",
}

# save_base(), not save(): save() warns about positional args at its caller's line
# (stacklevel), which a wrapper frame would take. asave() is wrapped only when
# called without positional args, for the same reason.
MODEL_TRIGGERS = {"save_base": "save", "delete": "delete", "refresh_from_db": "refresh_from_db"}
ASYNC_MODEL_METHODS = ("adelete", "arefresh_from_db")

#: Triggers whose internal QuerySets are the ORM's own, not a lineage the user built.
_OWN_QUERYSETS = frozenset(
    ("save", "asave", "delete", "adelete", "refresh_from_db", "arefresh_from_db", "deferred")
)

_ORM_DIR = os.path.join(
    os.path.dirname(os.path.dirname(sys.modules[QuerySet.__module__].__file__ or "")), ""
)
_TRACER_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "")
# Keyed by file name: code objects that differ only in file name compare equal.
_internal_code: dict[str, bool] = {}

# Bound once: these run on every wrapped call.
_getframe = sys._getframe
_current_trace = recorder._current.get
_operation_get = recorder._operation.get
_operation_set = recorder._operation.set
_operation_reset = recorder._operation.reset
_origin_get = recorder._origin.get

_installed = False
_install_lock = threading.Lock()


def is_orm_internal(code: CodeType) -> bool:
    """Whether a frame belongs to Django's ORM (django/db/) or the tracer."""
    name = code.co_filename
    try:
        return _internal_code[name]
    except KeyError:
        filename = os.path.abspath(name)
        internal = filename.startswith(_ORM_DIR) or filename.startswith(_TRACER_DIR)
        _internal_code[name] = internal
        return internal


# Manager proxy methods (Book.objects.filter -> QuerySet.filter) share one code
# object; a call coming through one is the user's call one frame further out.
_MANAGER_METHOD: CodeType | None = None


def _manager_method_code() -> CodeType | None:
    from django.db.models.manager import Manager as DjangoManager

    method = getattr(DjangoManager, "filter", None)
    return getattr(method, "__code__", None)


def _caller(depth: int) -> Any:
    """The frame that called the wrapper ``depth`` frames up, past manager proxies."""
    frame: Any = _getframe(depth + 1)
    if frame.f_code is _MANAGER_METHOD:
        frame = frame.f_back
    return frame


# Lineage ---------------------------------------------------------------------------

_QUERYSETS = (QuerySet, RawQuerySet)


def _chain(name: str, original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        trace = (_current_trace() or active_trace()) if recorder.tracing else None
        if trace is None:
            return original(self, *args, **kwargs)
        try:
            # _caller(1) and is_orm_internal(), inline: this runs on every call.
            frame: Any = _getframe(1)
            if frame.f_code is _MANAGER_METHOD:
                frame = frame.f_back
            code = frame.f_code
            internal = _internal_code.get(code.co_filename)
            if internal is None:
                internal = is_orm_internal(code)
        except Exception:
            recorder.note_failure()
            return original(self, *args, **kwargs)
        if internal:
            # The ORM building on a QuerySet (get() filtering, a related manager
            # applying its filter): the result has the same lineage (_inherit(),
            # inline), no call of the user's, not timed.
            result = original(self, *args, **kwargs)
            parent = self._tracer_lineage
            if parent is not None and result is not self and isinstance(result, _QUERYSETS):
                result._tracer_lineage = parent
            return result
        start = perf_counter_ns()
        result = original(self, *args, **kwargs)
        elapsed = perf_counter_ns() - start
        if result is not self and isinstance(result, _QUERYSETS):
            try:
                if len(args) == 1 and type(args[0]) is str:
                    # .using("replica"), .order_by("name"): one tuple per trace.
                    args = trace._args.setdefault(args, args)
                result._tracer_lineage = Call(
                    self._tracer_lineage,
                    name,
                    args,
                    # flat(), inline.
                    tuple(_flatten(kwargs.items())) if kwargs else None,
                    code,
                    frame.f_lasti,
                    elapsed,
                )
            except Exception:
                recorder.note_failure()
        return result

    return wrapper


def _link(
    source: Any,
    result: Any,
    name: str,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    elapsed: int,
    frame: Any,
) -> None:
    if is_orm_internal(frame.f_code):
        _inherit(source, result)
        return
    if result is source or not isinstance(result, _QUERYSETS):
        return
    result._tracer_lineage = Call(
        source._tracer_lineage,
        name,
        args,
        flat(kwargs) if kwargs else None,
        frame.f_code,
        frame.f_lasti,
        elapsed,
    )


def _inherit(source: Any, result: Any) -> None:
    """The ORM building on a QuerySet (get() filtering, a related manager applying
    its filter): the result has the same lineage, no call of the user's."""
    parent = source._tracer_lineage
    if parent is not None and result is not source and isinstance(result, _QUERYSETS):
        result._tracer_lineage = parent


def flat(kwargs: dict[str, Any]) -> tuple[Any, ...]:
    """``{"a": 1, "b": 2}`` as ``("a", 1, "b", 2)``: a third of a dict's memory."""
    return tuple(_flatten(kwargs.items()))


_flatten = chain.from_iterable


def _getitem(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def __getitem__(self: Any, k: Any) -> Any:
        trace = (_current_trace() or active_trace()) if recorder.tracing else None
        if trace is None:
            return original(self, k)
        if isinstance(k, slice):
            start = perf_counter_ns()
            result = original(self, k)
            elapsed = perf_counter_ns() - start
            try:
                _link(self, result, "__getitem__", (k,), {}, elapsed, _caller(1))
            except Exception:
                recorder.note_failure()
            return result
        if self._result_cache is not None:
            _touch(self)
            return original(self, k)
        return _run(trace, "index", "__getitem__", original, self, (k,), {}, self)

    return __getitem__


def _get_queryset(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def get_queryset(self: Any) -> Any:
        queryset = original(self)
        trace = (_current_trace() or active_trace()) if recorder.tracing else None
        if trace is not None:
            try:
                if queryset._tracer_lineage is None:
                    # _manager()'s cache hit, inline: a model's own manager, of a
                    # model known not to be a many-to-many through model.
                    known = None
                    if (
                        self.__dict__.get("instance") is None
                        and _is_through.get(self.model) is False
                    ):
                        known = trace._managers.get((type(self), self.name, self.model))
                    queryset._tracer_lineage = known or _manager(trace, self)
            except Exception:
                recorder.note_failure()
        return queryset

    return get_queryset


def _manager(trace: Trace, manager: Any) -> Manager:
    instance = manager.__dict__.get("instance")
    if instance is None:
        model = manager.model
        through = _is_through.get(model)
        if through is None:
            through = _through_model(model)
        # book.tags.count(): the through model's manager, for the relation's manager.
        owner = _constraining(_getframe(2)) if through else None
        if owner is not None:
            instance = owner.instance
            accessor = _m2m_accessor(owner)
        else:
            # A model's own managers are shared by every QuerySet they make: one
            # record each per trace.
            key = (type(manager), manager.name, manager.model)
            known = trace._managers.get(key)
            if known is None:
                known = trace._managers[key] = Manager(key[1], type(manager), manager.model)
            return known
    else:
        accessor = _m2m_accessor(manager)
    if accessor is None:
        field = getattr(manager, "field", None)
        accessor = field.remote_field.get_accessor_name() if field is not None else None
    related = (instance._meta.label, accessor, instance.pk)
    record = Manager(accessor, type(manager), manager.model, related)
    record.loaded_by = recorder.loaded_by(trace, instance)
    operation = recorder._operation.get()
    if operation is not None and operation.trigger == "prefetch":
        # The QuerySet this prefetch stores on the instance: reading it marks the
        # prefetch used (see _touch).
        record.prefetch = operation
        if operation.used is None:
            operation.used = False
    return record


def _m2m_accessor(manager: Any) -> str | None:
    """A many-to-many manager's attribute on its instance (``book.tags``,
    ``tag.book_set``), or None for other managers. Its ``prefetch_cache_name`` is the
    relation's query name (``book``) on the reverse side."""
    name = getattr(manager, "prefetch_cache_name", None)
    if name is None or not getattr(manager, "reverse", False):
        return name
    try:
        field = manager.model._meta.get_field(manager.query_field_name)
        return str(field.remote_field.get_accessor_name())
    except Exception:
        return name


def _constraining(frame: Any) -> Any:
    """The many-to-many manager whose ``count()`` or ``exists()`` is building this
    QuerySet: Django's ``ManyRelatedManager.constrained_target`` queries the through
    table alone, through the through model's base manager. Its frame is a few frames
    up (the manager's proxy method, then it); None if it is not there."""
    for _ in range(4):
        if frame is None:
            return None
        code = frame.f_code
        if code.co_name == "constrained_target" and is_orm_internal(code):
            manager = frame.f_locals.get("self")
            if hasattr(manager, "prefetch_cache_name") and hasattr(manager, "instance"):
                return manager
            return None
        frame = frame.f_back
    return None


def _through_model(model: Any) -> bool:
    """Whether ``model`` is the through model of a many-to-many relation (remembered).
    The relation's field is on one of the models its foreign keys point to."""
    try:
        targets = {field.related_model for field in model._meta.fields if field.many_to_one}
        through = any(
            field.remote_field.through is model
            for target in targets
            for field in target._meta.many_to_many
        )
    except AttributeError:  # not a model with _meta, or a target not resolved yet
        through = False
    if len(_is_through) >= 1000:
        _is_through.clear()
    _is_through[model] = through
    return through


# Model -> whether it is a many-to-many through model (see _through_model).
_is_through: dict[Any, bool] = {}


def _touch(queryset: Any) -> None:
    """Your code read a QuerySet's cached results: if a prefetch stored them, it
    was used. (Reads by the ORM itself, a nested prefetch walking them, don't count.)"""
    lineage = queryset._tracer_lineage
    if type(lineage) is Manager and lineage.prefetch is not None:
        if not is_orm_internal(_caller(2).f_code):
            lineage.prefetch.used = True


# Operations --------------------------------------------------------------------------


def _trigger(trigger: str, method: str, original: Callable[..., Any]) -> Callable[..., Any]:
    cached_noop = method in _CACHED_NOOP

    @functools.wraps(original)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        trace = (_current_trace() or active_trace()) if recorder.tracing else None
        if trace is None:
            return original(self, *args, **kwargs)
        if self._result_cache is not None:
            _touch(self)
            if cached_noop:
                return original(self, *args, **kwargs)
        name = trigger
        if name == "len" and _getframe(1).f_code is _FOR_NODE_RENDER:
            name = "iteration"  # {% for %} calls len() before it loops
        return _run(trace, name, method, original, self, args, kwargs, self)

    return wrapper


def _model_trigger(trigger: str, original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        trace = (_current_trace() or active_trace()) if recorder.tracing else None
        if trace is None:
            return original(self, *args, **kwargs)
        if trigger == "refresh_from_db" and _getframe(1).f_code is _DEFERRED_GET:
            return _deferred(trace, original, self, kwargs)
        return _run(trace, trigger, trigger, original, self, args, kwargs, None)

    return wrapper


def _deferred(trace: Trace, original: Any, instance: Any, kwargs: dict[str, Any]) -> Any:
    """A deferred field loading on first access: DeferredAttribute.__get__ calls
    ``instance.refresh_from_db(fields=[name])``."""
    try:
        operation = _start(trace, "deferred", recorder._operation.get(), _getframe(2))
        operation.model = type(instance)
        fields = kwargs.get("fields")
        operation.detail = f"{type(instance).__name__}.{fields[0]}" if fields else None
        _loaded(trace, operation, instance)
    except Exception:
        recorder.note_failure()
        return original(instance, **kwargs)
    return _inside(operation, original, instance, (), kwargs)


def _loaded(trace: Trace, operation: Operation, instance: Any) -> None:
    """Which evaluation loaded the instance a lazy load runs for (N+1 detection)."""
    operation.loaded_by = recorder.loaded_by(trace, instance)
    operation.instance_pk = instance.pk


def _run(
    trace: Trace,
    trigger: str,
    method: str,
    original: Callable[..., Any],
    target: Any,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    queryset: Any,
) -> Any:
    """Call ``original`` inside a new operation, or inside the running one when the
    ORM itself fires this trigger as part of it."""
    frame: Any = _getframe(2)  # _caller(2), inline: this runs on every evaluation
    if frame.f_code is _MANAGER_METHOD:
        frame = frame.f_back
    parent = _operation_get()
    if parent is not None and (
        _internal_code.get(frame.f_code.co_filename) or is_orm_internal(frame.f_code)
    ):
        if queryset is not None and parent.queryset_class is None:
            if parent.trigger not in _OWN_QUERYSETS:
                _describe_queryset(parent, queryset)
        return original(target, *args, **kwargs)
    try:
        if parent is None and _origin_get() is not None or queryset is None:
            operation = _start(trace, trigger, parent, frame)
        else:
            # _start(), inline, for a QuerySet's own trigger.
            if len(trace.statements) < recorder._soft_cap:
                stack, template = stacks.capture_shared(frame, trace._stacks)
                if stack is None and parent is not None:
                    stack, template = parent.stack, parent.template
                operation = Operation(
                    -1, trigger, None, parent, perf_counter_ns(), stack, template
                )
            else:
                operation = Operation(
                    -1, trigger, None, parent, perf_counter_ns(), None, None, True
                )
        if queryset is not None:
            operation.model = queryset.model
            operation.queryset_class = type(queryset)
            operation.lineage = queryset._tracer_lineage
            operation.prefetch = getattr(queryset, "_prefetch_related_lookups", ())
            if trigger not in _IMPLICIT:
                # An explicit call (.count(), .get(pk=1)) is part of the code shown.
                operation.args = args
                operation.kwargs = tuple(_flatten(kwargs.items())) if kwargs else None
        else:
            operation.model = type(target)
    except Exception:
        recorder.note_failure()
        return original(target, *args, **kwargs)
    # _inside(), inline.
    token = _operation_set(operation)
    try:
        result = original(target, *args, **kwargs)
    except BaseException as exc:
        _failed(operation, exc)
        raise
    finally:
        operation.end_ns = perf_counter_ns()
        _operation_reset(token)
    if method == "iterator":
        # A generator: its SQL runs as the caller pulls rows, after this returned.
        return _stepping(operation, result)
    return result


def _inside(
    operation: Operation,
    original: Callable[..., Any],
    target: Any,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> Any:
    token = recorder._operation.set(operation)
    try:
        return original(target, *args, **kwargs)
    except BaseException as exc:
        _failed(operation, exc)
        raise
    finally:
        operation.end_ns = perf_counter_ns()
        recorder._operation.reset(token)


def _failed(operation: Operation, exc: BaseException) -> None:
    # Never in the way of the user's exception (its str() may itself raise).
    try:
        operation.error = describe_error(exc)
    except Exception:
        recorder.note_failure()


def _stepping(operation: Operation, rows: Any) -> Any:
    """Run each step of a generator inside ``operation`` (between steps, the
    caller's code runs outside it)."""
    try:
        while True:
            token = recorder._operation.set(operation)
            try:
                row = next(rows)
            except StopIteration:
                return
            except BaseException as exc:
                _failed(operation, exc)
                raise
            finally:
                recorder._operation.reset(token)
                operation.end_ns = perf_counter_ns()
            yield row
    finally:
        rows.close()


async def _stepping_async(operation: Operation, rows: Any) -> AsyncIterator[Any]:
    """``_stepping`` for async iteration. The context variable is copied into the
    worker thread that runs each step's SQL (asgiref's sync_to_async)."""
    try:
        while True:
            token = recorder._operation.set(operation)
            try:
                row = await rows.__anext__()
            except StopAsyncIteration:
                return
            except BaseException as exc:
                _failed(operation, exc)
                raise
            finally:
                recorder._operation.reset(token)
                operation.end_ns = perf_counter_ns()
            yield row
    finally:
        await rows.aclose()


def _start(trace: Trace, trigger: str, parent: Operation | None, frame: Any) -> Operation:
    operation = Operation(-1, trigger, None, parent, perf_counter_ns())
    origin = recorder._origin.get()
    allowed = recorder.capture_allowed(trace)
    operation.capped = not allowed
    if origin is not None and parent is None:
        # An async call: the awaiting code's location, captured before the hop to
        # a worker thread, and the async method's name.
        operation.trigger = origin[0]
        operation.stack, operation.template = origin[1], origin[2]
    elif allowed:
        stack, operation.template = stacks.capture_shared(frame, trace._stacks)
        if stack is None and parent is not None:
            stack, operation.template = parent.stack, parent.template
        operation.stack = stack
    return operation


def _describe_queryset(operation: Operation, queryset: Any) -> None:
    # As _run() does it inline.
    operation.model = queryset.model
    operation.queryset_class = type(queryset)
    operation.lineage = queryset._tracer_lineage
    operation.prefetch = getattr(queryset, "_prefetch_related_lookups", ())


def _related_get_object(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def get_object(self: Any, instance: Any) -> Any:
        trace = (_current_trace() or active_trace()) if recorder.tracing else None
        if trace is None:
            return original(self, instance)
        parent = recorder._operation.get()
        if (
            parent is not None
            and parent.trigger == "related"
            and parent.model is (self.field.remote_field.model)
        ):
            return original(self, instance)  # ForwardOneToOneDescriptor calling super()
        return _related(trace, parent, self.field, original, (self, instance))

    return get_object


def _reverse_one_to_one_get(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def __get__(self: Any, instance: Any, cls: Any = None) -> Any:
        if instance is None:
            return original(self, instance, cls)
        trace = (_current_trace() or active_trace()) if recorder.tracing else None
        if trace is None:
            return original(self, instance, cls)
        if self.related.is_cached(instance):
            watch = trace._watch
            if watch is None or not watch.unread:
                return original(self, instance, cls)
            return _read(watch, self.related.cache_name, original, self, instance, cls)
        return _related(
            trace, recorder._operation.get(), self.related, original, (self, instance, cls)
        )

    return __get__


def _forward_get(original: Callable[..., Any]) -> Callable[..., Any]:
    """``ForwardManyToOneDescriptor.__get__`` (``book.author``), wrapped only while
    some trace watches reads of eager loads (see _reading)."""

    @functools.wraps(original)
    def __get__(self: Any, instance: Any, cls: Any = None) -> Any:
        trace = _current_trace()
        if trace is None:
            trace = active_trace() if recorder.tracing else None
            if trace is None:
                return original(self, instance, cls)
        watch = trace._watch
        if watch is None or not watch.unread or instance is None:
            return original(self, instance, cls)
        return _read(watch, self.field.cache_name, original, self, instance, cls)

    return __get__


def _read(
    watch: recorder.Watch, cache_name: str, original: Any, descriptor: Any, instance: Any, cls: Any
) -> Any:
    """A related descriptor's read of ``instance``'s relation ``cache_name``: if
    the instance is a watched evaluation's and the relation one it joined, that
    path was read; if the value is an object a watched prefetch (or join) loaded,
    that was. Reads made by the ORM itself (a prefetch walking the objects) don't
    count; templates' do."""
    try:
        if watch.pending:
            recorder.index_pending(watch)
        index = watch.index
        node = index.get(id(instance))
        if node is not None:
            paths = node.children.get(cache_name)
            if paths is not None:
                selected = node.watched.operation.selected
                # A path is marked with the paths above it: if it is, so are they.
                if selected and selected.get(paths[0]) is False and _by_user(_getframe(2)):
                    _mark(watch, selected, paths)
                return original(descriptor, instance, cls)
    except Exception:
        recorder.note_failure()
        return original(descriptor, instance, cls)
    value = original(descriptor, instance, cls)
    if value is not None:
        try:
            node = index.get(id(value))
            if node is not None:
                _read_value(watch, node, _getframe(2))
        except Exception:
            recorder.note_failure()
    return value


def _read_value(watch: recorder.Watch, node: recorder.Node, frame: Any) -> None:
    """A relation read returned an object a watched evaluation loaded (through
    another instance, or as a prefetch's object)."""
    watched = node.watched
    operation = watched.operation
    if node.paths is None:
        if watched.prefetch and operation.used is False and _by_user(frame):
            operation.used = True
            watch.unread -= 1
        return
    selected = operation.selected
    if selected and selected.get(node.paths[0]) is False and _by_user(frame):
        _mark(watch, selected, node.paths)


def shown(trace: Trace, instance: Any, names: tuple[str, ...]) -> None:
    """The tracer showed the user the related objects at ``names`` on ``instance``
    (``("book", "author")``: ``instance.book.author``), read from the instance's
    cache: count it as a read of those relations, as if user code had read them.
    The playground's table does this; reads by the tracer's own code through the
    descriptors are otherwise not counted (they are not the user's)."""
    watch = trace._watch
    if watch is None or watch.closed or not watch.unread:
        return
    if watch.pending:
        recorder.index_pending(watch)
    index = watch.index
    target = instance
    for name in names:
        node = index.get(id(target))
        if node is not None:
            paths = node.children.get(name)
            selected = node.watched.operation.selected
            if paths is not None and selected and selected.get(paths[0]) is False:
                _mark(watch, selected, paths)
        cache = target._state.__dict__.get("fields_cache")
        target = cache.get(name) if cache else None
        if target is None:
            return
        node = index.get(id(target))
        if node is None:
            continue
        # As _read_value: an object a watched prefetch (or another join) loaded.
        operation = node.watched.operation
        if node.paths is None:
            if node.watched.prefetch and operation.used is False:
                operation.used = True
                watch.unread -= 1
        elif operation.selected and operation.selected.get(node.paths[0]) is False:
            _mark(watch, operation.selected, node.paths)


def _mark(watch: recorder.Watch, selected: dict[str, bool | None], paths: tuple[str, ...]) -> None:
    """A path was read, and so were the paths above it."""
    for path in paths:
        if selected.get(path) is False:
            selected[path] = True
            watch.unread -= 1


def _by_user(frame: Any) -> bool:
    return not is_orm_internal(frame.f_code)


def _getstate(original: Callable[..., Any]) -> Callable[..., Any]:
    """``Model.__getstate__`` (pickling, copies): an instance or related object of a
    watched evaluation leaving as a copy (a cache, a deep copy) may be read where the
    tracer cannot see, so what its evaluation did not read yet can no longer be told.

    Wrapped for good, not only while traces watch like ``book.author``: setting an
    attribute of ``Model`` at each capture would invalidate the type caches of every
    model class, and this costs one context-variable read per pickled instance."""

    @functools.wraps(original)
    def __getstate__(self: Any) -> Any:
        trace = (_current_trace() or active_trace()) if recorder.tracing else None
        if trace is not None and trace._watch is not None:
            try:
                watch = trace._watch
                if watch.pending:
                    recorder.index_pending(watch)
                node = watch.index.get(id(self))
                if node is not None:
                    recorder.untell(watch, node.watched)
            except Exception:
                recorder.note_failure()
        return original(self)

    return __getstate__


# What is wrapped while traces watch reads: (owner, name, original, wrapper).
_reads_patches: list[tuple[Any, str, Any, Any]] = []
_reads_patched = False


def _reading(on: bool) -> None:
    """recorder.reads_hook: wrap ``ForwardManyToOneDescriptor.__get__`` while some
    trace watches reads, so that with none the ORM's own runs, unwrapped."""
    global _reads_patched
    if on == _reads_patched:
        return
    for owner, name, original, wrapper in _reads_patches:
        setattr(owner, name, wrapper if on else original)
    _reads_patched = on


def _related(
    trace: Trace, parent: Operation | None, field: Any, original: Any, args: tuple[Any, ...]
) -> Any:
    try:
        operation = _start(trace, "related", parent, _getframe(3))
        operation.model = field.related_model
        operation.detail = f"{field.model.__name__}.{field.name}"
        _loaded(trace, operation, args[1])
    except Exception:
        recorder.note_failure()
        return original(*args)
    return _inside(operation, original, args[0], args[1:], {})


def _prefetch_one_level(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def prefetch_one_level(instances: Any, prefetcher: Any, lookup: Any, level: int) -> Any:
        trace = (_current_trace() or active_trace()) if recorder.tracing else None
        # Without get_prefetch_querysets() Django warns about its caller's line.
        if trace is None or not hasattr(prefetcher, "get_prefetch_querysets"):
            return original(instances, prefetcher, lookup, level)
        parent = recorder._operation.get()
        try:
            operation = _start(trace, "prefetch", parent, _getframe(1))
            # The path up to this level: "books", then "books__tags".
            operation.detail = lookup.get_current_prefetch_to(level)
        except Exception:
            recorder.note_failure()
            return original(instances, prefetcher, lookup, level)
        result = _inside(operation, original, instances, (prefetcher, lookup, level), {})
        try:
            # A foreign key or one-to-one, cached on each instance (not a to_attr
            # list): its objects are read as the relation's value.
            if isinstance(prefetcher, _SINGLE) and not lookup.get_current_to_attr(level)[1]:
                objects = result[0]
                if objects and operation.used is None:
                    recorder.watch(trace, operation, objects, (), prefetch=True)
        except Exception:
            recorder.note_failure()
        return result

    return prefetch_one_level


_SINGLE = (ForwardManyToOneDescriptor, ReverseOneToOneDescriptor)


# select_related ----------------------------------------------------------------------


def _watch_selected(trace: Trace, queryset: Any, rows: list[Any]) -> None:
    """Watch which of an evaluation's select_related relations your code reads."""
    operation = recorder._operation.get()
    if operation is None or operation.selected is not None:
        return
    plan, paths = _plan(queryset.model, queryset.query)
    if plan:
        recorder.watch(trace, operation, rows, plan, paths)


def _plan(model: Any, query: Any) -> tuple[recorder.Plan, tuple[str, ...]]:
    """The relations a query's select_related joins, as the descriptors cache them,
    and their paths in order. Made once per model and select_related tree."""
    select_related = query.select_related
    if select_related is True:
        key: tuple[Any, ...] = (model, query.max_depth)
    else:
        key = (model, _frozen(select_related), *query._filtered_relations)
    known = _plans.get(key)
    if known is None:
        if select_related is True:
            plan = _every_plan(model, 1, query.max_depth, ())
        else:
            # A FilteredRelation is set as a plain attribute, read through no
            # descriptor.
            named = {
                name: below
                for name, below in select_related.items()
                if name not in query._filtered_relations
            }
            plan = _named_plan(model, named, ())
        paths: list[str] = []
        _paths(plan, paths)
        if len(_plans) >= 1000:
            _plans.clear()
        known = _plans[key] = (plan, tuple(paths))
    return known


def _frozen(tree: dict[str, Any]) -> tuple[Any, ...]:
    return tuple((name, _frozen(below) if below else ()) for name, below in tree.items())


def _paths(plan: recorder.Plan, into: list[str]) -> None:
    for _cache_name, paths, below in plan:
        into.append(paths[0])
        _paths(below, into)


def _named_plan(model: Any, tree: dict[str, Any], above: tuple[str, ...]) -> recorder.Plan:
    entries = []
    for name, below in tree.items():
        try:
            field = model._meta.get_field(name)
        except FieldDoesNotExist:
            continue
        if field.concrete and (field.many_to_one or field.one_to_one):
            if getattr(field.remote_field, "parent_link", False):
                continue  # always joined, never by select_related
        elif not (field.one_to_one and field.auto_created):
            # Only a reverse one-to-one is cached where a descriptor reads it (a
            # unique foreign key's reverse is a manager).
            continue
        path = f"{above[0]}__{name}" if above else name
        paths = (path, *above)
        entries.append((field.cache_name, paths, _named_plan(field.related_model, below, paths)))
    return tuple(entries)


def _every_plan(model: Any, depth: int, max_depth: int, above: tuple[str, ...]) -> recorder.Plan:
    """What ``select_related()`` without fields joins: every non-null foreign key
    and one-to-one, to ``max_depth`` levels (Django's get_related_selections)."""
    if depth > max_depth:
        return ()
    entries = []
    for field in model._meta.fields:
        remote = field.remote_field
        if remote is None or field.null or getattr(remote, "parent_link", False):
            continue
        path = f"{above[0]}__{field.name}" if above else field.name
        paths = (path, *above)
        entries.append(
            (
                field.cache_name,
                paths,
                _every_plan(remote.model, depth + 1, max_depth, paths),
            )
        )
    return tuple(entries)


_plans: dict[tuple[Any, ...], tuple[recorder.Plan, tuple[str, ...]]] = {}


# Async -------------------------------------------------------------------------------
#
# Async methods hand the work to a worker thread (asgiref's sync_to_async copies the
# context into it), whose stack does not show the awaiting code. So the awaiting
# code's location is captured here, on the caller's side: as an origin for the
# sync method's trigger to pick up (aget -> get), or as the operation itself for
# async iteration, which runs no sync trigger (__aiter__ calls _fetch_all()).


def _async(name: str, original: Callable[..., Any]) -> Callable[..., Any]:
    # A plain function returning the awaitable: the caller's frame is the one
    # calling (and, as a rule, awaiting) it.
    @functools.wraps(original)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        trace = (_current_trace() or active_trace()) if recorder.tracing else None
        if trace is None or recorder._origin.get() is not None:
            return original(self, *args, **kwargs)
        try:
            origin = _origin(trace, name, _getframe(1))
        except Exception:
            recorder.note_failure()
            return original(self, *args, **kwargs)
        return _awaiting(original(self, *args, **kwargs), origin)

    return wrapper


def _asave(original: Callable[..., Any]) -> Callable[..., Any]:
    wrapped = _async("asave", original)

    @functools.wraps(original)
    def asave(self: Any, *args: Any, **kwargs: Any) -> Any:
        if args:
            # Django 5.2 warns about positional args at the caller's line
            # (stacklevel); a coroutine of ours in between would take it.
            return original(self, *args, **kwargs)
        return wrapped(self, **kwargs)

    return asave


async def _awaiting(awaitable: Any, origin: tuple[str, Any, Any]) -> Any:
    token = recorder._origin.set(origin)
    try:
        return await awaitable
    finally:
        recorder._origin.reset(token)


def _origin(trace: Trace, name: str, frame: Any) -> tuple[str, Any, Any]:
    stack, template = (None, None)
    if recorder.capture_allowed(trace):
        stack, template = stacks.capture_shared(frame, trace._stacks)
    return name, stack, template


def _async_operation(trace: Trace, trigger: str, queryset: Any, frame: Any) -> Operation:
    operation = _start(trace, trigger, recorder._operation.get(), frame)
    _describe_queryset(operation, queryset)
    return operation


def _aiter(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def __aiter__(self: Any) -> Any:
        trace = (_current_trace() or active_trace()) if recorder.tracing else None
        if trace is None or self._result_cache is not None:
            return original(self)
        try:
            operation = _async_operation(trace, "async for", self, _getframe(1))
        except Exception:
            recorder.note_failure()
            return original(self)
        return _stepping_async(operation, original(self))

    return __aiter__


def _aiterator(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def aiterator(self: Any, *args: Any, **kwargs: Any) -> Any:
        trace = (_current_trace() or active_trace()) if recorder.tracing else None
        if trace is None:
            return original(self, *args, **kwargs)
        try:
            operation = _async_operation(trace, "aiterator", self, _getframe(1))
        except Exception:
            recorder.note_failure()
            return original(self, *args, **kwargs)
        return _stepping_async(operation, original(self, *args, **kwargs))

    return aiterator


# Hydration ---------------------------------------------------------------------------
#
# The iterables (ModelIterable, ValuesIterable, ...) run execute_sql() and build
# results from rows. Time spent in them after execute_sql() returned, net of
# fetching and converting, is hydration. Inside QuerySet._fetch_all() list() drains
# the iterable in one go, so one span is timed; elsewhere (iterator()) the caller's
# code runs between rows, so each step is.


def _iterable_iter(original: Callable[..., Any], instances: bool = False) -> Callable[..., Any]:
    @functools.wraps(original)
    def __iter__(self: Any) -> Any:
        trace = (_current_trace() or active_trace()) if recorder.tracing else None
        if trace is None:
            return original(self)
        first = len(trace.statements)
        start = perf_counter_ns()
        if _getframe(1).f_code is _FETCH_ALL:
            # _fetch_all() drains the iterable at once (list()): so do we, one span.
            try:
                rows = list(original(self))
            finally:
                _hydrated(trace, first, type(self), start, perf_counter_ns() - start)
            if instances and rows:
                # _hold()'s test, inline: most evaluations hold nothing.
                operation = _operation_get()
                if operation is not None and (len(rows) > 1 or operation.trigger == "related"):
                    _hold(trace, operation, rows)
                if self.queryset.query.select_related:
                    try:
                        _watch_selected(trace, self.queryset, rows)
                    except Exception:
                        recorder.note_failure()
            return iter(rows)
        # Not every __iter__ is a generator: ValuesListIterable's runs the SQL now.
        return _hydrating_steps(iter(original(self)), trace, type(self), first, start)

    return __iter__


def _hold(trace: Trace, operation: Operation, instances: list[Any]) -> None:
    """Let lazy loads on these instances find the evaluation that loaded them (N+1
    detection): a multi-row evaluation, or a lazy load (``book.author``), through
    which loads on its instance lead back to the books' evaluation (the caller
    tells which)."""
    try:
        recorder.hold(trace, operation, instances)
    except Exception:
        recorder.note_failure()


def _hydrating_steps(rows: Any, trace: Trace, iterable_class: type, first: int, begin: int) -> Any:
    # The time of the __iter__() call itself counts (it may have run the SQL).
    busy = perf_counter_ns() - begin
    try:
        while True:
            start = perf_counter_ns()
            try:
                row = next(rows)
            except StopIteration:
                return
            finally:
                busy += perf_counter_ns() - start
            yield row
    finally:
        _hydrated(trace, first, iterable_class, begin, busy)


def _hydrated(trace: Trace, first: int, iterable_class: type, begin: int, busy: int) -> None:
    try:
        statements = trace.statements
        for index in range(first, len(statements)):
            statement = statements[index]
            compile = statement.compile
            if compile is not None and statement.start_ns >= begin:
                break
        else:
            return
        compile.iterable_class = iterable_class
        statement = compile.statement or statement
        if statement.duration_ns is None:
            return
        # Everything in the iterable after the statement returned is fetching,
        # converting or hydrating.
        executed = statement.start_ns + statement.duration_ns
        after = busy - (executed - begin) - statement.fetch_ns - (compile.convert_ns or 0)
        compile.hydrate_ns = max(after, 0)
    except Exception:
        recorder.note_failure()


# Installation ------------------------------------------------------------------------

_DEFERRED_GET = DeferredAttribute.__get__.__code__
_FOR_NODE_RENDER = ForNode.render.__code__
_FETCH_ALL = QuerySet._fetch_all.__code__


def install() -> None:
    """Instrument the ORM's classes (once per process; later calls do nothing)."""
    global _installed, _MANAGER_METHOD
    if _installed:
        return
    with _install_lock:
        if _installed:
            return
        _MANAGER_METHOD = _manager_method_code()
        for owner in (QuerySet, RawQuerySet):
            _patched.append((owner, LINEAGE, _ABSENT))
            setattr(owner, LINEAGE, None)
        for name in CHAIN_METHODS:
            _patch(QuerySet, name, _chain(name, QuerySet.__dict__[name]))
        _patch(QuerySet, "__getitem__", _getitem(QuerySet.__dict__["__getitem__"]))
        for name, trigger in TRIGGERS.items():
            _patch(QuerySet, name, _trigger(trigger, name, QuerySet.__dict__[name]))
        for name, trigger in RAW_TRIGGERS.items():
            _patch(RawQuerySet, name, _trigger(trigger, name, RawQuerySet.__dict__[name]))
        for name in list(QuerySet.__dict__):
            if name.startswith("a") and name[1:] in TRIGGERS and name != "aiterator":
                _patch(QuerySet, name, _async(name, QuerySet.__dict__[name]))
        _patch(QuerySet, "__aiter__", _aiter(QuerySet.__dict__["__aiter__"]))
        _patch(RawQuerySet, "__aiter__", _aiter(RawQuerySet.__dict__["__aiter__"]))
        _patch(QuerySet, "aiterator", _aiterator(QuerySet.__dict__["aiterator"]))
        _patch(BaseManager, "get_queryset", _get_queryset(BaseManager.__dict__["get_queryset"]))
        for name, trigger in MODEL_TRIGGERS.items():
            _patch(Model, name, _model_trigger(trigger, Model.__dict__[name]))
        for name in ASYNC_MODEL_METHODS:
            _patch(Model, name, _async(name, Model.__dict__[name]))
        _patch(Model, "asave", _asave(Model.__dict__["asave"]))
        _patch(
            ForwardManyToOneDescriptor,
            "get_object",
            _related_get_object(ForwardManyToOneDescriptor.__dict__["get_object"]),
        )
        _patch(
            ReverseOneToOneDescriptor,
            "__get__",
            _reverse_one_to_one_get(ReverseOneToOneDescriptor.__dict__["__get__"]),
        )
        from django.db.models import query

        for iterable in (
            query.ModelIterable,
            query.ValuesIterable,
            query.ValuesListIterable,
            query.NamedValuesListIterable,
            query.FlatValuesListIterable,
        ):
            original = iterable.__dict__["__iter__"]
            instances = iterable is query.ModelIterable
            _patch(iterable, "__iter__", _iterable_iter(original, instances))
        _patch(query, "prefetch_one_level", _prefetch_one_level(query.prefetch_one_level))
        _patch(Model, "__getstate__", _getstate(Model.__dict__["__getstate__"]))
        descriptor_get = ForwardManyToOneDescriptor.__dict__["__get__"]
        _reads_patches[:] = [
            (ForwardManyToOneDescriptor, "__get__", descriptor_get, _forward_get(descriptor_get)),
        ]
        with recorder._watches_lock:
            recorder.reads_hook = _reading
            if recorder._watches:
                _reading(True)
        _installed = True


def uninstall() -> None:
    """Restore the ORM's own methods (for benchmarks and tests: traced connections
    then record the backend stages only, until ``install()`` runs again)."""
    global _installed
    with _install_lock:
        with recorder._watches_lock:
            recorder.reads_hook = None
            _reading(False)
            _reads_patches.clear()
        while _patched:
            owner, name, original = _patched.pop()
            if original is _ABSENT:
                delattr(owner, name)
            else:
                setattr(owner, name, original)
        _installed = False


# (owner, attribute, original) of every patch, in order; _ABSENT: added by install().
_patched: list[tuple[Any, str, Any]] = []
_ABSENT = object()


def _patch(owner: Any, name: str, wrapper: Callable[..., Any]) -> None:
    _patched.append((owner, name, owner.__dict__[name]))
    setattr(owner, name, wrapper)
