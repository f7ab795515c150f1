"""Polling an account: sync by UID per folder, lossless and without
duplicates.

For each folder (INBOX and the chosen sent folder):

- the folder is examined read-only and messages are fetched with
  ``BODY.PEEK[]``, so the user's ``\\Seen`` and other flags never change;
- the cursor is (UIDVALIDITY, last UID). A new UIDVALIDITY starts the folder
  again from UID 1: messages are stored once per tenant by their key, so a
  resync adds mailbox entries, never copies;
- a batch is stored, with the cursor moved past it, in one transaction: a
  crash mid-batch fetches that batch again, and it finds its messages by key;
- a message too large (``MAIL_MAX_MESSAGE_BYTES``) is skipped, and the cursor
  still moves past it;
- stored bytes are reserved in auth's ledger before the batch is written and
  committed after it: over quota, nothing of the batch is stored and the
  account pauses as ``quota_exceeded`` until space frees. The reservation is
  written with the batch, so one that a crash left uncommitted is committed
  by the next poll;
- each new message is linked to contacts by address (``match_contact``) and
  announced as ``mail.mail_logged`` through the outbox;
- reconciliation (every ``MAIL_RECONCILE_HOURS``) compares the folder's UID
  list with the stored entries and fetches what is missing, which a cursor
  alone would skip for ever."""
from __future__ import annotations

import datetime as dt
import logging
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Protocol

import sqlalchemy as sa
from sqlalchemy.orm import Session

from crm_shared.db import insert_rows
from crm_shared.errors import CrmError
from crm_shared.outbox import record_events
from services.mail import parsing
from services.mail.accounts import utcnow
from services.mail.models import MailAccount, MailEntry, MailFolder, MailMessage

log = logging.getLogger(__name__)

MAIL_LOGGED = "mail_logged"


class Ledger(Protocol):
    def reserve(self, tenant_id: str, nbytes: int, purpose: str) -> str: ...
    def commit(self, reservation_id: str, nbytes: int) -> None: ...
    def release(self, reservation_id: str) -> None: ...


class Directory(Protocol):
    def match(self, tenant_id: str, email: str) -> dict[str, Any]:
        """The contacts and counterparties of an address; ``{}`` when none, or when nobody can say."""


class QuotaExceeded(Exception):
    pass


@dataclass
class SyncLimits:
    batch: int = 100
    max_message_bytes: int = 25 * 1024 * 1024
    reconcile_every: dt.timedelta = dt.timedelta(hours=24)
    deadline: float | None = None  # time.monotonic() after which a poll stops between batches
    should_stop: Callable[[], bool] = lambda: False  # the service is stopping: stop between batches

    def over(self) -> bool:
        return (self.deadline is not None and time.monotonic() > self.deadline) or self.should_stop()


@dataclass
class SyncResult:
    fetched: int = 0
    skipped: int = 0
    behind: int = 0
    reconcile_missing: int = 0
    directions: dict[str, int] = field(default_factory=lambda: {"incoming": 0, "outgoing": 0})


def _counterpart(parsed: parsing.Parsed, outgoing: bool) -> str | None:
    if outgoing:
        return next((a["email"] for a in parsed.to + parsed.cc), None)
    return parsed.sender["email"] if parsed.sender else None


