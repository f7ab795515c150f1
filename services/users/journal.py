"""The audit journal: reading it, and entries from other services' events."""
from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from contracts import journal
from contracts.users import JournalQuery
from crm_shared.events import MalformedEvent
from services.users.models import JournalEntry, User
from services.users.schemas import invalid, parse
from services.users.work import Work, decode_cursor, encode_cursor, jsonable, mask


def entry_out(e: JournalEntry) -> dict[str, Any]:
    actor = None
    if e.actor_id is not None or e.actor_login:
        actor = {"id": jsonable(e.actor_id), "login": e.actor_login, "full_name": e.actor_name}
    return {"id": str(e.id), "at": jsonable(e.at), "tenant_id": e.tenant_id, "actor": actor, "source": e.source,
            "entity": e.entity, "entity_id": e.entity_id, "action": e.action, "changes": e.changes,
            "request_id": e.request_id}


def list_journal(work: Work, query_data: Any) -> dict[str, Any]:
    """Newest first; the cursor is the last id seen."""
    q = parse(JournalQuery, query_data)
    query = sa.select(JournalEntry).where(JournalEntry.tenant_id == work.tenant_id)
    if q.entity:
        query = query.where(JournalEntry.entity == q.entity)
    if q.entity_id:
        query = query.where(JournalEntry.entity_id == q.entity_id)
    if q.actor is not None:
        query = query.where(JournalEntry.actor_id == q.actor)
    if q.action:
        query = query.where(JournalEntry.action == q.action)
    if q.since is not None:
        query = query.where(JournalEntry.at >= q.since)
    if q.until is not None:
        query = query.where(JournalEntry.at < q.until)
    after = decode_cursor(q.cursor, 1)
    if after is not None:
        if not isinstance(after[0], int):
            raise invalid({"cursor": "not a cursor this list returned"})
        query = query.where(JournalEntry.id < after[0])
    rows = list(work.session.scalars(query.order_by(JournalEntry.id.desc()).limit(q.limit + 1)))
    more = len(rows) > q.limit
    rows = rows[:q.limit]
    return {"items": [entry_out(e) for e in rows],
            "next_cursor": encode_cursor(rows[-1].id) if more and rows else None}


def record_lockout(session: Session, event: dict[str, Any]) -> None:
    """``user_locked_out`` from auth: too many failed logins."""
    data = event.get("data") or {}
    tenant_id = data.get("tenant_id") or event.get("tenant_id")
    user_id = data.get("user_id")
    if not user_id and tenant_id and isinstance(data.get("login"), str):
        # auth knows only the login of someone who never signed in
        user_id = session.scalar(sa.select(User.id).where(
            User.tenant_id == str(tenant_id), sa.func.lower(User.login) == data["login"].strip().lower(),
            User.deleted_at.is_(None)))
    if not tenant_id:
        raise MalformedEvent("user_locked_out without tenant_id")
    if not user_id:
        return  # a login nobody has: no user to write it against
    at = None
    try:
        at = dt.datetime.fromisoformat(str(event.get("occurred_at")))
    except ValueError:
        pass
    session.add(JournalEntry(
        tenant_id=str(tenant_id), at=at or dt.datetime.now(dt.timezone.utc),
        actor_id=None, actor_login=None, actor_name=None, source="auth",
        entity="user", entity_id=str(user_id), action="locked_out",
        changes=mask({key: data.get(key) for key in ("login", "client_ip", "until") if key in data}),
        request_id=None,
    ))


RECORD_ACTIONS = {journal.CREATE, journal.UPDATE, journal.DELETE, journal.IMPORT, journal.REVERT, journal.EXPORT,
                  journal.SETTINGS}


def record_change(session: Session, source: str, event: dict[str, Any]) -> None:
    """``record_changed`` from a service that owns business records (crm): who
    changed which record and how. Secrets in ``changes`` are masked here too."""
    data = event.get("data") or {}
    tenant_id = data.get("tenant_id") or event.get("tenant_id")
    entity, entity_id, action = data.get("entity"), data.get("entity_id"), journal.normalized(str(data.get("action")))
    if not tenant_id or not entity or not entity_id or action not in RECORD_ACTIONS:
        raise MalformedEvent(f"record_changed needs tenant_id, entity, entity_id and an action of "
                             f"{sorted(RECORD_ACTIONS)}")
    raw_actor = data.get("actor")
    actor: dict[str, Any] = raw_actor if isinstance(raw_actor, dict) else {}
    actor_id = None
    try:
        actor_id = uuid.UUID(str(actor["id"])) if actor.get("id") else None
    except ValueError:
        actor_id = None
    at = None
    try:
        at = dt.datetime.fromisoformat(str(event.get("occurred_at")))
    except ValueError:
        pass
    raw_changes = data.get("changes")
    changes: dict[str, Any] = raw_changes if isinstance(raw_changes, dict) else {}
    session.add(JournalEntry(
        tenant_id=str(tenant_id), at=at or dt.datetime.now(dt.timezone.utc),
        actor_id=actor_id, actor_login=(actor.get("login") or None), actor_name=(actor.get("full_name") or None),
        source=str(data.get("source") or source)[:64], entity=str(entity)[:64], entity_id=str(entity_id)[:64],
        action=str(action), changes=mask(changes),
        request_id=(str(data["request_id"])[:64] if data.get("request_id") else None),
    ))
