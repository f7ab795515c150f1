"""Fixtures of the mail tests: a real mail system (Dovecot, the SMTP lab
delivering into it, Postfix) for the module, and the whole suite started
with the mail service trusting the lab's certificate (``SSL_CERT_FILE``) and
with short server timeouts, so that timeouts are tested within seconds."""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest

from crm_shared.testing import Databases, Instance
from tests.conftest import suite_with_env
from tests.labs.mail import MailLab, missing_tools

MAIL_ENV = {"MAIL_CHECK_TIMEOUT_SECONDS": "2", "MAIL_POLL_TICK_SECONDS": "0.5", "MAIL_FETCH_BATCH": "50"}


@pytest.fixture(scope="module")
def mail_lab() -> Any:
    missing = missing_tools("dovecot", "doveadm")
    if missing:
        pytest.skip(missing)
    # not under pytest's 0700 tmp folders: Dovecot's and Postfix's own users must traverse it
    folder = Path(tempfile.mkdtemp(prefix="crm-mail-lab-"))
    lab = MailLab(folder)
    try:
        lab.start(postfix=missing_tools("postfix") is None)
        yield lab
    finally:
        lab.stop()
        if not os.environ.get("KEEP_MAIL_LAB"):  # to read its logs after a failure
            shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def mail_suite(mail_lab: MailLab, amqp_uri: str, databases: Databases) -> Any:
    yield from suite_with_env(amqp_uri, databases, {**MAIL_ENV, "SSL_CERT_FILE": str(mail_lab.cert_file)})


@pytest.fixture(scope="module")
def inst(mail_suite: Any) -> Instance:
    return Instance(mail_suite, disk_quota_mb=200)
