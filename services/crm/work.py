"""The unit of work of one call: the session, the tenant, the caller's
principal (None for a system call made from another service's event), the
outbox for the audit events, and the request id."""
from __future__ import annotations

import base64
import datetime as dt
import json
import uuid
import zoneinfo
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Callable

import sqlalchemy as sa
from sqlalchemy.orm import Session

from services.crm import scopes
from services.crm.schemas import invalid

RECORD_CHANGED = "record_changed"


def jsonable(value: Any) -> Any:
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
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
    if not cursor:
        return None
    try:
        values = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except ValueError:
        values = None
    if not isinstance(values, list) or len(values) != size:
        raise invalid({"cursor": "not a cursor this list returned"})
    return values


def diff(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """``{field: {"old", "new"}}`` for the fields whose value changed."""
    changes = {}
    for key in after:
        old, new = jsonable(before.get(key)), jsonable(after.get(key))
        if old != new:
            changes[key] = {"old": old, "new": new}
    return changes


def created(values: dict[str, Any]) -> dict[str, Any]:
    """The changes of a create: every field that has a value."""
    return {key: {"old": None, "new": jsonable(value)} for key, value in values.items()
            if value not in (None, [], {})}


def removed(values: dict[str, Any]) -> dict[str, Any]:
    """The changes of a delete: every field that had a value."""
    return {key: {"old": jsonable(value), "new": None} for key, value in values.items()
            if value not in (None, [], {})}


@dataclass
class Work:
    session: Session
    tenant_id: str
    outbox: Any
    principal: dict[str, Any] | None = None  # None: a system call (another service's event)
    source: str = "api"
    request_id: str | None = None
    # principal of another user of the tenant (responsible checks); None when unknown
    lookup_user: Callable[[str], dict[str, Any] | None] | None = None

    @property
    def user_id(self) -> uuid.UUID | None:
        return scopes.user_id_of(self.principal) if self.principal else None

    def scope(self, right: str) -> str:
        return scopes.scope_of(self.principal, right) if self.principal is not None else scopes.ALL

    def require(self, right: str) -> str:
        if self.principal is None:
            return scopes.ALL
        return scopes.require(self.principal, right)

    def condition(self, right: str, column: Any, scope: str | None = None) -> Any:
        """The rights condition for ``right`` (false for scope none, no 403)."""
        if self.principal is None:
            return sa.true()
        return scopes.condition(self.principal, scope or self.scope(right), column)

    def filter(self, right: str, column: Any) -> Any:
        """The rights condition for ``right``; 403 naming it for scope none."""
        if self.principal is None:
            return sa.true()
        return scopes.filter_for(self.principal, right, column)

    def allows(self, right: str) -> bool:
        return self.principal is None or scopes.allows(self.principal, right)

    def today(self) -> dt.date:
        """Today in the caller's time zone (Moscow for system calls)."""
        name = str((self.principal or {}).get("timezone") or "Europe/Moscow")
        try:
            zone = zoneinfo.ZoneInfo(name)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            zone = zoneinfo.ZoneInfo("Europe/Moscow")
        return dt.datetime.now(zone).date()

    def actor(self) -> dict[str, Any] | None:
        if self.principal is None:
            return None
        return {"id": str(self.principal.get("user_id")), "login": self.principal.get("login"),
                "full_name": self.principal.get("full_name")}

    def audit(self, entity: str, entity_id: Any, action: str, changes: dict[str, Any]) -> None:
        """The ``record_changed`` event (the users service keeps the journal),
        written to the outbox in this transaction."""
        data = {"tenant_id": self.tenant_id, "entity": entity, "entity_id": str(entity_id), "action": action,
                "actor": self.actor(), "source": self.source, "request_id": self.request_id,
                "changes": jsonable(changes)}
        self.outbox.record(self.session, RECORD_CHANGED, data, str(entity_id), self.tenant_id)
