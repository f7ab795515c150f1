"""Mail polling against a real Dovecot (``tests/labs/mail.py``), through the
suite's processes as ``make run`` starts them.

1. **First sync** of a mailbox of ``BENCH_MAIL_MESSAGES`` messages (3–4 KB,
   Russian text, one in ten with a 20 KB attachment): the time of
   ``POST .../sync`` (a user's "check mail now", which answers when the poll
   has finished) against, in the same run, a bare imapclient fetch of the same
   messages (``BODY.PEEK[]`` in the service's batch size, and in one command),
   and the time this process takes to decode them all (``parsing.parse``):
   what bounds the service is read off those three.
2. **One poll cycle of ``BENCH_MAIL_ACCOUNTS`` accounts with no new mail**
   (already synced, IDLE off): every account made due at once, the time until
   all have been polled, the IMAP logins Dovecot logged for it, and the most
   connections open at once (sampled with ``ss``).

Goal: the first sync at most 10x the bare fetch."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bench.common import SuiteProcesses, infrastructure, new_tenant_admin
from crm_shared.db import make_engine
from services.mail import parsing
from tests.labs.mail import USERS, MailLab, missing_tools

MESSAGES = int(os.environ.get("BENCH_MAIL_MESSAGES", "5000"))
ACCOUNTS = int(os.environ.get("BENCH_MAIL_ACCOUNTS", "200"))
BATCH = 100
GOAL_RATIO = 10.0
TEXT = ("Добрый день! Направляем коммерческое предложение по поставке оборудования. "
        "Цены действительны до конца месяца, доставка по Москве бесплатно. ") * 20


def mailbox(n: int, to: str) -> list[bytes]:
    found = []
    for i in range(n):
        m = EmailMessage()
        m["From"], m["To"] = f"Менеджер {i % 50} <lead{i % 50}@partner.example>", to
        m["Subject"], m["Message-ID"] = f"Предложение №{i}", f"<bench-{i}@partner.example>"
        m.set_content(f"{TEXT}\n№{i}\n")
        if i % 10 == 0:
            m.add_attachment(os.urandom(20_000), maintype="application", subtype="pdf", filename=f"КП {i}.pdf")
        found.append(m.as_bytes())
    return found


def bare_fetch(lab: MailLab, user: str, batch: int | None) -> float:
    client = lab.imap(user)
    try:
        started = time.perf_counter()
        client.select_folder("INBOX", readonly=True)
        uids = client.search("ALL")
        step = batch or len(uids)
        got = 0
        for i in range(0, len(uids), step):
            got += len(client.fetch(uids[i:i + step], ["BODY.PEEK[]", "RFC822.SIZE", "INTERNALDATE"]))
        assert got == len(uids)
        return time.perf_counter() - started
    finally:
        client.logout()


def peak_connections(port: int, stop_at: list[bool], peak: list[int]) -> None:
    while not stop_at[0]:
        out = subprocess.run(["ss", "-Htn", "state", "established", f"( sport = :{port} )"], capture_output=True,
                             text=True).stdout
        peak[0] = max(peak[0], len([line for line in out.splitlines() if line.strip()]))
        time.sleep(0.05)


def run() -> dict[str, Any]:
    missing = missing_tools("dovecot", "doveadm")
    if missing:
        return {"skipped": missing}
    folder = Path(tempfile.mkdtemp(prefix="crm-mail-bench-"))
    lab = MailLab(folder).start()
    results: dict[str, Any] = {"messages": MESSAGES, "accounts": ACCOUNTS}
    try:
        user = "bob@example.test"
        raw = mailbox(MESSAGES, user)
        lab.append(user, "INBOX", raw)
        results["mailbox_bytes"] = sum(len(r) for r in raw)
        # the baselines, in this run, on the same messages
        results["bare_fetch_batch_s"] = round(min(bare_fetch(lab, user, BATCH) for _ in range(3)), 2)
        results["bare_fetch_one_command_s"] = round(min(bare_fetch(lab, user, None) for _ in range(3)), 2)
        started = time.perf_counter()
        for r in raw:
            parsing.parse(r)
        results["decode_all_s"] = round(time.perf_counter() - started, 2)

        with infrastructure() as (uri, dbs):
            suite = SuiteProcesses(uri, dbs)
            suite.env.update({"SSL_CERT_FILE": str(lab.cert_file), "MAIL_SYNC_MAX_SECONDS": "280",
                              "MAIL_IDLE_MAX_CONNECTIONS": "0", "MAIL_POLL_TICK_SECONDS": "1"})
            try:
                suite.start()
                api = f"{suite.base}/api/v1"
                http, _ = new_tenant_admin(suite.base, suite.operator_token, "Бенчмарк почты", disk_quota_mb=5000)
                me = http.get(f"{api}/auth/me", timeout=30).json()["user"]["id"]

                def account(mail_user: str, active: bool) -> dict[str, Any]:
                    resp = http.post(f"{api}/users/{me}/mail-accounts", timeout=30, json={
                        "name": mail_user, "email": mail_user, "password": USERS[mail_user], "active": active,
                        "imap": {"host": "localhost", "port": lab.imaps_port, "encryption": "ssl"},
                        "smtp": {"host": "localhost", "port": lab.smtps_port, "encryption": "ssl"},
                        "timeout_min": 1, "poll_every_min": 60})
                    assert resp.status_code == 201, resp.text
                    return dict(resp.json())

                big = account(user, active=False)
                started = time.perf_counter()
                resp = http.post(f"{api}/users/{me}/mail-accounts/{big['id']}/sync", timeout=300)
                seconds = time.perf_counter() - started
                assert resp.status_code == 200, resp.text
                status = resp.json()
                assert status["messages_stored"] == MESSAGES and status["last_error"] is None, status
                results["first_sync"] = {
                    "seconds": round(seconds, 2), "messages_per_s": round(MESSAGES / seconds),
                    "ratio_to_bare_fetch": round(seconds / results["bare_fetch_batch_s"], 1),
                    "ratio_to_bare_fetch_one_command": round(seconds / results["bare_fetch_one_command_s"], 1),
                    "decode_share": round(results["decode_all_s"] / seconds, 2),
                    "goal_ratio": GOAL_RATIO,
                    "met": seconds / results["bare_fetch_batch_s"] <= GOAL_RATIO}
                http.delete(f"{api}/users/{me}/mail-accounts/{big['id']}", timeout=60)

                # 200 accounts on small, synced mailboxes; then one cycle with nothing new
                small = [u for u in USERS if u != user]
                for u in small:
                    lab.append(u, "INBOX", mailbox(5, u))
                for i in range(ACCOUNTS):
                    account(small[i % len(small)], active=True)
                engine = make_engine(suite.database_urls["mail"])

                def polled_since(t: Any) -> int:
                    with engine.connect() as conn:
                        return int(conn.execute(sa.text(
                            "SELECT count(*) FROM mail_accounts WHERE state = 'ok' AND last_poll_at >= :t"),
                            {"t": t}).scalar() or 0)
                deadline = time.monotonic() + 300
                while polled_since("1970-01-01") < ACCOUNTS and time.monotonic() < deadline:
                    time.sleep(0.5)
                assert polled_since("1970-01-01") == ACCOUNTS, "the accounts' first polls did not finish"
                log_before = (folder / "dovecot.log").read_text(errors="replace").count("imap-login: Info: Login:")
                with engine.begin() as conn:
                    t0 = conn.execute(sa.text("UPDATE mail_accounts SET next_poll_at = now() RETURNING now()")).scalar()
                stop_at, peak = [False], [0]
                sampler = threading.Thread(target=peak_connections, args=(lab.imaps_port, stop_at, peak))
                sampler.start()
                started = time.perf_counter()
                while polled_since(t0) < ACCOUNTS and time.perf_counter() - started < 300:
                    time.sleep(0.05)
                cycle = time.perf_counter() - started
                stop_at[0] = True
                sampler.join()
                time.sleep(0.5)
                logins = (folder / "dovecot.log").read_text(errors="replace").count("imap-login: Info: Login:") \
                    - log_before
                results["poll_cycle_no_new_mail"] = {
                    "accounts": ACCOUNTS, "all_polled": polled_since(t0) == ACCOUNTS,
                    "seconds": round(cycle, 2), "imap_logins": logins,
                    "peak_open_imap_connections": peak[0],
                    "poll_concurrency_setting": 20,
                    "per_account_ms": round(1000 * cycle / ACCOUNTS, 1)}
                with open(f"/proc/{suite.procs['mail'].pid}/status") as f:
                    rss = re.search(r"VmHWM:\s+(\d+)", f.read())
                results["mail_peak_rss_mb"] = round(int(rss.group(1)) / 1024) if rss else None
            finally:
                suite.stop()
    finally:
        lab.stop()
        shutil.rmtree(folder, ignore_errors=True)
    results["notes"] = ("one Dovecot on loopback (IMAPS); bare fetch = imapclient login, EXAMINE, SEARCH ALL and "
                        "FETCH BODY.PEEK[] in batches of 100 (and in one command), best of 3; first sync = "
                        "POST .../sync (parse, dedupe by key, store raw + decoded, ledger reserve/commit per "
                        "batch, match_contact per new address, outbox event per message); decode_share = "
                        "decode time in this process / first sync time")
    return results