class FolderSync:
    """One folder of one account, on a logged-in client."""

    def __init__(self, session: Session, account: MailAccount, client: Any, folder: str, ledger: Ledger,
                 directory: Directory, limits: SyncLimits, commit: Callable[[], None],
                 renew: Callable[[], None] = lambda: None) -> None:
        self.session = session
        self.account = account
        self.client = client
        self.folder = folder
        self.ledger = ledger
        self.directory = directory
        self.limits = limits
        self.commit = commit
        self.renew = renew
        self.outgoing_folder = bool(account.sent_folder) and folder == account.sent_folder
        self._matches: dict[str, dict[str, Any]] = {}

    def state(self) -> MailFolder:
        key = (self.account.tenant_id, self.account.id, self.folder)
        row = self.session.get(MailFolder, key)
        if row is None:
            row = MailFolder(tenant_id=key[0], account_id=key[1], folder=key[2], uidvalidity=None, last_uid=0,
                             messages_behind=0, reconcile_missing=0)
            self.session.add(row)
            self.session.flush()
        return row

    def run(self, result: SyncResult) -> None:
        info = self.client.select_folder(self.folder, readonly=True)
        validity = int(info[b"UIDVALIDITY"])
        state = self.state()
        if state.uidvalidity != validity:
            if state.uidvalidity is not None:
                log.info("account %s folder %s: UIDVALIDITY %s -> %s, resyncing", self.account.id, self.folder,
                         state.uidvalidity, validity)
            state.uidvalidity, state.last_uid, state.reconciled_at = validity, 0, None
            self.commit()
        uids = sorted(u for u in self.client.search(["UID", f"{state.last_uid + 1}:*"]) if u > state.last_uid)
        state.messages_behind = len(uids)
        self.commit()
        for start in range(0, len(uids), self.limits.batch):
            if self.limits.over():
                break
            chunk = uids[start:start + self.limits.batch]
            self._store_batch(state, chunk, validity, result)
            state.last_uid = max(state.last_uid, chunk[-1])
            state.messages_behind = max(0, len(uids) - start - len(chunk))
            self.commit()
            self._commit_pending()
            self.renew()
        result.behind += state.messages_behind
        if state.messages_behind == 0:
            if state.reconciled_at is None:  # first caught up since a (new) UIDVALIDITY
                self._forget_other_validities(validity)
            due = state.reconciled_at is None or utcnow() - state.reconciled_at >= self.limits.reconcile_every
            if due and state.last_uid > 0:
                self.reconcile(state, validity, result)

    def reconcile(self, state: MailFolder, validity: int, result: SyncResult) -> int:
        """Fetches what the server has at or below the cursor that is not stored (a skipped message)."""
        on_server = set(self.client.search(["UID", f"1:{state.last_uid}"]))
        stored = set(self.session.scalars(sa.select(MailEntry.uid).where(
            MailEntry.tenant_id == self.account.tenant_id, MailEntry.account_id == self.account.id,
            MailEntry.folder == self.folder, MailEntry.uidvalidity == validity)))
        missing = sorted(u for u in on_server - stored if u <= state.last_uid)
        if missing:  # the ones skipped on purpose (too large) stay skipped
            sizes = self.client.fetch(missing, ["RFC822.SIZE"])
            missing = [u for u in missing if int(sizes.get(u, {}).get(b"RFC822.SIZE", 0))
                       <= self.limits.max_message_bytes]
        for start in range(0, len(missing), self.limits.batch):
            self._store_batch(state, missing[start:start + self.limits.batch], validity, result)
            self.commit()
            self._commit_pending()
        state.reconciled_at, state.reconcile_missing = utcnow(), len(missing)
        result.reconcile_missing += len(missing)
        self.commit()
        if missing:
            log.warning("account %s folder %s: reconciliation fetched %s missing messages", self.account.id,
                        self.folder, len(missing))
        return len(missing)

    def _forget_other_validities(self, validity: int) -> None:
        self.session.execute(sa.delete(MailEntry).where(
            MailEntry.tenant_id == self.account.tenant_id, MailEntry.account_id == self.account.id,
            MailEntry.folder == self.folder, MailEntry.uidvalidity != validity))

    # -- one batch ------------------------------------------------------------------------
    def _store_batch(self, state: MailFolder, uids: list[int], validity: int, result: SyncResult) -> None:
        fetched = self.client.fetch(uids, ["BODY.PEEK[]", "RFC822.SIZE", "INTERNALDATE"])
        batch: list[tuple[int, bytes, parsing.Parsed, dt.datetime | None]] = []
        for uid in uids:
            data = fetched.get(uid)
            if data is None:  # expunged between SEARCH and FETCH
                continue
            raw = data.get(b"BODY[]") or b""
            if len(raw) > self.limits.max_message_bytes:
                result.skipped += 1
                continue
            internal = data.get(b"INTERNALDATE")
            if isinstance(internal, dt.datetime) and internal.tzinfo is None:
                internal = internal.replace(tzinfo=dt.timezone.utc)
            batch.append((uid, raw, parsing.parse(raw), internal))
        if not batch:
            return
        keys = {p.key for _, _, p, _ in batch}
        known = dict(self.session.execute(sa.select(MailMessage.message_key, MailMessage.id).where(
            MailMessage.tenant_id == self.account.tenant_id, MailMessage.message_key.in_(keys))).all())
        new: dict[str, tuple[bytes, parsing.Parsed, dt.datetime | None]] = {}
        for _, raw, parsed, internal in batch:
            if parsed.key not in known and parsed.key not in new:
                new[parsed.key] = (raw, parsed, internal)
        nbytes = sum(len(raw) for raw, _, _ in new.values())
        reservation = None
        if nbytes:
            try:
                reservation = self.ledger.reserve(self.account.tenant_id, nbytes, f"mail {self.account.id}")
            except CrmError as exc:
                if exc.code == "quota_exceeded":
                    raise QuotaExceeded(str(exc)) from None
                raise
        stored = 0
        try:
            ids, elsewhere = self._insert_messages(new)
            stored = sum(len(new[k][0]) for k in ids)
            known.update(ids)
            known.update(elsewhere)
            entries = [{"tenant_id": self.account.tenant_id, "account_id": self.account.id, "folder": self.folder,
                        "uidvalidity": validity, "uid": uid, "message_id": known[p.key],
                        "user_id": self.account.user_id} for uid, _, p, _ in batch]
            insert_rows(self.session.connection(), MailEntry.__table__, entries, skip_conflicts=True)
            self.account.pending_reservation = reservation
            self.account.pending_bytes = stored
        except Exception:
            self.session.rollback()
            if reservation:
                self.ledger.release(reservation)
            raise
        for key in ids:
            direction = self._direction(new[key][1])
            result.directions[direction] += 1
        result.fetched += len(ids)

    def _direction(self, parsed: parsing.Parsed) -> str:
        mine = parsed.sender is not None and parsed.sender["email"].lower() == self.account.email.lower()
        return "outgoing" if self.outgoing_folder or mine else "incoming"

    def _insert_messages(self, new: dict[str, tuple[bytes, parsing.Parsed, dt.datetime | None]]
                         ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Inserts the messages not stored yet, in one statement; answers key → id of those this call
        inserted, and of those a concurrent poll of another account of the tenant stored first."""
        rows = []
        for raw, parsed, internal in new.values():
            direction = self._direction(parsed)
            counterpart = _counterpart(parsed, direction == "outgoing")
            rows.append(store_values(self.account, parsed, raw, direction, counterpart, self._match(counterpart),
                                     parsed.sent_at or internal or utcnow()))
        if not rows:
            return {}, {}
        made = insert_rows(self.session.connection(), MailMessage.__table__, rows, skip_conflicts=True)
        inserted: dict[str, Any] = {r["message_key"]: r["id"] for r in rows}
        elsewhere: dict[str, Any] = {}
        if made < len(rows):  # a concurrent poll stored some first: theirs are the ids
            stored = dict(self.session.execute(sa.select(MailMessage.message_key, MailMessage.id).where(
                MailMessage.tenant_id == self.account.tenant_id,
                MailMessage.message_key.in_(list(inserted)))).all())
            elsewhere = {k: v for k, v in stored.items() if v != inserted[k]}
            inserted = {k: v for k, v in inserted.items() if k not in elsewhere}
        announce(self.session, self.account, [r for r in rows if r["message_key"] in inserted])
        return inserted, elsewhere

    def _match(self, address: str | None) -> dict[str, Any]:
        if not address:
            return {}
        if address not in self._matches:
            self._matches[address] = self.directory.match(self.account.tenant_id, address)
        return self._matches[address]

    def _commit_pending(self) -> None:
        commit_pending(self.session, self.account, self.ledger, self.commit)


def commit_pending(session: Session, account: MailAccount, ledger: Ledger, commit: Callable[[], None]) -> None:
    """Books a reservation whose batch is in the database (also one a crash left behind)."""
    if not account.pending_reservation:
        return
    try:
        ledger.commit(account.pending_reservation, int(account.pending_bytes or 0))
    except CrmError as exc:
        log.warning("account %s: could not commit storage reservation yet: %s", account.id, exc)
        return
    account.pending_reservation, account.pending_bytes = None, 0
    commit()


def store_values(account: MailAccount, parsed: parsing.Parsed, raw: bytes, direction: str, counterpart: str | None,
                 link: dict[str, Any], sent_at: dt.datetime | None) -> dict[str, Any]:
    return {"tenant_id": account.tenant_id, "id": uuid.uuid4(), "message_key": parsed.key,
            "message_id": parsed.message_id[:998] if parsed.message_id else None, "direction": direction,
            "subject": parsed.subject, "sender": parsed.sender, "to": parsed.to, "cc": parsed.cc,
            "sent_at": sent_at, "text": parsed.text, "html": parsed.html,
            "attachments": [{"filename": a.filename, "content_type": a.content_type, "size": a.size}
                            for a in parsed.attachments],
            "size": len(raw), "raw": raw, "counterpart": counterpart[:320] if counterpart else None,
            "contact_id": _uuid(link.get("contact_id")), "counterparty_id": _uuid(link.get("counterparty_id")),
            "created_at": utcnow()}


def _uuid(value: Any) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value)) if value else None
    except ValueError:
        return None


def announce(session: Session, account: MailAccount, rows: list[dict[str, Any]]) -> None:
    """``mail.mail_logged`` for each new message: the crm records a communication (the same message
    again updates it)."""
    record_events(session, MAIL_LOGGED, [({
        "tenant_id": account.tenant_id, "message_id": row["message_id"] or row["message_key"],
        "direction": row["direction"], "sent_at": (row["sent_at"] or row["created_at"]).isoformat(),
        "subject": (row["subject"] or "")[:1000], "email": row["counterpart"], "user_id": str(account.user_id),
        "contact_id": str(row["contact_id"]) if row["contact_id"] else None,
        "counterparty_id": str(row["counterparty_id"]) if row["counterparty_id"] else None,
    }, str(row["id"])) for row in rows], account.tenant_id)


def folders_of(account: MailAccount) -> list[str]:
    names = ["INBOX"]
    if account.sent_folder and account.sent_folder != "INBOX":
        names.append(account.sent_folder)
    return names


def sync_account(session: Session, account: MailAccount, client: Any, ledger: Ledger, directory: Directory,
                 limits: SyncLimits, commit: Callable[[], None], renew: Callable[[], None] = lambda: None,
                 folders: Iterable[str] | None = None) -> SyncResult:
    """Every folder of the account, on a logged-in client. ``QuotaExceeded`` stops it."""
    result = SyncResult()
    commit_pending(session, account, ledger, commit)
    for folder in folders or folders_of(account):
        FolderSync(session, account, client, folder, ledger, directory, limits, commit, renew).run(result)
    return result
