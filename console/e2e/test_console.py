"""The console in a real browser against the real suite: each screen's main path and its
main error path, an axe-core pass and screenshots (console/e2e/artifacts/) on each."""
from __future__ import annotations

import gzip
import os
import re
import signal
from typing import Any

import requests

from console.e2e.conftest import Screen, sign_in
from crm_shared.testing import STRONG, Instance, wait_for

OPERATOR = {"company_name": "ООО Тест", "owner_email": "owner@example.test"}


def user_field(page: Any, name: str) -> Any:
    """A field of the user form itself (the SIP fieldset has fields of the same names)."""
    return page.locator(f'form.form > [data-field="{name}"] input')


def role_id(inst: Instance, builtin: str) -> str:
    return inst.role_id(builtin)


def position(inst: Instance, title: str, builtin_role: str, department: str | None = None) -> dict[str, Any]:
    dept = department or inst.department(f"Отдел {title}")
    return inst.admin.ok("POST", "/positions", {"title": title, "department_id": dept,
                                                "role_id": role_id(inst, builtin_role)}, status=201)


def service_pid(suite: Any, name: str) -> int:
    line = next(x for x in suite.output if x.startswith("processes:"))
    return int(re.search(rf"\b{name}=(\d+)", line).group(1))  # type: ignore[union-attr]


# -- Вход -------------------------------------------------------------------------------------

def test_login_wrong_credentials_lockout_seats_refresh_and_logout(screen: Screen, suite: Any, inst: Instance):
    page = screen.page
    sign_in(screen, inst.base, inst.product_code, "admin", "not-the-password")
    page.get_by_test_id("login-error").filter(has_text="Неверный код продукта, логин или пароль").wait_for()
    screen.accessible("wrong-credentials")

    # three failures lock the login (AUTH_LOGIN_LOCKOUT_AFTER=3 here): the API's time left is shown
    inst.staff("locked", inst.department("Склад"), role_id(inst, "employee"))
    for _ in range(3):
        sign_in(screen, inst.base, inst.product_code, "locked", "wrong-password-1A")
        page.get_by_test_id("login-error").wait_for()
    page.get_by_role("button", name="Войти").click()
    locked = page.get_by_test_id("login-error").filter(has_text="Повторите через")
    locked.wait_for()
    assert re.search(r"через 1[45] мин", locked.inner_text()), locked.inner_text()
    assert page.get_by_role("button", name="Войти").is_disabled()
    screen.shot("locked")

    # every seat taken: the tariff's limit is named
    created = requests.post(f"{suite.url}/api/v1/tenants", timeout=30,
                            headers={"Authorization": f"Bearer {suite.operator_token}"},
                            json={**OPERATOR, "tariff": {"max_sessions": 1, "disk_quota_mb": 50}}).json()
    small = Instance.__new__(Instance)
    small.base, small.product_code = suite.url, created["product_code"]
    small.admin = small.login("admin", created["admin"]["password"])  # takes the only seat
    small.admin.ok("POST", "/users", {"full_name": "Второй", "login": "second", "password": STRONG,
                                      "password_confirm": STRONG}, status=201)
    sign_in(screen, inst.base, small.product_code, "second", STRONG)
    page.get_by_test_id("login-error").filter(has_text="не более 1 пользователей").wait_for()
    screen.shot("seats-exhausted")

    # the right credentials: in, the token refreshes on its own (20 s tokens here), out
    sign_in(screen, inst.base, inst.product_code, "admin", inst.admin_password)
    page.get_by_role("navigation").wait_for()
    first = page.evaluate("JSON.parse(sessionStorage.getItem('crm.session')).access_token")
    page.wait_for_function("(t) => JSON.parse(sessionStorage.getItem('crm.session')).access_token !== t", arg=first,
                           timeout=40_000)
    page.get_by_role("link", name="Журнал").click()
    page.get_by_role("heading", name="Журнал").wait_for()  # the refreshed token works
    page.get_by_role("button", name="Выйти").click()
    page.get_by_role("heading", name="Вход в систему").wait_for()
    assert page.evaluate("sessionStorage.getItem('crm.session')") is None
    old = requests.get(f"{inst.base}/api/v1/auth/me", headers={"Authorization": f"Bearer {first}"}, timeout=10)
    assert old.status_code == 401


