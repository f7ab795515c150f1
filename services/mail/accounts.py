"""Mail accounts: who may manage them, what a preset fills in, the secrets
and the answers.

A user manages their own accounts; ``users.manage`` manages anyone's.
Passwords are encrypted with the service's ``SecretBox``, bound to the row
(tenant, account, side), so a token copied to another row does not decrypt;
they are never answered, logged or journalled (the journal shows that a
password changed, as ``***``)."""
from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import sqlalchemy as sa
from pydantic import ValidationError
from sqlalchemy.orm import Session

from contracts.mail import PRESETS, MailAccountCreate, MailAccountUpdate
from crm_shared.errors import NotFound, ValidationFailed, validation_failed
from crm_shared.records import diff, parse_id
from crm_shared.scopes import require_manage_user
from crm_shared.secrets import SecretBox, reencrypt_table
from services.mail.models import MailAccount
from services.mail.servers import Endpoint

MASK = "***"


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def require_manage(principal: dict[str, Any], user_id: str) -> None:
    require_manage_user(principal, user_id, "mail accounts")


def context(account: MailAccount, side: str) -> str:
    return f"mail-account:{account.tenant_id}:{account.id}:{side}"


def _parse(model: Any, data: Any) -> Any:
    try:
        return model.model_validate(data or {})
    except ValidationError as exc:
        raise validation_failed(exc) from None


def _apply_servers(row: MailAccount, preset: str | None, imap: Any, smtp: Any, email: str) -> None:
    if preset is not None:
        p = PRESETS[preset]
        row.imap_host, row.imap_port, row.imap_encryption = p.imap.host, p.imap.port, p.imap.encryption
        row.imap_login = email
        row.smtp_host, row.smtp_port, row.smtp_encryption = p.smtp.host, p.smtp.port, p.smtp.encryption
        row.smtp_auth, row.smtp_login, row.smtp_password_enc = p.smtp_auth, None, None
        row.smtp_require_secure_auth = True
        return
    if imap is not None:
        row.imap_host, row.imap_port, row.imap_encryption = imap.host, imap.port, imap.encryption
        row.imap_login = imap.login or email
    if smtp is not None:
        row.smtp_host, row.smtp_port, row.smtp_encryption = smtp.host, smtp.port, smtp.encryption
        row.smtp_auth, row.smtp_require_secure_auth = smtp.auth, smtp.require_secure_auth
        row.smtp_login = smtp.login if smtp.auth == "special" else None


def _refuse_servers_with_preset(preset: str | None, data: dict[str, Any]) -> None:
    given = [k for k in ("imap", "smtp") if data.get(k) is not None]
    if preset is not None and given:
        raise ValidationFailed("with a preset the servers come from it: leave imap and smtp out, or set "
                               "preset to null for your own servers", fields=dict.fromkeys(given, "not with a preset"))


def create(session: Session, box: SecretBox, tenant_id: str, user_id: str, data: dict[str, Any]) -> MailAccount:
    body: MailAccountCreate = _parse(MailAccountCreate, data)
    _refuse_servers_with_preset(body.preset, data)
    now = utcnow()
    row = MailAccount(tenant_id=tenant_id, id=uuid.uuid4(), user_id=uuid.UUID(user_id), name=body.name,
                      email=body.email, preset=body.preset, created_at=now, updated_at=now, next_poll_at=now,
                      state="never", messages_behind=0, pending_bytes=0, active=body.active, idle_supported=True,
                      timeout_min=body.timeout_min, poll_every_min=body.poll_every_min, sent_folder=body.sent_folder,
                      is_default=False)
    if body.preset is not None and "timeout_min" not in body.model_fields_set:
        row.timeout_min = PRESETS[body.preset].timeout_min
    _apply_servers(row, body.preset, body.imap, body.smtp, body.email)
    row.password_enc = box.encrypt(body.password, context(row, "imap"))
    if body.smtp is not None and body.smtp.auth == "special" and body.preset is None:
        if not body.smtp.password:
            raise ValidationFailed("auth=special needs smtp.password", fields={"smtp.password": "required"})
        row.smtp_password_enc = box.encrypt(body.smtp.password, context(row, "smtp"))
    first = session.scalar(sa.select(sa.func.count()).select_from(MailAccount).where(
        MailAccount.tenant_id == tenant_id, MailAccount.user_id == row.user_id)) == 0
    _set_default(session, row, body.is_default or first)
    session.add(row)
    session.flush()
    return row


def _set_default(session: Session, row: MailAccount, default: bool) -> None:
    if default:
        session.execute(sa.update(MailAccount).where(
            MailAccount.tenant_id == row.tenant_id, MailAccount.user_id == row.user_id, MailAccount.id != row.id,
            MailAccount.is_default.is_(True)).values(is_default=False))
        session.flush()
    row.is_default = default


