"""An engine worker: one process holding up to ``TELEPHONY_ACCOUNTS_PER_WORKER``
SIP accounts (pjsua2 allows 8 per process), leased from ``sip_accounts``.

``python -m services.telephony.engine`` runs one; ``--workers N`` runs a
fleet of N forked from one parent (``Fleet``: they share its imported code
copy-on-write, and one that dies is forked again). The telephony service
starts a fleet of ``TELEPHONY_ENGINE_WORKERS`` beside itself
(``dependencies.EngineWorkers``) and starts it again if it dies. Replicas share
the accounts through the leases: a worker renews its leases every
``TELEPHONY_ENGINE_SYNC_SECONDS`` and takes accounts whose lease ran out, so
a dead worker's accounts register elsewhere within
``TELEPHONY_LEASE_SECONDS``. A change to an account (``NOTIFY
telephony_engines``) wakes every worker at once.

The loop is single-threaded: pjsua2 works for a few milliseconds
(``SipEngine.poll``), then what it reported is written to the database:
registrations, ringing calls (visible in the active list as soon as that
transaction commits), their ends (with ``telephony.call_logged`` in the
same transaction), click-to-call progress."""
from __future__ import annotations

import datetime as dt
import functools
import json
import logging
import os
import select
import signal
import socket
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from crm_shared.secrets import SecretBox, SecretDecryptionError
from services.telephony import accounts, calls
from services.telephony.models import Call, SipAccount
from services.telephony.settings import Settings
from services.telephony.sip import (
    CALL_STATE,
    ENDED,
    INCOMING,
    REGISTRATION,
    TALKING,
    TRANSFER,
    EngineError,
    EngineEvent,
    SipEngine,
)

log = logging.getLogger("services.telephony.engine")

Key = tuple[str, uuid.UUID]
NO_ANSWER_CODES = {408, 480, 486, 487, 600, 603}


@dataclass
class Dialled:
    """A click-to-call this worker placed: the user's phone rings, then the transfer."""

    tenant_id: str
    call_id: uuid.UUID
    to_number: str
    started: float
    outcome: str | None = None
    reason: str | None = None


def _now_sql(seconds: float) -> Any:
    return sa.func.now() + sa.func.make_interval(0, 0, 0, 0, 0, 0, seconds)