# -- Пользователи, SIP -----------------------------------------------------------------------

def test_user_weak_then_strong_password_two_positions_time_zone_and_sip(admin: Screen, inst: Instance, labs: Any):
    sip_lab, _ = labs
    page = admin.page
    sales = position(inst, "Сотрудник отдела продаж", "employee")
    chief = position(inst, "Руководитель направления", "manager")
    page.get_by_role("link", name="Пользователи").click()
    page.get_by_role("heading", name="Пользователи").wait_for()
    admin.accessible("users-list")
    page.get_by_role("button", name="Создать").click()
    page.get_by_role("heading", name="Пользователь (Создание)").wait_for()
    user_field(page, "full_name").fill("Уваров Андрей Алексеевич")
    user_field(page, "login").fill("uvarov")
    user_field(page, "email").fill("a.uvarov@testmail.ts")

    # live feedback by the API's rule, then the mismatch warning before saving
    user_field(page, "password").fill("uvarov")
    assert "Ненадежный пароль" in page.get_by_test_id("password-strength").inner_text()
    user_field(page, "password").fill("Uvarov2026x")
    assert page.get_by_test_id("password-strength").inner_text() == "Введен надежный пароль."
    user_field(page, "password_confirm").fill("Uvarov2026y")
    page.get_by_role("button", name="Сохранить", exact=True).first.click()
    page.get_by_role("dialog").filter(has_text="не совпадают").wait_for()
    admin.accessible("password-mismatch")
    page.get_by_role("dialog").get_by_role("button", name="ОК").click()

    # a weak password saved anyway: the API refuses it, next to the field
    user_field(page, "password").fill("weakpass")
    user_field(page, "password_confirm").fill("weakpass")
    page.get_by_role("button", name="Сохранить", exact=True).first.click()
    page.locator('[data-field="password"] .field-error').filter(has_text="at least 10 characters").wait_for()
    admin.accessible("weak-password-refused")

    user_field(page, "password").fill("Uvarov2026x")
    user_field(page, "password_confirm").fill("Uvarov2026x")
    page.get_by_label("Должность 1").select_option(label="Сотрудник отдела продаж")
    assert page.get_by_test_id("position-role").first.inner_text() == "с ролью Сотрудник"
    page.get_by_role("button", name="+ Добавить должность для сотрудника").click()
    page.get_by_label("Должность 2").select_option(label="Руководитель направления")
    page.get_by_label("Часовой пояс").select_option("Asia/Yekaterinburg")
    page.get_by_text("Сейчас UTC+05:00").wait_for()

    # SIP: the Mango helper splits user@domain; saved with the user, then checked against kamailio
    page.get_by_label("Подключить SIP запись").check()
    sip = page.locator("fieldset.sip")
    sip.get_by_label("Имя пользователя Манго-Офис").fill("alice@crm.test")
    assert sip.get_by_label("Логин").input_value() == "alice"
    assert sip.get_by_label("Домен").input_value() == "crm.test"
    assert sip.get_by_label("Порт").input_value() == "5060"
    sip.get_by_label("Порт").fill(str(sip_lab.port))
    sip.get_by_label("Пароль").fill("wrong-password")
    page.get_by_role("button", name="Сохранить и продолжить").first.click()
    page.get_by_role("heading", name="Пользователь (Уваров Андрей Алексеевич)").wait_for()

    user = next(u for u in inst.admin.ok("GET", "/users", q="uvarov")["items"])
    assert sorted(user["position_ids"]) == sorted([sales["id"], chief["id"]])
    assert (user["timezone"], user["email"], user["sip_enabled"]) == (
        "Asia/Yekaterinburg", "a.uvarov@testmail.ts", True)

    # the check's honest answer: the wrong password is refused, the right one accepted, with the time taken
    sip = page.locator("fieldset.sip")
    sip.get_by_role("button", name="Проверить подключение").click()
    refused = page.get_by_test_id("sip-check")
    refused.filter(has_text="Проверка не прошла").wait_for()
    assert re.search(r"\d+ мс", refused.inner_text())
    admin.accessible("sip-check-refused")
    sip.get_by_label("Пароль").fill("alicepw")
    sip.get_by_role("button", name="Проверить подключение").click()
    page.get_by_test_id("sip-check").filter(has_text="Сервер принял логин и пароль").wait_for()
    page.get_by_test_id("sip-registration").wait_for()
    admin.accessible("sip-check-ok")
    account = inst.admin.ok("GET", f"/users/{user['id']}/sip")
    assert (account["login"], account["domain"], account["port"], account["password_set"]) == (
        "alice", "crm.test", sip_lab.port, True)

    # the list: search and the active/inactive state
    page.get_by_role("button", name="Сохранить", exact=True).first.click()
    page.get_by_role("heading", name="Пользователи").wait_for()
    page.get_by_placeholder("Поиск по Ф.И.О., логину или email").fill("uvarov")
    page.get_by_role("link", name="Уваров Андрей Алексеевич").wait_for()
    page.get_by_label("Состояние").select_option("inactive")
    page.get_by_text("Нет записей.").wait_for()


