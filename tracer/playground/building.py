"""Building the QuerySet from a checked syntax tree: names resolved among the
installed models and the allow-list (tracer.playground.allowed), chained methods
called, literal values made, and everything else refused with the part at fault."""

from __future__ import annotations

import ast
from collections.abc import Callable
from time import perf_counter_ns
from typing import Any

from django.apps import apps
from django.core.exceptions import FieldDoesNotExist
from django.db.models import Model, Prefetch
from django.db.models.expressions import Combinable
from django.db.models.query import QuerySet
from django.db.models.query_utils import Q

from tracer.guard import QueryAttempted
from tracer.playground import allowed
from tracer.playground.expression import Expression, MethodCall, PlaygroundError
from tracer.playground.syntax import METHODS_OF, OPERATORS, Positions
from tracer.sqldisplay import MASK, is_secret

__all__ = ["MAX_CALLS", "Builder", "Names"]

#: Most chained calls in one QuerySet (nested ones included).
MAX_CALLS = 40


# Names -------------------------------------------------------------------------------


class Names:
    """Installed models by name (bare, or ``app_label.Model``), and their managers."""

    def __init__(self, app: str | None) -> None:
        self.models = list(apps.get_models())
        self.labels = {model._meta.app_label for model in self.models}
        self.by_name: dict[str, list[type[Model]]] = {}
        for model in self.models:
            self.by_name.setdefault(model.__name__, []).append(model)
        self.app = app

    def model(self, name: str) -> type[Model] | None:
        """The model a bare name refers to: ``app``'s first, else the only one of that
        name (None when there are several: see ``ambiguous``)."""
        found = self.by_name.get(name, [])
        if self.app is not None:
            own = [model for model in found if model._meta.app_label == self.app]
            if own:
                return own[0]
        return found[0] if len(found) == 1 else None

    def qualified(self, label: str, name: str) -> type[Model] | None:
        for model in self.by_name.get(name, []):
            if model._meta.app_label == label:
                return model
        return None

    def ambiguous(self, name: str) -> list[str]:
        found = self.by_name.get(name, [])
        if len(found) < 2 or self.model(name) is not None:
            return []
        return sorted(model._meta.label for model in found)

    def examples(self) -> str:
        names = sorted({model.__name__ for model in self.models})[:6]
        return ", ".join(names)


# Building ----------------------------------------------------------------------------

_Node = Any  # an ast node


