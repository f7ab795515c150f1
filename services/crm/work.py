"""The unit of work of one call: the session, the tenant, the caller's
principal (None for a system call made from another service's event), the
outbox for the audit events, and the request id."""
from __future__ import annotations

import datetime as dt
import uuid
import zoneinfo
from dataclasses import dataclass
from typing import Any, Callable

import sqlalchemy as sa
from sqlalchemy.orm import Session

from contracts import journal
from crm_shared import scopes
from crm_shared.records import created, decode_cursor, diff, encode_cursor, jsonable, parse_id, removed

RECORD_CHANGED = journal.RECORD_CHANGED

__all__ = ["Work", "created", "decode_cursor", "diff", "encode_cursor", "jsonable", "parse_id", "removed"]


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