# -- Почтовые учетные записи -------------------------------------------------------------------

def test_mail_accounts_yandex_preset_and_custom_against_dovecot(admin: Screen, inst: Instance, suite: Any, labs: Any):
    _, mail_lab = labs
    page = admin.page
    user = inst.admin.ok("POST", "/users", {"full_name": "Лижевская Анна", "login": "lan", "password": STRONG,
                                            "password_confirm": STRONG}, status=201)
    page.goto(f"{inst.base}/#/users/{user['id']}")
    page.get_by_role("link", name="+ Добавить учетную запись").click()
    page.get_by_role("heading", name="Создание учетной записи").wait_for()
    admin.accessible("mail-new")

    # a preset shows its logo and hides the fixed fields
    page.get_by_label("Почтовый сервис").select_option("yandex")
    page.get_by_role("img", name="Яндекс Почта").wait_for()
    assert page.get_by_label("Сервер входящей почты").count() == 0
    assert page.get_by_label("Частота проверки новых сообщений").input_value() == "5"
    page.get_by_label("Название", exact=True).fill("anna")
    page.get_by_label("Email").fill("anna@yandex.ru")
    page.get_by_label("Пароль", exact=True).fill("app-password")
    admin.accessible("mail-yandex")
    page.get_by_role("button", name="Сохранить").click()
    page.get_by_role("link", name="anna", exact=True).wait_for()

    # a custom account against the lab's Dovecot: a wrong password first, then the right one
    page.get_by_role("link", name="+ Добавить учетную запись").click()
    page.get_by_label("Название", exact=True).fill("Рабочая")
    page.get_by_label("Email").fill("alice@example.test")
    page.get_by_label("Пароль", exact=True).fill("wrong")
    incoming = page.locator("fieldset", has_text="Входящая почта (IMAP)")
    incoming.get_by_label("Сервер входящей почты").fill("localhost")
    incoming.get_by_label("Порт").fill(str(mail_lab.imaps_port))
    outgoing = page.locator("fieldset", has_text="Исходящая почта (SMTP)")
    outgoing.get_by_label("Сервер исходящей почты").fill("localhost")
    outgoing.get_by_label("Порт").fill(str(mail_lab.smtps_port))
    outgoing.get_by_label("Аутентификация").select_option("same_as_incoming")
    page.get_by_role("button", name="Проверить").click()
    page.get_by_test_id("check-imap").and_(page.locator(".error")).wait_for()
    admin.accessible("mail-check-refused")
    page.get_by_label("Пароль", exact=True).fill("alice-pass")
    page.get_by_role("button", name="Проверить").click()
    page.get_by_test_id("check-imap").filter(has_text="подключение успешно").wait_for()
    page.get_by_test_id("check-smtp").filter(has_text="подключение успешно").wait_for()
    assert re.search(r"\d+ мс", page.get_by_test_id("check-imap").inner_text())
    page.get_by_role("button", name="Загрузить папки").click()
    page.get_by_text(re.compile(r"Папок загружено: \d+")).wait_for()
    page.get_by_label("Отправленные письма загружать из папки").select_option("Sent")
    admin.accessible("mail-custom-checked")
    # checked and its folders listed from the form as typed: nothing is stored before «Сохранить»
    assert [a["name"] for a in inst.admin.ok("GET", f"/users/{user['id']}/mail-accounts")["items"]] == ["anna"]
    page.get_by_role("button", name="Сохранить").click()
    page.get_by_role("link", name="Рабочая").wait_for()
    accounts = {a["name"]: a for a in inst.admin.ok("GET", f"/users/{user['id']}/mail-accounts")["items"]}
    assert accounts["anna"]["preset"] == "yandex" and accounts["anna"]["imap"]["host"] == "imap.yandex.ru"
    assert (accounts["Рабочая"]["imap"]["port"], accounts["Рабочая"]["sent_folder"]) == (mail_lab.imaps_port, "Sent")

    # a 503 names the part that is down, and the form keeps what was typed
    page.get_by_role("link", name="Рабочая").click()
    page.get_by_role("heading", name="Редактирование учетной записи Рабочая").wait_for()
    page.get_by_text("Состояние:").wait_for()
    page.get_by_label("Название", exact=True).fill("Рабочая почта")
    pid = service_pid(suite, "mail")
    os.kill(pid, signal.SIGSTOP)
    try:
        page.get_by_role("button", name="Сохранить").click()
        page.get_by_role("alert").filter(has_text="Сервис «mail» сейчас недоступен").wait_for()
        assert page.get_by_label("Название", exact=True).input_value() == "Рабочая почта"
        admin.shot("mail-service-down")
    finally:
        os.kill(pid, signal.SIGCONT)
    page.get_by_role("button", name="Сохранить").click()
    page.get_by_role("link", name="Рабочая почта").wait_for()