def update(session: Session, box: SecretBox, row: MailAccount, data: dict[str, Any]) -> dict[str, Any]:
    """Applies the fields given; answers what changed (secrets as ``***``)."""
    body: MailAccountUpdate = _parse(MailAccountUpdate, data)
    given = body.model_fields_set
    before = account_out(row)
    preset = row.preset
    if "preset" in given:
        preset = body.preset
        if preset is None and row.preset is not None and (body.imap is None or body.smtp is None):
            raise ValidationFailed("leaving the preset needs your own imap and smtp servers",
                                   fields={"imap": "required", "smtp": "required"})
    _refuse_servers_with_preset(preset, data)
    for name in ("name", "email", "timeout_min", "poll_every_min", "sent_folder", "active"):
        if name in given:
            value = getattr(body, name)
            if value is None and name not in ("sent_folder",):
                raise ValidationFailed(f"{name} cannot be null", fields={name: "cannot be null"})
            setattr(row, name, value)
    row.preset = preset
    if preset is not None:
        _apply_servers(row, preset, None, None, row.email)
    else:
        if body.imap is not None and body.imap.login is None and "email" in given:
            body.imap.login = row.email
        _apply_servers(row, None, body.imap, body.smtp, row.email)
    changes: dict[str, Any] = {}
    if "password" in given and body.password:
        row.password_enc = box.encrypt(body.password, context(row, "imap"))
        changes["password"] = MASK
    if body.smtp is not None and preset is None:
        if body.smtp.auth == "special":
            if body.smtp.password:
                row.smtp_password_enc = box.encrypt(body.smtp.password, context(row, "smtp"))
                changes["smtp.password"] = MASK
            elif not row.smtp_password_enc:
                raise ValidationFailed("auth=special needs smtp.password", fields={"smtp.password": "required"})
        else:
            row.smtp_password_enc = None
    if "is_default" in given and body.is_default is not None:
        _set_default(session, row, body.is_default)
    if given & {"imap", "preset", "password", "email"}:
        # another server or login: poll it now, and let the IDLE watch start again on it
        row.next_poll_at = utcnow()
        row.idle_supported, row.idle_owner, row.idle_until = True, None, None
    if "active" in given and row.active:
        row.next_poll_at = utcnow()
    row.updated_at = utcnow()
    session.flush()
    before.pop("updated_at")
    after = account_out(row)
    after.pop("updated_at")
    return diff(before, after) | changes


def account_out(row: MailAccount) -> dict[str, Any]:
    return {"id": str(row.id), "user_id": str(row.user_id), "name": row.name, "email": row.email,
            "preset": row.preset, "password_set": bool(row.password_enc),
            "imap": {"host": row.imap_host, "port": row.imap_port, "encryption": row.imap_encryption,
                     "login": row.imap_login},
            "smtp": {"host": row.smtp_host, "port": row.smtp_port, "encryption": row.smtp_encryption,
                     "auth": row.smtp_auth, "login": row.smtp_login,
                     "password_set": bool(row.smtp_password_enc) if row.smtp_auth == "special"
                     else row.smtp_auth == "same_as_incoming" and bool(row.password_enc),
                     "require_secure_auth": row.smtp_require_secure_auth},
            "timeout_min": row.timeout_min, "poll_every_min": row.poll_every_min, "sent_folder": row.sent_folder,
            "active": row.active, "is_default": row.is_default, "created_at": row.created_at,
            "updated_at": row.updated_at}


def journal_changes(out: dict[str, Any]) -> dict[str, Any]:
    """What the journal keeps of a created or deleted account: no secrets."""
    return {k: v for k, v in out.items() if k not in ("created_at", "updated_at")} | {"password": MASK}


def get(session: Session, tenant_id: str, user_id: str, account_id: str, *, lock: bool = False) -> MailAccount:
    uid, aid = parse_id(user_id), parse_id(account_id)
    row = None
    if uid is not None and aid is not None:
        query = sa.select(MailAccount).where(MailAccount.tenant_id == tenant_id, MailAccount.id == aid,
                                             MailAccount.user_id == uid)
        row = session.scalars(query.with_for_update() if lock else query).first()
    if row is None:
        raise NotFound("mail account not found", code="not_found")
    return row


def of_user(session: Session, tenant_id: str, user_id: str) -> list[MailAccount]:
    uid = parse_id(user_id)
    if uid is None:
        return []
    return list(session.scalars(sa.select(MailAccount).where(
        MailAccount.tenant_id == tenant_id, MailAccount.user_id == uid).order_by(MailAccount.created_at,
                                                                                 MailAccount.id)))


def timeout_seconds(row: MailAccount, cap: float | None = None) -> float:
    seconds = float(row.timeout_min) * 60
    return min(seconds, cap) if cap else seconds


def imap_endpoint(row: MailAccount, box: SecretBox, cap: float | None = None) -> Endpoint:
    return Endpoint(row.imap_host, row.imap_port, row.imap_encryption, row.imap_login,
                    box.decrypt(row.password_enc, context(row, "imap")), timeout_seconds(row, cap))


def smtp_endpoint(row: MailAccount, box: SecretBox, cap: float | None = None) -> tuple[Endpoint, bool]:
    """The SMTP endpoint and whether to authenticate."""
    if row.smtp_auth == "special":
        login = row.smtp_login
        password = box.decrypt(row.smtp_password_enc, context(row, "smtp")) if row.smtp_password_enc else None
    elif row.smtp_auth == "same_as_incoming":
        login, password = row.imap_login, box.decrypt(row.password_enc, context(row, "imap"))
    else:
        login, password = None, None
    return (Endpoint(row.smtp_host, row.smtp_port, row.smtp_encryption, login, password,
                     timeout_seconds(row, cap)), row.smtp_auth != "none")


def app_password_hint(row: MailAccount) -> str | None:
    return PRESETS[row.preset].app_password_hint if row.preset in PRESETS else None


def reencrypt_all(session: Session, box: SecretBox, batch: int = 500) -> tuple[int, list[str]]:
    """Re-encrypts every stored mail secret under the primary key (after a key rotation); answers how
    many secrets changed and the accounts whose secrets no configured key opens (left as they are).
    Safe to run again, and while the service runs."""
    return reencrypt_table(session, box, MailAccount, ("tenant_id", "id"),
                           lambda row: [("password_enc", context(row, "imap")),
                                        ("smtp_password_enc", context(row, "smtp"))], batch)
