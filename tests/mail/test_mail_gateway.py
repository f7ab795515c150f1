"""Mail through the HTTP gateway against the whole suite and a real mail
system (Dovecot with IMAPS and STARTTLS, the SMTP lab and Postfix delivering
into it): accounts with presets and custom servers, the check with every
honest reason, folders, lossless polling, one copy per tenant, quota,
reconciliation, sending, rights and the journal."""
from __future__ import annotations

import base64
import email
import email.policy
import socket
import threading
from email.message import EmailMessage
from typing import Any

import pytest
import sqlalchemy as sa

from crm_shared.db import make_engine
from crm_shared.testing import Api, Instance, error_of, wait_for
from tests.labs.mail import USERS, MailLab, simple_message


def custom_account(lab: MailLab, user: str = "alice@example.test", **extra: Any) -> dict[str, Any]:
    body = {"name": f"lab {user}", "email": user, "password": USERS[user],
            "imap": {"host": "localhost", "port": lab.imaps_port, "encryption": "ssl"},
            "smtp": {"host": "localhost", "port": lab.smtps_port, "encryption": "ssl", "auth": "same_as_incoming"},
            "timeout_min": 1, "poll_every_min": 60, "sent_folder": "Sent"}
    body.update(extra)
    return body


def fresh_mailbox(lab: MailLab, user: str) -> None:
    """Empties INBOX and Sent of a lab user (each test starts from its own mail)."""
    client = lab.imap(user)
    try:
        for folder in ("INBOX", "Sent"):
            client.select_folder(folder)
            uids = client.search("ALL")
            if uids:
                client.delete_messages(uids)
                client.expunge()
    finally:
        client.logout()


def mail_db(suite: Any) -> Any:
    return make_engine(suite.by_name["mail"].config["DATABASE_URL"])


def staff(inst: Instance, login: str, builtin: str = "employee") -> Api:
    department = inst.department(f"Отдел {login}")
    return inst.staff(login, department, inst.role_id(builtin))


@pytest.fixture(scope="module")
def admin(inst: Instance) -> Api:
    return inst.admin


# -- accounts ----------------------------------------------------------------------------------

def test_presets_and_a_preset_account(admin, inst, mail_suite):
    presets = {p["id"]: p for p in admin.ok("GET", "/mail/presets")["items"]}
    assert presets["gmail"]["imap"] == {"host": "imap.gmail.com", "port": 993, "encryption": "ssl"}
    assert presets["gmail"]["smtp"]["port"] == 465 and presets["gmail"]["smtp_alternatives"][0]["port"] == 587
    assert presets["yandex"]["smtp"] == {"host": "smtp.yandex.ru", "port": 465, "encryption": "ssl"}
    assert presets["mailru"]["timeout_min"] == 1 and presets["mailru"]["poll_every_min"] == 5
    assert {p["smtp_auth"] for p in presets.values()} == {"same_as_incoming"}

    me = admin.user_id
    acc = admin.ok("POST", f"/users/{me}/mail-accounts", {"name": "anna", "email": "anna@mail.ru",
                                                           "password": "app-pass-1", "preset": "mailru"}, status=201)
    assert acc["imap"] == {"host": "imap.mail.ru", "port": 993, "encryption": "ssl", "login": "anna@mail.ru"}
    assert acc["smtp"]["host"] == "smtp.mail.ru" and acc["smtp"]["auth"] == "same_as_incoming"
    assert acc["timeout_min"] == 1 and acc["poll_every_min"] == 5 and acc["password_set"] is True
    assert acc["is_default"] is True and acc["active"] is True  # the first account is the default
    assert "password" not in str(admin.ok("GET", f"/users/{me}/mail-accounts/{acc['id']}")).replace("password_set", "")
    # a preset takes no servers
    error_of(admin.post(f"/users/{me}/mail-accounts", {"name": "x", "email": "x@gmail.com", "password": "p",
                                                        "preset": "gmail", "imap": {"host": "evil.test"}}),
             422, "validation_failed")
    # without a preset, both servers are needed
    error_of(admin.post(f"/users/{me}/mail-accounts", {"name": "x", "email": "x@example.test", "password": "p"}),
             422, "validation_failed")
    # the password is stored encrypted, bound to its row
    with mail_db(mail_suite).connect() as conn:
        stored = conn.execute(sa.text("SELECT password_enc FROM mail_accounts WHERE id = :i"),
                              {"i": acc["id"]}).scalar()
    assert stored.startswith("v1.") and "app-pass-1" not in stored
    # checking a preset account here reaches no real provider: the answer says why, honestly
    check = admin.ok("POST", f"/users/{me}/mail-accounts/{acc['id']}/check")
    assert check["imap"]["ok"] is False and check["imap"]["reason"] in ("dns", "refused", "timeout")
    admin.ok("DELETE", f"/users/{me}/mail-accounts/{acc['id']}", status=204)


