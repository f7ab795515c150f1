"""The telephony service's rules without a broker or a SIP network: caller
IDs, "answered elsewhere", check reasons, the Mango Office wire format, and
the engine worker's leases and call handling against a fake engine (on a
real database); and the re-encryption command."""
from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from contracts.telephony import CallIn, SipAccountIn
from crm_shared.db import make_engine
from crm_shared.secrets import SecretBox, generate_key
from crm_shared.testing import Databases, migrated_database
from services.telephony import accounts, check, mango
from services.telephony.engine import EngineWorker
from services.telephony.models import Call, SipAccount
from services.telephony.settings import Settings
from services.telephony.sip import (
    CALL_STATE,
    ENDED,
    INCOMING,
    REGISTRATION,
    TALKING,
    TRANSFER,
    AccountSpec,
    EngineEvent,
    EngineFull,
    account_token,
    completed_elsewhere,
    parse_party,
    request_token,
)

ROOT = Path(__file__).resolve().parents[2]


def test_caller_id_and_answered_elsewhere():
    assert parse_party('"Ivan Petrov" <sip:+79161234567@pstn.test>;tag=1') == ("+79161234567", "Ivan Petrov")
    assert parse_party("<sip:alice@crm.test>") == ("alice", None)
    assert parse_party('Петров <sips:100@pbx.test;transport=tls>') == ("100", "Петров")
    assert parse_party("sip:bob@crm.test") == ("bob", None)
    assert parse_party("") == (None, None)
    cancel = 'CANCEL sip:a@b SIP/2.0\r\nReason: SIP;cause=200;text="Call completed elsewhere"\r\n\r\n'
    assert completed_elsewhere(cancel)
    assert not completed_elsewhere('CANCEL sip:a@b SIP/2.0\r\nReason: SIP;cause=487\r\n\r\n')
    assert not completed_elsewhere("CANCEL sip:a@b SIP/2.0\r\n\r\n")
    # an INVITE finds its account by the token of the Contact it was sent to, not by its To header
    key_a, key_b = ("tenant-a", uuid.UUID(int=1)), ("tenant-b", uuid.UUID(int=1))
    assert account_token(key_a) != account_token(key_b) and len(account_token(key_a)) == 12
    invite = f"INVITE sip:u06@10.0.0.5:5062;ob;crm={account_token(key_b)} SIP/2.0\r\nTo: <sip:u06@sipnet.ru>\r\n"
    assert request_token(invite) == account_token(key_b)
    assert request_token("INVITE sip:u06@10.0.0.5:5062 SIP/2.0\r\n") is None


def test_check_reasons():
    assert check.classify(200, "OK") is None
    assert check.classify(401, "Unauthorized") == check.classify(403, "Forbidden") == "wrong_credentials"
    assert check.classify(404, "Not Found") == "unknown_user"
    assert check.classify(None, "") == check.classify(408, "Request Timeout") == "timeout"
    assert check.classify(502, "gethostbyname() has returned error (PJ_ERESOLVE)") == "dns"
    assert check.classify(503, "Service Unavailable") == "refused"
    assert check.classify(500, "Server Error") == "error"


def test_the_account_contract():
    mango_form = SipAccountIn.model_validate({"mango_username": "User@MyCompany.mangosip.ru", "password": "p"})
    assert (mango_form.login, mango_form.domain, mango_form.port) == ("user", "mycompany.mangosip.ru", 5060)
    assert mango_form.notify_incoming is True
    # the dumped form validates again (the gateway hands it on)
    SipAccountIn.model_validate(mango_form.model_dump(exclude_unset=True))
    with pytest.raises(ValueError):
        SipAccountIn.model_validate({"mango_username": "a@b.ru", "login": "other", "password": "p"})
    with pytest.raises(ValueError):
        SipAccountIn.model_validate({"login": "a", "password": "p"})  # no domain
    with pytest.raises(ValueError):
        SipAccountIn.model_validate({"login": "a b", "domain": "x.ru"})  # no spaces in a SIP user
    assert CallIn.model_validate({"to_number": "+7 (495) 123-45-67"}).to_number == "+7 (495) 123-45-67"
    with pytest.raises(ValueError):
        CallIn.model_validate({"to_number": "sip:evil@elsewhere"})


