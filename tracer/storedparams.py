"""Statement params as type-tagged JSON: what the file store keeps of a SELECT's params
so that EXPLAIN can run it again from another process with the values it ran with.

An export's params are renderings for people (``{"type": "decimal.Decimal", "repr":
...}``); these are exact. JSON's own null, booleans, integers, floats and strings stand
for themselves (NaN and infinities as Python's json writes them); every other value is
an object with one key naming its type:

    {"bytes": "<base64>"}      {"decimal": "10.50"}      {"uuid": "<32 hex digits>"}
    {"datetime": "<ISO 8601>"} {"date": "2024-05-06"}   {"time": "07:08:09+02:00"}
    {"timedelta": [days, seconds, microseconds]}          {"tuple": [...]}
    {"dict": {"name": ...}}    (pyformat params by name)

Lists are JSON arrays. Datetimes and times keep their UTC offset (an aware value comes
back with a fixed offset, the same instant). Anything else cannot be encoded:
``encode`` raises Unencodable naming its type.
"""

from __future__ import annotations

import base64
import datetime
import uuid
from decimal import Decimal
from typing import Any


class Unencodable(ValueError):
    """A value of a type these tags do not cover; the message names it."""


def encode(value: Any) -> Any:
    """``value`` as type-tagged JSON-safe data; Unencodable if it cannot be."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"bytes": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, Decimal):
        return {"decimal": str(value)}
    # datetime before date: a datetime is a date.
    if isinstance(value, datetime.datetime):
        return {"datetime": value.isoformat()}
    if isinstance(value, datetime.date):
        return {"date": value.isoformat()}
    if isinstance(value, datetime.time):
        return {"time": value.isoformat()}
    if isinstance(value, datetime.timedelta):
        return {"timedelta": [value.days, value.seconds, value.microseconds]}
    if isinstance(value, uuid.UUID):
        return {"uuid": value.hex}
    if isinstance(value, list):
        return [encode(item) for item in value]
    if isinstance(value, tuple):
        return {"tuple": [encode(item) for item in value]}
    if isinstance(value, dict) and all(isinstance(key, str) for key in value):
        return {"dict": {key: encode(item) for key, item in value.items()}}
    kind = type(value)
    raise Unencodable(f"{kind.__module__}.{kind.__qualname__}")


def decode(data: Any) -> Any:
    """The value ``encode`` was given (up to the types named in the module's
    docstring); ValueError on data it did not make."""
    if data is None or isinstance(data, (bool, int, str)):
        return data
    if isinstance(data, float):
        return data
    if isinstance(data, list):
        return [decode(item) for item in data]
    if isinstance(data, dict) and len(data) == 1:
        ((tag, payload),) = data.items()
        decoder = _DECODERS.get(tag)
        if decoder is not None:
            return decoder(payload)
    raise ValueError(f"Not type-tagged params: {data!r}")


def _dict(payload: Any) -> dict[str, Any]:
    if not isinstance(payload, dict):
        raise ValueError(f"Not type-tagged params: {payload!r}")
    return {key: decode(item) for key, item in payload.items()}


def _timedelta(payload: Any) -> datetime.timedelta:
    days, seconds, microseconds = payload
    return datetime.timedelta(days=days, seconds=seconds, microseconds=microseconds)


_DECODERS: dict[str, Any] = {
    "bytes": lambda payload: base64.b64decode(payload, validate=True),
    "decimal": Decimal,
    "datetime": datetime.datetime.fromisoformat,
    "date": datetime.date.fromisoformat,
    "time": datetime.time.fromisoformat,
    "timedelta": _timedelta,
    "uuid": uuid.UUID,
    "tuple": lambda payload: tuple(decode(item) for item in payload),
    "dict": _dict,
}