def test_custom_account_defaults_rights_and_journal(admin, inst, mail_lab):
    me = admin.user_id
    first = admin.ok("POST", f"/users/{me}/mail-accounts", custom_account(mail_lab), status=201)
    second = admin.ok("POST", f"/users/{me}/mail-accounts", custom_account(mail_lab, "bob@example.test",
                                                                           is_default=True), status=201)
    items = {a["id"]: a for a in admin.ok("GET", f"/users/{me}/mail-accounts")["items"]}
    assert items[second["id"]]["is_default"] and not items[first["id"]]["is_default"]
    changed = admin.ok("PATCH", f"/users/{me}/mail-accounts/{first['id']}",
                       {"is_default": True, "password": "alice-pass", "poll_every_min": 30})
    assert changed["is_default"] and changed["poll_every_min"] == 30
    assert not admin.ok("GET", f"/users/{me}/mail-accounts/{second['id']}")["is_default"]

    # a user manages their own accounts only; users.manage manages anyone's
    emp = staff(inst, "mail_emp")
    error_of(emp.call("GET", f"/users/{me}/mail-accounts"), 403, "forbidden")
    own = emp.ok("POST", f"/users/{emp.user_id}/mail-accounts", custom_account(mail_lab, "carol@example.test"),
                 status=201)
    assert admin.ok("GET", f"/users/{emp.user_id}/mail-accounts")["items"][0]["id"] == own["id"]
    error_of(emp.call("GET", f"/users/{emp.user_id}/mail-accounts/{first['id']}"), 404, "not_found")
    error_of(admin.call("GET", "/users/00000000-0000-0000-0000-000000000000/mail-accounts"), 404, "not_found")

    # the journal has the changes, never a password
    def entries() -> list[dict[str, Any]]:
        found = admin.ok("GET", "/journal", entity="mail_account")["items"]
        return found if len(found) >= 4 else []
    found = wait_for(entries, message="mail account journal entries")
    text = str(found)
    assert "alice-pass" not in text and "carol-pass" not in text and "***" in text
    update = next(e for e in found if e["action"] == "update" and e["entity_id"] == first["id"])
    assert update["changes"]["password"] == "***" and update["changes"]["poll_every_min"]["new"] == 30
    for acc in (first, second):
        admin.ok("DELETE", f"/users/{me}/mail-accounts/{acc['id']}", status=204)
    emp.ok("DELETE", f"/users/{emp.user_id}/mail-accounts/{own['id']}", status=204)


# -- check and folders --------------------------------------------------------------------------