def test_mango_wire_format():
    # sign = sha256_hex(api_key + json + api_salt), as the VPBX API documents it
    form = mango.signed_form("key", "salt", {"command_id": "1", "from": {"extension": "101"}, "to_number": "7"})
    import hashlib
    assert form["sign"] == hashlib.sha256(("key" + form["json"] + "salt").encode()).hexdigest()
    assert mango.verify(form, "key", "salt")["to_number"] == "7"
    with pytest.raises(mango.MangoRefused) as bad:
        mango.verify({**form, "sign": "0" * 64}, "key", "salt")
    assert bad.value.code == "bad_signature"
    now = dt.datetime.now(dt.timezone.utc)
    mango.check_fresh(int(now.timestamp()) - 10, now, 300)
    with pytest.raises(mango.MangoRefused):
        mango.check_fresh(int(now.timestamp()) - 3600, now, 300)
    event = mango.call_event({"entry_id": "e", "call_state": "Appeared", "timestamp": 5,
                              "from": {"number": "+7916"}, "to": {"extension": "101"}})
    assert (event.from_number, event.to_extension, event.state) == ("+7916", "101", "Appeared")
    with pytest.raises(mango.MangoRefused):
        mango.call_event({"call_state": "Exploded"})
    assert mango.callback_url("https://app.mango-office.ru/vpbx/") == "https://app.mango-office.ru/vpbx/commands/callback"


# -- the engine worker, against a fake engine on a real database ---------------------------------
class FakeEngine:
    """The ``SipEngine`` interface over dicts: what a worker asks of SIP, and events to hand back."""

    def __init__(self, max_accounts: int = 2) -> None:
        self.max_accounts = max_accounts
        self.specs: dict[Any, AccountSpec] = {}
        self.pending: list[EngineEvent] = []
        self.dialled: list[tuple[Any, str, str]] = []
        self.transfers: list[tuple[str, str]] = []
        self.hangups: list[str] = []
        self.removed: list[Any] = []

    @property
    def free(self) -> int:
        return self.max_accounts - len(self.specs)

    def add(self, key: Any, spec: AccountSpec) -> None:
        if len(self.specs) >= self.max_accounts:
            raise EngineFull("full")
        self.specs[key] = spec

    def remove(self, key: Any) -> None:
        if self.specs.pop(key, None) is not None:
            self.removed.append(key)

    def spec(self, key: Any) -> AccountSpec | None:
        return self.specs.get(key)

    def dial(self, key: Any, target: str) -> str:
        handle = f"dial-{len(self.dialled)}"
        self.dialled.append((key, target, handle))
        return handle

    def transfer(self, handle: str, target: str) -> None:
        self.transfers.append((handle, target))

    def hangup(self, handle: str) -> None:
        self.hangups.append(handle)

    def poll(self, ms: int = 0) -> list[EngineEvent]:
        events, self.pending = self.pending, []
        return events


@pytest.fixture(scope="module")
def telephony_db(databases: Databases) -> Any:
    url = migrated_database(databases, "telephony", "telephony-units")
    engine = make_engine(url)
    yield engine, url
    engine.dispose()


BOX = SecretBox.from_spec(f"k1:{generate_key()}")


def settings(**overrides: Any) -> Settings:
    return Settings.model_validate({"SERVICE_NAME": "telephony", "AMQP_URI": "amqp://x", "TELEPHONY_LEASE_SECONDS": 5,
                                    "TELEPHONY_ENGINE_SYNC_SECONDS": 1, **overrides})


