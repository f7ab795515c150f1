"""The mail service's rules without a broker: decoding, the message key,
presets and rights, the folder sync against a fake IMAP server and a fake
ledger (on a real database), and the re-encryption command."""
from __future__ import annotations

import base64
import datetime as dt
import os
import subprocess
import sys
import uuid
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from crm_shared.db import make_engine
from crm_shared.errors import CrmError, Forbidden, ValidationFailed
from crm_shared.secrets import SecretBox, generate_key
from crm_shared.testing import Databases, migrated_database
from services.mail import accounts, parsing
from services.mail.models import MailAccount, MailEntry, MailFolder, MailMessage
from services.mail.sync import FolderSync, QuotaExceeded, SyncLimits, SyncResult

ROOT = Path(__file__).resolve().parents[2]


# -- decoding ----------------------------------------------------------------------------------

def test_charsets_declared_wrong_or_missing_are_decoded():
    text = "Добрый день, коллеги! Счёт во вложении."
    assert parsing.decode_bytes(text.encode("cp1251"), "utf-8") == text         # declared wrong
    assert parsing.decode_bytes(text.encode("koi8-r"), None) == text             # not declared
    assert parsing.decode_bytes(text.encode("cp1251"), None) == text
    assert parsing.decode_bytes(text.encode("utf-8"), "iso-8859-1") == text      # "latin-1" that is UTF-8
    assert parsing.decode_bytes(text.encode("koi8-r"), "koi8-r") == text


def test_headers_message_id_and_the_key():
    subject = "=?utf-8?B?" + base64.b64encode("Заказ №5".encode()).decode() + "?="
    raw = (f"From: =?koi8-r?Q?=F0=C5=D4=D2?= <Petr@Example.RU>\r\nTo: a@x.test, =?utf-8?Q?B?= <b@X.test>\r\n"
           f"Subject: {subject}\r\nMessage-ID: < Abc.1@Mail.Example.COM >\r\nDate: Tue, 01 Dec 2026 10:00:00 +0300\r\n"
           f"\r\nbody\r\n").encode()
    parsed = parsing.parse(raw)
    assert parsed.subject == "Заказ №5"
    assert parsed.sender == {"email": "Petr@example.ru", "name": "Петр"}
    assert [a["email"] for a in parsed.to] == ["a@x.test", "b@x.test"]
    assert parsed.message_id == "Abc.1@mail.example.com" and parsed.key == "mid:Abc.1@mail.example.com"
    assert parsed.sent_at == dt.datetime(2026, 12, 1, 7, 0, tzinfo=dt.timezone.utc)
    # without a Message-ID: the same content delivered twice (other Received lines) is one key
    plain = b"From: a@x.test\r\nTo: b@x.test\r\nSubject: hi\r\nDate: Tue, 01 Dec 2026 10:00:00 +0000\r\n\r\nbody\r\n"
    first = parsing.parse(b"Received: from one\r\nDelivered-To: b@x.test\r\n" + plain)
    second = parsing.parse(b"Received: from two\r\nReturn-Path: <a@x.test>\r\n" + plain)
    assert first.key == second.key and first.key.startswith("sha256:")
    assert parsing.parse(plain.replace(b"body", b"other")).key != first.key


def test_attachments_and_bodies():
    m = EmailMessage()
    m["From"], m["To"], m["Subject"] = "a@x.test", "b@x.test", "docs"
    m.set_content("plain text")
    m.add_alternative("<p>html</p>", subtype="html")
    m.add_attachment(b"x" * 1234, maintype="application", subtype="pdf", filename="Счёт.pdf")
    m.add_attachment("a,b\n1,2\n", subtype="csv", filename="data.csv")
    parsed = parsing.parse(m.as_bytes())
    assert parsed.text.strip() == "plain text" and parsed.html.strip() == "<p>html</p>"
    assert [(a.filename, a.content_type, a.size) for a in parsed.attachments] == [
        ("Счёт.pdf", "application/pdf", 1234), ("data.csv", "text/csv", 8)]


# -- accounts ----------------------------------------------------------------------------------

def test_who_manages_whose_accounts():
    me = str(uuid.uuid4())
    principal = {"user_id": me, "rights": {}}
    accounts.require_manage(principal, me)
    with pytest.raises(Forbidden):
        accounts.require_manage(principal, str(uuid.uuid4()))
    accounts.require_manage({"user_id": me, "rights": {"users.manage": "all"}}, str(uuid.uuid4()))


# -- the folder sync, on a real database ---------------------------------------------------------