class Builder:
    """Interprets one checked syntax tree; every error names the part at fault."""

    def __init__(self, text: str, positions: Positions, names: Names) -> None:
        self.text = text
        self.positions = positions
        self.names = names
        self.calls = 0

    # Errors

    def error(self, message: str, node: _Node) -> PlaygroundError:
        return PlaygroundError(message, self.text, *self.positions.span(node))

    def error_at(self, message: str, start: int, end: int) -> PlaygroundError:
        return PlaygroundError(message, self.text, start, end)

    # The chain

    def expression(self, node: _Node) -> Expression:
        return self.chain(node, nested=False)

    def unroll(self, node: _Node) -> tuple[_Node, list[_Node]]:
        """The chain's root (``Book.objects``) and its calls, first call first."""
        calls: list[_Node] = []
        while True:
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                calls.append(node)
                node = node.func.value
            elif isinstance(node, ast.Subscript):
                calls.append(node)
                node = node.value
            elif (
                isinstance(node, ast.BinOp)
                and type(node.op) in METHODS_OF
                and self.is_queryset(node.left)
            ):
                calls.append(node)
                node = node.left
            else:
                break
        calls.reverse()
        return node, calls

    def is_queryset(self, node: _Node) -> bool:
        """Whether the node is a chain starting from a model's manager."""
        while True:
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                node = node.func.value
            elif isinstance(node, ast.Subscript):
                node = node.value
            elif isinstance(node, ast.BinOp) and type(node.op) in METHODS_OF:
                node = node.left
            else:
                break
        return self.manager_of(node) is not None

    def model_of(self, node: _Node) -> type[Model] | None:
        """The model a node names: ``Book`` or ``demo_app.Book``."""
        if isinstance(node, ast.Name):
            if node.id in allowed.CALLABLES:
                return None
            return self.names.model(node.id)
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in self.names.labels
        ):
            return self.names.qualified(node.value.id, node.attr)
        return None

    def manager_of(self, node: _Node) -> tuple[type[Model], str, Any] | None:
        if not isinstance(node, ast.Attribute):
            return None
        model = self.model_of(node.value)
        if model is None:
            return None
        manager = model._meta.managers_map.get(node.attr)
        if manager is None:
            return None
        return model, node.attr, manager

    def root_error(self, node: _Node) -> PlaygroundError:
        """Why a chain's root is not a model's manager."""
        model = self.model_of(node)
        if model is not None:
            managers = ", ".join(sorted(model._meta.managers_map))
            return self.error(
                f"{model.__name__} is a model: start from one of its managers "
                f"({managers}), e.g. {model.__name__}.{model._meta.default_manager.name}.",
                node,
            )
        if isinstance(node, ast.Attribute):
            label_error = self.label_error(node)
            if label_error is not None:
                return label_error
            owner = self.model_of(node.value)
            if owner is not None:
                managers = ", ".join(sorted(owner._meta.managers_map))
                return self.attribute_error(
                    f"{node.attr} is not a manager of {owner._meta.label} "
                    f"(its managers: {managers}).",
                    node,
                )
            if self.manager_of(node.value) is not None or self.is_queryset(node.value):
                return self.attribute_error(
                    f"{node.attr} must be called: .{node.attr}(...).", node
                )
            if isinstance(node.value, ast.Name) and node.value.id not in allowed.CALLABLES:
                return self.name_error(node.value)
        if isinstance(node, ast.Name):
            return self.name_error(node)
        if isinstance(node, ast.Call) and self.model_of(node.func) is not None:
            model = self.model_of(node.func)
            assert model is not None
            return self.error(
                f"This makes a {model.__name__} instance, not a QuerySet: start from one "
                f"of its managers, e.g. {model.__name__}.{model._meta.default_manager.name}.",
                node,
            )
        return self.error(
            "The expression must start from a model's manager, e.g. Book.objects.", node
        )

    def label_error(self, node: ast.Attribute) -> PlaygroundError | None:
        """``Book.objects`` with an ambiguous ``Book``, ``demo_app.Nope``, ``demo_app.x``."""
        value = node.value
        if isinstance(value, ast.Name) and value.id not in allowed.CALLABLES:
            if self.names.ambiguous(value.id) or (
                value.id in self.names.labels and self.names.model(value.id) is None
            ):
                if value.id in self.names.labels:
                    if self.names.qualified(value.id, node.attr) is None:
                        return self.attribute_error(f"{value.id} has no model {node.attr}.", node)
                    return None
                return self.name_error(value)
        if isinstance(value, ast.Attribute):
            return self.label_error(value)
        return None

    def attribute_error(self, message: str, node: ast.Attribute) -> PlaygroundError:
        return self.error_at(message, *self.positions.name_span(node))

    def name_error(self, node: ast.Name) -> PlaygroundError:
        choices = self.names.ambiguous(node.id)
        if choices:
            return self.error(f"{node.id} is ambiguous: write {' or '.join(choices)}.", node)
        if node.id in self.names.labels:
            return self.error(
                f"{node.id} is an app label: name one of its models, e.g. {node.id}.Model.",
                node,
            )
        return self.error(
            f"{node.id} is not allowed: names must be installed models "
            f"({self.names.examples()}, ...) or Q, F, Value, the aggregates, "
            "Prefetch and the database functions.",
            node,
        )

    def chain(self, node: _Node, *, nested: bool) -> Expression:
        root, nodes = self.unroll(node)
        found = self.manager_of(root)
        if found is None:
            if nodes and isinstance(nodes[0], ast.Call) and self.model_of(nodes[0].func):
                raise self.root_error(nodes[0])  # demo_app.Book(...)
            raise self.root_error(root)
        model, manager_name, manager = found
        root_start, root_end = self.positions.span(root)
        try:
            queryset = manager.get_queryset()
        except Exception as exc:
            message = f"{manager_name}.get_queryset() failed: {_problem(exc)}"
            raise self.error(message, root) from None
        base = queryset
        calls: list[MethodCall] = []
        terminal: MethodCall | None = None
        for call_node in nodes:
            if terminal is not None:
                start, end = self.call_span(call_node)
                raise self.error_at(
                    f"Nothing can follow {terminal.method}(): it does not return a QuerySet.",
                    start,
                    end,
                )
            self.calls += 1
            if self.calls > MAX_CALLS:
                raise self.error_at(
                    f"More than {MAX_CALLS} calls; make the expression smaller.",
                    *self.call_span(call_node),
                )
            call = self.call(call_node, queryset, model, nested=nested)
            if call.kind == "chain":
                calls.append(call)
                queryset = call.queryset
            else:
                terminal = call
        return Expression(
            text=self.text,
            model=model,
            manager_name=manager_name,
            manager=manager,
            root_code=self.text[root_start:root_end],
            root_start=root_start,
            root_end=root_end,
            base=base,
            calls=tuple(calls),
            terminal=terminal,
        )

    def call_span(self, node: _Node) -> tuple[int, int]:
        """Offsets of one call: from its method name (or bracket, or operator) to its end."""
        _, end = self.positions.span(node)
        if isinstance(node, ast.Call):
            func = node.func
            assert isinstance(func, ast.Attribute)  # unroll() takes only method calls
            start, _ = self.positions.name_span(func)
            before = self.text[:start].rstrip()
            if before.endswith("."):
                start = len(before) - 1
            return start, end
        if isinstance(node, ast.Subscript):
            _, value_end = self.positions.span(node.value)
            return self.positions.token("[", value_end, end), end
        _, left_end = self.positions.span(node.left)
        return self.positions.token(OPERATORS[type(node.op)], left_end, end), end

    def call(self, node: _Node, queryset: Any, model: type[Model], *, nested: bool) -> MethodCall:
        start, end = self.call_span(node)
        if isinstance(node, ast.Subscript):
            return self.subscript(node, queryset, start, end, nested=nested)
        if isinstance(node, ast.BinOp):
            other = self.chain(node.right, nested=True)
            operator = OPERATORS[type(node.op)]
            method = METHODS_OF[type(node.op)]
            source = self.positions.source_of(node.right)
            result, elapsed = self.apply(
                lambda: getattr(queryset, method)(other.queryset), method, start, end
            )
            return MethodCall(
                method=method,
                kind="chain",
                code=f" {operator} {source}",
                start=start,
                end=end,
                args=(other.queryset,),
                arg_sources=(source,),
                queryset=result,
                duration_ns=elapsed,
            )
        method = node.func.attr
        kind = self.kind(method, start, self.positions.name_span(node.func)[1])
        if kind != "chain" and nested:
            raise self.error_at(
                f"{method}() runs a query: only the last call of the expression may.",
                start,
                end,
            )
        args = tuple(
            self.value(arg, queryset_ok=self.positional_querysets(method)) for arg in node.args
        )
        kwargs = {
            _arg(keyword): self.value(keyword.value, queryset_ok=self.keyword_querysets(method))
            for keyword in node.keywords
        }
        self.check_call(method, args, kwargs, model, node)
        arg_sources = tuple(self.positions.source_of(arg) for arg in node.args)
        kwarg_sources = tuple(
            (_arg(keyword), self.positions.source_of(keyword.value)) for keyword in node.keywords
        )
        code = (
            "."
            + method
            + "("
            + ", ".join(
                [
                    *arg_sources,
                    *(f"{name}={_masked(name, source)}" for name, source in kwarg_sources),
                ]
            )
            + ")"
        )
        if kind != "chain":
            return MethodCall(
                method, kind, code, start, end, args, kwargs, arg_sources, kwarg_sources
            )
        result, elapsed = self.apply(
            lambda: getattr(queryset, method)(*args, **kwargs), method, start, end
        )
        return MethodCall(
            method,
            kind,
            code,
            start,
            end,
            args,
            kwargs,
            arg_sources,
            kwarg_sources,
            result,
            elapsed,
        )

    def kind(self, method: str, start: int, end: int) -> str:
        """The method's group; refused (pointing at ``start``-``end``, the method's
        name) if it is in none."""
        if method in allowed.CHAIN:
            return "chain"
        if method in allowed.EVALUATE:
            return "evaluate"
        if method in allowed.WRITE:
            return "write"
        reason = allowed.REFUSED.get(method)
        if (
            reason is None
            and method.startswith("a")
            and method[1:] in (allowed.CHAIN | allowed.EVALUATE | allowed.WRITE | {"iterator"})
        ):
            reason = f"{method}() is async: use {method[1:]}()"
        if reason is None:
            reason = (
                f"{method}() is not a QuerySet method the playground allows (custom "
                "manager and QuerySet methods run your code)"
            )
        raise self.error_at(f"{reason}.", start, end)

    @staticmethod
    def positional_querysets(method: str) -> bool:
        return method in ("union", "intersection", "difference")

    @staticmethod
    def keyword_querysets(method: str) -> bool:
        # Values that become model instances' field values are prepared as plain
        # values (str(queryset) would run it): no QuerySets there.
        return method not in _INSTANCE_METHODS

    def subscript(
        self, node: ast.Subscript, queryset: Any, start: int, end: int, *, nested: bool
    ) -> MethodCall:
        key_node = node.slice
        if isinstance(key_node, ast.Slice):
            bounds = [self.index(part) for part in (key_node.lower, key_node.upper)]
            key: Any = slice(*bounds)
            source = self.positions.source_of(key_node) or ":"
            code = f"[{source}]"
            result, elapsed = self.apply(lambda: queryset[key], "__getitem__", start, end)
            return MethodCall(
                "__getitem__",
                "chain",
                code,
                start,
                end,
                (key,),
                {},
                (source,),
                (),
                result,
                elapsed,
            )
        index = self.index(key_node)
        if index is None:
            raise self.error("A QuerySet index must be an integer.", key_node)
        if nested:
            raise self.error_at(
                "An index ([0]) runs a query: only the last call of the expression may.",
                start,
                end,
            )
        source = self.positions.source_of(key_node)
        return MethodCall(
            "__getitem__", "evaluate", f"[{source}]", start, end, (index,), {}, (source,)
        )

    def index(self, node: _Node | None) -> int | None:
        if node is None:
            return None
        value = self.value(node, queryset_ok=False, plain=True)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error("Slice bounds and indexes must be integers.", node)
        if value < 0:
            raise self.error("Negative indexing is not supported by QuerySets.", node)
        return value

    def apply(
        self, build: Callable[[], Any], method: str, start: int, end: int
    ) -> tuple[Any, int]:
        begin = perf_counter_ns()
        try:
            result = build()
        except QueryAttempted as exc:
            raise self.error_at(
                f"Building {method}() would run a query ({exc.sql}); refused.", start, end
            ) from None
        except Exception as exc:
            name = _AS_WRITTEN.get(method, f"{method}()")
            raise self.error_at(f"{name}: {_problem(exc)}", start, end) from None
        return result, perf_counter_ns() - begin

    # Checks Django would not make before running user code.

    def check_call(
        self,
        method: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        model: type[Model],
        node: ast.Call,
    ) -> None:
        if method == "prefetch_related":
            for arg, arg_node in zip(args, node.args, strict=True):
                self.check_prefetch(model, arg, arg_node)
        if method in ("create", "get_or_create", "update_or_create"):
            for keyword in node.keywords:
                name = _arg(keyword)
                if method != "create" and name in ("defaults", "create_defaults"):
                    value = kwargs[name]
                    if value is not None and not isinstance(value, dict):
                        raise self.error(f"{name} must be a dict.", keyword.value)
                    for key in value or {}:
                        self.check_field(model, key, keyword.value)
                elif method == "create" or "__" not in name:
                    self.check_field(model, name, keyword)

    def check_field(self, model: type[Model], name: Any, node: _Node) -> None:
        """A name a model instance is given a value for: a concrete field (name or
        attname) or pk; not a property, whose setter is your code."""
        if not isinstance(name, str) or not _is_field(model, name):
            raise self.error(f"{name!r} is not a field of {model._meta.label}.", node)

    def check_prefetch(self, model: type[Model], lookup: Any, node: _Node) -> None:
        """A prefetch lookup must follow relations: Django reads each of its names
        as an attribute of the instances (a property would run your code)."""
        if isinstance(lookup, Prefetch):
            path = lookup.prefetch_through
            to_attr = lookup.to_attr
            if to_attr is not None and (
                not isinstance(to_attr, str) or to_attr.startswith("_") or "__" in to_attr
            ):
                raise self.error(f"to_attr {to_attr!r} is not allowed.", node)
        elif isinstance(lookup, str):
            path = lookup
        else:
            raise self.error("prefetch_related() takes lookups (strings) or Prefetch().", node)
        current: Any = model
        for part in path.split("__"):
            relation = _relation(current, part)
            if relation is None:
                raise self.error(
                    f"{path!r}: {part!r} is not a relation of {current._meta.label}; "
                    "prefetch lookups must follow relations.",
                    node,
                )
            current = relation

    # Values

    def value(self, node: _Node, *, queryset_ok: bool = False, plain: bool = False) -> Any:
        """A literal, a container of values, an allowed call, or (where allowed) a
        nested QuerySet. ``plain``: only literals, containers of them and plain
        values (dates, Decimal)."""
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
            items = [self.value(item, plain=plain) for item in node.elts]
            if isinstance(node, ast.List):
                return items
            if isinstance(node, ast.Tuple):
                return tuple(items)
            try:
                return set(items)
            except TypeError as exc:
                raise self.error(f"Not a valid set: {exc}.", node) from None
        if isinstance(node, ast.Dict):
            result = {}
            for key_node, value_node in zip(node.keys, node.values, strict=True):
                if key_node is None:
                    raise self.error("** unpacking is not allowed.", value_node)
                key = self.value(key_node, plain=True)
                try:
                    result[key] = self.value(value_node, plain=plain)
                except TypeError as exc:
                    raise self.error(f"Not a valid dict key: {exc}.", key_node) from None
            return result
        if isinstance(node, ast.UnaryOp):
            return self.unary(node, plain=plain)
        if isinstance(node, ast.BinOp):
            return self.binary(node, queryset_ok=queryset_ok, plain=plain)
        if isinstance(node, ast.Call):
            return self.call_value(node, queryset_ok=queryset_ok, plain=plain)
        if isinstance(node, ast.Name):
            if node.id in allowed.CALLABLES or self.model_of(node) is not None:
                raise self.error(f"{node.id} must be called: {node.id}(...).", node)
            raise self.name_error(node)
        if isinstance(node, ast.Attribute):
            if self.manager_of(node) is not None:
                return self.queryset_value(node, queryset_ok=queryset_ok and not plain)
            raise self.value_attribute_error(node)
        if isinstance(node, ast.Subscript):
            if self.is_queryset(node.value):
                return self.queryset_value(node, queryset_ok=queryset_ok and not plain)
            raise self.error("Indexing a value is not allowed; write the value.", node)
        raise self.error(f"{type(node).__name__} is not allowed here.", node)

    def value_attribute_error(self, node: ast.Attribute) -> PlaygroundError:
        label_error = self.label_error(node)
        if label_error is not None:
            return label_error
        if self.model_of(node.value) is not None:
            return self.root_error(node)
        if isinstance(node.value, ast.Name) and node.value.id not in allowed.CALLABLES:
            return self.name_error(node.value)
        return self.attribute_error(
            f"{node.attr}: attributes of values are not allowed (only model managers and "
            "QuerySet methods, and .asc()/.desc() of expressions).",
            node,
        )

    def queryset_value(self, node: _Node, *, queryset_ok: bool) -> Any:
        if not queryset_ok:
            raise self.error(
                "A QuerySet is not allowed here: only as a filter value, in "
                "Subquery(), Exists(), Prefetch() or union().",
                node,
            )
        return self.chain(node, nested=True).queryset

    def unary(self, node: ast.UnaryOp, *, plain: bool) -> Any:
        operand = self.value(node.operand, plain=plain)
        if isinstance(node.op, (ast.USub, ast.UAdd)):
            number = not isinstance(operand, bool) and isinstance(operand, (int, float))
            if not number and (plain or not isinstance(operand, Combinable)):
                raise self.error("Only numbers and expressions can be negated.", node)
            if isinstance(node.op, ast.UAdd):
                return operand
            try:
                return -operand
            except Exception as exc:
                raise self.error(f"-: {_problem(exc)}", node) from None
        # ~: negate a Q object or a conditional expression.
        if not isinstance(operand, (Q, Combinable)) or plain:
            raise self.error("~ negates Q objects and conditions only.", node)
        try:
            return ~operand
        except Exception as exc:
            raise self.error(f"~: {_problem(exc)}", node) from None

    def binary(self, node: ast.BinOp, *, queryset_ok: bool, plain: bool) -> Any:
        if type(node.op) in METHODS_OF and self.is_queryset(node.left):
            return self.queryset_value(node, queryset_ok=queryset_ok and not plain)
        left = self.value(node.left, plain=plain)
        right = self.value(node.right, plain=plain)
        operator = OPERATORS[type(node.op)]
        expressions = (Q, Combinable)
        if plain or not (isinstance(left, expressions) or isinstance(right, expressions)):
            raise self.error(
                f"{operator} is only allowed between Q objects or expressions (F, Value, "
                "aggregates...); arithmetic on plain values is not evaluated: write the "
                "result.",
                node,
            )
        if isinstance(left, QuerySet) or isinstance(right, QuerySet):
            raise self.error(f"{operator} does not combine a QuerySet with a value.", node)
        function: Callable[[Any, Any], Any] = _BINARY[type(node.op)]
        try:
            return function(left, right)
        except Exception as exc:
            raise self.error(f"{operator}: {_problem(exc)}", node) from None

    def call_value(self, node: ast.Call, *, queryset_ok: bool, plain: bool) -> Any:
        func = node.func
        if isinstance(func, ast.Attribute):
            if self.is_queryset(node):
                return self.queryset_value(node, queryset_ok=queryset_ok and not plain)
            model = self.model_of(func)
            if model is not None:
                return self.instance(model, node, plain=plain)
            if func.attr in allowed.EXPRESSION_METHODS and not self.model_of(func.value):
                target = self.value(func.value, plain=plain)
                if plain or not isinstance(target, Combinable):
                    raise self.attribute_error(
                        f".{func.attr}() orders expressions (F, aggregates...) only.", func
                    )
                args = [self.value(arg) for arg in node.args]
                kwargs = {_arg(kw): self.value(kw.value) for kw in node.keywords}
                try:
                    return getattr(target, func.attr)(*args, **kwargs)
                except Exception as exc:
                    raise self.error(f".{func.attr}(): {_problem(exc)}", node) from None
            raise self.value_attribute_error(func)
        if not isinstance(func, ast.Name):
            raise self.error("Only named functions can be called (Q, F, Count...).", func)
        name = func.id
        if name in allowed.CALLABLES:
            return self.allowed_call(name, node, plain=plain)
        model = self.model_of(func)
        if model is not None:
            return self.instance(model, node, plain=plain)
        raise self.name_error(func)

    def allowed_call(self, name: str, node: ast.Call, *, plain: bool) -> Any:
        function = allowed.CALLABLES[name]
        literal = name in allowed.PLAIN_VALUES
        if plain and not literal:
            raise self.error(f"{name}() is not allowed here: write a plain value.", node)
        takes_querysets = name in allowed.TAKES_QUERYSETS
        args = [self.value(arg, queryset_ok=takes_querysets, plain=literal) for arg in node.args]
        kwargs = {
            _arg(keyword): self.value(
                keyword.value,
                queryset_ok=takes_querysets or name in ("Q", "When", "FilteredRelation"),
                plain=literal and keyword.arg != "output_field",
            )
            for keyword in node.keywords
        }
        try:
            return function(*args, **kwargs)
        except Exception as exc:
            raise self.error(f"{name}(): {_problem(exc)}", node) from None

    def instance(self, model: type[Model], node: ast.Call, *, plain: bool) -> Model:
        """``Book(title="x", price=10)``: an unsaved instance (for bulk_create,
        bulk_update, contains or a filter value), given concrete fields only."""
        if plain:
            raise self.error("A model instance is not allowed here.", node)
        if node.args:
            raise self.error(
                f"{model.__name__}() takes keyword arguments only (field=value).", node.args[0]
            )
        kwargs = {}
        for keyword in node.keywords:
            self.check_field(model, keyword.arg, keyword)
            kwargs[_arg(keyword)] = self.value(keyword.value)
        try:
            return model(**kwargs)
        except Exception as exc:
            raise self.error(f"{model.__name__}(): {_problem(exc)}", node) from None


