"""What the console's browser tests run against: the real suite started as ``make run``
starts it (``scripts/run_suite.py``, seven processes) on a fresh vhost and fresh
databases, the SIP lab (kamailio) and the mail lab (Dovecot) up, and Debian's Chromium
driven by Playwright. Plain threads here: no eventlet (Playwright needs asyncio)."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from crm_shared.layout import ROOT, SERVICES
from crm_shared.testing import Databases, free_port, run_suite_output

ARTIFACTS = ROOT / "console" / "e2e" / "artifacts"
AXE = ROOT / "console" / "node_modules" / "axe-core" / "axe.min.js"
CHROMIUM = os.environ.get("CRM_CHROMIUM", "/usr/bin/chromium")
# the flags that keep Chromium off this machine's closed network (shared/labs/browser)
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-sync",
                 "--disable-background-networking", "--disable-component-update"]
# short timeouts and no lockout surprises from the many logins of one address
SUITE_ENV = {
    "AUTH_IP_MAX_FAILURES": "10000", "AUTH_LOGIN_SLOWDOWN_AFTER": "3", "AUTH_LOGIN_LOCKOUT_AFTER": "3",
    "TELEPHONY_ENGINE_WORKERS": "1", "TELEPHONY_CHECK_TIMEOUT_SECONDS": "4", "TELEPHONY_REGISTER_EXPIRES_SECONDS": "30",
    "MAIL_CHECK_TIMEOUT_SECONDS": "3", "MAIL_POLL_TICK_SECONDS": "1", "RUN_READY_TIMEOUT": "150",
    # the console refreshes its token on its own before this runs out (tested)
    "AUTH_ACCESS_TOKEN_TTL_SECONDS": "20",
}


@dataclass
class RunningSuite:
    url: str
    operator_token: str
    demo: dict[str, str]
    proc: subprocess.Popen[str]
    output: list[str] = field(default_factory=list)
    metrics_url: str = ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def start_suite(amqp_uri: str, databases: Databases, run_dir: Path, extra: dict[str, str]) -> RunningSuite:
    env = dict(os.environ, AMQP_URI=amqp_uri, CRM_RUN_DIR=str(run_dir), PYTHONPATH=str(ROOT),
               GATEWAY_PORT=str(free_port()), GATEWAY_METRICS_PORT=str(free_port()), **SUITE_ENV, **extra)
    env.pop("CRM_OPERATOR_TOKEN", None)
    for name in SERVICES:
        env[f"{name.upper()}_METRICS_PORT"] = str(free_port())
        env[f"{name.upper()}_DATABASE_URL"] = databases.create(f"console_{name}")
    proc = subprocess.Popen([sys.executable, "scripts/run_suite.py"], cwd=ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    text = run_suite_output(proc, 180)
    lines = text.splitlines(keepends=True)
    token = re.search(r"operator token \(CRM_OPERATOR_TOKEN\): (\S+)", text)
    demo = re.search(r"demo tenant: product code (\S+), login (\S+), password (\S+)", text)
    if not (token and demo):
        proc.kill()
        raise RuntimeError("the suite did not start:\n" + text)

    def drain() -> None:  # so the suite never blocks on a full pipe
        assert proc.stdout is not None
        for rest in proc.stdout:
            lines.append(rest)

    threading.Thread(target=drain, daemon=True).start()
    return RunningSuite(f"http://127.0.0.1:{env['GATEWAY_PORT']}", token.group(1),
                        {"product_code": demo.group(1), "login": demo.group(2), "password": demo.group(3)}, proc, lines,
                        f"http://127.0.0.1:{env['GATEWAY_METRICS_PORT']}/metrics")


def axe_violations(page: Any) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations on the page as it is now. The script is
    evaluated through the DevTools protocol, which the page's CSP does not govern."""
    page.evaluate(AXE.read_text())
    result = page.evaluate("""async () => {
        const r = await axe.run(document, {resultTypes: ['violations']});
        return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                                      nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))}));
    }""")
    return [v for v in result if v["impact"] in ("serious", "critical")]


def write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, ensure_ascii=False, indent=2))


def api_login(base: str, product_code: str, login: str, password: str) -> requests.Session:
    http = requests.Session()
    resp = http.post(f"{base}/api/v1/auth/login", timeout=15,
                     json={"product_code": product_code, "login": login, "password": password})
    assert resp.status_code == 200, resp.text
    http.headers["Authorization"] = f"Bearer {resp.json()['access_token']}"
    return http

