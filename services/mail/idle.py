"""IMAP IDLE on INBOX: new mail shows within seconds, not at the next poll.

A replica watches at most ``MAIL_IDLE_MAX_CONNECTIONS`` accounts, each with
one connection that idles on INBOX. The watch is leased like a poll
(``idle_owner``, ``idle_until``, renewed every minute), so replicas share
the accounts and an account whose replica died is watched again elsewhere.
When the server announces new mail (``EXISTS``), the account is made due
and the poller is woken: the poll stores the mail, by the same lossless path
as every poll. A server without IDLE is remembered and left to polling;
polling stays the fallback for every account."""
from __future__ import annotations

import contextlib
import datetime as dt
import logging
import time
from typing import Any, Callable

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from crm_shared.secrets import SecretBox
from services.mail import accounts
from services.mail import metrics as m
from services.mail.models import MailAccount
from services.mail.polling import Key
from services.mail.servers import MailServerError, imap_login

log = logging.getLogger(__name__)

LEASE = dt.timedelta(seconds=180)
RENEW_EVERY = 60.0          # seconds between lease renewals (and between IDLE re-issues)
RETRY_AFTER = dt.timedelta(minutes=5)  # after a failed watch, before this account is watched again
CHECK_EVERY = 2.0           # how often a watch looks up from the socket (to notice a stop)


def claim(session: Session, owner: str, limit: int) -> list[Key]:
    """Accounts to watch (active, last poll fine, IDLE not known to be missing, watch not held)."""
    if limit <= 0:
        return []
    now = accounts.utcnow()
    rows = session.execute(
        sa.select(MailAccount.tenant_id, MailAccount.id)
        .where(MailAccount.active.is_(True), MailAccount.idle_supported.is_(True), MailAccount.state == "ok",
               sa.or_(MailAccount.idle_until.is_(None), MailAccount.idle_until < now))
        .order_by(MailAccount.last_success_at).limit(limit).with_for_update(skip_locked=True)).all()
    keys = [(r[0], r[1]) for r in rows]
    if keys:
        session.execute(sa.update(MailAccount).where(sa.tuple_(MailAccount.tenant_id, MailAccount.id).in_(keys))
                        .values(idle_owner=owner, idle_until=now + LEASE))
    return keys


def _renew(session: Session, key: Key, owner: str) -> bool:
    done = session.execute(sa.update(MailAccount).where(
        MailAccount.tenant_id == key[0], MailAccount.id == key[1], MailAccount.idle_owner == owner,
        MailAccount.active.is_(True)).values(idle_until=accounts.utcnow() + LEASE))
    session.commit()
    return bool(getattr(done, "rowcount", 0))


def _end(session: Session, key: Key, owner: str, retry_after: dt.timedelta | None, supported: bool = True) -> None:
    values: dict[str, Any] = {"idle_owner": None,
                              "idle_until": accounts.utcnow() + retry_after if retry_after else None}
    if not supported:
        values["idle_supported"] = False
    session.execute(sa.update(MailAccount).where(MailAccount.tenant_id == key[0], MailAccount.id == key[1],
                                                 MailAccount.idle_owner == owner).values(**values))
    session.commit()


def _make_due(session: Session, key: Key) -> None:
    session.execute(sa.update(MailAccount).where(MailAccount.tenant_id == key[0], MailAccount.id == key[1])
                    .values(next_poll_at=accounts.utcnow()))
    session.commit()


def watch(sessions: "sessionmaker[Session]", key: Key, owner: str, box: SecretBox, timeout_cap: float | None,
          stopping: Callable[[], bool], new_mail: Callable[[], None]) -> None:
    """Idles on the account's INBOX until the service stops, the lease is lost or the server fails."""
    session = sessions()
    client = None
    m.idle_connections().inc()
    try:
        account = session.get(MailAccount, key)
        if account is None or account.idle_owner != owner:
            return
        endpoint = accounts.imap_endpoint(account, box, timeout_cap)
        session.commit()
        client = imap_login(endpoint, None)
        if not client.has_capability("IDLE"):
            _end(session, key, owner, None, supported=False)
            return
        client.select_folder("INBOX", readonly=True)
        renewed = time.monotonic()
        client.idle()
        # mail that came between the last poll and this IDLE is announced by no one: poll once now
        _make_due(session, key)
        new_mail()
        while not stopping():
            responses = client.idle_check(timeout=CHECK_EVERY)
            if any(len(r) >= 2 and r[1] in (b"EXISTS", b"RECENT") for r in responses):
                _make_due(session, key)
                new_mail()
            if time.monotonic() - renewed >= RENEW_EVERY:
                client.idle_done()  # servers drop an IDLE left for 30 minutes: issue it again each renewal
                if not _renew(session, key, owner):
                    return
                renewed = time.monotonic()
                client.idle()
        client.idle_done()
        _end(session, key, owner, None)
    except MailServerError as exc:
        log.info("IDLE on mail account %s stopped: %s", key[1], exc.message)
        session.rollback()
        _end(session, key, owner, RETRY_AFTER)
    except Exception as exc:  # noqa: BLE001 - a broken watch falls back to polling
        log.info("IDLE on mail account %s stopped: %s", key[1], exc)
        session.rollback()
        _end(session, key, owner, RETRY_AFTER)
    finally:
        m.idle_connections().dec()
        if client is not None:
            with contextlib.suppress(Exception):
                client.logout()
        session.close()


def watching(account: MailAccount) -> bool:
    return bool(account.idle_owner) and account.idle_until is not None and account.idle_until > accounts.utcnow()
