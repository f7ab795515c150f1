"""Plumbing every service that serves records shares: JSON-safe values, ids
from strings, opaque keyset cursors, and the ``{field: {old, new}}`` change
sets that ``record_changed`` events and the audit journal carry."""
from __future__ import annotations

import base64
import datetime as dt
import json
import uuid
from decimal import Decimal
from typing import Any

from crm_shared.errors import ValidationFailed

EMPTY: tuple[Any, ...] = (None, [], {})


def jsonable(value: Any) -> Any:
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [jsonable(v) for v in value]
        return sorted(items, key=str) if isinstance(value, (set, frozenset)) else items
    return value


def parse_id(value: Any) -> uuid.UUID | None:
    """A UUID from an id string; None when it is not one (so it answers not found)."""
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except (ValueError, TypeError, AttributeError):
        return None


def encode_cursor(*values: Any) -> str:
    raw = json.dumps([jsonable(v) for v in values], separators=(",", ":"), ensure_ascii=False).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None, size: int) -> list[Any] | None:
    """The values ``encode_cursor`` packed; a 422 on ``cursor`` for anything else."""
    if not cursor:
        return None
    try:
        values = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except ValueError:
        values = None
    if not isinstance(values, list) or len(values) != size:
        raise ValidationFailed("invalid value for cursor", fields={"cursor": "not a cursor this list returned"})
    return values


def diff(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """``{field: {"old", "new"}}`` for the fields of ``after`` whose value changed."""
    changes = {}
    for key in after:
        old, new = jsonable(before.get(key)), jsonable(after.get(key))
        if old != new:
            changes[key] = {"old": old, "new": new}
    return changes


def created(values: dict[str, Any]) -> dict[str, Any]:
    """The changes of a create: every field that has a value."""
    return {key: {"old": None, "new": jsonable(v)} for key, v in values.items() if v not in EMPTY}


def removed(values: dict[str, Any]) -> dict[str, Any]:
    """The changes of a delete: every field that had a value."""
    return {key: {"old": jsonable(v), "new": None} for key, v in values.items() if v not in EMPTY}
