"""Scheduling polls: which account is due, who polls it, and its status.

Each active account is due ``poll_every_min`` minutes after its last poll.
Replicas share the due accounts through a row lease (``lease_until``,
``lease_owner``) taken with ``FOR UPDATE SKIP LOCKED``: an account is polled
by one replica at a time, and a replica that dies loses its leases when
they run out. Each poll runs in a greenthread of its own with its own
database session, bounded by the server timeout of its account, so a slow
or dead server delays nobody else."""
from __future__ import annotations

import contextlib
import datetime as dt
import logging
import time
import uuid
from dataclasses import dataclass
from typing import Any, Callable

import sqlalchemy as sa
from sqlalchemy.orm import Session

from crm_shared.secrets import SecretBox
from services.mail import accounts
from services.mail import metrics as m
from services.mail.models import MailAccount, MailEntry, MailFolder
from services.mail.servers import MailServerError, classify, imap_login
from services.mail.sync import Directory, Ledger, QuotaExceeded, SyncLimits, SyncResult, sync_account

log = logging.getLogger(__name__)

Key = tuple[str, uuid.UUID]


@dataclass
class PollSettings:
    lease_seconds: float
    batch: int
    max_message_bytes: int
    reconcile_hours: float
    timeout_cap_seconds: float | None = None


def claim_due(session: Session, owner: str, limit: int, lease_seconds: float) -> list[Key]:
    """Up to ``limit`` due accounts, leased to ``owner`` (the caller commits)."""
    if limit <= 0:
        return []
    now = accounts.utcnow()
    due = (sa.select(MailAccount.tenant_id, MailAccount.id)
           .where(MailAccount.active.is_(True), MailAccount.next_poll_at <= now,
                  sa.or_(MailAccount.lease_until.is_(None), MailAccount.lease_until < now))
           .order_by(MailAccount.next_poll_at).limit(limit).with_for_update(skip_locked=True))
    rows = session.execute(due).all()
    if not rows:
        return []
    keys = [(r[0], r[1]) for r in rows]
    session.execute(sa.update(MailAccount).where(sa.tuple_(MailAccount.tenant_id, MailAccount.id).in_(keys))
                    .values(lease_until=now + dt.timedelta(seconds=lease_seconds), lease_owner=owner))
    return keys


def claim_one(session: Session, key: Key, owner: str, lease_seconds: float) -> bool:
    """Leases this account to ``owner`` now, if no other poll holds it."""
    now = accounts.utcnow()
    done = session.execute(sa.update(MailAccount).where(
        MailAccount.tenant_id == key[0], MailAccount.id == key[1],
        sa.or_(MailAccount.lease_until.is_(None), MailAccount.lease_until < now, MailAccount.lease_owner == owner))
        .values(lease_until=now + dt.timedelta(seconds=lease_seconds), lease_owner=owner))
    return bool(getattr(done, "rowcount", 0))


def release(session: Session, key: Key, owner: str) -> None:
    session.execute(sa.update(MailAccount).where(MailAccount.tenant_id == key[0], MailAccount.id == key[1],
                                                 MailAccount.lease_owner == owner)
                    .values(lease_until=None, lease_owner=None))


