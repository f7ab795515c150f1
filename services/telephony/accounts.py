"""SIP accounts: one per user, who may set them, the secret and the answers.

A user sets their own account; ``users.manage`` anyone's. Only a user with
``sip_enabled`` («Подключить SIP запись») can have one; turning the flag
off (or blocking the user) makes the account inactive, and the worker
holding it unregisters. The password is encrypted with the service's
``SecretBox``, bound to the row (tenant, user), and never answered, logged or
journalled (the journal shows ``***``). Every change bumps ``version``: the
worker holding the account re-creates it."""
from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import sqlalchemy as sa
from pydantic import ValidationError
from sqlalchemy.orm import Session

from contracts.telephony import SipAccountIn, mango_username, registration
from crm_shared.errors import Conflict, Forbidden, NotFound, ValidationFailed, validation_failed
from crm_shared.records import diff
from crm_shared.scopes import USERS_MANAGE
from crm_shared.secrets import SecretBox, reencrypt_table
from services.telephony.models import MangoSettings, SipAccount
from services.telephony.sip import AccountSpec

MASK = "***"
WAKE = "telephony_engines"  # NOTIFY channel: the workers look at their accounts and commands at once


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def context(tenant_id: str, user_id: Any) -> str:
    return f"sip-account:{tenant_id}:{user_id}"


def wake_engines(session: Session) -> None:
    """Tells every worker to look now (delivered when the transaction commits)."""
    session.execute(sa.text(f"NOTIFY {WAKE}"))


def get(session: Session, tenant_id: str, user_id: Any, lock: bool = False) -> SipAccount:
    query = sa.select(SipAccount).where(SipAccount.tenant_id == tenant_id, SipAccount.user_id == uuid.UUID(
        str(user_id)))
    row = session.scalar(query.with_for_update() if lock else query)
    if row is None:
        raise NotFound("this user has no SIP account", code="not_found")
    return row


def find(session: Session, tenant_id: str, user_id: Any) -> SipAccount | None:
    return session.get(SipAccount, (tenant_id, uuid.UUID(str(user_id))))


def account_out(row: SipAccount) -> dict[str, Any]:
    state, reason = row.reg_state, row.reg_reason
    if not row.active:
        state, reason = "off", "the user's SIP account is off («Подключить SIP запись», or the user is blocked)"
    elif not row.notify_incoming:
        state, reason = "off", "notify_incoming is off: no registration is kept"
    elif row.lease_until is None or row.lease_until < utcnow():
        # no live worker: what the last one saw is stale; another takes it within a lease period
        state, reason = "registering", "waiting for an engine worker to take the account"
    return {
        "user_id": str(row.user_id), "login": row.login, "domain": row.domain, "port": row.port,
        "mango_username": mango_username(row.login, row.domain, row.mango), "notify_incoming": row.notify_incoming,
        "extension": row.extension, "active": row.active, "password_set": bool(row.password_enc),
        "registration": registration(state, reason, iso(row.reg_expires_at) if state == "registered" else None),
        "created_at": iso(row.created_at), "updated_at": iso(row.updated_at),
    }


def _journal_view(row: SipAccount) -> dict[str, Any]:
    return {"login": row.login, "domain": row.domain, "port": row.port, "notify_incoming": row.notify_incoming,
            "extension": row.extension, "mango_username": mango_username(row.login, row.domain, row.mango)}