# -- Подразделения -------------------------------------------------------------------------------

def test_departments_create_rename_move_by_drag_and_delete(admin: Screen, inst: Instance):
    page = admin.page
    page.on("dialog", lambda d: d.accept())
    page.get_by_role("link", name="Подразделения").click()
    page.get_by_role("heading", name="Подразделения").wait_for()
    for name in ("Продажи", "Москва"):
        page.get_by_role("treeitem").filter(has_text="Компания").get_by_role("button").click()
        page.get_by_label("Добавить дочернее: Компания").fill(name)
        page.get_by_role("button", name="Добавить подразделение").click()
        page.get_by_test_id(f"dept-{name}").wait_for()
    page.get_by_test_id("dept-Москва").drag_to(page.get_by_test_id("dept-Продажи"))
    deps = {d["name"]: d for d in inst.admin.ok("GET", "/departments")["items"]}
    wait_for(lambda: {d["name"]: d for d in inst.admin.ok("GET", "/departments")["items"]}["Москва"]["parent_id"]
             == deps["Продажи"]["id"], timeout=10)
    page.get_by_test_id("dept-Москва").and_(page.locator(".depth-2")).wait_for()
    admin.accessible("departments")

    page.get_by_test_id("dept-Продажи").get_by_role("button").click()
    page.get_by_label("Название должности").fill("Менеджер по продажам")
    page.get_by_label("Роль").select_option(label="Сотрудник")
    page.get_by_role("button", name="Добавить должность").click()
    page.get_by_text("Менеджер по продажам — с ролью Сотрудник").wait_for()
    page.get_by_role("button", name="Удалить", exact=True).click()
    blocked = page.get_by_role("alert").filter(has_text="Подразделение не удалено")
    blocked.wait_for()
    assert "1 дочерних подразделений и 1 должностей" in blocked.inner_text()
    admin.accessible("department-delete-refused")

    page.get_by_test_id("dept-Москва").get_by_role("button").click()
    page.get_by_label("Название", exact=True).fill("Москва-Сити")
    page.get_by_role("button", name="Переименовать").click()
    page.get_by_test_id("dept-Москва-Сити").wait_for()
    page.get_by_role("button", name="Удалить", exact=True).click()
    page.get_by_text("Удалено.").wait_for()
    assert "Москва-Сити" not in {d["name"] for d in inst.admin.ok("GET", "/departments")["items"]}


