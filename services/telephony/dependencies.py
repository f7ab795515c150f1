"""DependencyProviders for the telephony service's own I/O (beyond the shared
database, outbox and metrics providers in ``crm_shared``).

- ``EngineWorkers``: the replica's SIP engine processes (``python -m
  services.telephony.engine --workers N``: a fleet forked from one parent,
  which forks a worker again when one dies), started with the service,
  stopped (unregistering) with it.
- ``Checks``: ``self.checks(spec)`` runs a credential check in a short-lived
  engine process, at most ``TELEPHONY_CHECK_CONCURRENCY`` at once, killed at
  the bound."""
from __future__ import annotations

import importlib.util
import json
import logging
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import eventlet
import eventlet.greenio
from eventlet.green import subprocess
from eventlet.semaphore import Semaphore
from nameko.extensions import DependencyProvider

from crm_shared.config import settings_of
from services.telephony import check
from services.telephony import metrics as m
from services.telephony.settings import Settings
from services.telephony.sip import AccountSpec

log = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parents[2]


class EngineWorkers(DependencyProvider):
    """A fleet of ``TELEPHONY_ENGINE_WORKERS`` engine processes beside this replica."""

    def setup(self) -> None:
        self.settings = settings_of(self.container.config, Settings)
        self.fleet: Any = None
        self.stopping = False
        self.watcher: Any = None

    def _spawn(self) -> Any:
        """The fleet, with a pipe on which its workers report call ends and INVITE-to-visible times."""
        read, write = os.pipe()
        env = dict(os.environ)
        env["TELEPHONY_ENGINE_SETTINGS"] = self.settings.model_dump_json()
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        env["TELEPHONY_ENGINE_REPORT_FD"] = str(write)
        proc = subprocess.Popen([sys.executable, "-m", "services.telephony.engine", "--workers",
                                 str(self.settings.TELEPHONY_ENGINE_WORKERS)], cwd=str(ROOT), env=env,
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, pass_fds=(write,))
        os.close(write)
        eventlet.spawn_n(_read_reports, read)
        return proc

    def start(self) -> None:
        if self.settings.TELEPHONY_ENGINE_WORKERS:
            if importlib.util.find_spec("pjsua2") is None:  # its wheels are x86_64 only
                log.error("pjsua2 is not installed (pjsua2-python has x86_64 wheels only): no SIP engine runs "
                          "here; the API, checks aside, and the Mango Office adapter still do")
                return
            self.fleet = self._spawn()
            self.watcher = eventlet.spawn(self._watch)

    def _watch(self) -> None:
        while not self.stopping:
            eventlet.sleep(1.0)
            if self.fleet.poll() is not None and not self.stopping:
                log.warning("the engine fleet %s ended (%s); starting another", self.fleet.pid,
                            self.fleet.returncode)
                m.engine_restarts().inc()
                self.fleet = self._spawn()

    @property
    def pids(self) -> list[int]:
        """The workers' process ids (the fleet's children)."""
        if self.fleet is None or self.fleet.poll() is not None:
            return []
        return _children(self.fleet.pid)

    def stop(self) -> None:
        """SIGTERM: each worker unregisters and frees its leases for another replica, then ends."""
        self.stopping = True
        if self.watcher is not None:
            self.watcher.kill()
        if self.fleet is None:
            return
        if self.fleet.poll() is None:
            self.fleet.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 15
        while self.fleet.poll() is None and time.monotonic() < deadline:
            eventlet.sleep(0.05)
        if self.fleet.poll() is None:
            self.fleet.kill()
            self.fleet.wait()

    def kill(self) -> None:
        self.stopping = True
        if self.fleet is not None and self.fleet.poll() is None:
            self.fleet.kill()

    def get_dependency(self, worker_ctx: Any) -> "EngineWorkers":
        return self


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry.name))
            except (OSError, IndexError, ValueError):
                continue
    return sorted(found)


class Checks(DependencyProvider):
    """``self.checks(spec)``: a real REGISTER in its own process, answered within the bound."""

    def setup(self) -> None:
        self.settings = settings_of(self.container.config, Settings)
        self.slots = Semaphore(self.settings.TELEPHONY_CHECK_CONCURRENCY)

    def run(self, spec: AccountSpec) -> dict[str, Any]:
        bound = self.settings.TELEPHONY_CHECK_TIMEOUT_SECONDS
        started = time.monotonic()
        with self.slots:
            # the child answers by itself a little inside the bound (starting pjsua2 takes a moment)
            inner = max(0.5, bound - (time.monotonic() - started) - 1.0)
            payload = json.dumps({"login": spec.login, "password": spec.password, "domain": spec.domain,
                                  "port": spec.port, "timeout": inner})
            proc = subprocess.Popen([sys.executable, "-m", "services.telephony.check"], cwd=str(ROOT),
                                    env=dict(os.environ, PYTHONPATH=str(ROOT)), stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
            try:
                with eventlet.Timeout(max(0.5, bound - (time.monotonic() - started))):
                    out, _ = proc.communicate(payload.encode())
            except eventlet.Timeout:
                proc.kill()
                proc.wait()
                return check.result(False, None, "timeout", f"no answer within {bound:g} s", started)
        answer = _last_json(out.decode(errors="replace"))
        if answer is None:
            return check.result(False, None, "error", "the check process failed", started)
        answer["elapsed_ms"] = int((time.monotonic() - started) * 1000)
        return answer

    def get_dependency(self, worker_ctx: Any) -> Any:
        return self.run


def _read_reports(fd: int) -> None:
    """Counts what a worker reports, until it ends (one JSON object a line)."""
    with eventlet.greenio.GreenPipe(fd, "r") as pipe:
        for line in pipe:
            try:
                item = json.loads(line)
                m.report(str(item["kind"]), dict(item.get("labels") or {}), float(item.get("value", 1.0)))
            except (ValueError, KeyError, TypeError):
                log.warning("an engine worker reported a line that is not a report: %r", line[:200])


def _last_json(text: str) -> dict[str, Any] | None:
    for line in reversed(text.splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                value = json.loads(line)
            except ValueError:
                continue
            if isinstance(value, dict):
                return value
    return None
