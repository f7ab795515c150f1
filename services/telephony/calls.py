"""Calls: how they start, change and end, and who sees them.

One row per call, from the first ring to its end (``Call``). The active list
is the calls not yet ended, and those ended within
``TELEPHONY_ENDED_VISIBLE_SECONDS`` (state ``ended``); the call log is the
ended ones. Ending a call writes ``telephony.call_logged`` to the outbox in
the same transaction, so the crm logs the communication exactly when the
call is over.

Rights: ``telephony.use`` places calls and shows the active list; both lists
show the caller's own calls, and others' as ``communications.read`` allows
(department, all) on the user who took or placed the call."""
from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import sqlalchemy as sa
from pydantic import ValidationError
from sqlalchemy.orm import Session

from contracts.telephony import CallQuery
from crm_shared import scopes
from crm_shared.errors import ValidationFailed, validation_failed
from crm_shared.outbox import record_event
from crm_shared.records import decode_cursor, encode_cursor
from services.telephony.accounts import iso, utcnow
from services.telephony.models import Call

TELEPHONY_USE = "telephony.use"
COMMUNICATIONS_READ = "communications.read"
CALL_LOGGED = "call_logged"
ANSWERED = ("answered", "answered_elsewhere", "transferred")


def call_out(row: Call) -> dict[str, Any]:
    return {
        "call_id": str(row.id), "direction": row.direction, "state": row.state, "source": row.source,
        "from_number": row.from_number, "from_name": row.from_name, "to_number": row.to_number,
        "user_id": str(row.user_id) if row.user_id else None,
        "contact_id": str(row.contact_id) if row.contact_id else None,
        "counterparty_id": str(row.counterparty_id) if row.counterparty_id else None,
        "started_at": iso(row.started_at), "answered_at": iso(row.answered_at), "ended_at": iso(row.ended_at),
        "outcome": row.outcome, "end_reason": row.end_reason,
    }


def _visible(principal: dict[str, Any]) -> Any:
    """The calls the caller may see: their own always, others' under ``communications.read``."""
    scope = scopes.scope_of(principal, COMMUNICATIONS_READ)
    own = Call.user_id == scopes.user_id_of(principal)
    return own if scope in (scopes.NONE, scopes.OWN) else sa.or_(own, scopes.condition(principal, scope,
                                                                                       Call.user_id))


def active(session: Session, principal: dict[str, Any], ended_visible_seconds: float) -> dict[str, Any]:
    scopes.require(principal, TELEPHONY_USE, scopes.ALL)
    since = utcnow() - dt.timedelta(seconds=ended_visible_seconds)
    rows = session.scalars(sa.select(Call).where(
        Call.tenant_id == principal["tenant_id"], _visible(principal),
        sa.or_(Call.ended_at.is_(None), Call.ended_at > since)).order_by(Call.started_at.desc()).limit(500))
    return {"items": [call_out(r) for r in rows], "next_cursor": None}


def log(session: Session, principal: dict[str, Any], query: Any) -> dict[str, Any]:
    """The ended calls, newest first, keyset-paged by (started_at, id)."""
    try:
        q = CallQuery.model_validate(query or {})
    except ValidationError as exc:
        raise validation_failed(exc) from None
    where = [Call.tenant_id == principal["tenant_id"], Call.ended_at.is_not(None), _visible(principal)]
    if q.direction:
        where.append(Call.direction == q.direction)
    if q.outcome:
        where.append(Call.outcome == q.outcome)
    for name, column in (("user_id", Call.user_id), ("contact_id", Call.contact_id)):
        value = getattr(q, name)
        if value:
            try:
                where.append(column == uuid.UUID(value))
            except ValueError:
                raise ValidationFailed(f"{name} is not an id", fields={name: "not an id"}) from None
    after = decode_cursor(q.cursor, 2)
    if after is not None:
        try:
            where.append(sa.tuple_(Call.started_at, Call.id) < sa.tuple_(dt.datetime.fromisoformat(str(after[0])),
                                                                          uuid.UUID(str(after[1]))))
        except ValueError:
            raise ValidationFailed("a bad cursor", fields={"cursor": "not a cursor of this list"}) from None
    rows = list(session.scalars(sa.select(Call).where(*where).order_by(Call.started_at.desc(), Call.id.desc())
                                .limit(q.limit + 1)))
    more = len(rows) > q.limit
    rows = rows[:q.limit]
    cursor = encode_cursor(rows[-1].started_at.isoformat(), str(rows[-1].id)) if more and rows else None
    return {"items": [call_out(r) for r in rows], "next_cursor": cursor}