#: Methods the text writes as an operator or brackets: named so in errors.
_AS_WRITTEN = {
    "__getitem__": "[...]",
    **{method: OPERATORS[op] for op, method in METHODS_OF.items()},
}


def _arg(keyword: ast.keyword) -> str:
    # check_syntax() refused ** (a keyword without a name).
    assert keyword.arg is not None
    return keyword.arg


def _masked(name: str, source: str) -> str:
    """A keyword argument's value as code, masked for a secret-looking name (as the
    tracer's lineage code does: ``password='********'``)."""
    try:
        secret = is_secret(name)
    except Exception:  # an invalid TRACER setting: mask rather than show
        secret = True
    return repr(MASK) if secret else source


_INSTANCE_METHODS = frozenset(
    {"create", "get_or_create", "update_or_create", "bulk_create", "bulk_update", "contains"}
)


def _is_field(model: type[Model], name: str) -> bool:
    if name == "pk":
        return True
    for field_ in model._meta.concrete_fields:
        if name in (field_.name, field_.attname):
            return True
    return False


def _relation(model: type[Model], name: str) -> type[Model] | None:
    """The model a relation of ``model`` named ``name`` leads to, or None."""
    try:
        found = model._meta.get_field(name)
    except FieldDoesNotExist:
        # Reverse relations are known by their accessor name too (book_set).
        for related in model._meta.related_objects:
            if related.get_accessor_name() == name:
                return related.related_model
        return None
    if not found.is_relation or found.related_model is None:
        return None
    related_model = found.related_model
    return related_model if isinstance(related_model, type) else None


_BINARY: dict[type, Callable[[Any, Any], Any]] = {
    ast.BitOr: lambda a, b: a | b,
    ast.BitAnd: lambda a, b: a & b,
    ast.BitXor: lambda a, b: a ^ b,
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b,
    ast.Mod: lambda a, b: a % b,
    ast.Pow: lambda a, b: a**b,
}


def _problem(exc: BaseException) -> str:
    message = str(exc).strip()
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__