class EngineWorker:
    """The loop of one worker process, with its SIP engine; each call is given the database session."""

    def __init__(self, settings: Settings, engine: SipEngine, box: SecretBox, worker_id: str,
                 clock: Callable[[], float] = time.monotonic,
                 report: Callable[[str, dict[str, str], float], None] | None = None) -> None:
        self.settings, self.engine, self.box = settings, engine, box
        self.report = report or (lambda kind, labels, value: None)
        self.worker_id, self.clock = worker_id, clock
        self.held: dict[Key, int] = {}          # account -> the version the engine holds
        self.incoming: dict[str, tuple[str, uuid.UUID]] = {}  # SIP Call-ID -> the call's row
        self.dialled: dict[str, Dialled] = {}
        self.next_sync = 0.0
        self.wake = False

    # -- leases -----------------------------------------------------------------------------------
    def sync(self, session: Session) -> None:
        """Renews this worker's leases, lets go of accounts no longer active (or taken over), re-creates
        changed ones, takes accounts whose lease ran out, and picks up click-to-call commands."""
        s = self.settings
        lease = _now_sql(s.TELEPHONY_LEASE_SECONDS)
        renewed = {(r.tenant_id, r.user_id): r.version for r in session.execute(
            sa.update(SipAccount).where(SipAccount.worker == self.worker_id, SipAccount.active.is_(True))
            .values(lease_until=lease).returning(SipAccount.tenant_id, SipAccount.user_id, SipAccount.version))}
        session.execute(sa.update(SipAccount).where(SipAccount.worker == self.worker_id,
                                                    SipAccount.active.is_(False))
                        .values(worker=None, lease_until=None, reg_state="off", reg_expires_at=None))
        for key in [k for k in self.held if k not in renewed]:
            self._drop(key)
        changed = [k for k, v in renewed.items() if self.held.get(k) != v]
        free = self.engine.free + sum(1 for k in changed if k in self.held)
        if free > 0:
            due = (sa.select(SipAccount.tenant_id, SipAccount.user_id)
                   .where(SipAccount.active.is_(True),
                          sa.or_(SipAccount.lease_until.is_(None), SipAccount.lease_until < sa.func.now()))
                   .order_by(SipAccount.lease_until.nulls_first()).limit(max(0, free - len(changed)))
                   .with_for_update(skip_locked=True))
            taken = session.execute(
                sa.update(SipAccount).where(sa.tuple_(SipAccount.tenant_id, SipAccount.user_id).in_(due))
                .values(worker=self.worker_id, lease_until=lease)
                .returning(SipAccount.tenant_id, SipAccount.user_id)).all()
            changed += [(t, u) for t, u in taken]
        for key in changed:
            row = session.get(SipAccount, key, populate_existing=True)
            if row is not None:
                self._hold(session, row)
        self._dial_commands(session)
        self._ring_timeouts(session)
        self._forget_lost_calls(session)
        session.commit()

    def _hold(self, session: Session, row: SipAccount) -> None:
        key = (row.tenant_id, row.user_id)
        s = self.settings
        self.engine.remove(key)
        self.held.pop(key, None)
        try:
            spec = accounts.spec_of(row, self.box, s.TELEPHONY_REGISTER_EXPIRES_SECONDS,
                                    s.TELEPHONY_REGISTER_RETRY_SECONDS, s.TELEPHONY_KEEPALIVE_SECONDS)
            self.engine.add(key, spec)
        except SecretDecryptionError:
            self._failed(row, "the password cannot be decrypted (CRM_SECRET_KEYS): enter it again")
        except EngineError as exc:
            self._failed(row, f"the SIP engine refused the account: {exc}"[:200])
        else:
            row.reg_state = "registering" if row.notify_incoming else "off"
            row.reg_code, row.reg_reason, row.reg_expires_at = None, None, None
            row.reg_changed_at = accounts.utcnow()
        # held even when it failed: the lease keeps other workers from retrying it in a loop
        self.held[key] = row.version

    @staticmethod
    def _failed(row: SipAccount, reason: str) -> None:
        row.reg_state, row.reg_code, row.reg_reason, row.reg_expires_at = "failed", None, reason, None
        row.reg_changed_at = accounts.utcnow()

    def _drop(self, key: Key) -> None:
        self.engine.remove(key)  # unregisters, hangs up its calls
        self.held.pop(key, None)

    def release_all(self, session: Session) -> None:
        """On a clean stop: unregister everything and free the leases, for another worker to take now."""
        for key in list(self.held):
            self._drop(key)
        session.execute(sa.update(SipAccount).where(SipAccount.worker == self.worker_id)
                        .values(worker=None, lease_until=None, reg_state="registering", reg_expires_at=None))
        for dialled in list(self.dialled.values()):
            self._end(session, dialled.tenant_id, dialled.call_id, "failed", "the engine stopped")
        for tenant_id, call_id in list(self.incoming.values()):
            self._end(session, tenant_id, call_id, "engine_lost", "the engine stopped")
        session.commit()

    # -- click-to-call ----------------------------------------------------------------------------
    def _dial_commands(self, session: Session) -> None:
        if not self.held:
            return
        rows = session.scalars(sa.select(Call).where(
            Call.command == "dial", Call.ended_at.is_(None),
            sa.tuple_(Call.tenant_id, Call.user_id).in_(list(self.held))).with_for_update(skip_locked=True)).all()
        for row in rows:
            key = (row.tenant_id, row.user_id)
            spec = self.engine.spec(key) if row.user_id else None
            row.command, row.worker = None, self.worker_id
            if spec is None:
                self._finish(session, row, "failed", "the user's SIP account could not be used")
                continue
            try:
                handle = self.engine.dial(key, spec.login)  # the user's own phone first
            except EngineError as exc:
                self._finish(session, row, "failed", f"the SIP engine could not call: {exc}")
                continue
            row.external_id = handle[:200]
            self.dialled[handle] = Dialled(row.tenant_id, row.id, str(row.to_number), self.clock())

    def _forget_lost_calls(self, session: Session) -> None:
        """Ends this worker's open calls it no longer tracks (their end was lost to a database error)."""
        tracked = set(self.incoming) | set(self.dialled)
        rows = session.scalars(sa.select(Call).where(
            Call.worker == self.worker_id, Call.ended_at.is_(None),
            Call.started_at < sa.func.now() - dt.timedelta(seconds=10))).all()
        for row in rows:
            if row.external_id not in tracked:
                self._finish(session, row, "engine_lost", "the engine lost track of the call")

    def _ring_timeouts(self, session: Session) -> None:
        limit = self.settings.TELEPHONY_RING_SECONDS
        for handle, dialled in list(self.dialled.items()):
            if dialled.outcome is None and self.clock() - dialled.started > limit:
                row = session.get(Call, (dialled.tenant_id, dialled.call_id))
                if row is not None and row.answered_at is None:
                    dialled.outcome, dialled.reason = "no_answer", f"the phone did not answer within {limit:g} s"
                    self.engine.hangup(handle)

    # -- what the engine reported -----------------------------------------------------------------
    def handle(self, session: Session, events: list[EngineEvent]) -> None:
        for event in events:
            if event.kind == REGISTRATION:
                self._registration(session, event)
            elif event.kind == INCOMING:
                self._incoming(session, event)
            elif event.kind == CALL_STATE:
                self._call_state(session, event)
            elif event.kind == TRANSFER:
                self._transfer(session, event)
            session.commit()  # one event at a time: a database error loses no more than the one

    def _registration(self, session: Session, event: EngineEvent) -> None:
        tenant_id, user_id = event.key
        expires = (accounts.utcnow() + dt.timedelta(seconds=event.expires)
                   if event.state == "registered" else None)
        reason = None if event.state == "registered" else f"{event.code} {event.reason}".strip()[:200]
        session.execute(sa.update(SipAccount).where(
            SipAccount.tenant_id == tenant_id, SipAccount.user_id == user_id, SipAccount.worker == self.worker_id)
            .values(reg_state=event.state, reg_code=event.code, reg_reason=reason, reg_expires_at=expires,
                    reg_changed_at=accounts.utcnow()))

    def _incoming(self, session: Session, event: EngineEvent) -> None:
        tenant_id, user_id = event.key
        spec = self.engine.spec(event.key)
        assert event.call is not None
        row = calls.ring(session, tenant_id, user_id, "sip", event.call, event.from_number, event.from_name,
                         spec.login if spec else event.to_user, self.worker_id)
        self.incoming[event.call] = (row.tenant_id, row.id)
        session.commit()  # visible in the active list now
        self.report("visible", {}, time.monotonic() - event.at)

    def _call_state(self, session: Session, event: EngineEvent) -> None:
        assert event.call is not None
        dialled = self.dialled.get(event.call)
        if dialled is not None:
            row = session.get(Call, (dialled.tenant_id, dialled.call_id))
            if row is None:
                return
            if event.state == TALKING:
                calls.set_state(row, "talking", answered=True)
                try:
                    self.engine.transfer(event.call, dialled.to_number)
                    calls.set_state(row, "transferring")
                except EngineError as exc:
                    dialled.outcome, dialled.reason = "transfer_failed", f"the transfer could not start: {exc}"
                    self.engine.hangup(event.call)
            elif event.state == ENDED:
                del self.dialled[event.call]
                outcome, reason = dialled.outcome, dialled.reason
                if outcome is None:
                    if row.answered_at is not None:
                        outcome, reason = "answered", "the phone hung up before the transfer ended"
                    elif event.code in NO_ANSWER_CODES:
                        outcome, reason = "no_answer", f"{event.code} {event.reason}"
                    else:
                        outcome, reason = "failed", f"{event.code} {event.reason}"
                self._finish(session, row, outcome, reason, talk_seconds=int(event.extra.get("connected") or 0))
            return
        held = self.incoming.get(event.call)
        if held is None or event.state != ENDED:
            return
        del self.incoming[event.call]
        row = session.get(Call, held)
        if row is not None:
            elsewhere = bool(event.extra.get("elsewhere"))
            self._finish(session, row, "answered_elsewhere" if elsewhere else "missed",
                      "answered on another phone" if elsewhere else f"{event.code} {event.reason}")

    def _transfer(self, session: Session, event: EngineEvent) -> None:
        assert event.call is not None
        dialled = self.dialled.get(event.call)
        if dialled is None or not event.final:
            return
        if 200 <= event.code < 300:
            dialled.outcome, dialled.reason = "transferred", f"transferred to {dialled.to_number}"
        else:
            dialled.outcome, dialled.reason = "transfer_failed", f"{event.code} {event.reason}"
        self.engine.hangup(event.call)

    def _end(self, session: Session, tenant_id: str, call_id: uuid.UUID, outcome: str, reason: str) -> None:
        row = session.get(Call, (tenant_id, call_id))
        if row is not None:
            self._finish(session, row, outcome, reason)

    def _finish(self, session: Session, row: Call, outcome: str, reason: str | None,
                talk_seconds: int | None = None) -> None:
        if calls.end(session, row, outcome, reason, talk_seconds=talk_seconds):
            self.report("call", {"source": row.source, "direction": row.direction, "outcome": outcome}, 1.0)

    # -- the loop ---------------------------------------------------------------------------------
    def step(self, session: Session, poll_ms: int = 20) -> None:
        events = self.engine.poll(poll_ms)
        if events:
            self.handle(session, events)
        if self.wake or self.clock() >= self.next_sync:
            self.wake = False
            self.next_sync = self.clock() + self.settings.TELEPHONY_ENGINE_SYNC_SECONDS
            self.sync(session)