# -- the life of a call -----------------------------------------------------------------------
def ring(session: Session, tenant_id: str, user_id: Any, source: str, external_id: str, from_number: str | None,
         from_name: str | None, to_number: str | None, worker: str | None = None) -> Call:
    """An incoming call rings (idempotent on the external id: a repeated INVITE or webhook)."""
    existing = session.scalar(sa.select(Call).where(Call.tenant_id == tenant_id, Call.source == source,
                                                    Call.external_id == external_id))
    if existing is not None:
        return existing
    now = utcnow()
    row = Call(tenant_id=tenant_id, id=uuid.uuid4(), source=source, external_id=external_id[:200],
               user_id=uuid.UUID(str(user_id)) if user_id else None, direction="incoming", state="ringing",
               from_number=_short(from_number, 64), from_name=_short(from_name, 200), to_number=_short(to_number, 64),
               matched=not from_number, worker=worker, started_at=now, updated_at=now)
    session.add(row)
    session.flush()
    return row


def dial(session: Session, tenant_id: str, user_id: Any, to_number: str, source: str = "sip",
         external_id: str | None = None) -> Call:
    """An outgoing call: a click-to-call (``sip``: a row the user's worker picks up, ``command =
    'dial'``), or one the PBX reports."""
    now = utcnow()
    call_id = uuid.uuid4()
    row = Call(tenant_id=tenant_id, id=call_id, source=source, external_id=external_id or f"dial:{call_id}",
               user_id=uuid.UUID(str(user_id)) if user_id else None, direction="outgoing", state="ringing",
               from_number=None, from_name=None, to_number=to_number or None, matched=False,
               command="dial" if source == "sip" else None, started_at=now, updated_at=now)
    session.add(row)
    session.flush()
    return row


def set_state(row: Call, state: str, answered: bool = False) -> None:
    if row.state == "ended":
        return
    row.state = state
    if answered and row.answered_at is None:
        row.answered_at = utcnow()
    row.updated_at = utcnow()


def end(session: Session, row: Call, outcome: str, reason: str | None = None, talk_seconds: int | None = None,
        at: dt.datetime | None = None) -> bool:
    """Ends the call and logs it (``telephony.call_logged``); answers False when it had ended. The row
    is locked and read again first, so two enders (a worker, the watcher, a webhook) log it once."""
    session.flush()  # what the caller set on the row so far is kept
    session.refresh(row, with_for_update=True)
    if row.ended_at is not None:
        return False
    now = at or utcnow()
    row.state, row.ended_at, row.outcome = "ended", now, outcome
    row.end_reason = _short(reason, 200)
    row.command = None
    row.updated_at = utcnow()
    if talk_seconds is None:
        talk_seconds = int((now - row.answered_at).total_seconds()) if row.answered_at else 0
    phone = row.from_number if row.direction == "incoming" else row.to_number
    record_event(session, CALL_LOGGED, {
        "tenant_id": row.tenant_id, "call_id": str(row.id), "direction": row.direction,
        "started_at": row.started_at.isoformat(), "ended_at": now.isoformat(),
        "duration_seconds": max(0, talk_seconds), "answered": outcome in ANSWERED, "outcome": outcome,
        "phone": phone, "user_id": str(row.user_id) if row.user_id else None,
        "contact_id": str(row.contact_id) if row.contact_id else None,
        "counterparty_id": str(row.counterparty_id) if row.counterparty_id else None,
        "source": row.source}, str(row.id), row.tenant_id)
    return True


def _short(value: str | None, limit: int) -> str | None:
    return value[:limit] if value else None


# -- matching numbers to contacts -------------------------------------------------------------
def unmatched(session: Session, limit: int = 50) -> list[tuple[str, uuid.UUID, str | None]]:
    """Calls whose number is still to be matched: (tenant, call, number). Read without locks: the
    matching RPCs run with no transaction open, and ``apply_match`` writes only unmatched rows."""
    number = sa.case((Call.direction == "incoming", Call.from_number), else_=Call.to_number)
    rows = session.execute(sa.select(Call.tenant_id, Call.id, number).where(Call.matched.is_(False))
                           .order_by(Call.started_at).limit(limit)).all()
    return [(r[0], r[1], r[2]) for r in rows]


def apply_match(session: Session, tenant_id: str, call_id: uuid.UUID, match: dict[str, Any]) -> None:
    values: dict[str, Any] = {"matched": True}
    for name in ("contact_id", "counterparty_id"):
        if match.get(name):
            values[name] = uuid.UUID(str(match[name]))
    session.execute(sa.update(Call).where(Call.tenant_id == tenant_id, Call.id == call_id,
                                          Call.matched.is_(False)).values(**values))