class SilentServer:
    """Accepts connections and never says a word (a server that hangs)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.held: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.held.append(conn)

    def close(self) -> None:
        self.sock.close()
        for c in self.held:
            c.close()


def test_check_answers_every_reason_honestly(admin, mail_lab):
    me = admin.user_id
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    closed_port = closed.getsockname()[1]
    closed.close()
    silent = SilentServer()
    cases = {
        "right": ({}, (True, None), (True, None)),
        "wrong password": ({"password": "wrong-pass"}, (False, "auth"), (False, "auth")),
        "closed port": ({"imap": {"host": "127.0.0.1", "port": closed_port, "encryption": "ssl"},
                         "smtp": {"host": "127.0.0.1", "port": closed_port, "encryption": "ssl"}},
                        (False, "refused"), (False, "refused")),
        "hanging server": ({"imap": {"host": "127.0.0.1", "port": silent.port, "encryption": "ssl"},
                            "smtp": {"host": "127.0.0.1", "port": silent.port, "encryption": "ssl"}},
                           (False, "timeout"), (False, "timeout")),
        "no such host": ({"imap": {"host": "imap.no-such-domain.invalid", "port": 993, "encryption": "ssl"},
                          "smtp": {"host": "smtp.no-such-domain.invalid", "port": 465, "encryption": "ssl"}},
                         (False, "dns"), (False, "dns")),
        # the certificate names localhost and 127.0.0.1, not 127.0.0.2
        "wrong certificate": ({"imap": {"host": "127.0.0.2", "port": mail_lab.imaps_port, "encryption": "ssl"},
                               "smtp": {"host": "localhost", "port": mail_lab.smtps_port, "encryption": "ssl"}},
                              (False, "tls"), (True, None)),
        "starttls": ({"imap": {"host": "localhost", "port": mail_lab.imap_port, "encryption": "starttls"},
                      "smtp": {"host": "localhost", "port": mail_lab.submission_port, "encryption": "starttls"}},
                     (True, None), (True, None)),
        # Dovecot trusts a client from its own address: from 127.0.0.1 to 127.0.0.2 it refuses plaintext
        "plaintext": ({"imap": {"host": "127.0.0.2", "port": mail_lab.imap_port, "encryption": "none"},
                       "smtp": {"host": "127.0.0.1", "port": mail_lab.submission_port, "encryption": "none"}},
                      (False, "plaintext_refused"), (False, "plaintext_refused")),
    }
    try:
        for label, (extra, imap_expect, smtp_expect) in cases.items():
            acc = admin.ok("POST", f"/users/{me}/mail-accounts", custom_account(mail_lab, **extra), status=201)
            result = admin.ok("POST", f"/users/{me}/mail-accounts/{acc['id']}/check")
            for side, (ok, reason) in (("imap", imap_expect), ("smtp", smtp_expect)):
                got = result[side]
                assert (got["ok"], got["reason"]) == (ok, reason), (label, side, got)
                assert (got["error"] is None) == ok, (label, side, got)
                assert got["elapsed_ms"] < 6000, (label, side, got)
            if label == "wrong password":
                assert "alice" not in result["imap"]["error"] or "wrong-pass" not in result["imap"]["error"]
            admin.ok("DELETE", f"/users/{me}/mail-accounts/{acc['id']}", status=204)
    finally:
        silent.close()


def test_folders_with_special_use_and_decoded_names(admin, mail_lab):
    client = mail_lab.imap("bob@example.test")
    if not client.folder_exists("Отправленные письма"):
        client.create_folder("Отправленные письма")  # travels as modified UTF-7
    client.logout()
    me = admin.user_id
    acc = admin.ok("POST", f"/users/{me}/mail-accounts", custom_account(mail_lab, "bob@example.test"), status=201)
    folders = {f["name"]: f for f in admin.ok("GET", f"/users/{me}/mail-accounts/{acc['id']}/folders")["items"]}
    assert folders["Sent"]["special_use"] == "\\Sent" and folders["Trash"]["special_use"] == "\\Trash"
    assert "Отправленные письма" in folders and folders["INBOX"]["special_use"] is None
    admin.ok("DELETE", f"/users/{me}/mail-accounts/{acc['id']}", status=204)


def test_settings_are_checked_and_their_folders_listed_before_saving(admin, inst, mail_lab):
    """«Проверить» and «Загрузить папки» on a form not saved yet: the same answers, nothing stored
    (no account, no journal entry), and the same rights as creating the account."""
    me = admin.user_id
    before = admin.ok("GET", f"/users/{me}/mail-accounts")["items"]
    journal_before = len(admin.ok("GET", "/journal", entity="mail_account", limit=500)["items"])
    good = admin.ok("POST", f"/users/{me}/mail-accounts/check", custom_account(mail_lab, "carol@example.test"))
    assert (good["imap"]["ok"], good["smtp"]["ok"]) == (True, True), good
    bad = admin.ok("POST", f"/users/{me}/mail-accounts/check",
                   custom_account(mail_lab, "carol@example.test", password="wrong-pass"))
    assert (bad["imap"]["reason"], bad["smtp"]["reason"]) == ("auth", "auth"), bad
    folders = admin.ok("POST", f"/users/{me}/mail-accounts/folders", custom_account(mail_lab, "carol@example.test"))
    assert {f["name"]: f["special_use"] for f in folders["items"]}["Sent"] == "\\Sent"
    refused = admin.call("POST", f"/users/{me}/mail-accounts/folders",
                         json=custom_account(mail_lab, "carol@example.test", password="wrong-pass"))
    assert error_of(refused, 502, "mail_server_error")["reason"] == "auth"
    # validated as a create is
    invalid = admin.call("POST", f"/users/{me}/mail-accounts/check", json={"name": "x", "email": "not-an-address",
                                                                        "password": "p"})
    assert invalid.status_code == 422 and "email" in invalid.json()["error"]["fields"]
    assert admin.ok("GET", f"/users/{me}/mail-accounts")["items"] == before
    assert len(admin.ok("GET", "/journal", entity="mail_account", limit=500)["items"]) == journal_before
    # an employee may check their own settings, not another user's
    clerk = staff(inst, "checker")
    own = clerk.ok("POST", f"/users/{clerk.user_id}/mail-accounts/check",
                   custom_account(mail_lab, "carol@example.test"))
    assert own["imap"]["ok"] is True
    error_of(clerk.call("POST", f"/users/{me}/mail-accounts/check", json=custom_account(mail_lab)), 403, "forbidden")


# -- polling ---------------------------------------------------------------------------------------

def cyrillic_messages(to: str) -> list[bytes]:
    """Russian mail as real clients send it: windows-1251 and KOI8-R bodies, encoded-word headers,
    raw 8-bit headers, a wrongly declared charset, attachments."""
    def b64(text: str, charset: str) -> str:
        return f"=?{charset}?B?{base64.b64encode(text.encode(charset)).decode()}?="

    found = []
    for i in range(10):
        found.append((f"From: {b64('Иван Петров', 'windows-1251')} <ivan@partner.example>\r\nTo: {to}\r\n"
                      f"Subject: {b64(f'Счёт на оплату №{i}', 'windows-1251')}\r\n"
                      f"Message-ID: <cp1251-{i}@partner.example>\r\nMIME-Version: 1.0\r\n"
                      f"Content-Type: text/plain; charset=windows-1251\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
                      ).encode() + f"Добрый день! Высылаю счёт №{i}.\r\n".encode("windows-1251"))
    for i in range(5):
        found.append((f"From: ooo@romashka.example\r\nTo: {to}\r\nSubject: {b64('Привет из KOI8', 'koi8-r')}\r\n"
                      f"Message-ID: <koi8-{i}@romashka.example>\r\nMIME-Version: 1.0\r\n"
                      f"Content-Type: text/plain; charset=koi8-r\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
                      ).encode() + "Сообщение в кодировке КОИ-8.\r\n".encode("koi8-r"))
    # declared UTF-8, written in windows-1251, with a raw 8-bit subject
    found.append((f"From: old@client.example\r\nTo: {to}\r\n").encode() + "Subject: Старый клиент\r\n".encode("cp1251")
                 + b"Message-ID: <wrong-charset@client.example>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
                 + "Письмо в неверной кодировке".encode("cp1251"))
    for i in range(5):
        m = EmailMessage()
        m["From"], m["To"], m["Subject"] = "docs@partner.example", to, f"Документы {i}"
        m["Message-ID"] = f"<attach-{i}@partner.example>"
        m.set_content("Во вложении договор.")
        m.add_alternative("<p>Во вложении <b>договор</b>.</p>", subtype="html")
        m.add_attachment(b"%PDF-1.4 " + bytes(range(256)) * (i + 1), maintype="application", subtype="pdf",
                         filename=f"Договор {i}.pdf")
        found.append(m.as_bytes())
    return found


def lasting_flags(client: Any, uids: list[int]) -> dict[int, set[bytes]]:
    """The flags a client can change (\\Recent belongs to the session that first sees a message)."""
    return {uid: set(flags) - {b"\\Recent"} for uid, flags in client.get_flags(uids).items()}


def test_first_sync_of_500_messages_decodes_and_leaves_flags(inst, mail_lab):
    user = "dan@example.test"
    fresh_mailbox(mail_lab, user)
    special = cyrillic_messages(user)
    plain = [simple_message(f"plain {i}", to=user, message_id=f"<plain-{i}@lead.example>")
             for i in range(500 - len(special))]
    mail_lab.append(user, "INBOX", plain[:200], flags=(b"\\Seen",))
    mail_lab.append(user, "INBOX", special + plain[200:])
    client = mail_lab.imap(user)
    client.select_folder("INBOX")
    uids = client.search("ALL")
    client.add_flags(uids[:3], [b"\\Flagged"])
    flags_before = lasting_flags(client, uids)
    client.logout()

    api = inst.admin
    acc = api.ok("POST", f"/users/{api.user_id}/mail-accounts", custom_account(mail_lab, user), status=201)
    status = api.ok("POST", f"/users/{api.user_id}/mail-accounts/{acc['id']}/sync")
    status = wait_for(lambda: (s := api.ok("GET", f"/users/{api.user_id}/mail-accounts/{acc['id']}/status"))
                      ["messages_stored"] == 500 and s, timeout=60, message="500 messages stored")
    assert status["state"] == "ok" and status["messages_behind"] == 0 and status["last_error"] is None
    inbox = next(f for f in status["folders"] if f["folder"] == "INBOX")
    assert inbox["last_uid"] == max(uids) and inbox["uidvalidity"]

    items = api.all("mail/messages", page_size=200, account_id=acc["id"])
    assert len(items) == 500 and len({i["id"] for i in items}) == 500
    by_mid = {i["message_id"]: i for i in items}
    bill = by_mid["cp1251-3@partner.example"]
    assert bill["subject"] == "Счёт на оплату №3" and bill["sender"] == {"email": "ivan@partner.example",
                                                                          "name": "Иван Петров"}
    assert api.ok("GET", f"/mail/messages/{bill['id']}")["text"].startswith("Добрый день! Высылаю счёт №3.")
    koi = api.ok("GET", f"/mail/messages/{by_mid['koi8-0@romashka.example']['id']}")
    assert koi["subject"] == "Привет из KOI8" and koi["text"].startswith("Сообщение в кодировке КОИ-8.")
    wrong = api.ok("GET", f"/mail/messages/{by_mid['wrong-charset@client.example']['id']}")
    assert wrong["subject"] == "Старый клиент" and wrong["text"] == "Письмо в неверной кодировке"
    doc = api.ok("GET", f"/mail/messages/{by_mid['attach-2@partner.example']['id']}")
    assert doc["attachments"] == [{"filename": "Договор 2.pdf", "content_type": "application/pdf",
                                   "size": len(b"%PDF-1.4 ") + 256 * 3}]
    assert "<b>договор</b>" in doc["html"] and doc["text"].startswith("Во вложении договор.")

    client = mail_lab.imap(user)
    client.select_folder("INBOX", readonly=True)
    assert lasting_flags(client, uids) == flags_before  # BODY.PEEK[]: nothing marked read, nothing unflagged
    client.logout()
    # the second sync fetches nothing again
    again = api.ok("POST", f"/users/{api.user_id}/mail-accounts/{acc['id']}/sync")
    assert again["fetched"] == 0 and again["messages_stored"] == 500
    api.ok("DELETE", f"/users/{api.user_id}/mail-accounts/{acc['id']}", status=204)


def test_mail_arriving_during_a_poll_and_a_uidvalidity_reset(inst, mail_lab, mail_suite):
    user = "eve@example.test"
    fresh_mailbox(mail_lab, user)
    mail_lab.append(user, "INBOX", [simple_message(f"m {i}", to=user, message_id=f"<eve-{i}@lead.example>")
                                    for i in range(300)])
    api = inst.admin
    acc = api.ok("POST", f"/users/{api.user_id}/mail-accounts", custom_account(mail_lab, user), status=201)
    path = f"/users/{api.user_id}/mail-accounts/{acc['id']}"
    arrived = threading.Event()

    def deliver_while_polling() -> None:
        wait_for(lambda: api.ok("GET", f"{path}/status")["messages_stored"] > 0, timeout=30, interval=0.01,
                 message="the poll under way")
        mail_lab.deliver(user, simple_message("arrived meanwhile", to=user, message_id="<eve-late@lead.example>"))
        arrived.set()
    helper = threading.Thread(target=deliver_while_polling)
    helper.start()
    api.ok("POST", f"{path}/sync")
    helper.join(30)
    assert arrived.is_set()
    wait_for(lambda: api.ok("POST", f"{path}/sync")["messages_stored"] == 301, timeout=30,
             message="the late message stored too")

    mail_lab.reset_uidvalidity(user)
    status = api.ok("POST", f"{path}/sync")
    inbox = next(f for f in status["folders"] if f["folder"] == "INBOX")
    assert status["messages_stored"] == 301 and inbox["messages_behind"] == 0
    with mail_db(mail_suite).connect() as conn:
        counts = conn.execute(sa.text(
            "SELECT count(*), count(DISTINCT message_key) FROM mail_messages m WHERE tenant_id = :t AND "
            "EXISTS (SELECT 1 FROM mail_entries e WHERE e.message_id = m.id AND e.account_id = :a)"),
            {"t": inst.tenant_id, "a": acc["id"]}).one()
        validities = conn.execute(sa.text("SELECT DISTINCT uidvalidity FROM mail_entries WHERE account_id = :a"),
                                  {"a": acc["id"]}).scalars().all()
    assert tuple(counts) == (301, 301)  # resynced without a single copy
    assert validities == [inbox["uidvalidity"]]
    api.ok("DELETE", path, status=204)


def test_the_same_message_in_two_users_accounts_is_stored_once(inst, mail_lab, mail_suite):
    users = ("fay@example.test", "gus@example.test")
    for user in users:
        fresh_mailbox(mail_lab, user)
    shared = simple_message("one for both", to=", ".join(users), message_id="<Shared-42@Partner.EXAMPLE>")
    for user in users:
        mail_lab.deliver(user, shared)
    # the same Message-ID written another way is the same message
    mail_lab.deliver(users[1], simple_message("one for both", to=users[1], message_id="< Shared-42@partner.example >"))
    first = staff(inst, "mail_fay")
    second = staff(inst, "mail_gus")
    accs = [api.ok("POST", f"/users/{api.user_id}/mail-accounts", custom_account(mail_lab, user), status=201)
            for api, user in ((first, users[0]), (second, users[1]))]
    for api, acc in zip((first, second), accs):
        api.ok("POST", f"/users/{api.user_id}/mail-accounts/{acc['id']}/sync")
    seen = [api.ok("GET", "/mail/messages", q="one for both")["items"] for api in (first, second)]
    assert [len(s) for s in seen] == [1, 1] and seen[0][0]["id"] == seen[1][0]["id"]
    assert seen[0][0]["message_id"] == "Shared-42@partner.example"
    assert seen[0][0]["accounts"] == [accs[0]["id"]] and seen[1][0]["accounts"] == [accs[1]["id"]]
    with mail_db(mail_suite).connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM mail_messages WHERE tenant_id = :t AND message_id = "
                                    "'Shared-42@partner.example'"), {"t": inst.tenant_id}).scalar() == 1
    # an employee sees their own mail only; the admin (communications.read: all) sees both accounts'
    mail_lab.deliver(users[1], simple_message("for gus alone", to=users[1], message_id="<gus-only@partner.example>"))
    second.ok("POST", f"/users/{second.user_id}/mail-accounts/{accs[1]['id']}/sync")
    private = second.ok("GET", "/mail/messages", q="for gus alone")["items"][0]
    error_of(first.call("GET", f"/mail/messages/{private['id']}"), 404, "not_found")
    assert first.ok("GET", "/mail/messages", q="for gus alone")["items"] == []
    everything = inst.admin.ok("GET", "/mail/messages", q="one for both")["items"]
    assert len(everything) == 1 and sorted(everything[0]["accounts"]) == sorted(a["id"] for a in accs)
    for api, acc in zip((first, second), accs):
        api.ok("DELETE", f"/users/{api.user_id}/mail-accounts/{acc['id']}", status=204)


def test_over_quota_pauses_with_nothing_half_stored_and_resumes(mail_suite, mail_lab):
    small = Instance(mail_suite, disk_quota_mb=1)
    user = "hal@example.test"
    fresh_mailbox(mail_lab, user)
    big = []
    for i in range(3):
        m = EmailMessage()
        m["From"], m["To"], m["Subject"], m["Message-ID"] = "x@lead.example", user, f"big {i}", f"<big-{i}@q.example>"
        m.set_content("see attached")
        m.add_attachment(bytes(400_000), maintype="application", subtype="octet-stream", filename=f"{i}.bin")
        big.append(m.as_bytes())
    mail_lab.append(user, "INBOX", big)
    api = small.admin
    acc = api.ok("POST", f"/users/{api.user_id}/mail-accounts", custom_account(mail_lab, user), status=201)
    path = f"/users/{api.user_id}/mail-accounts/{acc['id']}"
    status = api.ok("POST", f"{path}/sync")
    assert status["state"] == "quota_exceeded" and status["last_error_reason"] == "quota_exceeded"
    assert status["messages_stored"] == 0 and api.ok("GET", "/mail/messages")["items"] == []
    operator = {"Authorization": f"Bearer {mail_suite.operator_token}"}
    import requests
    resp = requests.patch(f"{mail_suite.url}/api/v1/tenants/{small.product_code}", headers=operator, timeout=15,
                          json={"tariff": {"disk_quota_mb": 20}})
    assert resp.status_code == 200, resp.text
    status = api.ok("POST", f"{path}/sync")
    assert status["state"] == "ok" and status["messages_stored"] == 3
    usage = requests.get(f"{mail_suite.url}/api/v1/tenants/{small.product_code}", headers=operator, timeout=15).json()
    assert usage["usage"]["disk_used_bytes"] >= sum(len(b) for b in big)
    api.ok("DELETE", path, status=204)


def test_reconciliation_finds_a_message_skipped_on_purpose(inst, mail_lab, mail_suite):
    user = "ivy@example.test"
    fresh_mailbox(mail_lab, user)
    mail_lab.append(user, "INBOX", [simple_message(f"r {i}", to=user, message_id=f"<ivy-{i}@lead.example>")
                                    for i in range(10)])
    api = inst.admin
    acc = api.ok("POST", f"/users/{api.user_id}/mail-accounts", custom_account(mail_lab, user), status=201)
    path = f"/users/{api.user_id}/mail-accounts/{acc['id']}"
    assert api.ok("POST", f"{path}/sync")["messages_stored"] == 10
    # the cursor is past it, but the message is not stored: a poll by cursor alone never fetches it again
    with mail_db(mail_suite).begin() as conn:
        conn.execute(sa.text("DELETE FROM mail_entries WHERE account_id = :a AND message_id = (SELECT id FROM "
                             "mail_messages WHERE message_id = 'ivy-4@lead.example')"), {"a": acc["id"]})
        conn.execute(sa.text("DELETE FROM mail_messages WHERE message_id = 'ivy-4@lead.example'"))
        conn.execute(sa.text("UPDATE mail_folders SET reconciled_at = now() - interval '2 days' "
                             "WHERE account_id = :a"), {"a": acc["id"]})
    status = api.ok("POST", f"{path}/sync")
    assert status["messages_stored"] == 10 and status["reconcile_missing"] == 1 and status["reconciled_at"]
    api.ok("DELETE", path, status=204)


# -- sending -----------------------------------------------------------------------------------------

def test_sending_reaches_the_recipient_and_the_sent_folder(inst, mail_lab):
    sender, recipient, hidden = "jon@example.test", "kim@example.test", "carol@example.test"
    for user in (sender, recipient, hidden):
        fresh_mailbox(mail_lab, user)
    api = inst.admin
    contact = api.ok("POST", "/contacts", {"full_name": "Ким Ли", "emails": [recipient]}, status=201)
    acc = api.ok("POST", f"/users/{api.user_id}/mail-accounts", custom_account(mail_lab, sender, active=False),
                 status=201)
    pdf = b"%PDF-1.4 offer" * 100
    sent = api.ok("POST", "/mail/send", {
        "account_id": acc["id"], "to": [recipient], "bcc": [hidden], "subject": "Коммерческое предложение",
        "text": "Добрый день!\nВо вложении предложение.", "html": "<p>Добрый день!</p>",
        "attachments": [{"filename": "Предложение.pdf", "content_type": "application/pdf",
                         "content_b64": base64.b64encode(pdf).decode()}]})
    assert sent["sent_copy"] == "appended" and sent["refused"] == {}
    message = sent["message"]
    assert message["direction"] == "outgoing" and message["contact_id"] == contact["id"]
    assert message["attachments"][0]["filename"] == "Предложение.pdf" and message["attachments"][0]["size"] == len(pdf)

    def arrived(user: str, folder: str = "INBOX") -> Any:
        client = mail_lab.imap(user)
        try:
            client.select_folder(folder, readonly=True)
            uids = client.search(["SUBJECT", "Коммерческое предложение"], charset="UTF-8")
            return client.fetch(uids, ["FLAGS", "BODY.PEEK[]"]) if uids else None
        finally:
            client.logout()
    inbox = wait_for(lambda: arrived(recipient), message="the message in the recipient's INBOX")
    got = email.message_from_bytes(next(iter(inbox.values()))[b"BODY[]"], policy=email.policy.default)
    assert got["Subject"] == "Коммерческое предложение" and got["Bcc"] is None
    assert got.get_body(("plain",)).get_content().startswith("Добрый день!")
    assert wait_for(lambda: arrived(hidden), message="the Bcc copy")
    copy = arrived(sender, "Sent")
    assert copy and b"\\Seen" in next(iter(copy.values()))[b"FLAGS"]
    # stored once, found in the list, and the crm logged the communication against the contact
    assert api.ok("GET", f"/mail/messages/{message['id']}")["text"].startswith("Добрый день!")
    comms = wait_for(lambda: api.ok("GET", "/communications", contact_id=contact["id"])["items"],
                     message="the communication in the crm")
    assert comms[0]["kind"] == "email" and comms[0]["direction"] == "outgoing"
    assert comms[0]["subject"] == "Коммерческое предложение" and comms[0]["handled_by"] == api.user_id
    # a poll of the sent folder finds the copy and stores nothing twice
    api.ok("PATCH", f"/users/{api.user_id}/mail-accounts/{acc['id']}", {"active": True})
    status = api.ok("POST", f"/users/{api.user_id}/mail-accounts/{acc['id']}/sync")
    assert status["messages_stored"] == 1
    api.ok("DELETE", f"/users/{api.user_id}/mail-accounts/{acc['id']}", status=204)


def test_a_refused_send_answers_the_server_reason_and_stores_nothing(inst, mail_lab):
    api = inst.admin
    body = custom_account(mail_lab, "jon@example.test", active=False,
                          smtp={"host": "localhost", "port": mail_lab.submission_port, "encryption": "starttls",
                                "auth": "special", "login": "jon@example.test", "password": "not-his-password"})
    acc = api.ok("POST", f"/users/{api.user_id}/mail-accounts", body, status=201)
    before = len(api.all("mail/messages", page_size=200))
    resp = api.post("/mail/send", {"account_id": acc["id"], "to": ["kim@example.test"], "subject": "x", "text": "x"})
    error = error_of(resp, 502, "mail_send_failed")
    assert error["reason"] == "auth" and "535" in error["message"]
    assert len(api.all("mail/messages", page_size=200)) == before
    # secure authentication required over a plain connection: refused before the password leaves
    api.ok("PATCH", f"/users/{api.user_id}/mail-accounts/{acc['id']}", {"smtp": {
        "host": "127.0.0.1", "port": mail_lab.submission_port, "encryption": "none", "auth": "same_as_incoming",
        "require_secure_auth": True}})
    error = error_of(api.post("/mail/send", {"account_id": acc["id"], "to": ["kim@example.test"], "text": "x"}),
                     502, "mail_send_failed")
    assert error["reason"] == "plaintext_refused"
    api.ok("DELETE", f"/users/{api.user_id}/mail-accounts/{acc['id']}", status=204)
    # no mail.send, no sending (the account is theirs, the right is not)
    role = api.ok("POST", "/roles", {"name": "Без почты", "rights": {"communications.read": "own"}}, status=201)
    mute = inst.staff("mail_nosend", inst.department("Без почты"), role["id"])
    own = mute.ok("POST", f"/users/{mute.user_id}/mail-accounts", custom_account(mail_lab, "jon@example.test",
                                                                                active=False), status=201)
    error = error_of(mute.post("/mail/send", {"to": ["kim@example.test"], "text": "x"}), 403, "forbidden")
    assert error["right"] == "mail.send"
    mute.ok("DELETE", f"/users/{mute.user_id}/mail-accounts/{own['id']}", status=204)


def test_postfix_as_a_second_smtp_peer(inst, mail_lab):
    if not mail_lab.postfix:
        pytest.skip("postfix is not installed (scripts/ci-install.sh installs it)")
    fresh_mailbox(mail_lab, "kim@example.test")
    api = inst.admin
    body = custom_account(mail_lab, "jon@example.test", active=False, sent_folder=None,
                          smtp={"host": "localhost", "port": mail_lab.pf_submission_port, "encryption": "starttls",
                                "auth": "same_as_incoming", "require_secure_auth": True})
    acc = api.ok("POST", f"/users/{api.user_id}/mail-accounts", body, status=201)
    check = api.ok("POST", f"/users/{api.user_id}/mail-accounts/{acc['id']}/check")
    assert check["smtp"] == {**check["smtp"], "ok": True, "reason": None}
    sent = api.ok("POST", "/mail/send", {"account_id": acc["id"], "to": ["kim@example.test"], "subject": "via postfix",
                                          "text": "hello through postfix"})
    assert sent["sent_copy"] == "no_sent_folder"

    def arrived() -> bool:
        client = mail_lab.imap("kim@example.test")
        try:
            client.select_folder("INBOX", readonly=True)
            return bool(client.search(["SUBJECT", "via postfix"]))
        finally:
            client.logout()
    wait_for(arrived, timeout=30, message="delivery through postfix")
    # Postfix over SMTPS, with a wrong password: its own refusal
    api.ok("PATCH", f"/users/{api.user_id}/mail-accounts/{acc['id']}", {"smtp": {
        "host": "localhost", "port": mail_lab.pf_smtps_port, "encryption": "ssl", "auth": "special",
        "login": "jon@example.test", "password": "wrong"}})
    check = api.ok("POST", f"/users/{api.user_id}/mail-accounts/{acc['id']}/check")
    assert check["smtp"]["reason"] == "auth" and "535" in check["smtp"]["error"]
    api.ok("DELETE", f"/users/{api.user_id}/mail-accounts/{acc['id']}", status=204)


def test_idle_delivers_within_seconds(inst, mail_lab):
    import time
    user = "max@example.test"
    fresh_mailbox(mail_lab, user)
    api = inst.admin
    acc = api.ok("POST", f"/users/{api.user_id}/mail-accounts", custom_account(mail_lab, user), status=201)
    path = f"/users/{api.user_id}/mail-accounts/{acc['id']}"
    api.ok("POST", f"{path}/sync")  # poll_every_min is 60: from here on only IDLE brings mail early
    wait_for(lambda: api.ok("GET", f"{path}/status")["idle"], timeout=15, message="the IDLE watch")
    sent = time.monotonic()
    mail_lab.deliver(user, simple_message("pushed", to=user, message_id="<max-idle@lead.example>"))
    wait_for(lambda: api.ok("GET", "/mail/messages", account_id=acc["id"], q="pushed")["items"], timeout=10,
             interval=0.05, message="the message stored through IDLE")
    assert time.monotonic() - sent < 5
    api.ok("DELETE", path, status=204)
