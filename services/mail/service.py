"""Nameko entrypoints of the mail service. They stay thin: validate, call
the domain code, return plain data.

The rights are checked here, where the accounts live: a user manages their
own accounts and ``users.manage`` anyone's; sending needs ``mail.send``;
stored messages follow ``communications.read`` (``services.mail.messages``).
The caller's principal comes from the users service (one call; these are
not hot paths). Stored mail counts against the tenant's disk quota through
auth's storage ledger; messages are linked by the crm's ``match_contact`` and
announced as ``mail.mail_logged``."""
from __future__ import annotations

import datetime as dt
import logging
import time
import uuid
from typing import Any

import eventlet
import sqlalchemy as sa
from eventlet.queue import Empty, LightQueue
from nameko.dependency_providers import Config
from nameko.exceptions import RemoteError
from nameko.timer import timer

from contracts import journal
from crm_shared import scopes
from crm_shared.config import settings_of
from crm_shared.db import read_only
from crm_shared.errors import Conflict, CrmError
from crm_shared.events import event_data, first_delivery, forget_processed_before, handle_event
from crm_shared.jobs import Stopping, setting_job_timer
from crm_shared.rpc import ClusterRpc, rpc
from crm_shared.secrets import Secrets
from crm_shared.service import DatabaseServiceBase
from services.mail import accounts, idle, messages, polling, sending, servers
from services.mail import metrics as m
from services.mail.dependencies import ReplicaId, SessionFactory
from services.mail.exceptions import SendRefused, ServerRefused
from services.mail.models import MailAccount, MailEntry, MailFolder, MailMessage
from services.mail.schemas import UserEvent
from services.mail.settings import Settings

log = logging.getLogger(__name__)

domain_rpc = rpc(expected_exceptions=(CrmError,))


class AuthLedger:
    """The tenant's disk quota: auth's storage ledger."""

    def __init__(self, auth: Any) -> None:
        self.auth = auth

    def reserve(self, tenant_id: str, nbytes: int, purpose: str) -> str:
        return str(self.auth.reserve_storage(tenant_id, nbytes, purpose))

    def commit(self, reservation_id: str, nbytes: int) -> None:
        self.auth.commit_storage(reservation_id, nbytes)

    def release(self, reservation_id: str) -> None:
        try:
            self.auth.release_storage(reservation_id)
        except CrmError as exc:  # it runs out by itself (AUTH_STORAGE_RESERVATION_TTL_SECONDS)
            log.warning("could not release storage reservation %s: %s", reservation_id, exc)


class CrmDirectory:
    """Contacts and counterparties by address: the crm's ``match_contact``. Linking is best effort:
    when the crm cannot answer (down, slow, failing), the message is stored unlinked and the crm
    matches the address again from ``mail_logged``; a poll or a send never fails for it."""

    def __init__(self, crm: Any) -> None:
        self.crm = crm

    def match(self, tenant_id: str, email: str) -> dict[str, Any]:
        try:
            return dict(self.crm.match_contact(tenant_id, email=email))
        except (CrmError, RemoteError) as exc:
            log.warning("match_contact failed, the message stays unlinked: %s", exc)
            return {}