@pytest.fixture
def fresh(telephony_db: Any) -> tuple[Any, str]:
    """Sessions on the module's database with no SIP accounts left by another test, and a new tenant."""
    sessions = sessionmaker(telephony_db[0], expire_on_commit=False)
    with sessions() as s:
        s.execute(sa.delete(SipAccount))
        s.commit()
    return sessions, f"t-{uuid.uuid4().hex[:8]}"


def new_account(session: Session, tenant: str, login: str, active: bool = True) -> SipAccount:
    now = accounts.utcnow()
    user_id = uuid.uuid4()
    row = SipAccount(tenant_id=tenant, user_id=user_id, login=login, domain="crm.test", port=5060, mango=False,
                     password_enc=BOX.encrypt(f"pw-{login}", accounts.context(tenant, user_id)), notify_incoming=True,
                     active=active, version=1, reg_state="registering", created_at=now, updated_at=now)
    session.add(row)
    session.commit()
    return row


def test_workers_share_accounts_by_lease_and_let_go_of_inactive_ones(fresh):
    sessions, tenant = fresh
    with sessions() as s:
        rows = [new_account(s, tenant, f"u{i}") for i in range(3)]
    one, two = FakeEngine(2), FakeEngine(2)
    w1 = EngineWorker(settings(), one, BOX, "w1")  # type: ignore[arg-type]
    w2 = EngineWorker(settings(), two, BOX, "w2")  # type: ignore[arg-type]
    with sessions() as s:
        w1.sync(s)
        w2.sync(s)
    assert len(one.specs) == 2 and len(two.specs) == 1  # three accounts, two slots each
    assert {spec.password for spec in [*one.specs.values(), *two.specs.values()]} == {"pw-u0", "pw-u1", "pw-u2"}
    # a registration reported is written for the holder only
    key = next(iter(one.specs))
    one.pending.append(EngineEvent(REGISTRATION, key=key, code=200, reason="OK", state="registered", expires=60))
    with sessions() as s:
        w1.step(s)
        assert s.get(SipAccount, key).reg_state == "registered"
    # a changed account is re-created; an inactive one is let go (unregistered)
    with sessions() as s:
        s.execute(sa.update(SipAccount).where(SipAccount.user_id == key[1]).values(version=2))
        other = next(k for k in one.specs if k != key)
        s.execute(sa.update(SipAccount).where(SipAccount.user_id == other[1]).values(active=False))
        s.commit()
        w1.sync(s)
        assert other in one.removed and key in one.specs and w1.held[key] == 2
        assert s.get(SipAccount, other).worker is None and s.get(SipAccount, other).reg_state == "off"
    # w2 dies (no renewals): once its lease runs out, w1 takes its account
    held_by_two = next(iter(two.specs))
    with sessions() as s:
        s.execute(sa.update(SipAccount).where(SipAccount.worker == "w2")
                  .values(lease_until=sa.func.now() - dt.timedelta(seconds=1)))
        s.commit()
        w1.sync(s)
    assert held_by_two in one.specs
    assert rows  # the accounts made above


def test_incoming_call_rings_and_ends_missed_or_elsewhere_with_the_event(fresh):
    sessions, tenant = fresh
    with sessions() as s:
        new_account(s, tenant, "alice")
    fake = FakeEngine(2)
    reports: list[tuple[str, dict[str, str], float]] = []
    worker = EngineWorker(settings(), fake, BOX, "w1",  # type: ignore[arg-type]
                          report=lambda k, labels, v: reports.append((k, labels, v)))
    with sessions() as s:
        worker.sync(s)
        key = next(iter(fake.specs))
        for handle, elsewhere in (("call-1", False), ("call-2", True)):
            fake.pending.append(EngineEvent(INCOMING, key=key, call=handle, from_number="+79161234567",
                                            from_name="Ivan Petrov", state="ringing"))
            worker.step(s)
            row = s.scalar(sa.select(Call).where(Call.external_id == handle))
            assert row is not None and row.state == "ringing" and row.ended_at is None
            assert (row.from_number, row.from_name, row.to_number) == ("+79161234567", "Ivan Petrov", "alice")
            fake.pending.append(EngineEvent(CALL_STATE, key=key, call=handle, state=ENDED, code=487,
                                            reason="Request Terminated", extra={"elsewhere": elsewhere}))
            worker.step(s)
            s.refresh(row)
            assert row.state == "ended" and row.outcome == ("answered_elsewhere" if elsewhere else "missed")
            logged = s.execute(sa.text("SELECT payload FROM outbox_events WHERE event_type = 'call_logged' "
                                       "AND aggregate_id = :id"), {"id": str(row.id)}).scalar_one()
            data = (logged if isinstance(logged, dict) else json.loads(logged))["data"]
            assert data["direction"] == "incoming" and data["phone"] == "+79161234567"
            assert data["outcome"] == row.outcome and data["answered"] is elsewhere
    assert [r[0] for r in reports].count("visible") == 2 and [r[0] for r in reports].count("call") == 2


