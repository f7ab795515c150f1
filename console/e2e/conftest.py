"""Fixtures of the console's browser tests (run by ``make test`` in a pytest process of
their own: the suite's tests/ patch eventlet in, Playwright needs plain asyncio)."""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest

from console.e2e.harness import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, RunningSuite, axe_violations, start_suite
from crm_shared.testing import Databases, Instance, RabbitVhost
from tests.labs import mail as mail_lab_module
from tests.labs import sip as sip_lab_module

DIST = Path(__file__).resolve().parents[1] / "dist" / "index.html"


@pytest.fixture(scope="session")
def labs() -> Any:
    why = (sip_lab_module.missing_tools() or sip_lab_module.ensure_domain()
           or mail_lab_module.missing_tools("dovecot", "doveadm"))
    if why:
        pytest.skip(why)
    sip_folder = Path(tempfile.mkdtemp(prefix="crm-sip-lab-"))
    mail_folder = Path(tempfile.mkdtemp(prefix="crm-mail-lab-"))
    sip = sip_lab_module.SipLab(sip_folder)
    mail = mail_lab_module.MailLab(mail_folder)
    try:
        sip.start_kamailio()
        mail.start()
        yield sip, mail
    finally:
        sip.stop()
        mail.stop()
        if not os.environ.get("KEEP_LABS"):
            shutil.rmtree(sip_folder, ignore_errors=True)
            shutil.rmtree(mail_folder, ignore_errors=True)


@pytest.fixture(scope="session")
def suite(labs: Any, tmp_path_factory: Any) -> Any:
    if not DIST.exists():
        pytest.fail("the console is not built: `make console` (make test builds it first)")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (scripts/ci-install.sh installs Debian's)")
    _, mail = labs
    rabbit = RabbitVhost()
    amqp_uri = rabbit.create()
    databases = Databases()
    running: RunningSuite | None = None
    try:
        running = start_suite(amqp_uri, databases, tmp_path_factory.mktemp("run"),
                              {"SSL_CERT_FILE": str(mail.cert_file)})
        yield running
    finally:
        if running:
            running.stop()
        rabbit.delete()
        databases.drop_all()


@pytest.fixture(scope="session")
def browser() -> Any:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture()
def inst(suite: RunningSuite) -> Instance:
    """A fresh tenant per test: its admin signs in through the browser."""
    return Instance(suite, disk_quota_mb=200)


class Screen:
    """One test's browser tab, with what the page logged and the shots it took."""

    def __init__(self, page: Any, name: str) -> None:
        self.page = page
        self.name = name
        self.problems: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda e: self.problems.append(f"page error: {e}"))

    def _console(self, message: Any) -> None:
        # an error status a test provokes is logged by Chromium as "Failed to load resource"
        if message.type == "error" and "Failed to load resource" not in message.text:
            self.problems.append(f"console error: {message.text}")

    def shot(self, label: str) -> None:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(ARTIFACTS / f"{self.name}--{label}.png"), full_page=True)

    def accessible(self, label: str) -> None:
        """An axe-core pass of the screen as shown, and its screenshot."""
        self.shot(label)
        bad = axe_violations(self.page)
        assert not bad, f"{label}: {bad}"


@pytest.fixture()
def screen(browser: Any, request: Any) -> Any:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="ru-RU", accept_downloads=True)
    context.set_default_timeout(20_000)
    page = context.new_page()
    view = Screen(page, request.node.name)
    yield view
    context.close()
    assert not view.problems, view.problems


def sign_in(screen: Screen, base: str, product_code: str, login: str, password: str) -> None:
    page = screen.page
    page.goto(base + "/")
    page.get_by_label("Код продукта").fill(product_code)
    page.get_by_label("Логин").fill(login)
    page.get_by_label("Пароль").fill(password)
    page.get_by_role("button", name="Войти").click()


@pytest.fixture()
def admin(screen: Screen, inst: Instance) -> Screen:
    """The screen, signed in as the fresh tenant's admin."""
    sign_in(screen, inst.base, inst.product_code, "admin", inst.admin_password)
    screen.page.get_by_role("navigation").wait_for()
    return screen
