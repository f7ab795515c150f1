"""`make run`'s launcher end to end: seven real processes, migrated databases,
/readyz green, every metrics page valid for promtool, a clean stop on Ctrl-C."""
import os
import re
import signal
import subprocess
import sys

import requests

from crm_shared.layout import ROOT, SERVICES
from crm_shared.testing import free_port, run_suite_output


def test_run_suite_starts_everything_and_stops_cleanly(rabbit, databases, tmp_path):
    env = dict(os.environ, AMQP_URI=rabbit.amqp_uri, CRM_RUN_DIR=str(tmp_path / "run"), PYTHONPATH=str(ROOT),
               GATEWAY_PORT=str(free_port()), GATEWAY_METRICS_PORT=str(free_port()), RUN_READY_TIMEOUT="120")
    env.pop("CRM_OPERATOR_TOKEN", None)
    ports = {}
    for name in SERVICES:
        ports[name] = free_port()
        env[f"{name.upper()}_METRICS_PORT"] = str(ports[name])
        # the launcher creates missing databases itself: give it names that do not exist yet
        url = databases.create(f"run_{name}")
        env[f"{name.upper()}_DATABASE_URL"] = url
    # drop them again so the launcher has to create them (they are still dropped at session end)
    import sqlalchemy as sa

    with databases.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for name in SERVICES:
            db = sa.make_url(env[f"{name.upper()}_DATABASE_URL"]).database
            conn.execute(sa.text(f'DROP DATABASE "{db}"'))

    proc = subprocess.Popen([sys.executable, "scripts/run_suite.py"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        output = run_suite_output(proc, 150)
        assert "CRM suite ready" in output, output
        assert "operator token (CRM_OPERATOR_TOKEN): dev-" in output
        base = f"http://127.0.0.1:{env['GATEWAY_PORT']}"
        assert requests.get(f"{base}/readyz", timeout=10).status_code == 200
        # the printed demo tenant really signs in
        demo = re.search(r"demo tenant: product code (\S+), login (\S+), password (\S+)", output)
        assert demo, output
        login = requests.post(f"{base}/api/v1/auth/login", timeout=15, json={
            "product_code": demo.group(1), "login": demo.group(2), "password": demo.group(3)})
        assert login.status_code == 200, login.text
        me = requests.get(f"{base}/api/v1/auth/me", timeout=10,
                          headers={"Authorization": f"Bearer {login.json()['access_token']}"})
        assert me.status_code == 200 and me.json()["user"]["login"] == "admin", me.text
        for name, port in ports.items():
            page = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
            check = subprocess.run(["promtool", "check", "metrics"], input=page.content, capture_output=True)
            assert check.returncode == 0, (name, check.stdout, check.stderr)
            assert f'service="{name}"' in page.text  # its own health RPCs were timed
        gw = requests.get(f"http://127.0.0.1:{env['GATEWAY_METRICS_PORT']}/metrics", timeout=5)
        assert subprocess.run(["promtool", "check", "metrics"], input=gw.content).returncode == 0

        proc.send_signal(signal.SIGINT)  # what Ctrl-C sends
        assert proc.wait(timeout=60) == 0
        rest = proc.stdout.read()
        assert "stopping" in rest
        for line in output.splitlines():
            if line.startswith("processes:"):
                pids = [int(item.split("=")[1]) for item in line.split(":", 1)[1].split(";")[0].split(",")]
                for pid in pids:
                    assert not _alive(pid), f"process {pid} still running"
    finally:
        if proc.poll() is None:
            proc.kill()


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie of an exited child counts as gone
    with open(f"/proc/{pid}/stat") as f:
        return f.read().split()[2] != "Z"