@pytest.fixture(scope="module")
def mail_engine(databases: Databases) -> Any:
    url = migrated_database(databases, "mail", "mail-units")
    engine = make_engine(url)
    yield engine, url
    engine.dispose()


class FakeImap:
    """The IMAP calls a folder sync makes, over a dict of UID -> message."""

    def __init__(self, messages: dict[int, bytes], validity: int = 7) -> None:
        self.messages = messages
        self.validity = validity
        self.fetches: list[list[int]] = []

    def select_folder(self, folder: str, readonly: bool = False) -> dict[bytes, Any]:
        assert readonly, "a sync examines folders read-only"
        return {b"UIDVALIDITY": self.validity, b"EXISTS": len(self.messages)}

    def search(self, criteria: list[str]) -> list[int]:
        low, _, high = criteria[1].partition(":")
        top = max(self.messages, default=0) if high == "*" else int(high)
        found = [u for u in self.messages if int(low) <= u <= top]
        return found or ([max(self.messages)] if self.messages and high == "*" else [])

    def fetch(self, uids: list[int], what: list[str]) -> dict[int, dict[bytes, Any]]:
        if "BODY[]" in what or "RFC822" in what:
            raise AssertionError("a sync must fetch with BODY.PEEK[] (never marking mail read)")
        if "BODY.PEEK[]" in what:
            self.fetches.append(list(uids))
        return {u: {b"BODY[]": self.messages[u], b"RFC822.SIZE": len(self.messages[u]),
                    b"INTERNALDATE": dt.datetime(2026, 12, 1, 9, 0)} for u in uids if u in self.messages}


class FakeLedger:
    def __init__(self, allowed: int = 10**9) -> None:
        self.allowed, self.used, self.pending = allowed, 0, {}

    def reserve(self, tenant_id: str, nbytes: int, purpose: str) -> str:
        if self.used + sum(self.pending.values()) + nbytes > self.allowed:
            raise CrmError("over quota", code="quota_exceeded")
        rid = uuid.uuid4().hex
        self.pending[rid] = nbytes
        return rid

    def commit(self, rid: str, nbytes: int) -> None:
        self.pending.pop(rid)
        self.used += nbytes

    def release(self, rid: str) -> None:
        self.pending.pop(rid, None)


class NoDirectory:
    def match(self, tenant_id: str, email: str) -> dict[str, Any]:
        return {}


def new_account(session: Session) -> MailAccount:
    now = accounts.utcnow()
    row = MailAccount(tenant_id=f"t-{uuid.uuid4().hex[:8]}", id=uuid.uuid4(), user_id=uuid.uuid4(), name="n",
                      email="me@x.test", preset=None, password_enc="x", imap_host="h", imap_port=993,
                      imap_encryption="ssl", imap_login="me@x.test", smtp_host="h", smtp_port=465,
                      smtp_encryption="ssl", smtp_auth="same_as_incoming", smtp_require_secure_auth=False,
                      timeout_min=1, poll_every_min=5, sent_folder="Sent", active=True, is_default=True,
                      created_at=now, updated_at=now, next_poll_at=now, state="never", messages_behind=0,
                      pending_bytes=0, idle_supported=True)
    session.add(row)
    session.commit()
    return row


def message(i: int, size: int = 0) -> bytes:
    return (f"From: a@x.test\r\nTo: me@x.test\r\nSubject: m{i}\r\nMessage-ID: <m{i}-{uuid.uuid4().hex}@x.test>\r\n"
            f"\r\n{'y' * size}body {i}\r\n").encode()


def stored(session: Session, account: MailAccount) -> tuple[int, int]:
    entries = session.scalar(sa.select(sa.func.count()).select_from(MailEntry).where(
        MailEntry.account_id == account.id))
    messages = session.scalar(sa.select(sa.func.count()).select_from(MailMessage).where(
        MailMessage.tenant_id == account.tenant_id))
    return int(entries or 0), int(messages or 0)


def test_a_batch_is_stored_with_its_cursor_and_a_large_message_is_passed(mail_engine):
    engine, _ = mail_engine
    with Session(engine, expire_on_commit=False) as session:
        account = new_account(session)
        server = FakeImap({u: message(u, 5000 if u == 3 else 0) for u in range(1, 8)})
        sync = FolderSync(session, account, server, "INBOX", FakeLedger(), NoDirectory(),
                          SyncLimits(batch=3, max_message_bytes=4000), session.commit)
        result = SyncResult()
        sync.run(result)
        state = session.get(MailFolder, (account.tenant_id, account.id, "INBOX"))
        assert state.last_uid == 7 and state.uidvalidity == 7 and result.skipped == 1
        assert stored(session, account) == (6, 6) and server.fetches == [[1, 2, 3], [4, 5, 6], [7]]
        # reconciliation: nothing missing (the large one stays skipped on purpose)
        assert result.reconcile_missing == 0 and state.reconciled_at is not None