@functools.cache
def _reporter() -> Callable[[str, dict[str, str], float], None]:
    """Reports to the service that started this worker (a pipe; none when run by hand)."""
    fd = os.environ.get("TELEPHONY_ENGINE_REPORT_FD")
    if not fd:
        return lambda kind, labels, value: None
    pipe = os.fdopen(int(fd), "w", buffering=1)

    def report(kind: str, labels: dict[str, str], value: float) -> None:
        try:
            pipe.write(json.dumps({"kind": kind, "labels": labels, "value": value}) + "\n")
        except OSError:  # the service is gone; the worker stops with it
            pass
    return report


def _listen(engine: sa.Engine) -> Any:
    """A connection that hears ``NOTIFY telephony_engines``."""
    raw = engine.raw_connection()
    conn = raw.driver_connection
    conn.autocommit = True  # type: ignore[union-attr]
    with conn.cursor() as cur:  # type: ignore[union-attr]
        cur.execute(f"LISTEN {accounts.WAKE}")
    return conn


def run(settings: Settings, stop: Callable[[], bool]) -> None:
    from crm_shared.db import make_engine

    assert settings.DATABASE_URL
    db = make_engine(settings.DATABASE_URL, 2, "telephony-engine")
    sessions = sessionmaker(db, expire_on_commit=False)
    box = SecretBox.from_spec(settings.CRM_SECRET_KEYS)
    engine = SipEngine(settings.TELEPHONY_ACCOUNTS_PER_WORKER, settings.TELEPHONY_SIP_PORT,
                       settings.TELEPHONY_SIP_BIND or "", settings.TELEPHONY_SIP_PUBLIC_ADDRESS or "")
    engine.start()
    worker_id = f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    worker = EngineWorker(settings, engine, box, worker_id, report=_reporter())
    listener = _listen(db)
    log.info("engine worker %s holds up to %s accounts", worker_id, engine.max_accounts)
    session = sessions()
    try:
        while not stop():
            try:
                worker.step(session)
                if select.select([listener], [], [], 0)[0]:
                    listener.poll()
                    if listener.notifies:
                        listener.notifies.clear()
                        worker.wake = True
            except sa.exc.DBAPIError as exc:  # the database went away: keep the SIP side, retry shortly
                log.warning("engine worker %s: database error, retrying: %s", worker_id, exc)
                session.rollback()
                time.sleep(1)
                if getattr(exc, "connection_invalidated", False) or listener.closed:
                    listener = _listen(db)
            except Exception:  # noqa: BLE001 - one bad event or account must not end the others' registrations
                log.exception("engine worker %s: a step failed; going on", worker_id)
                session.rollback()
                time.sleep(0.5)
    finally:
        try:
            worker.release_all(session)
        finally:
            engine.stop()
            session.close()