class MailService(DatabaseServiceBase):
    """Per-user mail accounts (presets, IMAP/SMTP settings), connection checks, folders, the poller,
    stored messages and sending."""

    name = "mail"

    cluster: Any = ClusterRpc()
    config: Any = Config()
    secrets: Any = Secrets()
    sessions: Any = SessionFactory()
    replica: Any = ReplicaId()
    stopping: Any = Stopping()

    @property
    def settings(self) -> Settings:
        return settings_of(self.config, Settings)

    def _poll_settings(self, cap: float | None = None) -> polling.PollSettings:
        s = self.settings
        return polling.PollSettings(s.MAIL_POLL_LEASE_SECONDS, s.MAIL_FETCH_BATCH, s.MAIL_MAX_MESSAGE_BYTES,
                                    s.MAIL_RECONCILE_HOURS, cap)

    # -- who is asking ----------------------------------------------------------------------
    def _principal(self, caller: Any) -> dict[str, Any]:
        return scopes.caller_principal(self.cluster.users, caller)

    def _manager_of(self, caller: Any, user_id: str) -> dict[str, Any]:
        """The caller, allowed to manage ``user_id``'s accounts (who must exist in the tenant)."""
        principal = self._principal(caller)
        accounts.require_manage(principal, user_id)
        if str(principal["user_id"]) != str(user_id):
            self.cluster.users.get_principal(str(principal["tenant_id"]), str(user_id))  # 404 when unknown
        return principal

    def _account(self, caller: Any, user_id: str, account_id: str, lock: bool = False
                 ) -> tuple[dict[str, Any], MailAccount]:
        principal = self._manager_of(caller, user_id)
        return principal, accounts.get(self.db, str(principal["tenant_id"]), user_id, account_id, lock=lock)

    def _journal(self, principal: dict[str, Any], row: MailAccount, action: str, changes: dict[str, Any]) -> None:
        actor = {"id": str(principal["user_id"]), "login": principal.get("login"),
                 "full_name": principal.get("full_name")}
        self.outbox.record(self.db, journal.RECORD_CHANGED, {
            "tenant_id": row.tenant_id, "entity": "mail_account", "entity_id": str(row.id), "action": action,
            "actor": actor, "source": "api", "request_id": self.context.get("request_id"),
            "changes": {"user_id": str(row.user_id), **changes}}, str(row.id), row.tenant_id)

    # -- accounts ---------------------------------------------------------------------------
    @domain_rpc
    def list_mail_accounts(self, caller: dict[str, Any], user_id: str) -> dict[str, Any]:
        principal = self._manager_of(caller, user_id)
        rows = accounts.of_user(self.db, str(principal["tenant_id"]), user_id)
        return {"items": [accounts.account_out(r) for r in rows], "next_cursor": None}

    @domain_rpc
    def create_mail_account(self, caller: dict[str, Any], user_id: str, data: dict[str, Any]) -> dict[str, Any]:
        principal = self._manager_of(caller, user_id)
        row = accounts.create(self.db, self.secrets, str(principal["tenant_id"]), str(user_id), data)
        out = accounts.account_out(row)
        self._journal(principal, row, journal.CREATE, accounts.journal_changes(out))
        return out

    @domain_rpc
    def get_mail_account(self, caller: dict[str, Any], user_id: str, account_id: str) -> dict[str, Any]:
        return accounts.account_out(self._account(caller, user_id, account_id)[1])

    @domain_rpc
    def update_mail_account(self, caller: dict[str, Any], user_id: str, account_id: str,
                            data: dict[str, Any]) -> dict[str, Any]:
        principal, row = self._account(caller, user_id, account_id, lock=True)
        changes = accounts.update(self.db, self.secrets, row, data)
        if changes:
            self._journal(principal, row, journal.UPDATE, changes)
        return accounts.account_out(row)

    @domain_rpc
    def delete_mail_account(self, caller: dict[str, Any], user_id: str, account_id: str) -> None:
        """The account, its cursors and mailbox entries go; a message no other account holds goes too,
        and its bytes leave the quota."""
        principal, row = self._account(caller, user_id, account_id, lock=True)
        tenant_id = row.tenant_id
        held = sa.select(MailEntry.message_id).where(MailEntry.tenant_id == tenant_id,
                                                     MailEntry.account_id == row.id)
        others = sa.select(MailEntry.message_id).where(MailEntry.tenant_id == tenant_id,
                                                       MailEntry.account_id != row.id)
        orphans = sa.delete(MailMessage).where(MailMessage.tenant_id == tenant_id, MailMessage.id.in_(held),
                                               MailMessage.id.not_in(others)).returning(MailMessage.size)
        freed = sum(self.db.scalars(orphans))
        self.db.execute(sa.delete(MailEntry).where(MailEntry.tenant_id == tenant_id, MailEntry.account_id == row.id))
        self.db.execute(sa.delete(MailFolder).where(MailFolder.tenant_id == tenant_id,
                                                    MailFolder.account_id == row.id))
        self._journal(principal, row, journal.DELETE, accounts.journal_changes(accounts.account_out(row)))
        self.db.delete(row)
        self.db.commit()
        if freed:
            try:
                self.cluster.auth.release_stored(tenant_id, freed, f"mail-account:{row.id}")
            except CrmError as exc:
                log.warning("could not release %s bytes of deleted mail account %s: %s", freed, row.id, exc)

    # -- the server side of an account --------------------------------------------------------
    @domain_rpc
    def check_mail_account(self, caller: dict[str, Any], user_id: str, account_id: str) -> dict[str, Any]:
        """Logs in to IMAP and to SMTP for real, side by side, within the account's timeout."""
        _, row = self._account(caller, user_id, account_id)
        return self._check(row, self.db.commit)  # no transaction held while the servers answer

    @domain_rpc
    def check_mail_settings(self, caller: dict[str, Any], user_id: str, data: dict[str, Any]) -> dict[str, Any]:
        """«Проверить» before the account is saved: the settings of a new account (validated as a
        create is), logged in with for real; nothing is stored."""
        return self._check(self._unsaved(caller, user_id, data), self.db.rollback)

    def _unsaved(self, caller: dict[str, Any], user_id: str, data: dict[str, Any]) -> MailAccount:
        """The account ``data`` would create, built in a transaction the caller rolls back."""
        principal = self._manager_of(caller, user_id)
        return accounts.create(self.db, self.secrets, str(principal["tenant_id"]), str(user_id), data)

    def _check(self, row: MailAccount, release: Any) -> dict[str, Any]:
        cap = self.settings.MAIL_CHECK_TIMEOUT_SECONDS
        imap_ep = accounts.imap_endpoint(row, self.secrets, cap)
        smtp_ep, authenticate = accounts.smtp_endpoint(row, self.secrets, cap)
        hint = accounts.app_password_hint(row)
        secure = row.smtp_require_secure_auth
        release()

        def imap_side() -> None:
            servers.imap_call(imap_ep, lambda client: None, hint)

        def smtp_side() -> None:
            client = servers.smtp_login(smtp_ep, authenticate, secure, hint)
            client.quit()

        results = [eventlet.spawn(_timed, "imap", imap_side), eventlet.spawn(_timed, "smtp", smtp_side)]
        return dict(r.wait() for r in results)

    @domain_rpc
    def list_mail_folders(self, caller: dict[str, Any], user_id: str, account_id: str) -> dict[str, Any]:
        _, row = self._account(caller, user_id, account_id)
        return self._folders(row, self.db.commit)

    @domain_rpc
    def list_mail_folders_of_settings(self, caller: dict[str, Any], user_id: str,
                                      data: dict[str, Any]) -> dict[str, Any]:
        """«Загрузить папки» before the account is saved; nothing is stored."""
        return self._folders(self._unsaved(caller, user_id, data), self.db.rollback)

    def _folders(self, row: MailAccount, release: Any) -> dict[str, Any]:
        endpoint = accounts.imap_endpoint(row, self.secrets, self.settings.MAIL_CHECK_TIMEOUT_SECONDS)
        hint = accounts.app_password_hint(row)
        release()
        try:
            found = servers.imap_call(endpoint, servers.folders, hint)
        except servers.MailServerError as exc:
            raise ServerRefused(exc.message, details={"reason": exc.reason}) from None
        return {"items": found, "next_cursor": None}

    @domain_rpc
    def sync_mail_account(self, caller: dict[str, Any], user_id: str, account_id: str) -> dict[str, Any]:
        """The user's "check mail now": polls at once (after a poll already running ends) and answers
        the status when this poll has finished or failed."""
        _, row = self._account(caller, user_id, account_id)
        key = (row.tenant_id, row.id)
        self.db.commit()
        settings = self.settings
        owner = f"{self.replica}/{uuid.uuid4().hex[:8]}"
        if not polling.wait_for_lease(self.db, key, owner, settings.MAIL_POLL_LEASE_SECONDS,
                                      settings.MAIL_SYNC_MAX_SECONDS, eventlet.sleep):
            raise Conflict("a poll of this account is still running; try again shortly", code="poll_running")
        result = polling.poll(self.db, key, owner, self.secrets, AuthLedger(self.cluster.auth),
                              CrmDirectory(self.cluster.crm), self._poll_settings(settings.MAIL_CHECK_TIMEOUT_SECONDS),
                              trigger="user", deadline=time.monotonic() + settings.MAIL_SYNC_MAX_SECONDS)
        row = self.db.get(MailAccount, key, populate_existing=True)
        return polling.status_out(self.db, row, idle.watching(row)) | {"fetched": result.fetched if result else 0}

    @domain_rpc
    def mail_account_status(self, caller: dict[str, Any], user_id: str, account_id: str) -> dict[str, Any]:
        _, row = self._account(caller, user_id, account_id)
        return polling.status_out(self.db, row, idle.watching(row))

    # -- messages -------------------------------------------------------------------------------
    @domain_rpc
    @read_only
    def list_mail_messages(self, caller: dict[str, Any], query: dict[str, Any] | None = None) -> dict[str, Any]:
        return messages.list_messages(self.db, self._principal(caller), query)

    @domain_rpc
    @read_only
    def get_mail_message(self, caller: dict[str, Any], message_id: str) -> dict[str, Any]:
        return messages.get_message(self.db, self._principal(caller), message_id)

    @domain_rpc
    def send_mail(self, caller: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
        principal = self._principal(caller)
        try:
            answer = sending.send(self.db, self.secrets, principal, data, AuthLedger(self.cluster.auth),
                                  CrmDirectory(self.cluster.crm), self.settings.MAIL_CHECK_TIMEOUT_SECONDS,
                                  self.db.commit)
        except SendRefused as exc:
            m.sent().labels(str(exc.details.get("reason") or "error")).inc()
            raise
        m.sent().labels("ok").inc()
        return answer

    # -- the poller -------------------------------------------------------------------------------
    @setting_job_timer("MAIL_POLL_TICK_SECONDS")
    def poll_due_accounts(self) -> None:
        """Runs until the service stops: keeps up to ``MAIL_POLL_CONCURRENCY`` polls going, each on
        an account leased to this replica, and takes more as they finish."""
        settings = self.settings
        pool = eventlet.GreenPool(settings.MAIL_POLL_CONCURRENCY)
        watches = eventlet.GreenPool(max(1, settings.MAIL_IDLE_MAX_CONNECTIONS))
        wake: LightQueue = LightQueue()
        ledger, directory = AuthLedger(self.cluster.auth), CrmDirectory(self.cluster.crm)
        poll_settings = self._poll_settings()
        observed = 0.0
        while not self.stopping():
            keys = polling.claim_due(self.db, self.replica, pool.free(), settings.MAIL_POLL_LEASE_SECONDS)
            self.db.commit()
            for key in keys:
                pool.spawn_n(self._poll_in_own_session, key, ledger, directory, poll_settings, wake)
            if settings.MAIL_IDLE_MAX_CONNECTIONS:
                free = settings.MAIL_IDLE_MAX_CONNECTIONS - watches.running()
                for key in idle.claim(self.db, self.replica, free):
                    watches.spawn_n(idle.watch, self.sessions, key, self.replica, self.secrets,
                                    settings.MAIL_CHECK_TIMEOUT_SECONDS, self.stopping, lambda: wake.put(None))
                self.db.commit()
            if time.monotonic() - observed > 15:
                m.accounts_behind().set(polling.count_behind(self.db))
                self.db.commit()
                observed = time.monotonic()
            _sleep_unless(self.stopping, settings.MAIL_POLL_TICK_SECONDS, wake)
        pool.waitall()
        watches.waitall()

    def _poll_in_own_session(self, key: polling.Key, ledger: AuthLedger, directory: CrmDirectory,
                             poll_settings: polling.PollSettings, done: LightQueue) -> None:
        """One poll; then the loop is woken to fill the free slot at once (not at the next tick)."""
        session = self.sessions()
        try:
            polling.poll(session, key, self.replica, self.secrets, ledger, directory, poll_settings,
                         should_stop=self.stopping)
        except Exception:  # noqa: BLE001 - one account's failure must not end the poller
            log.exception("poll of mail account %s failed", key[1])
            session.rollback()
        finally:
            session.close()
            done.put(None)

    # -- the users service's events ---------------------------------------------------------------
    @handle_event("users", "user_deactivated")
    def on_user_deactivated(self, event: dict[str, Any]) -> None:
        self._pause_user(event, "mail.on_user_deactivated")

    @handle_event("users", "user_deleted")
    def on_user_deleted(self, event: dict[str, Any]) -> None:
        self._pause_user(event, "mail.on_user_deleted")

    def _pause_user(self, event: dict[str, Any], consumer: str) -> None:
        """A blocked or deleted user's accounts stop polling (they stay, inactive)."""
        data = event_data(UserEvent, event)
        if first_delivery(self.db, event, consumer):
            self.db.execute(sa.update(MailAccount).where(MailAccount.tenant_id == data.tenant_id,
                                                         MailAccount.user_id == data.user_id)
                            .values(active=False, updated_at=accounts.utcnow()))

    @timer(interval=3600)
    def housekeeping(self) -> None:
        forget_processed_before(self.db, dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=3))


def _timed(side: str, fn: Any) -> tuple[str, dict[str, Any]]:
    started = time.monotonic()
    try:
        fn()
        result: dict[str, Any] = {"ok": True, "error": None, "reason": None}
    except servers.MailServerError as exc:
        result = {"ok": False, "error": exc.message, "reason": exc.reason}
    result["elapsed_ms"] = int((time.monotonic() - started) * 1000)
    m.checks().labels(side, "ok" if result["ok"] else result["reason"]).inc()
    return side, result


def _sleep_unless(stopping: Any, seconds: float, wake: LightQueue) -> None:
    """Sleeps up to ``seconds``: less when the service stops or a watch reports new mail."""
    deadline = time.monotonic() + seconds
    while not stopping() and time.monotonic() < deadline:
        try:
            wake.get(timeout=min(0.2, seconds))
        except Empty:
            continue
        while wake.qsize():
            wake.get_nowait()
        return


SERVICE = MailService