# -- Права доступа -------------------------------------------------------------------------------

def test_role_scope_change_in_the_matrix(admin: Screen, inst: Instance):
    page = admin.page
    page.get_by_role("link", name="Права доступа").click()
    page.get_by_role("button", name="Сотрудник (встроенная)").click()
    radio = page.get_by_role("radio", name="Контакты: просмотр: своего подразделения")
    radio.check()
    page.get_by_text("Есть несохранённые изменения.").wait_for()
    admin.accessible("roles-matrix")
    page.get_by_role("button", name="Сохранить").click()
    page.get_by_text("Сохранено.").wait_for()
    employee = next(r for r in inst.admin.ok("GET", "/roles")["items"] if r["builtin"] == "employee")
    assert employee["rights"]["contacts.read"] == "department"

    page.get_by_label("Название роли").first.fill("Сотрудник")
    page.get_by_role("button", name="Добавить роль").click()
    page.get_by_role("alert").filter(has_text="Роль с таким названием уже есть").wait_for()
    admin.shot("role-name-taken")


# -- Интеграция с 1С -----------------------------------------------------------------------------

def kd2_file() -> bytes:
    """A small file of 1C:Бухгалтерия 8.2's universal exchange (КД 2.0): a counterparty and a product."""
    def prop(name: str, kind: str, value: str) -> str:
        return f'<Свойство Имя="{name}" Тип="{kind}"><Значение>{value}</Значение></Свойство>'

    def obj(npp: int, kind: str, rule: str, uuid: str, *props: str) -> str:
        ref = prop("{УникальныйИдентификатор}", "Строка", uuid)
        return (f'<Объект Нпп="{npp}" Тип="{kind}" ИмяПравила="{rule}"><Ссылка Нпп="{npp}">{ref}</Ссылка>'
                f'{"".join(props)}</Объект>')

    body = (obj(1, "СправочникСсылка.Контрагенты", "Контрагенты", "6f1c1a52-4d4e-4bb7-9c3b-000000000001",
                prop("Наименование", "Строка", "ООО Консоль Партнёр"), prop("ИНН", "Строка", "7728168971"),
                prop("ЮрФизЛицо", "ПеречислениеСсылка.ЮрФизЛицо", "ЮрЛицо"))
            + obj(2, "СправочникСсылка.Номенклатура", "Номенклатура", "6f1c1a52-4d4e-4bb7-9c3b-000000000002",
                  prop("Наименование", "Строка", "Цемент М500"), prop("Артикул", "Строка", "CEM-500"),
                  prop("Цена", "Число", "350")))
    return ('<?xml version="1.0" encoding="windows-1251"?>\n<ФайлОбмена ВерсияФормата="2.0" '
            'ДатаВыгрузки="2026-11-30T10:00:00" ИмяКонфигурацииИсточника="БухгалтерияПредприятия" '
            'ИмяКонфигурацииПриемника="CRM"><ПравилаОбмена><ВерсияФормата>2.01</ВерсияФормата></ПравилаОбмена>'
            + body + "</ФайлОбмена>").encode("windows-1251")