def put(session: Session, box: SecretBox, tenant_id: str, user: dict[str, Any], data: Any,
        may_set_extension: bool = False) -> tuple[SipAccount, str, dict[str, Any]]:
    """Creates or replaces the user's account; answers it, the journal action and the changes. The
    Mango Office extension decides whose phone a PBX call rings: only ``users.manage`` sets it."""
    try:
        body = SipAccountIn.model_validate(data or {})
    except ValidationError as exc:
        raise validation_failed(exc) from None
    if not user.get("sip_enabled"):
        raise Conflict("this user does not have «Подключить SIP запись» (sip_enabled) on: turn it on first",
                       code="sip_not_enabled")
    assert body.login is not None and body.domain is not None
    now = utcnow()
    row = find(session, tenant_id, user["user_id"])
    if row is not None:
        session.refresh(row, with_for_update=True)
    if row is None:
        if not body.password:
            raise ValidationFailed("a new SIP account needs its password", fields={"password": "required"})
        row = SipAccount(tenant_id=tenant_id, user_id=uuid.UUID(str(user["user_id"])), created_at=now, version=0,
                         reg_state="registering", active=bool(user.get("active", True)))
        before: dict[str, Any] = {}
        action = "create"
        session.add(row)
    else:
        before = _journal_view(row)
        action = "update"
    was_active = row.active
    row.active = bool(user.get("active", True))  # and sip_enabled, checked above
    row.login, row.domain, row.port = body.login, body.domain, body.port
    row.mango = body.mango_username is not None
    row.notify_incoming = body.notify_incoming
    # left out, the extension stays (a user changing their password keeps the one the admin set)
    extension = body.extension if "extension" in body.model_fields_set else row.extension
    if extension != (before.get("extension") if before else None):
        if not may_set_extension:
            raise Forbidden("setting the PBX extension needs the right 'users.manage'", code="forbidden",
                            details={"right": USERS_MANAGE})
        with session.no_autoflush:  # the new row is not complete yet
            taken = extension is not None and session.scalar(sa.select(SipAccount.user_id).where(
                SipAccount.tenant_id == tenant_id, SipAccount.extension == extension,
                SipAccount.user_id != row.user_id))
        if taken:
            raise Conflict(f"the extension {extension} belongs to another user", code="extension_taken")
    row.extension = extension
    changes = diff(before, _journal_view(row)) if before else dict(_journal_view(row))
    if body.password:
        row.password_enc = box.encrypt(body.password, context(tenant_id, row.user_id))
        changes["password"] = MASK
    if not changes and was_active == row.active:
        return row, "", {}
    row.version += 1
    row.updated_at = now
    row.reg_state, row.reg_code, row.reg_reason, row.reg_expires_at = "registering", None, None, None
    row.reg_changed_at = now
    try:
        session.flush()
    except sa.exc.IntegrityError:  # the same account or extension written at the same moment
        session.rollback()
        raise Conflict("the account was changed at the same time; try again", code="conflict") from None
    wake_engines(session)
    return row, action if changes else "", changes


def delete(session: Session, row: SipAccount) -> dict[str, Any]:
    changes = _journal_view(row)
    session.delete(row)
    wake_engines(session)
    return changes


def set_active(session: Session, tenant_id: str, user_id: Any, active: bool) -> bool:
    """The user's flag or state changed; answers whether an account changed."""
    changed = session.execute(
        sa.update(SipAccount).where(SipAccount.tenant_id == tenant_id, SipAccount.user_id == uuid.UUID(str(user_id)),
                                    SipAccount.active.is_not(active))
        .values(active=active, version=SipAccount.version + 1, updated_at=utcnow(),
                reg_state="registering" if active else "off", reg_reason=None, reg_expires_at=None))
    if changed.rowcount:  # type: ignore[attr-defined]
        wake_engines(session)
    return bool(changed.rowcount)  # type: ignore[attr-defined]


def spec_of(row: SipAccount, box: SecretBox, expires: int, retry: int, keepalive: int) -> AccountSpec:
    return AccountSpec(login=row.login, password=box.decrypt(row.password_enc, context(row.tenant_id, row.user_id)),
                       domain=row.domain, port=row.port, register=row.notify_incoming, expires=expires,
                       retry_seconds=retry, keepalive_seconds=keepalive)


def reencrypt_all(session: Session, box: SecretBox, batch: int = 500) -> tuple[int, list[str]]:
    """Re-encrypts every SIP password and Mango Office key and salt under the primary key; answers how
    many changed and the rows whose secret no configured key opens."""
    from services.telephony.mango import secret_context

    changed, unreadable = reencrypt_table(session, box, SipAccount, ("tenant_id", "user_id"),
                                          lambda row: [("password_enc", context(row.tenant_id, row.user_id))], batch)
    more, lost = reencrypt_table(session, box, MangoSettings, ("tenant_id",),
                                 lambda row: [("api_key_enc", secret_context(row.tenant_id, "key")),
                                              ("api_salt_enc", secret_context(row.tenant_id, "salt"))], batch)
    return changed + more, unreadable + lost
