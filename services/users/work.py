"""The unit of work every operation runs in: the caller's principal, the
session, the tenant lock, the journal, events and cache invalidation."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from crm_shared.migrations import lock_key
from crm_shared.records import created, decode_cursor, diff, encode_cursor, jsonable, parse_id
from services.users import rights as R
from services.users.exceptions import Forbidden, Unauthenticated
from services.users.models import JournalEntry
from services.users.passwords import MASK, Hasher
from services.users.principal import PrincipalCache, TenantSnapshot, mark_changed

SECRET_MARKERS = ("password", "secret", "token")

__all__ = ["Work", "created", "decode_cursor", "diff", "encode_cursor", "jsonable", "mask", "parse_id"]


def is_secret(name: str) -> bool:
    lowered = name.lower()
    return any(marker in lowered for marker in SECRET_MARKERS)


def mask(changes: dict[str, Any]) -> dict[str, Any]:
    """Secrets (any field named like a password, secret or token) become "***", at any depth."""
    masked: dict[str, Any] = {}
    for key, value in changes.items():
        if is_secret(key):
            if isinstance(value, dict) and set(value) <= {"old", "new"}:
                masked[key] = {k: (MASK if v is not None else None) for k, v in value.items()}
            else:
                masked[key] = MASK if value is not None else None
        elif isinstance(value, dict):
            masked[key] = mask(value)
        else:
            masked[key] = jsonable(value)
    return masked


@dataclass
class Work:
    session: Session
    tenant_id: str
    cache: PrincipalCache
    outbox: Any
    hasher: Hasher | None = None
    actor: dict[str, Any] | None = None
    source: str = "api"
    request_id: str | None = None
    _locked: bool = False

    # -- access ------------------------------------------------------------
    @classmethod
    def for_caller(cls, caller: Any, session: Session, cache: PrincipalCache, outbox: Any,
                   hasher: Hasher | None = None, right: str | None = None,
                   request_id: str | None = None) -> "Work":
        """Loads the caller's principal; 401 when the caller is no active user
        of the tenant, 403 naming the right when ``right`` is not held at ``all``."""
        if not isinstance(caller, dict) or not caller.get("tenant_id") or not caller.get("user_id"):
            raise Unauthenticated("no authenticated caller", code="unauthenticated")
        tenant_id, user_id = str(caller["tenant_id"]), str(caller["user_id"])
        principal = cache.principal(session, tenant_id, user_id) if parse_id(user_id) else None
        if principal is None or not principal["active"]:
            raise Unauthenticated("the user is unknown, inactive or deleted", code="user_inactive")
        work = cls(session, tenant_id, cache, outbox, hasher, principal, "api", request_id)
        if right is not None:
            work.require(right)
        return work

    def require(self, right: str, at_least: str = R.ALL) -> None:
        rights = (self.actor or {}).get("rights", {})
        if not R.allows(rights, right, at_least):
            raise Forbidden(f"this needs the right '{right}' (scope {at_least})", code="forbidden",
                            details={"right": right})

    def snapshot(self) -> TenantSnapshot:
        return self.cache.snapshot(self.session, self.tenant_id)

    # -- writing -----------------------------------------------------------
    def lock(self) -> None:
        """Serialises writes of one tenant (uniqueness, the last-admin guard, the tree)."""
        if not self._locked:
            self.session.execute(sa.select(sa.func.pg_advisory_xact_lock(lock_key(f"users:{self.tenant_id}"))))
            self._locked = True

    def journal(self, entity: str, entity_id: Any, action: str, changes: dict[str, Any]) -> None:
        actor = self.actor or {}
        self.session.add(JournalEntry(
            tenant_id=self.tenant_id,
            actor_id=parse_id(actor.get("user_id")) if actor.get("user_id") else None,
            actor_login=actor.get("login"), actor_name=actor.get("full_name"),
            source=self.source, entity=entity, entity_id=str(entity_id), action=action,
            changes=mask(changes), request_id=self.request_id,
        ))

    def emit(self, event_type: str, data: dict[str, Any], aggregate_id: Any) -> None:
        self.outbox.record(self.session, event_type, jsonable(data), str(aggregate_id), self.tenant_id)

    def org_changed(self, user_ids: list[Any] | None = None) -> None:
        """Principals change: drop this tenant from the cache once committed and
        tell every other holder of principals (``user_ids`` None: any user)."""
        mark_changed(self.session, self.cache, self.tenant_id)
        ids = None if user_ids is None else sorted({str(u) for u in user_ids})
        event_id = self.outbox.record(self.session, "principal_changed",
                                      {"tenant_id": self.tenant_id, "user_ids": ids}, self.tenant_id, self.tenant_id)
        self.cache.note_own_event(str(event_id))
