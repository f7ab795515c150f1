"""«Проверить»: a real REGISTER with digest authentication to domain:port,
answered within the bound with an honest result, then unregistered.

Each check runs in a short-lived engine process (``python -m
services.telephony.check``, the account as JSON on stdin, never on the
command line), so a check never takes one of a worker's 8 pjsua2 slots and a
misbehaving registrar cannot hang the service: the parent kills the process
at the bound and answers ``timeout``."""
from __future__ import annotations

import json
import socket
import sys
import time
from typing import Any

from services.telephony.sip import REGISTRATION, AccountSpec, SipEngine

WRONG_CREDENTIALS = {401, 403, 407}


def classify(code: int | None, detail: str) -> str | None:
    """The check's reason for a final REGISTER status (None: registered)."""
    if code is not None and 200 <= code < 300:
        return None
    if code in WRONG_CREDENTIALS:
        return "wrong_credentials"
    if code == 404:
        return "unknown_user"
    if code is None or code == 408:
        return "timeout"
    if "RESOLVE" in detail.upper() or "gethostbyname" in detail:
        return "dns"
    if code == 503:
        return "refused"
    return "error"


def result(ok: bool, status: int | None, reason: str | None, detail: str | None, started: float) -> dict[str, Any]:
    return {"ok": ok, "status": status, "reason": reason, "detail": (detail or None) and str(detail)[:200],
            "elapsed_ms": int((time.monotonic() - started) * 1000)}


def check(spec: AccountSpec, timeout: float) -> dict[str, Any]:
    """Registers ``spec`` once (in this process), waits up to ``timeout`` for the final answer,
    unregisters."""
    started = time.monotonic()
    deadline = started + timeout
    try:
        socket.getaddrinfo(spec.domain, spec.port, type=socket.SOCK_DGRAM)
    except OSError as exc:
        return result(False, None, "dns", f"{spec.domain} does not resolve: {exc}", started)
    engine = SipEngine(1, bind="")
    engine.start()
    registered = False
    try:
        engine.add("check", AccountSpec(spec.login, spec.password, spec.domain, spec.port, register=True,
                                        expires=60, retry_seconds=3600, keepalive_seconds=0))
        while time.monotonic() < deadline:
            for event in engine.poll(20):
                if event.kind == REGISTRATION:
                    reason = classify(event.code, event.reason)
                    registered = reason is None
                    return result(reason is None, event.code, reason, None if reason is None else event.reason,
                                  started)
        return result(False, None, "timeout", f"no answer from {spec.domain}:{spec.port} within {timeout:g} s",
                      started)
    finally:
        engine.remove("check")  # REGISTER Expires: 0: a check leaves nothing registered
        end = time.monotonic() + 1.0
        while registered and time.monotonic() < end:
            if any(e.kind == REGISTRATION for e in engine.poll(20)):
                break
        engine.stop()


def main() -> int:
    data = json.loads(sys.stdin.read())
    spec = AccountSpec(data["login"], data["password"], data["domain"], int(data["port"]))
    out = check(spec, float(data["timeout"]))
    sys.stdout.write("\n" + json.dumps(out) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
