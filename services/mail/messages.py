"""Stored messages: who sees which, and their answers.

A message is stored once per tenant; its mailbox entries say which
accounts hold it. A user sees the messages in their own accounts, and those
in the accounts of the users their ``communications.read`` scope covers
(own, department with its children, all), like the communications the crm
records for them."""
from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from contracts.mail import MessageQuery
from crm_shared import scopes
from crm_shared.errors import NotFound, ValidationFailed
from crm_shared.records import decode_cursor, encode_cursor, parse_id
from services.mail.models import MailEntry, MailMessage

READ_RIGHT = "communications.read"


def visible_entries(principal: dict[str, Any]) -> Any:
    """The condition on ``MailEntry`` of the entries this caller may see."""
    own = MailEntry.user_id == scopes.user_id_of(principal)
    scope = scopes.scope_of(principal, READ_RIGHT)
    if scope in (scopes.NONE, scopes.OWN):
        return own
    return sa.or_(own, scopes.condition(principal, scope, MailEntry.user_id))


def _accounts(session: Session, tenant_id: str, ids: list[Any], where: Any) -> dict[Any, list[str]]:
    if not ids:
        return {}
    rows = session.execute(sa.select(MailEntry.message_id, sa.func.array_agg(sa.distinct(MailEntry.account_id)))
                           .where(MailEntry.tenant_id == tenant_id,
                                  MailEntry.message_id == sa.any_(sa.bindparam(None, ids, type_=ARRAY(sa.Uuid))),
                                  where)
                           .group_by(MailEntry.message_id)).all()
    return {r[0]: sorted(str(a) for a in r[1]) for r in rows}


def message_out(row: MailMessage, accounts: list[str], detail: bool = False) -> dict[str, Any]:
    out = {"id": str(row.id), "message_id": row.message_id, "direction": row.direction, "subject": row.subject,
           "sender": row.sender, "to": row.to or [], "cc": row.cc or [], "sent_at": row.sent_at, "size": row.size,
           "attachments": row.attachments or [], "contact_id": str(row.contact_id) if row.contact_id else None,
           "counterparty_id": str(row.counterparty_id) if row.counterparty_id else None, "accounts": accounts,
           "created_at": row.created_at}
    if detail:
        out |= {"text": row.text, "html": row.html}
    return out


def list_messages(session: Session, principal: dict[str, Any], query: dict[str, Any] | None) -> dict[str, Any]:
    q = MessageQuery.model_validate(query or {})
    tenant_id = str(principal["tenant_id"])
    where = visible_entries(principal)
    entry = sa.select(MailEntry.message_id).where(MailEntry.tenant_id == tenant_id, where,
                                                  MailEntry.message_id == MailMessage.id)
    if q.account_id is not None:
        entry = entry.where(MailEntry.account_id == parse_id(q.account_id))
    stmt = sa.select(MailMessage).where(MailMessage.tenant_id == tenant_id, entry.exists())
    for name in ("contact_id", "counterparty_id"):
        value = getattr(q, name)
        if value is not None:
            stmt = stmt.where(getattr(MailMessage, name) == parse_id(value))
    if q.direction:
        stmt = stmt.where(MailMessage.direction == q.direction)
    if q.q:
        pattern = "%" + q.q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        stmt = stmt.where(sa.or_(MailMessage.subject.ilike(pattern), MailMessage.counterpart.ilike(pattern),
                                 sa.cast(MailMessage.sender, sa.Text).ilike(pattern)))
    after = decode_cursor(q.cursor, 2)
    if after is not None:
        try:
            at, last = dt.datetime.fromisoformat(str(after[0])), parse_id(after[1])
        except ValueError:
            at, last = None, None
        if at is None or last is None:
            raise ValidationFailed("invalid value for cursor", fields={"cursor": "not a cursor this list returned"})
        stmt = stmt.where(sa.tuple_(MailMessage.sent_at, MailMessage.id) < sa.tuple_(at, last))
    rows = list(session.scalars(stmt.order_by(MailMessage.sent_at.desc(), MailMessage.id.desc())
                                .limit(q.limit + 1)
                                .options(sa.orm.defer(MailMessage.raw), sa.orm.defer(MailMessage.text),
                                         sa.orm.defer(MailMessage.html))))
    more = len(rows) > q.limit
    rows = rows[:q.limit]
    held = _accounts(session, tenant_id, [r.id for r in rows], where)
    return {"items": [message_out(r, held.get(r.id, [])) for r in rows],
            "next_cursor": encode_cursor(rows[-1].sent_at, rows[-1].id) if more and rows else None}


def get_message(session: Session, principal: dict[str, Any], message_id: str) -> dict[str, Any]:
    tenant_id = str(principal["tenant_id"])
    mid = parse_id(message_id)
    row = session.get(MailMessage, (tenant_id, mid)) if mid is not None else None
    held = _accounts(session, tenant_id, [mid], visible_entries(principal)) if row is not None else {}
    if row is None or not held.get(mid):
        raise NotFound("message not found", code="not_found")
    return message_out(row, held[mid], detail=True)