def poll(session: Session, key: Key, owner: str, box: SecretBox, ledger: Ledger, directory: Directory,
         settings: PollSettings, trigger: str = "schedule", deadline: float | None = None,
         folders: list[str] | None = None, should_stop: Callable[[], bool] = lambda: False) -> SyncResult | None:
    """Polls one leased account and records its status; None when the lease is no longer ours."""
    account = session.get(MailAccount, key, populate_existing=True)
    if account is None or account.lease_owner != owner:
        session.rollback()
        return None
    started = time.perf_counter()
    now = accounts.utcnow()

    def renew() -> None:
        account.lease_until = accounts.utcnow() + dt.timedelta(seconds=settings.lease_seconds)
        session.commit()

    limits = SyncLimits(batch=settings.batch, max_message_bytes=settings.max_message_bytes,
                        reconcile_every=dt.timedelta(hours=settings.reconcile_hours), deadline=deadline,
                        should_stop=should_stop)
    outcome, reason, message, result = "ok", None, None, None
    endpoint = None
    try:
        endpoint = accounts.imap_endpoint(account, box, settings.timeout_cap_seconds)
        client = imap_login(endpoint, accounts.app_password_hint(account))
        try:
            result = sync_account(session, account, client, ledger, directory, limits, session.commit, renew,
                                  folders)
        finally:
            with contextlib.suppress(Exception):  # the poll's outcome is already decided
                client.logout()
    except QuotaExceeded as exc:
        session.rollback()
        outcome = reason = "quota_exceeded"
        message = f"the instance's disk quota is used up; polling resumes when space frees ({exc})"
    except Exception as exc:  # noqa: BLE001 - every failure becomes the account's status
        session.rollback()
        classified = exc if isinstance(exc, MailServerError) else \
            classify(exc, endpoint, "IMAP") if endpoint is not None else None
        outcome = "error"
        if classified is None:
            log.exception("poll of mail account %s failed", key[1])
            reason, message = "error", f"unexpected error: {type(exc).__name__}"
        else:
            reason, message = classified.reason, classified.message
    # the account again, as it is now: deleted while it was polled, it is simply gone
    current = session.get(MailAccount, key, populate_existing=True)
    if current is None:
        session.rollback()
        return None
    if outcome == "ok":
        current.state, current.last_success_at = "ok", now
        current.last_error = current.last_error_reason = None
    else:
        current.state = "quota_exceeded" if outcome == "quota_exceeded" else "error"
        current.last_error_reason, current.last_error = reason, message
    current.last_poll_at = now
    # a poll asked for while this one ran (IDLE saw new mail, the settings changed) is kept: the
    # mail that came after this poll's search is fetched by the next one, at once
    if current.next_poll_at is None or current.next_poll_at <= now:
        current.next_poll_at = accounts.utcnow() + dt.timedelta(minutes=current.poll_every_min)
    if result is not None:
        current.messages_behind = result.behind
    current.lease_until, current.lease_owner = None, None
    session.commit()
    m.polls().labels(outcome, trigger).inc()
    if reason:
        m.poll_failures().labels(reason).inc()
    if result is not None:
        for direction, n in result.directions.items():
            if n:
                m.ingested().labels(direction).inc(n)
        if result.reconcile_missing:
            m.reconcile_missing().inc(result.reconcile_missing)
    m.poll_duration().observe(time.perf_counter() - started)
    return result or SyncResult()


def status_out(session: Session, account: MailAccount, idle: bool = False) -> dict[str, Any]:
    folders = list(session.scalars(sa.select(MailFolder).where(
        MailFolder.tenant_id == account.tenant_id, MailFolder.account_id == account.id).order_by(MailFolder.folder)))
    stored = session.scalar(sa.select(sa.func.count(sa.distinct(MailEntry.message_id))).where(
        MailEntry.tenant_id == account.tenant_id, MailEntry.account_id == account.id)) or 0
    reconciled = [f.reconciled_at for f in folders if f.reconciled_at is not None]
    state = account.state if account.active else "paused"
    return {"account_id": str(account.id), "active": account.active, "state": state,
            "last_poll_at": account.last_poll_at, "last_success_at": account.last_success_at,
            "last_error": account.last_error, "last_error_reason": account.last_error_reason,
            "next_poll_at": account.next_poll_at if account.active else None,
            "messages_behind": sum(f.messages_behind for f in folders), "messages_stored": int(stored),
            "reconcile_missing": sum(f.reconcile_missing for f in folders),
            "reconciled_at": min(reconciled) if reconciled else None, "idle": idle,
            "folders": [{"folder": f.folder, "uidvalidity": f.uidvalidity, "last_uid": f.last_uid,
                         "messages_behind": f.messages_behind, "reconciled_at": f.reconciled_at,
                         "reconcile_missing": f.reconcile_missing} for f in folders]}


def count_behind(session: Session) -> int:
    """Active accounts with unfetched messages or overdue by more than a poll period."""
    now = accounts.utcnow()
    overdue = MailAccount.next_poll_at < now - sa.func.make_interval(0, 0, 0, 0, 0, MailAccount.poll_every_min)
    return int(session.scalar(sa.select(sa.func.count()).select_from(MailAccount).where(
        MailAccount.active.is_(True), sa.or_(MailAccount.messages_behind > 0, overdue))) or 0)


def wait_for_lease(session: Session, key: Key, owner: str, lease_seconds: float, timeout: float,
                   sleep: Callable[[float], Any]) -> bool:
    """Claims the account for a user's "check mail now", waiting for a poll that holds it to end."""
    deadline = time.monotonic() + timeout
    while True:
        if claim_one(session, key, owner, lease_seconds):
            session.commit()
            return True
        session.rollback()
        if time.monotonic() > deadline:
            return False
        sleep(0.2)
