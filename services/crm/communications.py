"""Communications (calls and e-mails) and matching a phone number or an
e-mail address to the contacts and counterparties that carry it.

Calls and mails come from the telephony and mail services' events
(``telephony.call_logged``, ``mail.mail_logged``; the data is documented in
docs/crm.md). A communication is linked to the contact and counterparty the
event names, or else to those its number or address matches; its
responsible user is whoever handled it, else the contact's (or the
counterparty's) responsible. The same call or message logged again (same
``call_id`` / ``message_id``) updates the record instead of adding one."""
from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import sqlalchemy as sa

from contracts import journal
from contracts.crm import CallLogged, MailLogged
from contracts.phones import try_normalize_email, try_normalize_phone
from services.crm import records as R
from services.crm.models import Communication, Contact, Counterparty, MatchKey
from services.crm.work import Work, created, diff, parse_id

MATCH_LIMIT = 10


class Communications(R.Kind):
    """Read-only through the API: created from events."""

    name, entity, model = "communications", "communication", Communication
    sort_columns = {"occurred_at": Communication.occurred_at}

    def values(self, row: Any) -> dict[str, Any]:
        return {"kind": row.kind, "direction": row.direction, "occurred_at": row.occurred_at,
                "duration_seconds": row.duration_seconds, "answered": row.answered, "subject": row.subject,
                "external_ref": row.external_ref, "source": row.source, "phone": row.phone, "email": row.email,
                "contact_id": row.contact_id, "counterparty_id": row.counterparty_id, "handled_by": row.handled_by}


# -- matching ----------------------------------------------------------------------

def match(session: Any, tenant_id: str, phone: str | None = None, email: str | None = None) -> dict[str, Any]:
    """Contacts and counterparties carrying ``phone`` (any format) or ``email``
    (any case): one lookup on the normalised keys' primary key, then the
    records by id. Most recently updated first; the first is the best guess."""
    keys = [k for k in (try_normalize_phone(phone), try_normalize_email(email)) if k]
    answer: dict[str, Any] = {"phone": try_normalize_phone(phone), "email": try_normalize_email(email),
                              "contacts": [], "counterparties": [], "contact_id": None, "counterparty_id": None,
                              "responsible_id": None}
    if not keys:
        return answer
    hits = session.execute(sa.select(MatchKey.entity, MatchKey.record_id).where(
        MatchKey.tenant_id == tenant_id, MatchKey.value.in_(keys))).all()
    contact_ids = {h.record_id for h in hits if h.entity == "contact"}
    counterparty_ids = {h.record_id for h in hits if h.entity == "counterparty"}
    contacts = []
    if contact_ids:
        contacts = list(session.scalars(sa.select(Contact).where(
            Contact.tenant_id == tenant_id, Contact.id.in_(contact_ids))
            .order_by(Contact.updated_at.desc(), Contact.id).limit(MATCH_LIMIT)))
    counterparty_ids |= {c.counterparty_id for c in contacts if c.counterparty_id is not None}
    counterparties = []
    if counterparty_ids:
        counterparties = list(session.scalars(sa.select(Counterparty).where(
            Counterparty.tenant_id == tenant_id, Counterparty.id.in_(counterparty_ids))
            .order_by(Counterparty.active.desc(), Counterparty.updated_at.desc(), Counterparty.id)
            .limit(MATCH_LIMIT)))
    answer["contacts"] = [{"id": str(c.id), "full_name": c.full_name, "position": c.position,
                           "counterparty_id": str(c.counterparty_id) if c.counterparty_id else None,
                           "responsible_id": str(c.responsible_id)} for c in contacts]
    answer["counterparties"] = [{"id": str(c.id), "name": c.name, "inn": c.inn, "active": c.active,
                                 "responsible_id": str(c.responsible_id)} for c in counterparties]
    if contacts:
        best = contacts[0]
        answer["contact_id"] = str(best.id)
        answer["counterparty_id"] = str(best.counterparty_id) if best.counterparty_id else None
        answer["responsible_id"] = str(best.responsible_id)
    elif counterparties:
        answer["counterparty_id"] = str(counterparties[0].id)
        answer["responsible_id"] = str(counterparties[0].responsible_id)
    return answer


# -- logging from events -----------------------------------------------------------

def _existing(session: Any, model: Any, tenant_id: str, record_id: uuid.UUID | None) -> Any:
    return session.get(model, (tenant_id, record_id)) if record_id is not None else None


def _log(work: Work, kind: str, ref: str, fields: dict[str, Any], contact_id: uuid.UUID | None,
         counterparty_id: uuid.UUID | None, phone: str | None, email: str | None,
         user_id: uuid.UUID | None) -> Communication:
    session = work.session
    contact = _existing(session, Contact, work.tenant_id, contact_id)
    counterparty = _existing(session, Counterparty, work.tenant_id, counterparty_id)
    if contact is None and counterparty is None:
        found = match(session, work.tenant_id, phone=phone, email=email)
        contact = _existing(session, Contact, work.tenant_id, parse_id(found["contact_id"]))
        counterparty = _existing(session, Counterparty, work.tenant_id, parse_id(found["counterparty_id"]))
    if counterparty is None and contact is not None and contact.counterparty_id is not None:
        counterparty = _existing(session, Counterparty, work.tenant_id, contact.counterparty_id)
    responsible = user_id or (contact.responsible_id if contact else None) or (
        counterparty.responsible_id if counterparty else None)
    values = {**fields, "phone": phone, "email": email, "handled_by": user_id,
              "contact_id": contact.id if contact else None,
              "counterparty_id": counterparty.id if counterparty else None}
    row = session.scalars(sa.select(Communication).where(
        Communication.tenant_id == work.tenant_id, Communication.kind == kind,
        Communication.external_ref == ref).with_for_update()).first()
    now = dt.datetime.now(dt.timezone.utc)
    kinds = Communications()
    if row is None:
        row = Communication(tenant_id=work.tenant_id, id=uuid.uuid4(), kind=kind, external_ref=ref,
                            source=work.source, responsible_id=responsible, created_by=user_id,
                            created_at=now, updated_at=now, **values)
        session.add(row)
        session.flush()
        work.audit("communication", row.id, journal.CREATE,
                   created({"responsible_id": row.responsible_id, **kinds.values(row)}))
        return row
    before = {"responsible_id": row.responsible_id, **kinds.values(row)}
    for name, value in values.items():
        setattr(row, name, value)
    row.responsible_id = responsible or row.responsible_id
    changes = diff(before, {"responsible_id": row.responsible_id, **kinds.values(row)})
    if changes:
        row.updated_at = now
        session.flush()
        work.audit("communication", row.id, journal.UPDATE, changes)
    return row


def _aware(moment: dt.datetime) -> dt.datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.timezone.utc)


def log_call(work: Work, call: CallLogged) -> Communication:
    fields = {"direction": call.direction, "occurred_at": _aware(call.started_at),
              "duration_seconds": call.duration_seconds, "answered": call.answered, "subject": None}
    return _log(work, "call", call.call_id, fields, call.contact_id, call.counterparty_id,
                try_normalize_phone(call.phone) or (call.phone or None), None, call.user_id)


def log_mail(work: Work, mail: MailLogged) -> Communication:
    fields = {"direction": mail.direction, "occurred_at": _aware(mail.sent_at), "duration_seconds": None,
              "answered": None, "subject": mail.subject}
    return _log(work, "email", mail.message_id, fields, mail.contact_id, mail.counterparty_id, None,
                try_normalize_email(mail.email) or (mail.email or None), mail.user_id)
