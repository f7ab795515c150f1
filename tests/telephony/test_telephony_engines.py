"""The engine workers against a real kamailio: more users enabled than one
worker holds are all registered, spread over the workers by their leases; a
worker killed outright loses its accounts to the others (and to the worker
forked in its place) within a lease period; and pjsua2's limit of 8
accounts per process is guarded, not hit."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from typing import Any

import sqlalchemy as sa

from crm_shared.db import make_engine
from crm_shared.metrics import METRICS
from crm_shared.testing import ROOT, wait_for
from tests.telephony.conftest import Phones, engines

LOGINS = [f"u{i:02d}" for i in range(10, 15)]  # five users; a worker holds three here


def holders(suite: Any) -> dict[str, tuple[str | None, str]]:
    url = suite.by_name["telephony"].config["DATABASE_URL"]
    engine = make_engine(url, 1, "test-telephony")
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT login, worker, reg_state FROM sip_accounts WHERE active")).all()
    finally:
        engine.dispose()
    return {r[0]: (r[1], r[2]) for r in rows}


def test_more_users_than_a_worker_holds_all_register_and_survive_a_killed_worker(telephony_suite, inst,
                                                                                   phones: Phones, sip_lab):
    users = {login: phones.account(login) for login in LOGINS}
    for api in users.values():
        phones.registered(api.user_id, timeout=30)
    held = holders(telephony_suite)
    workers = {held[login][0] for login in LOGINS}
    # the replicas' gauge, read from the database every 2 s
    wait_for(lambda: METRICS.value("crm_telephony_registrations", {"state": "registered"}) >= len(LOGINS),
             timeout=10, message="the registrations gauge")
    assert len(workers) >= 2, held  # spread: no worker holds more than its three
    for worker in workers:
        assert sum(1 for login in LOGINS if held[login][0] == worker) <= 3
    # kill the worker holding the most of them, without a chance to unregister or free its leases
    victim = max(workers, key=lambda w: sum(1 for login in LOGINS if held[login][0] == w))
    assert victim is not None
    pid = int(victim.split(":")[1])
    assert pid in engines(telephony_suite).pids
    os.kill(pid, signal.SIGKILL)
    lost = [login for login in LOGINS if held[login][0] == victim]

    def moved() -> Any:
        now = holders(telephony_suite)
        return all(now[login][0] not in (None, victim) and now[login][1] == "registered" for login in lost)
    # within a lease (4 s) plus a sync and a REGISTER round trip
    wait_for(moved, timeout=20, interval=0.2, message=f"{lost} to register on another worker")
    # and the killed worker was replaced (forked again by the fleet, which reported it)
    wait_for(lambda: len(engines(telephony_suite).pids) == 3 and pid not in engines(telephony_suite).pids,
             timeout=10, message="a new worker in the killed one's place")
    wait_for(lambda: METRICS.value("crm_telephony_engine_restarts_total") >= 1, timeout=5,
             message="the restart counted")


def test_a_ninth_account_is_refused_not_fatal():
    script = (
        "from services.telephony.sip import SipEngine, AccountSpec, EngineFull\n"
        "e = SipEngine(8, bind='127.0.0.1'); e.start()\n"
        "for i in range(8): e.add(i, AccountSpec(f'u{i}', 'x', 'crm.test', 9, register=False))\n"
        "try:\n    e.add(8, AccountSpec('u8', 'x', 'crm.test', 9, register=False))\nexcept EngineFull:\n"
        "    print('refused')\n"
        "e.stop(); print('alive')\n")
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60,
                         env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert out.returncode == 0, out.stderr[-2000:]
    assert "refused" in out.stdout and "alive" in out.stdout