def test_click_to_call_rings_the_user_then_transfers_and_ends_with_its_reason(fresh):
    sessions, tenant = fresh
    with sessions() as s:
        account = new_account(s, tenant, "bob")
    fake = FakeEngine(2)
    worker = EngineWorker(settings(), fake, BOX, "w1")  # type: ignore[arg-type]
    from services.telephony import calls
    with sessions() as s:
        worker.sync(s)
        ok = calls.dial(s, tenant, account.user_id, "+74951234567")
        refused = calls.dial(s, tenant, account.user_id, "99")
        s.commit()
        worker.sync(s)
        assert [(target, k[1]) for k, target, _ in fake.dialled] == [("bob", account.user_id)] * 2
        by_call = {}
        for _, _, handle in fake.dialled:
            row = s.scalar(sa.select(Call).where(Call.external_id == handle))
            by_call[row.id] = handle
        h_ok, h_refused = by_call[ok.id], by_call[refused.id]
        for handle in (h_ok, h_refused):
            fake.pending.append(EngineEvent(CALL_STATE, call=handle, state=TALKING, code=200))
        worker.step(s)
        assert sorted(fake.transfers) == sorted([(h_ok, "+74951234567"), (h_refused, "99")])
        assert s.get(Call, (tenant, ok.id)).state == "transferring"
        fake.pending += [EngineEvent(TRANSFER, call=h_ok, code=200, reason="OK", final=True),
                         EngineEvent(TRANSFER, call=h_refused, code=404, reason="Not Found", final=True)]
        worker.step(s)
        assert sorted(fake.hangups) == sorted([h_ok, h_refused])
        fake.pending += [EngineEvent(CALL_STATE, call=h, state=ENDED, code=200, extra={"connected": 3})
                         for h in (h_ok, h_refused)]
        worker.step(s)
        done, failed = s.get(Call, (tenant, ok.id)), s.get(Call, (tenant, refused.id))
        assert done.outcome == "transferred" and done.answered_at is not None
        assert failed.outcome == "transfer_failed" and failed.end_reason == "404 Not Found"


def test_reencrypt_command_moves_every_secret_to_the_new_key(telephony_db, fresh):
    engine, url = telephony_db
    sessions, tenant = fresh
    old, new = f"old:{generate_key()}", f"new:{generate_key()}"
    box = SecretBox.from_spec(old)
    with sessions() as s:
        row = new_account(s, tenant, "carol")
        row.password_enc = box.encrypt("sip-secret", accounts.context(tenant, row.user_id))
        s.commit()
    env = dict(os.environ, TELEPHONY_DATABASE_URL=url, CRM_SECRET_KEYS=f"{new},{old}", PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-m", "services.telephony.reencrypt"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "re-encrypted 1 telephony secret(s) under key 'new'" in out.stdout, out.stderr
    with Session(engine) as s:
        stored = s.get(SipAccount, (tenant, row.user_id))
        assert SecretBox.from_spec(new).decrypt(stored.password_enc, accounts.context(tenant, row.user_id)) == \
            "sip-secret"
