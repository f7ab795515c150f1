"""Sending a message from one of the caller's accounts.

The message goes over SMTP with the account's encryption and
authentication; a copy is appended to the sent folder (``\\Seen``), and the
message is stored and linked like incoming mail. A refusal answers with
the server's reason and stores nothing; the copy's bytes are reserved in the
tenant's quota before anything is sent, so a send never leaves mail that
the quota cannot hold."""
from __future__ import annotations

import base64
import binascii
import email.policy
import logging
import re
import uuid
from email.utils import make_msgid
from typing import Any, Callable

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from contracts.mail import SendIn
from crm_shared.errors import CrmError, Forbidden, NotFound, ValidationFailed
from crm_shared.records import parse_id
from crm_shared.secrets import SecretBox
from services.mail import accounts, parsing
from services.mail.exceptions import SendRefused
from services.mail.messages import message_out
from services.mail.models import MailAccount, MailEntry, MailMessage
from services.mail.servers import MailServerError, imap_call, smtp_login, smtp_send
from services.mail.sync import Directory, Ledger, announce, store_values

log = logging.getLogger(__name__)

SEND_RIGHT = "mail.send"
_APPENDUID = re.compile(rb"APPENDUID (\d+) (\d+)")


def require_send(principal: dict[str, Any]) -> None:
    if str((principal.get("rights") or {}).get(SEND_RIGHT)) != "all":
        raise Forbidden("sending mail needs the right 'mail.send'", code="forbidden", details={"right": SEND_RIGHT})


def sender_account(session: Session, tenant_id: str, user_id: str, account_id: str | None) -> MailAccount:
    uid = parse_id(user_id)
    query = sa.select(MailAccount).where(MailAccount.tenant_id == tenant_id, MailAccount.user_id == uid)
    if account_id is not None:
        row = session.scalars(query.where(MailAccount.id == parse_id(account_id))).first()
        if row is None:
            raise NotFound("mail account not found among yours", code="not_found")
        return row
    row = session.scalars(query.where(MailAccount.active.is_(True))
                          .order_by(MailAccount.is_default.desc(), MailAccount.created_at)).first()
    if row is None:
        raise ValidationFailed("you have no active mail account to send from", fields={"account_id": "required"})
    return row


def _attachments(body: SendIn) -> list[tuple[str, str, bytes]]:
    found = []
    for i, a in enumerate(body.attachments):
        try:
            found.append((a.filename, a.content_type, base64.b64decode(a.content_b64, validate=True)))
        except (binascii.Error, ValueError):
            raise ValidationFailed("an attachment must travel as base64",
                                   fields={f"attachments.{i}.content_b64": "not base64"}) from None
    return found


def send(session: Session, box: SecretBox, principal: dict[str, Any], data: dict[str, Any], ledger: Ledger,
         directory: Directory, timeout_cap: float | None, commit: Callable[[], None]) -> dict[str, Any]:
    require_send(principal)
    body = SendIn.model_validate(data)
    tenant_id, user_id = str(principal["tenant_id"]), str(principal["user_id"])
    account = sender_account(session, tenant_id, user_id, body.account_id)
    domain = account.email.rpartition("@")[2]
    msg = parsing.build(account.email, principal.get("full_name"), body.to, body.cc, body.subject, body.text,
                        body.html, _attachments(body), make_msgid(domain=domain))
    raw = msg.as_bytes(policy=email.policy.SMTP)
    reservation = ledger.reserve(tenant_id, len(raw), f"mail sent {account.id}")  # 409 quota_exceeded
    try:
        endpoint, authenticate = accounts.smtp_endpoint(account, box, timeout_cap)
        try:
            client = smtp_login(endpoint, authenticate, account.smtp_require_secure_auth,
                                accounts.app_password_hint(account))
            try:
                refused = smtp_send(client, endpoint, msg, account.email, body.to + body.cc + body.bcc)
            finally:
                try:
                    client.quit()
                except Exception:  # noqa: BLE001 - sent or not, that is decided
                    client.close()
        except MailServerError as exc:
            raise SendRefused(exc.message, details={"reason": exc.reason, "smtp_code": exc.smtp_code}) from None
    except Exception:
        ledger.release(reservation)
        raise
    # sent: from here on the message exists, whatever happens to its copy
    copy, copy_error, placed = "no_sent_folder", None, None
    if account.sent_folder:
        try:
            placed = _append_copy(account, box, raw, timeout_cap)
            copy = "appended"
        except MailServerError as exc:
            copy, copy_error = "failed", exc.message
            log.warning("sent message's copy not appended for account %s: %s", account.id, exc.message)
    parsed = parsing.parse(raw)
    counterpart = (body.to + body.cc + body.bcc)[0]
    row = store_values(account, parsed, raw, "outgoing", counterpart, directory.match(tenant_id, counterpart),
                       parsed.sent_at or accounts.utcnow())
    got = session.execute(insert(MailMessage).values(row).on_conflict_do_nothing(
        index_elements=["tenant_id", "message_key"]).returning(MailMessage.id)).scalar()
    message_id = got or session.scalar(sa.select(MailMessage.id).where(
        MailMessage.tenant_id == tenant_id, MailMessage.message_key == row["message_key"]))
    folder, validity, uid = placed if placed else ("", 0, uuid.UUID(str(message_id)).int >> 66)
    session.execute(insert(MailEntry).values(
        tenant_id=tenant_id, account_id=account.id, folder=folder, uidvalidity=validity, uid=uid,
        message_id=message_id, user_id=account.user_id).on_conflict_do_nothing())
    if got is not None:
        announce(session, account, [row])
    commit()
    try:
        ledger.commit(reservation, len(raw) if got is not None else 0)
    except CrmError as exc:
        log.warning("could not commit the sent message's storage: %s", exc)
    stored = session.get(MailMessage, (tenant_id, message_id))
    assert stored is not None
    return {"message": message_out(stored, [str(account.id)]), "sent_copy": copy, "sent_copy_error": copy_error,
            "refused": refused}


def _append_copy(account: MailAccount, box: SecretBox, raw: bytes, timeout_cap: float | None
                 ) -> tuple[str, int, int] | None:
    """Appends to the sent folder as read; (folder, uidvalidity, uid) when the server says (UIDPLUS)."""
    folder = str(account.sent_folder)

    def work(client: Any) -> tuple[str, int, int] | None:
        answer = client.append(folder, raw, flags=(b"\\Seen",))
        found = _APPENDUID.search(answer if isinstance(answer, bytes) else str(answer).encode())
        return (folder, int(found.group(1)), int(found.group(2))) if found else None
    return imap_call(accounts.imap_endpoint(account, box, timeout_cap), work, accounts.app_password_hint(account))
