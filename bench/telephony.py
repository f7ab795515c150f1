"""Telephony against a real kamailio (``tests/labs/sip.py``), through the
suite's processes as ``make run`` starts them.

1. **Registrations one replica sustains, with refresh**: one telephony
   replica with ``BENCH_SIP_WORKERS`` engine processes (``BENCH_SIP_PER_WORKER``
   accounts each, 4 as by default)
   registers ``BENCH_SIP_ACCOUNTS`` accounts with a short Expires
   (``BENCH_SIP_EXPIRES`` s, so every account refreshes several times in the
   window), then is watched for ``BENCH_SIP_HOLD`` s: how long until all were
   registered, the fewest registered at any sample, the REGISTERs kamailio
   took in the window, and the replica's CPU and memory (the service, the
   engine fleet's parent and its workers, read from ``/proc``; memory as PSS,
   since the workers share the parent's pages copy-on-write).
2. **INVITE to visible at ``BENCH_SIP_CPS`` calls per second**: sipp callers
   ring ``BENCH_SIP_CALLED`` of those accounts in turn for
   ``BENCH_SIP_CALL_SECONDS`` s (each call rings 1.5 s and is cancelled). For
   every call, the time from sipp sending the INVITE (its message trace) to
   the call's row being written (``started_at``, set just before the commit
   that makes it visible in ``/calls/active``), against, in the same run, the
   time to the 180 Ringing sipp received (the SIP path alone: kamailio and
   pjsua2). Every call must end up logged as missed.

Goal: p99 INVITE-to-visible at most 1 s at 20 calls/s."""
from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bench.common import SuiteProcesses, infrastructure, new_tenant_admin, percentiles
from crm_shared.db import make_engine
from crm_shared.testing import STRONG
from tests.labs.sip import DOMAIN, HERE, SipLab, ensure_domain, missing_tools

WORKERS = int(os.environ.get("BENCH_SIP_WORKERS", "32"))
PER_WORKER = int(os.environ.get("BENCH_SIP_PER_WORKER", "4"))
ACCOUNTS = int(os.environ.get("BENCH_SIP_ACCOUNTS", str(WORKERS * PER_WORKER)))
EXPIRES = int(os.environ.get("BENCH_SIP_EXPIRES", "20"))
HOLD = float(os.environ.get("BENCH_SIP_HOLD", "60"))
CPS = float(os.environ.get("BENCH_SIP_CPS", "20"))
CALLED = int(os.environ.get("BENCH_SIP_CALLED", "32"))
CALL_SECONDS = float(os.environ.get("BENCH_SIP_CALL_SECONDS", "30"))
GOAL_P99_S = 1.0
CLK = os.sysconf("SC_CLK_TCK")


def _tree(root: int) -> list[int]:
    """``root`` and its descendants (from /proc)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            parents.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo += parents.get(pid, [])
    return out


def _parent(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return 0


def _cpu_seconds(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / CLK
        except (OSError, IndexError, ValueError):
            pass
    return total


def _memory_mb(pid: int, field: str = "Pss") -> float:
    """Resident memory (``Rss``) or its proportional share (``Pss``: pages shared by n processes count
    1/n each, so the sum over processes is what they take together)."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _sipp_times(trace: Path) -> dict[str, dict[str, float]]:
    """Per Call-ID: when the first INVITE was sent and the first 180 received (epoch seconds)."""
    out: dict[str, dict[str, float]] = {}
    text = trace.read_text(errors="replace")
    for block in text.split("----------------------------------------------- ")[1:]:
        stamp, _, rest = block.partition("\n")
        at = dt.datetime.strptime(stamp.strip(), "%Y-%m-%d %H:%M:%S.%f").astimezone().timestamp()
        call_id = re.search(r"^Call-ID:\s*(\S+)", rest, flags=re.M | re.I)
        if not call_id:
            continue
        times = out.setdefault(call_id.group(1), {})
        if "message sent" in rest[:80] and "\n\nINVITE " in rest[:120]:
            times.setdefault("invite", at)
        elif "message received" in rest[:80] and "SIP/2.0 180" in rest[:200]:
            times.setdefault("ringing", at)
    return out