def test_onec_import_with_progress_log_and_rules(admin: Screen, inst: Instance, tmp_path: Any):
    page = admin.page
    page.get_by_role("link", name="Интеграция с 1С").click()
    page.get_by_role("heading", name="Интеграция с 1С").wait_for()
    assert "1С:Бухгалтерия v.8.2" in page.get_by_test_id("version-description").inner_text()
    with page.expect_download() as download:
        page.get_by_role("button", name="Скачать правила обмена для 1С").click()
    assert download.value.suggested_filename.endswith(".xml")

    # a file that is not an exchange file: the job fails and says why
    bad = tmp_path / "broken.xml"
    bad.write_text("<not-an-exchange-file/>")
    page.get_by_label("Файл для загрузки").set_input_files(str(bad))
    page.get_by_role("button", name="Загрузить", exact=True).click()
    page.get_by_test_id("exchange-job").filter(has_text="Обмен не выполнен").wait_for()
    admin.shot("onec-failed")

    good = tmp_path / "from-1c.xml"
    good.write_bytes(kd2_file())
    page.get_by_label("Файл обмена").fill("from-1c.xml")
    page.get_by_label("Файл для загрузки").set_input_files(str(good))
    page.locator("#imp-counterparties").check()
    page.locator("#imp-products").check()
    page.locator("#exp-invoices").check()
    page.get_by_label("Счета: Время начала").fill("2026-11-01T00:00")
    page.get_by_label("Перезаписывать записи в CRM, если найдены").check()
    page.get_by_role("button", name="Загрузить", exact=True).click()
    result = page.get_by_test_id("exchange-job").filter(has_text="Прочитано")
    result.wait_for()
    assert "создано 2" in result.inner_text(), result.inner_text()
    assert page.locator("progress").get_attribute("value") == "100"
    page.get_by_test_id("exchange-log").locator("tbody tr").first.wait_for()
    admin.accessible("onec-loaded")
    settings = inst.admin.ok("GET", "/exchange/settings")
    assert (settings["file_name"], settings["overwrite"], sorted(settings["import_objects"])) == (
        "from-1c.xml", True, ["counterparties", "products"])
    assert settings["export_objects"]["invoices"]["since"].startswith("2026-1")
    assert inst.admin.ok("GET", "/counterparties", q="Консоль Партнёр")["items"]


# -- Импорт данных --------------------------------------------------------------------------------

def test_csv_import_mapping_dry_run_import_errors_and_revert(admin: Screen, inst: Instance, tmp_path: Any):
    page = admin.page
    csv = tmp_path / "contacts.csv"
    csv.write_text("ФИО;Телефон;Email\nИванов Иван;+7 916 111-22-33;ivanov@example.test\n"
                   "Петрова Анна;+7 916 444-55-66;petrova@example.test\n;+7 916 000-00-00;nobody@example.test\n",
                   encoding="utf-8")
    page.get_by_role("link", name="Импорт данных").click()
    page.get_by_label("Файл CSV или Excel (.xlsx)").set_input_files(str(csv))
    page.get_by_role("button", name="Разобрать файл").click()
    page.get_by_role("heading", name="2. Сопоставление столбцов").wait_for()
    admin.accessible("csv-mapping")

    # without the required name column nothing can run
    column = page.get_by_label("Поле CRM: ФИО")
    suggested = column.input_value()
    assert suggested, "the name column is suggested"
    column.select_option("")
    page.get_by_role("alert").filter(has_text="Не сопоставлены обязательные поля").wait_for()
    assert page.get_by_role("button", name="Пробный запуск").is_disabled()
    column.select_option(suggested)

    page.get_by_role("button", name="Пробный запуск").click()
    page.get_by_test_id("import-dry-run").filter(has_text="будет создано 2").wait_for()
    assert "отклонено 1 из 3" in page.get_by_test_id("import-dry-run").inner_text()
    assert inst.admin.ok("GET", "/contacts/count")["count"] == 0
    page.get_by_role("button", name="Импортировать").click()
    page.get_by_test_id("import-job").filter(has_text="Импорт завершён: создано 2").wait_for()
    assert inst.admin.ok("GET", "/contacts/count")["count"] == 2
    with page.expect_download() as download:
        page.get_by_test_id("import-job").get_by_role("button", name="Скачать строки с ошибками").click()
    assert "Ошибка импорта" in open(download.value.path(), encoding="utf-8-sig").read()
    admin.accessible("csv-imported")
    page.get_by_role("button", name="Отменить импорт").click()
    page.get_by_test_id("import-job").filter(has_text="Импорт отменён: удалено 2").wait_for()
    assert inst.admin.ok("GET", "/contacts/count")["count"] == 0
    admin.shot("csv-reverted")


