"""Fixtures of the telephony tests: a real SIP network (kamailio, the sipp
"PSTN" callee, baresip as bob's desk phone) for the module, and the whole
suite started with three engine workers of three accounts each (fewer than
pjsua2's 8, so that "more users than one worker holds" takes few users),
short leases and registrations, so that a worker's death and a registrar's
restart are seen within seconds."""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest

from crm_shared.testing import STRONG, Databases, Instance, wait_for
from services.telephony.dependencies import EngineWorkers
from tests.conftest import suite_with_env
from tests.labs.sip import SipLab, ensure_domain, missing_tools

TELEPHONY_ENV = {
    "TELEPHONY_ENGINE_WORKERS": "3", "TELEPHONY_ACCOUNTS_PER_WORKER": "3", "TELEPHONY_LEASE_SECONDS": "4",
    "TELEPHONY_ENGINE_SYNC_SECONDS": "1", "TELEPHONY_REGISTER_EXPIRES_SECONDS": "10",
    "TELEPHONY_REGISTER_RETRY_SECONDS": "2", "TELEPHONY_CHECK_TIMEOUT_SECONDS": "4", "TELEPHONY_RING_SECONDS": "6",
    "TELEPHONY_DIAL_WAIT_SECONDS": "6", "TELEPHONY_ENDED_VISIBLE_SECONDS": "3",
}


@pytest.fixture(scope="module")
def sip_lab() -> Any:
    why = missing_tools() or ensure_domain()
    if why:
        pytest.skip(why)
    folder = Path(tempfile.mkdtemp(prefix="crm-sip-lab-"))
    lab = SipLab(folder)
    try:
        lab.start()
        yield lab
    finally:
        lab.stop()
        if not os.environ.get("KEEP_SIP_LAB"):  # to read its logs after a failure
            shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def telephony_suite(sip_lab: SipLab, amqp_uri: str, databases: Databases) -> Any:
    yield from suite_with_env(amqp_uri, databases, TELEPHONY_ENV)


@pytest.fixture(scope="module")
def inst(telephony_suite: Any) -> Instance:
    return Instance(telephony_suite)


def engines(suite: Any) -> EngineWorkers:
    container = suite.by_name["telephony"]
    return next(d for d in container.dependencies if isinstance(d, EngineWorkers))


class Phones:
    """Users of the instance with SIP accounts on the lab's registrar; removed at the end of a test."""

    def __init__(self, inst: Instance, lab: SipLab) -> None:
        self.inst, self.lab = inst, lab
        self.made: list[str] = []

    def user(self, login: str, sip_enabled: bool = True) -> Any:
        """A CRM user (``crm-<login>``) with the employee role; answers its signed-in client."""
        crm_login = f"crm-{login}"
        admin = self.inst.admin
        found = [u for u in admin.ok("GET", "/users", limit=500)["items"] if u["login"] == crm_login]
        if not found:
            dept = self.inst.department(f"Отдел {login}")
            position = admin.ok("POST", "/positions", {"title": f"должность {login}", "department_id": dept,
                                                       "role_id": self.inst.role_id("employee")}, status=201)
            admin.ok("POST", "/users", {"full_name": f"Сотрудник {login}", "login": crm_login, "password": STRONG,
                                        "password_confirm": STRONG, "position_ids": [position["id"]],
                                        "sip_enabled": sip_enabled}, status=201)
        api = self.inst.login(crm_login)
        return api

    def account(self, login: str, password: str | None = None, notify: bool = True, **extra: Any) -> Any:
        """``login``'s CRM user with a SIP account for SIP user ``login`` on the lab registrar."""
        from tests.labs.sip import DOMAIN, USERS

        api = self.user(login)
        body = {"login": login, "password": password or USERS[login], "domain": DOMAIN, "port": self.lab.port,
                "notify_incoming": notify, **extra}
        self.inst.admin.ok("PUT", f"/users/{api.user_id}/sip", body)
        self.made.append(api.user_id)
        return api

    def registered(self, user_id: str, timeout: float = 20) -> dict[str, Any]:
        def state() -> Any:
            out = self.inst.admin.ok("GET", f"/users/{user_id}/sip")
            return out if out["registration"]["state"] == "registered" else None
        return wait_for(state, timeout=timeout, interval=0.2, message=f"user {user_id} to register")

    def cleanup(self) -> None:
        for user_id in self.made:
            self.inst.admin.call("DELETE", f"/users/{user_id}/sip")
        self.made.clear()


@pytest.fixture
def phones(inst: Instance, sip_lab: SipLab) -> Any:
    p = Phones(inst, sip_lab)
    yield p
    p.cleanup()
