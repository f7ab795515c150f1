"""Mail replicas as processes of their own (what pods are): one killed with
SIGKILL in the middle of a first sync, another taking the account over once
the lease runs out, with nothing lost and nothing stored twice."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import requests
import sqlalchemy as sa

from crm_shared.testing import TEST_SECRET_KEYS, wait_for
from tests.labs.mail import simple_message
from tests.mail.test_mail_gateway import custom_account, fresh_mailbox, mail_db

ROOT = Path(__file__).resolve().parents[2]


class MailProcess:
    """A mail replica as its own process on the suite's broker and database."""

    def __init__(self, suite: Any, name: str, **env: str) -> None:
        config = suite.by_name["mail"].config
        environ = dict(os.environ, AMQP_URI=config["AMQP_URI"], MAIL_DATABASE_URL=config["DATABASE_URL"],
                       CRM_SECRET_KEYS=TEST_SECRET_KEYS, MAIL_METRICS_PORT="0", MIGRATE_ON_START="false",
                       LOG_FORMAT="text", LOG_LEVEL="INFO", **env)
        folder = ROOT / ".run" / "test-logs"
        folder.mkdir(parents=True, exist_ok=True)
        self.log = folder / f"mail-{name}.log"
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "crm_shared.runner", "mail"], cwd=ROOT, env=environ,
                                         stdout=out, stderr=subprocess.STDOUT)

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(10)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.kill()


def test_a_replica_killed_mid_batch_loses_and_duplicates_nothing(inst, mail_lab, mail_suite):
    user = "lou@example.test"
    fresh_mailbox(mail_lab, user)
    filler = "x" * 20_000
    mail_lab.append(user, "INBOX", [simple_message(f"k {i}", to=user, message_id=f"<lou-{i}@lead.example>",
                                                   body=f"{i} {filler}\n") for i in range(400)])
    api = inst.admin
    acc = api.ok("POST", f"/users/{api.user_id}/mail-accounts", custom_account(mail_lab, user, active=False),
                 status=201)
    path = f"/users/{api.user_id}/mail-accounts/{acc['id']}"
    engine = mail_db(mail_suite)

    def stored() -> int:
        with engine.connect() as conn:
            return int(conn.execute(sa.text("SELECT count(*) FROM mail_entries WHERE account_id = :a"),
                                    {"a": acc["id"]}).scalar())

    # the in-process replica steps aside: two processes of their own play the pods
    mail_suite.by_name["mail"].stop()
    replica = MailProcess(mail_suite, "killed", MAIL_FETCH_BATCH="10", MAIL_POLL_LEASE_SECONDS="10",
                          MAIL_POLL_TICK_SECONDS="0.2")
    try:
        wait_for(lambda: api.call("PATCH", path, json={"active": True}).status_code == 200, timeout=30,
                 message="the mail replica process answering")
        wait_for(lambda: stored() >= 60, timeout=60, interval=0.01, message="the replica's poll under way")
    finally:
        replica.kill()  # SIGKILL: no clean shutdown, a batch half done
    at_kill = stored()
    assert 0 < at_kill < 400, at_kill
    survivor = MailProcess(mail_suite, "survivor", MAIL_POLL_LEASE_SECONDS="10")
    try:
        status = wait_for(lambda: (s := api.ok("POST", f"{path}/sync"))["messages_stored"] == 400 and s,
                          timeout=90, message="the rest fetched after the lease ran out")
    finally:
        survivor.stop()
    assert status["state"] == "ok"
    with engine.connect() as conn:
        total, keys = conn.execute(sa.text(
            "SELECT count(*), count(DISTINCT message_key) FROM mail_messages WHERE tenant_id = :t AND "
            "message_id LIKE 'lou-%'"), {"t": inst.tenant_id}).one()
        entries, uids = conn.execute(sa.text("SELECT count(*), count(DISTINCT uid) FROM mail_entries WHERE "
                                             "account_id = :a"), {"a": acc["id"]}).one()
        pending, size = conn.execute(sa.text("SELECT pending_reservation, (SELECT sum(size) FROM mail_messages "
                                             "WHERE message_id LIKE 'lou-%') FROM mail_accounts WHERE id = :a"),
                                     {"a": acc["id"]}).one()
    assert (total, keys, entries, uids) == (400, 400, 400, 400)
    assert pending is None  # the batch the kill left booked in the database is booked in the ledger too
    usage = requests.get(f"{mail_suite.url}/api/v1/tenants/{inst.product_code}", timeout=15,
                         headers={"Authorization": f"Bearer {mail_suite.operator_token}"}).json()["usage"]
    assert usage["disk_used_bytes"] >= size