def test_a_failing_batch_leaves_its_cursor_and_over_quota_stores_nothing(mail_engine):
    engine, _ = mail_engine
    with Session(engine, expire_on_commit=False) as session:
        account = new_account(session)
        server = FakeImap({u: message(u, 1000) for u in range(1, 5)})
        ledger = FakeLedger(allowed=2500)  # two messages fit, a batch of three does not
        sync = FolderSync(session, account, server, "INBOX", ledger, NoDirectory(), SyncLimits(batch=3),
                          session.commit)
        with pytest.raises(QuotaExceeded):
            sync.run(SyncResult())
        session.rollback()
        state = session.get(MailFolder, (account.tenant_id, account.id, "INBOX"))
        assert state.last_uid == 0 and stored(session, account) == (0, 0) and ledger.pending == {}
        ledger.allowed = 10**9  # space freed: the same sync resumes from the cursor
        FolderSync(session, account, server, "INBOX", ledger, NoDirectory(), SyncLimits(batch=3),
                   session.commit).run(SyncResult())
        assert stored(session, account) == (4, 4) and ledger.pending == {} and ledger.used > 4000


def test_a_new_uidvalidity_resyncs_without_copies(mail_engine):
    engine, _ = mail_engine
    with Session(engine, expire_on_commit=False) as session:
        account = new_account(session)
        mails = {u: message(u) for u in range(1, 6)}
        FolderSync(session, account, FakeImap(mails, 7), "INBOX", FakeLedger(), NoDirectory(), SyncLimits(),
                   session.commit).run(SyncResult())
        renumbered = {u + 100: raw for u, raw in mails.items()}
        FolderSync(session, account, FakeImap(renumbered, 8), "INBOX", FakeLedger(), NoDirectory(), SyncLimits(),
                   session.commit).run(SyncResult())
        assert stored(session, account) == (5, 5)
        assert set(session.scalars(sa.select(MailEntry.uidvalidity).where(MailEntry.account_id == account.id))) == {8}


def test_reencrypt_command_moves_every_secret_to_the_new_key(mail_engine):
    engine, url = mail_engine
    old, new = f"old:{generate_key()}", f"new:{generate_key()}"
    box = SecretBox.from_spec(old)
    with Session(engine, expire_on_commit=False) as session:
        broken = new_account(session)  # its secret is no token at all: reported, left alone
        account = new_account(session)
        account.password_enc = box.encrypt("imap-secret", accounts.context(account, "imap"))
        account.smtp_password_enc = box.encrypt("smtp-secret", accounts.context(account, "smtp"))
        session.commit()
    env = dict(os.environ, MAIL_DATABASE_URL=url, CRM_SECRET_KEYS=f"{new},{old}", PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-m", "services.mail.reencrypt"], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 1 and str(broken.id) in out.stderr, out.stderr
    assert "re-encrypted 2 mail secret(s) under key 'new'" in out.stdout
    with Session(engine) as session:  # the others of this module's database have no real secrets either
        session.execute(sa.delete(MailAccount).where(MailAccount.id != account.id))
        session.commit()
    out = subprocess.run([sys.executable, "-m", "services.mail.reencrypt"], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0 and "re-encrypted 0 mail secret(s)" in out.stdout, out.stderr
    only_new = SecretBox.from_spec(new)
    with Session(engine) as session:
        row = session.get(MailAccount, (account.tenant_id, account.id))
        assert only_new.decrypt(row.password_enc, accounts.context(row, "imap")) == "imap-secret"
        assert only_new.decrypt(row.smtp_password_enc, accounts.context(row, "smtp")) == "smtp-secret"
    # bound to the row: the same token on another account does not decrypt
    other = MailAccount(tenant_id=row.tenant_id, id=uuid.uuid4())
    with pytest.raises(Exception):
        only_new.decrypt(row.password_enc, accounts.context(other, "imap"))


def test_a_preset_takes_no_servers():
    with pytest.raises(ValidationFailed):
        accounts._refuse_servers_with_preset("gmail", {"imap": {"host": "evil.test"}})
    accounts._refuse_servers_with_preset(None, {"imap": {"host": "mine.test"}})
