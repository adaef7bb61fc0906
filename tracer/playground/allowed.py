"""What a playground expression may name and call: everything else is refused.

A QuerySet method is in exactly one of three groups: ``CHAIN`` methods return a new
QuerySet and are called while the expression is built (no query runs); ``EVALUATE``
methods run a query and may only end the expression (they run only when asked to);
``WRITE`` methods change data and are only ever compiled. ``REFUSED`` says why some
well-known methods are not allowed at all.
"""

from __future__ import annotations

import datetime
import decimal
import uuid
from typing import Any

from django.db import models
from django.db.models import aggregates, functions

CHAIN = frozenset(
    {
        "all",
        "alias",
        "annotate",
        "dates",
        "datetimes",
        "defer",
        "difference",
        "distinct",
        "exclude",
        "filter",
        "intersection",
        "none",
        "only",
        "order_by",
        "prefetch_related",
        "reverse",
        "select_for_update",
        "select_related",
        "union",
        "values",
        "values_list",
    }
)

EVALUATE = frozenset(
    {
        "aggregate",
        "contains",
        "count",
        "earliest",
        "exists",
        "first",
        "get",
        "in_bulk",
        "last",
        "latest",
    }
)

WRITE = frozenset(
    {
        "bulk_create",
        "bulk_update",
        "create",
        "delete",
        "get_or_create",
        "update",
        "update_or_create",
    }
)

REFUSED = {
    "raw": "raw() runs SQL text",
    "extra": "extra() writes SQL text into the query",
    "using": (
        "using() would pick another database: choose the database outside the "
        "expression (tracequery --database)"
    ),
    "iterator": "iterator() is what running the expression does",
    "explain": "explain() runs EXPLAIN; running the expression shows the plan",
    "complex_filter": "complex_filter() is not offered: use filter() with Q objects",
    "as_manager": "as_manager() does not build a query",
}

#: Methods of expressions (``F("price").desc()``) that may be called.
EXPRESSION_METHODS = frozenset({"asc", "desc"})

_AGGREGATES = ("Avg", "Count", "Max", "Min", "StdDev", "Sum", "Variance")

# Database functions that compute a value from their arguments. Left out: Collate
# (a collation name written into the SQL), Repeat, LPad and RPad (their length
# argument can make the server build huge strings), and internal helpers.
_FUNCTIONS = (
    "Abs",
    "ACos",
    "ASin",
    "ATan",
    "ATan2",
    "Cast",
    "Ceil",
    "Chr",
    "Coalesce",
    "Concat",
    "Cos",
    "Cot",
    "CumeDist",
    "Degrees",
    "DenseRank",
    "Exp",
    "Extract",
    "ExtractDay",
    "ExtractHour",
    "ExtractIsoWeekDay",
    "ExtractIsoYear",
    "ExtractMinute",
    "ExtractMonth",
    "ExtractQuarter",
    "ExtractSecond",
    "ExtractWeek",
    "ExtractWeekDay",
    "ExtractYear",
    "FirstValue",
    "Floor",
    "Greatest",
    "JSONArray",
    "JSONObject",
    "Lag",
    "LastValue",
    "Lead",
    "Least",
    "Left",
    "Length",
    "Ln",
    "Log",
    "Lower",
    "LTrim",
    "MD5",
    "Mod",
    "Now",
    "NthValue",
    "Ntile",
    "NullIf",
    "Ord",
    "PercentRank",
    "Pi",
    "Power",
    "Radians",
    "Random",
    "Rank",
    "Replace",
    "Reverse",
    "Right",
    "Round",
    "RowNumber",
    "RTrim",
    "SHA1",
    "SHA224",
    "SHA256",
    "SHA384",
    "SHA512",
    "Sign",
    "Sin",
    "Sqrt",
    "StrIndex",
    "Substr",
    "Tan",
    "Trim",
    "Trunc",
    "TruncDate",
    "TruncDay",
    "TruncHour",
    "TruncMinute",
    "TruncMonth",
    "TruncQuarter",
    "TruncSecond",
    "TruncTime",
    "TruncWeek",
    "TruncYear",
    "Upper",
)

# Field classes, for output_field=... arguments (Cast, ExpressionWrapper, Value).
_FIELDS = (
    "BigIntegerField",
    "BooleanField",
    "CharField",
    "DateField",
    "DateTimeField",
    "DecimalField",
    "DurationField",
    "FloatField",
    "IntegerField",
    "JSONField",
    "TextField",
    "TimeField",
    "UUIDField",
)

#: Names that may be called, and what they are. Models are added by name at parse time.
CALLABLES: dict[str, Any] = {
    "Q": models.Q,
    "F": models.F,
    "Value": models.Value,
    "Prefetch": models.Prefetch,
    "Subquery": models.Subquery,
    "Exists": models.Exists,
    "OuterRef": models.OuterRef,
    "Case": models.Case,
    "When": models.When,
    "ExpressionWrapper": models.ExpressionWrapper,
    "FilteredRelation": models.FilteredRelation,
    "Window": models.Window,
    **{name: getattr(aggregates, name) for name in _AGGREGATES},
    **{name: getattr(functions, name) for name in _FUNCTIONS},
    **{name: getattr(models, name) for name in _FIELDS},
    # Plain values.
    "date": datetime.date,
    "datetime": datetime.datetime,
    "time": datetime.time,
    "timedelta": datetime.timedelta,
    "Decimal": decimal.Decimal,
    "UUID": uuid.UUID,
}

#: Callables whose arguments may be QuerySets (nested queries).
TAKES_QUERYSETS = frozenset({"Subquery", "Exists", "Prefetch"})

#: Callables whose arguments must be plain values (no expressions, no QuerySets).
PLAIN_VALUES = frozenset({"Value", "date", "datetime", "time", "timedelta", "Decimal", "UUID"})
