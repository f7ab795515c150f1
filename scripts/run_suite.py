"""``make run``: creates the databases, starts every service and the gateway
as separate processes, waits for ``/readyz`` and prints how to reach it.
Ctrl-C (or SIGTERM) stops them all; if one dies, the rest are stopped too."""
from __future__ import annotations

import base64
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
import warnings
from collections.abc import Callable
from pathlib import Path

warnings.filterwarnings("ignore", message="\nEventlet is deprecated")  # nameko's, not ours to act on
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from crm_shared.config import load_yaml  # noqa: E402
from crm_shared.layout import ALL, SERVICES  # noqa: E402
from crm_shared.migrations import create_database_if_missing  # noqa: E402

STATE = Path(os.environ.get("CRM_RUN_DIR", ROOT / ".run"))


def dev_value(name: str, make: Callable[[], str]) -> str:
    """Development defaults kept in .run/ so restarts keep decrypting stored secrets."""
    if os.environ.get(name):
        return os.environ[name]
    path = STATE / name.lower()
    if not path.exists():
        path.write_text(make())
        path.chmod(0o600)
    return path.read_text().strip()


def wait_ready(url: str, procs: dict[str, subprocess.Popen[bytes]], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for name, proc in procs.items():
            if proc.poll() is not None:
                print(f"{name} exited with code {proc.returncode}; see {STATE / 'logs' / (name + '.log')}")
                tail = (STATE / "logs" / f"{name}.log").read_text(errors="replace").splitlines()[-5:]
                print("\n".join("    " + line for line in tail))
                return False
        try:
            with urllib.request.urlopen(url, timeout=3) as resp:  # noqa: S310 (our own http URL)
                if resp.status == 200:
                    return True
        except OSError:
            pass  # not listening yet  # noqa: S110
        time.sleep(0.5)
    return False


def stop_all(procs: dict[str, subprocess.Popen[bytes]]) -> None:
    for proc in procs.values():
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 20
    for proc in procs.values():
        try:
            proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()


def demo_tenant(base: str, operator_token: str) -> str:
    """Creates the demo instance once (Idempotency-Key "make-run-demo"); until someone signs
    in to it, each start completes it again with a fresh admin password. Its credentials
    are kept in .run/ (a development convenience; the platform itself stores no password)."""
    import json

    saved = STATE / "demo_tenant.json"
    body = json.dumps({"company_name": "Демо", "owner_email": "demo@example.test",
                       "tariff": {"max_sessions": 5, "disk_quota_mb": 1024}}).encode()
    headers = {"Authorization": f"Bearer {operator_token}", "Content-Type": "application/json",
               "Idempotency-Key": "make-run-demo"}
    request = urllib.request.Request(f"{base}/api/v1/tenants", data=body, method="POST",  # noqa: S310
                                     headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:  # noqa: S310 (our own http URL)
            created = json.loads(resp.read())
        saved.write_text(json.dumps({"product_code": created["product_code"], "login": "admin",
                                     "password": created["admin"]["password"]}))
        saved.chmod(0o600)
    except urllib.error.HTTPError as exc:
        if exc.code != 409 or not saved.exists():
            return f"demo tenant: not created ({exc.code}: {exc.read()[:200]!r})"
    except OSError as exc:
        return f"demo tenant: not created ({exc})"
    demo = json.loads(saved.read_text())
    return (f"demo tenant: product code {demo['product_code']}, login admin, password {demo['password']}"
            " (as created; once changed in the app, use yours)")


def main() -> int:
    STATE.mkdir(parents=True, exist_ok=True)
    (STATE / "logs").mkdir(exist_ok=True)
    env = dict(os.environ)
    env["CRM_OPERATOR_TOKEN"] = dev_value("CRM_OPERATOR_TOKEN", lambda: "dev-" + secrets.token_urlsafe(24))
    env["CRM_SECRET_KEYS"] = dev_value(
        "CRM_SECRET_KEYS", lambda: "dev1:" + base64.urlsafe_b64encode(os.urandom(32)).decode())
    # the auth service's token signing key (production sets its own: docs/auth.md)
    env["AUTH_SIGNING_KEYS"] = dev_value(
        "AUTH_SIGNING_KEYS", lambda: "dev1:" + base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("="))
    env.setdefault("PYTHONUNBUFFERED", "1")
    for name in SERVICES:
        url = load_yaml(ROOT / "services" / name / "config.yaml", env)["DATABASE_URL"]
        if create_database_if_missing(url):
            print(f"created database for {name}")

    procs: dict[str, subprocess.Popen[bytes]] = {}
    stopping = False

    def on_signal(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    for name in ALL:
        log = open(STATE / "logs" / f"{name}.log", "ab")
        procs[name] = subprocess.Popen([sys.executable, "-m", "crm_shared.runner", name], cwd=ROOT, env=env,
                                       stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    port = env.get("GATEWAY_PORT", "8000")
    base = f"http://127.0.0.1:{port}"
    if not wait_ready(f"{base}/readyz", procs, float(env.get("RUN_READY_TIMEOUT", "90"))):
        print(f"the suite did not become ready; logs are in {STATE}/logs/")
        stop_all(procs)
        return 1
    print(f"CRM suite ready: {base}  (API under {base}/api/v1, OpenAPI at {base}/openapi.json)")
    console = "the web console" if (ROOT / "console" / "dist" / "index.html").exists() else \
        "the web console once built (make console)"
    print(f"open {base}/ in a browser for {console}")
    print(f"operator token (CRM_OPERATOR_TOKEN): {env['CRM_OPERATOR_TOKEN']}")
    print(demo_tenant(base, env["CRM_OPERATOR_TOKEN"]))
    print(f"processes: {', '.join(f'{n}={p.pid}' for n, p in procs.items())}; logs in {STATE}/logs/")
    print("Ctrl-C stops everything.", flush=True)
    code = 0
    while not stopping:
        dead = [n for n, p in procs.items() if p.poll() is not None]
        if dead:
            print(f"{', '.join(dead)} stopped unexpectedly; stopping the suite (see {STATE}/logs/)")
            code = 1
            break
        time.sleep(0.5)
    print("stopping…", flush=True)
    stop_all(procs)
    return code


if __name__ == "__main__":
    sys.exit(main())