# -- Журнал, права ----------------------------------------------------------------------------------

def test_journal_filters_and_rights_hide_sections(admin: Screen, inst: Instance, browser: Any):
    page = admin.page
    inst.department("Бухгалтерия")
    page.get_by_role("link", name="Журнал").click()
    page.get_by_test_id("journal").locator("tbody tr").first.wait_for()
    page.get_by_label("Объект").fill("department")
    page.get_by_role("button", name="Применить").click()
    page.wait_for_function("""() => {
        const cells = [...document.querySelectorAll('[data-testid=journal] tbody td:nth-child(3)')]
            .map(c => c.dataset.code);
        return cells.length > 0 && cells.every(c => c === 'department');
    }""")
    assert page.get_by_test_id("journal").locator("tbody td").nth(2).inner_text() == "Подразделение"
    admin.accessible("journal")

    # an employee sees only what their role allows; the server still decides
    inst.staff("clerk", inst.department("Склад"), role_id(inst, "employee"))
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        other = Screen(context.new_page(), "employee")
        sign_in(other, inst.base, inst.product_code, "clerk", STRONG)
        other.page.get_by_role("button", name="Выйти").wait_for()
        nav = other.page.get_by_role("navigation")
        assert nav.get_by_role("link", name="Пользователи").count() == 0
        assert nav.get_by_role("link", name="Права доступа").count() == 0
        other.page.goto(f"{inst.base}/#/users/new")
        other.page.wait_for_function(
            "() => !location.hash.startsWith('#/users') || document.body.innerText.includes('У вас нет прав')")
        assert other.page.get_by_role("heading", name="Пользователь (Создание)").count() == 0
        other.shot("employee")
        assert not other.problems, other.problems
    finally:
        context.close()


def test_first_load_is_within_budget_and_served_with_a_strict_policy(suite: Any):
    page = requests.get(f"{suite.url}/", headers={"Accept-Encoding": "gzip"}, timeout=10)
    assert page.status_code == 200
    policy = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "default-src 'none'" in policy and "unsafe-inline" not in policy
    assert page.headers["Cache-Control"] == "no-cache"
    total = len(gzip.compress(page.content))
    for path in re.findall(r'(?:src|href)="(/[^"]+)"', page.text):
        asset = requests.get(f"{suite.url}{path}", headers={"Accept-Encoding": "gzip"}, timeout=10, stream=True)
        assert asset.status_code == 200, path
        body = asset.raw.read()
        total += len(body)
        if path.startswith("/assets/"):
            assert asset.headers["Cache-Control"] == "public, max-age=31536000, immutable"
            assert asset.headers.get("Content-Encoding") == "gzip" or len(body) < 1024
    assert total <= 200 * 1024, f"first load is {total} bytes gzipped"
    etag = page.headers["ETag"]
    assert requests.get(f"{suite.url}/", headers={"If-None-Match": etag}, timeout=10).status_code == 304
    metrics = requests.get(suite.metrics_url, timeout=10).text
    assert re.search(r'crm_http_requests_total\{[^}]*route="/"[^}]*status="304"[^}]*\} [1-9]', metrics), \
        [line for line in metrics.splitlines() if 'route="/"' in line]
