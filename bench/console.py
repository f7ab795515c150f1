"""The web console in Debian's Chromium against the suite's processes as ``make run``
starts them: how long a reload of «Пользователи» takes until its 50 rows are on the
screen (from navigation start: index.html revalidated, the bundle from cache, the
session resumed from the tab's storage and ``/auth/me``, then ``GET /users?limit=50`` and the
render), against, in the same page and run, the bare ``fetch`` of that list (the API's
own share). ``BENCH_CONSOLE_SAMPLES`` reloads (40).

Goal: a list of 50 rows interactive within 1 s; the first load at most 200 KB gzipped
(its bytes on the wire are reported too)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

from bench.common import SuiteProcesses, infrastructure, new_tenant_admin, percentiles
from crm_shared.layout import ROOT

STRONG = "Bench-Passw0rd-2026"


def run() -> dict[str, Any]:
    samples = int(os.environ.get("BENCH_CONSOLE_SAMPLES", "40"))
    if not (ROOT / "console" / "dist" / "index.html").exists():
        raise RuntimeError("the console is not built (make console)")
    with infrastructure() as (amqp_uri, dbs):
        suite = SuiteProcesses(amqp_uri, dbs)
        suite.env["AUTH_LOGIN_SLOWDOWN_AFTER"] = "100"
        suite.env["AUTH_LOGIN_LOCKOUT_AFTER"] = "100"
        suite.start()
        try:
            http, created = new_tenant_admin(suite.base, suite.operator_token, "Bench console")
            for i in range(60):
                resp = http.post(f"{suite.base}/api/v1/users", timeout=30, json={
                    "full_name": f"Сотрудник {i:02d}", "login": f"user{i:02d}", "email": f"user{i:02d}@example.test",
                    "password": STRONG, "password_confirm": STRONG})
                resp.raise_for_status()
            browser = subprocess.run(
                [sys.executable, str(ROOT / "bench" / "_console_browser.py"), suite.base, created["product_code"],
                 created["admin"]["password"], str(samples)],
                capture_output=True, text=True, timeout=900, cwd=ROOT)
            if browser.returncode != 0:
                raise RuntimeError(browser.stderr[-3000:])
            measured = json.loads(browser.stdout.strip().splitlines()[-1])
        finally:
            suite.stop()
    console = percentiles([ms / 1000 for ms in measured["console_ms"]])
    bare = percentiles([ms / 1000 for ms in measured["api_fetch_ms"]])
    return {
        "users_list_50_rows_after_reload": console,
        "baseline_bare_fetch_of_the_list": bare,
        "ratio_p50": round(console["p50_ms"] / bare["p50_ms"], 2) if bare["p50_ms"] else None,
        "first_load_bytes_on_the_wire": int(measured["first_load_bytes"][0]),
        "goal": "p99 of the 50-row list at most 1000 ms",
        "goal_met": console["p99_ms"] <= 1000,
    }