def run() -> dict[str, Any]:
    why = missing_tools() or ensure_domain()
    if why:
        raise RuntimeError(why)
    users = {f"b{i:03d}": f"pw-b{i:03d}" for i in range(ACCOUNTS)}
    folder = Path(tempfile.mkdtemp(prefix="crm-sip-bench-"))
    lab = SipLab(folder, users=users)
    try:
        lab.start_kamailio()
        with infrastructure() as (uri, dbs):
            suite = SuiteProcesses(uri, dbs)
            suite.env.update({"TELEPHONY_ENGINE_WORKERS": str(WORKERS),
                              "TELEPHONY_ACCOUNTS_PER_WORKER": str(PER_WORKER), "TELEPHONY_REGISTER_EXPIRES_SECONDS":
                              str(EXPIRES), "TELEPHONY_ENGINE_SYNC_SECONDS": "2", "TELEPHONY_LEASE_SECONDS": "30"})
            try:
                suite.start()
                return _measure(suite, lab, users)
            finally:
                suite.stop()
    finally:
        lab.stop()
        if not os.environ.get("KEEP_SIP_BENCH"):
            shutil.rmtree(folder, ignore_errors=True)


def _measure(suite: SuiteProcesses, lab: SipLab, users: dict[str, str]) -> dict[str, Any]:
    api = f"{suite.base}/api/v1"
    http, _ = new_tenant_admin(suite.base, suite.operator_token, "Бенчмарк телефонии")
    dept = http.post(f"{api}/departments", json={"name": "Продажи"}, timeout=30).json()["id"]
    roles = http.get(f"{api}/roles", timeout=30).json()["items"]
    role = next(r["id"] for r in roles if r["builtin"] == "employee")
    first_put = time.monotonic()
    for login, password in users.items():
        position = http.post(f"{api}/positions", timeout=30, json={"title": f"Менеджер {login}",
                                                                   "department_id": dept, "role_id": role}).json()
        user = http.post(f"{api}/users", timeout=30, json={
            "full_name": f"Менеджер {login}", "login": f"crm-{login}", "password": STRONG, "password_confirm": STRONG,
            "position_ids": [position["id"]], "sip_enabled": True}).json()
        resp = http.put(f"{api}/users/{user['id']}/sip", timeout=30, json={
            "login": login, "password": password, "domain": DOMAIN, "port": lab.port})
        resp.raise_for_status()
    put_done = time.monotonic()
    db = make_engine(suite.database_urls["telephony"], 1, "bench-telephony")

    def registered() -> int:
        with db.connect() as conn:
            return int(conn.execute(sa.text("SELECT count(*) FROM sip_accounts WHERE reg_state = 'registered'"))
                       .scalar_one())
    while registered() < len(users):
        if time.monotonic() - put_done > 120:
            raise RuntimeError(f"only {registered()} of {len(users)} registered after 120 s")
        time.sleep(0.2)
    all_registered_s = time.monotonic() - put_done
    # -- hold: every account refreshes every EXPIRES - (at most 5) s ------------------------------------
    service_pid = suite.procs["telephony"].pid
    pids = _tree(service_pid)
    fleets = [p for p in pids if p != service_pid and service_pid == _parent(p)]
    engines = [p for p in pids if p not in (service_pid, *fleets)]
    log_before = lab.kamailio_log().count("REQ REGISTER")
    cpu_before, started = _cpu_seconds(pids), time.monotonic()
    fewest = len(users)
    while time.monotonic() - started < HOLD:
        fewest = min(fewest, registered())
        time.sleep(1.0)
    held_s = time.monotonic() - started
    cpu = _cpu_seconds(pids) - cpu_before
    registers = lab.kamailio_log().count("REQ REGISTER") - log_before
    engine_pss = [_memory_mb(p) for p in engines] or [0.0]
    rss = {"service_pss_mb": round(_memory_mb(service_pid), 1),
           "fleet_parent_pss_mb": round(sum(_memory_mb(p) for p in fleets), 1),
           "engine_pss_mb_min": round(min(engine_pss), 1), "engine_pss_mb_max": round(max(engine_pss), 1),
           "engines_pss_mb_total": round(sum(engine_pss), 1),
           "engine_rss_mb_max": round(max(_memory_mb(p, "Rss") for p in engines) if engines else 0.0, 1)}
    registrations = {
        "accounts": len(users), "engine_workers": len(engines), "expires_s": EXPIRES,
        "put_all_accounts_s": round(put_done - first_put, 2),
        "all_registered_after_last_put_s": round(all_registered_s, 2), "hold_s": round(held_s, 1),
        "fewest_registered_during_hold": fewest, "registers_in_hold": registers,
        "registers_per_s": round(registers / held_s, 2),
        "replica_cpu_percent_of_one_core": round(100 * cpu / held_s, 1), "memory": rss,
    }
    # -- calls: CPS calls/s over CALLED accounts, each ringing 1.5 s then cancelled ----------------------
    called = list(users)[:CALLED]
    inject = lab.folder / "called.csv"
    inject.write_text("SEQUENTIAL\n" + "".join(f"{u};\n" for u in called))
    scenario = lab.folder / "call_cancel_field.xml"
    scenario.write_text((HERE / "call_cancel.xml").read_text().replace("[service]", "[field0]"))
    calls = int(CPS * CALL_SECONDS)
    trace = lab.folder / "callers.log"
    since = dt.datetime.now(dt.timezone.utc)
    proc = lab.call(called[0], str(scenario), calls=calls, rate=CPS, timeout=CALL_SECONDS + 60,
                    extra=("-inf", str(inject), "-trace_msg", "-message_file", str(trace)))
    # -l (concurrent calls) is the number of calls: nothing throttles the rate
    rc = proc.wait(timeout=CALL_SECONDS + 120)
    sent = _sipp_times(trace)
    errors = [f.read_text(errors="replace") for f in lab.folder.glob("sipp-caller-*.err")]
    os.environ.get("KEEP_SIP_BENCH") and print(lab.folder)
    deadline = time.monotonic() + 60
    while True:
        with db.connect() as conn:
            rows = conn.execute(sa.text("SELECT external_id, started_at, outcome FROM calls WHERE started_at >= :s"),
                                {"s": since}).all()
        if sum(1 for r in rows if r[2]) >= len(sent) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    visible, ringing = [], []
    for external_id, started_at, _ in rows:
        times = sent.get(external_id.split(":", 1)[-1])  # "<account token>:<Call-ID>"
        if times and "invite" in times:
            visible.append(started_at.timestamp() - times["invite"])
            if "ringing" in times:
                ringing.append(times["ringing"] - times["invite"])
    outcomes: dict[str, int] = {}
    for row in rows:
        outcomes[str(row[2])] = outcomes.get(str(row[2]), 0) + 1
    db.dispose()
    vis, ring = percentiles(visible), percentiles(ringing)
    return {
        "registrations": registrations,
        "incoming": {
            "calls_per_s": CPS, "calls_sent": len(sent), "calls_seen": len(rows), "sipp_exit": rc,
            "sipp_errors": [e[-600:] for e in errors if e.strip()][:2],
            "accounts_called": len(called), "outcomes": outcomes,
            "invite_to_visible": vis, "invite_to_180_ringing_baseline": ring,
            "ratio_p50_visible_to_ringing": round(vis["p50_ms"] / ring["p50_ms"], 2) if ring["p50_ms"] else None,
            "goal_p99_ms": GOAL_P99_S * 1000, "goal_met": vis["p99_ms"] <= GOAL_P99_S * 1000,
        },
    }
