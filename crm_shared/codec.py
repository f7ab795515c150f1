"""JSON on the wire, encoded and decoded by orjson.

Every RPC and event body is JSON (kombu's ``json`` serializer, content type
``application/json``). kombu 5.7 encodes it with the standard library and
decodes through a Python ``object_hook`` called for every object in the
message; on a page of records that was a measurable share of each hop.
``install()`` re-registers the ``json`` serializer with orjson: the bytes
on the wire stay plain JSON, so a process without it (a tool, a standalone
proxy) still talks to one with it.

What differs from kombu's encoder: datetimes, dates and UUIDs travel as
their ISO/str forms, not as ``{"__type__", "__value__"}`` wrappers that the
receiving kombu turned back into objects; the suite sends plain JSON types
at every boundary (``crm_shared.records.jsonable``). Decimals become strings.
A value orjson refuses (an integer beyond 64 bits) falls back to kombu's
encoder."""
from __future__ import annotations

import decimal
from typing import Any

import orjson
from kombu.serialization import register
from kombu.utils import json as kombu_json

_OPTIONS = orjson.OPT_NON_STR_KEYS


def _default(value: Any) -> Any:
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def dumps(value: Any) -> bytes:
    try:
        return orjson.dumps(value, default=_default, option=_OPTIONS)
    except orjson.JSONEncodeError:
        return str(kombu_json.dumps(value)).encode("utf-8")


def loads(data: Any) -> Any:
    if isinstance(data, memoryview):
        data = data.tobytes()
    return orjson.loads(data)


def install() -> None:
    """Makes orjson the ``json`` serializer of this process (idempotent)."""
    register("json", dumps, loads, content_type="application/json", content_encoding="utf-8")