def _serve_one(settings: Settings) -> None:
    """One worker, until SIGTERM or until its parent goes away (killed: no orphan keeps registrations)."""
    stopping = {"now": False}

    def on_signal(signum: int, frame: Any) -> None:
        stopping["now"] = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    parent = os.getppid()
    run(settings, lambda: stopping["now"] or os.getppid() != parent)


class Fleet:
    """``--workers N``: N workers forked from this process once everything is imported, so that they
    share its memory copy-on-write (about 27 MB each instead of about 100 MB each when started
    apart); one that dies is forked again; SIGTERM is passed on and waited for."""

    def __init__(self, settings: Settings, size: int,
                 report: Callable[[str, dict[str, str], float], None]) -> None:
        self.settings, self.size, self.report = settings, size, report
        self.children: set[int] = set()
        self.stopping = False

    def _fork(self) -> None:
        pid = os.fork()
        if pid == 0:  # the worker
            code = 0
            try:
                _serve_one(self.settings)
            except BaseException:  # noqa: BLE001 - a worker's last words, then its exit code
                log.exception("engine worker %s failed", os.getpid())
                code = 1
            finally:
                os._exit(code)
        self.children.add(pid)

    def run(self) -> int:
        import gc

        import pjsua2  # noqa: F401 - the native library loaded once, shared by the workers

        def on_signal(signum: int, frame: Any) -> None:
            self.stopping = True

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        gc.freeze()  # the imported objects stay where they are: their pages stay shared
        parent = os.getppid()
        for _ in range(self.size):
            self._fork()
        while not self.stopping and os.getppid() == parent:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                pid = 0
            if pid:
                self.children.discard(pid)
                log.warning("engine worker %s ended (%s); starting another", pid, status)
                self.report("restart", {}, 1.0)
                self._fork()
            else:
                time.sleep(0.2)
        for pid in self.children:
            _signal(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while self.children and time.monotonic() < deadline:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid:
                self.children.discard(pid)
            else:
                time.sleep(0.05)
        for pid in self.children:
            _signal(pid, signal.SIGKILL)
        return 0


def _signal(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass


def main(argv: list[str]) -> int:
    """``python -m services.telephony.engine [--workers N]``: one worker, or a fleet of N."""
    from crm_shared.config import load_settings
    from crm_shared.logging import configure_logging

    given = os.environ.get("TELEPHONY_ENGINE_SETTINGS")
    if given:
        settings = Settings.model_validate(json.loads(given))
    else:
        settings, _ = load_settings(Settings, Path(__file__).with_name("config.yaml"))
    configure_logging("telephony-engine", settings.LOG_LEVEL, settings.LOG_FORMAT)
    if argv[:1] == ["--workers"] and len(argv) == 2:
        return Fleet(settings, int(argv[1]), _reporter()).run()
    if argv:
        print(main.__doc__, file=sys.stderr)
        return 2
    _serve_one(settings)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
