"""CSV (and .xlsx) import and export through the HTTP gateway against the
whole suite: real files (windows-1251 saved by Excel with ';', UTF-8 with
',' and quoted line breaks, a workbook), dry runs, duplicates under each
policy, rejected rows and their error file, revert, rights, the journal and
formula neutralisation."""
from __future__ import annotations

import csv
import io
import uuid
from typing import Any

import openpyxl
import pytest
from nameko.standalone.rpc import ClusterRpcProxy

from crm_shared.testing import Api, Instance, error_of, wait_for


def upload(api: Api, content: bytes, status: int = 202, **params: Any) -> Any:
    resp = api.call("POST", "/import/csv", params=params, data=content,
                    headers={"Content-Type": "text/csv"})
    assert resp.status_code == status, resp.text
    return resp.json()


def finished(api: Api, job_id: str, statuses: tuple[str, ...] = ("done", "failed")) -> dict[str, Any]:
    return dict(wait_for(lambda: (j := api.ok("GET", f"/import/jobs/{job_id}"))["status"] in statuses and j,
                         timeout=60, message=f"job {job_id} {statuses}"))


def run(api: Api, content: bytes, **params: Any) -> dict[str, Any]:
    job = finished(api, upload(api, content, **params)["job_id"])
    assert job["status"] == "done", job
    return job


def rows_of(api: Api, job_id: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = api.ok("GET", f"/import/jobs/{job_id}/rows", limit=2, **({"cursor": cursor} if cursor else {}))
        items += page["items"]
        cursor = page["next_cursor"]
        if not cursor:
            return items


def csv_bytes(rows: list[list[str]], delimiter: str = ";", encoding: str = "utf-8") -> bytes:
    out = io.StringIO()
    csv.writer(out, delimiter=delimiter, lineterminator="\r\n").writerows(rows)
    return out.getvalue().encode(encoding)


@pytest.fixture(scope="module")
def inst(suite: Any) -> Instance:
    return Instance(suite)


def test_excel_windows_1251_file_with_semicolons_imports(inst):
    api = inst.admin
    content = csv_bytes([
        ["ФИО", "Должность", "Телефон", "E-mail", "Примечание"],
        ["Сидоров Пётр Ильич", "Главный бухгалтер", "8 (495) 111-22-33", "sidorov@example.ru", "звонить утром"],
        ["Ёлкина Анна", "Директор", "+7 916 222-33-44; 8 800 555 35 35", "", ""],
    ], ";", "windows-1251")
    suggested = api.call("POST", "/import/csv/suggest", params={"entity": "contacts"}, data=content).json()
    assert (suggested["format"], suggested["encoding"], suggested["delimiter"]) == ("csv", "windows-1251", ";")
    assert suggested["mapping"] == {"ФИО": "full_name", "Должность": "position", "Телефон": "phones",
                                    "E-mail": "emails"}
    assert suggested["unmapped"] == ["Примечание"] and suggested["missing"] == []
    assert suggested["sample"][1][0] == "Ёлкина Анна"

    job = run(api, content, entity="contacts", file_name="контакты.csv")
    assert (job["read"], job["created"], job["rejected"], job["progress"]) == (2, 2, 0, 100)
    assert job["mapping"] == suggested["mapping"] and job["unmapped"] == ["Примечание"]
    found = api.ok("GET", "/contacts", q="Ёлкина")["items"]
    assert [c["phones"] for c in found] == [["+7 916 222-33-44", "8 800 555 35 35"]]
    assert api.ok("GET", "/contacts", q="sidorov@example.ru")["items"][0]["position"] == "Главный бухгалтер"


def test_utf8_file_with_commas_and_quoted_line_breaks(inst):
    api = inst.admin
    content = (b'Full name,Position,Phone\r\n'
               b'"Smith, John","Head of\nPurchasing","+1 212 555 0100"\r\n'
               b'Jane Roe,Buyer,+44 20 7946 0958\r\n')
    job = run(api, content, entity="contacts")
    assert (job["read"], job["created"]) == (2, 2)
    smith = api.ok("GET", "/contacts", q="Smith")["items"][0]
    assert (smith["full_name"], smith["position"]) == ("Smith, John", "Head of\nPurchasing")
    rows = rows_of(api, job["id"])
    assert [r["row"] for r in rows] == [2, 3]  # a quoted line break keeps its row one row


def test_xlsx_workbook_of_products(inst):
    api = inst.admin
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["Наименование", "Артикул", "Ед. изм.", "Цена", "Ставка НДС"])
    sheet.append(["Стул офисный", "СТ-100", "шт", 1499.9, "22%"])
    sheet.append(["Песок", "П-1", "кг", "1 200,50", "без НДС"])
    sheet.append(["Формула", "=1+1", "шт", 10, 22])
    sheet["B4"].data_type = "s"  # text that looks like a formula
    sheet.append(["Вычисляемый", "=2+2", "шт", 10, 22])  # a formula: only its cached value is read (none here)
    buffer = io.BytesIO()
    book.save(buffer)
    job = run(api, buffer.getvalue(), entity="products")
    assert (job["created"], job["rejected"]) == (4, 0), rows_of(api, job["id"])
    chair = api.ok("GET", "/products", q="СТ-100")["items"][0]
    assert (chair["price"], chair["vat_rate"], chair["unit"]) == ("1499.90", "22", {"code": "796", "name": "шт"})
    sand = api.ok("GET", "/products", q="Песок")["items"][0]
    assert (sand["price"], sand["vat_rate"], sand["unit"]["code"]) == ("1200.50", None, "166")
    # a formula in a cell is text, never evaluated
    assert api.ok("GET", "/products", q="Формула")["items"][0]["article"] == "=1+1"
    assert api.ok("GET", "/products", q="Вычисляемый")["items"][0]["article"] is None
    exported = api.call("GET", "/export/csv", params={"entity": "products", "q": "Песок", "format": "plain"})
    lines = list(csv.reader(io.StringIO(exported.content.decode("utf-8"))))
    assert lines[0][:7] == ["Наименование", "Артикул", "Группа", "Единица", "Цена", "Валюта", "НДС"]
    assert lines[1][:7] == ["Песок", "П-1", "", "кг", "1200.50", "RUB", "без НДС"]


def test_dry_run_reports_what_the_real_run_does_and_writes_nothing(inst):
    api = inst.admin
    api.ok("POST", "/contacts", {"full_name": "Уже есть", "emails": ["dry@example.ru"]}, status=201)
    content = csv_bytes([
        ["ФИО", "E-mail", "Телефон"],
        ["Новый Первый", "dry1@example.ru", ""],
        ["Уже Есть Дубль", "DRY@example.ru", ""],     # repeats the existing contact
        ["Без Имени Телефон", "", "не телефон"],      # rejected
        ["Новый Первый Снова", "dry1@example.ru", ""],  # repeats row 2 of the file
        ["Новый Второй", "", "+7 999 000-11-22"],
    ])
    for policy in ("skip", "update", "create"):
        before = api.ok("GET", "/contacts/count")["count"]
        dry = run(api, content, entity="contacts", dry_run="true", duplicates=policy)
        assert api.ok("GET", "/contacts/count")["count"] == before, policy
        real = run(api, content, entity="contacts", duplicates=policy)
        counters = ("read", "created", "updated", "skipped", "duplicates", "rejected")
        assert {k: dry[k] for k in counters} == {k: real[k] for k in counters}, policy
        dry_rows, real_rows = rows_of(api, dry["id"]), rows_of(api, real["id"])
        assert [(r["row"], r["outcome"], r["duplicate"]) for r in dry_rows] == \
               [(r["row"], r["outcome"], r["duplicate"]) for r in real_rows], policy
        assert dry["dry_run"] is True and real["dry_run"] is False
        error_of(api.call("POST", f"/import/jobs/{dry['id']}/revert"), 409, "dry_run")
        api.ok("POST", f"/import/jobs/{real['id']}/revert", status=202)
        finished(api, real["id"], ("reverted",))


def test_duplicates_under_each_policy(inst):
    api = inst.admin
    existing = api.ok("POST", "/contacts", {"full_name": "Иванов", "position": "менеджер",
                                            "phones": ["+7 495 700-00-01"]}, status=201)
    content = csv_bytes([
        ["ФИО", "Должность", "Телефон", "E-mail"],
        ["Иванов Иван", "директор", "8 (495) 700-00-01", "ivanov@example.ru"],  # same phone, another format
        ["Иванов И.", "", "", "IVANOV@example.ru"],                              # repeats row 2 by e-mail
    ])
    skip = run(api, content, entity="contacts", duplicates="skip")
    assert (skip["created"], skip["skipped"], skip["duplicates"]) == (0, 2, 2)
    assert [(r["reason"], r["record_id"]) for r in rows_of(api, skip["id"])] == [
        ("repeats an existing contact", existing["id"]), ("repeats row 2 of the file", existing["id"])]

    update = run(api, content, entity="contacts", duplicates="update")
    assert (update["created"], update["updated"], update["duplicates"]) == (0, 2, 2)
    now = api.ok("GET", f"/contacts/{existing['id']}")
    # the cells replace, phones and e-mails are added to the record's own
    assert (now["full_name"], now["position"]) == ("Иванов И.", "директор")
    assert now["phones"] == ["+7 495 700-00-01"] and now["emails"] == ["ivanov@example.ru"]

    create = run(api, content, entity="contacts", duplicates="create")
    assert (create["created"], create["duplicates"]) == (2, 2)
    assert api.ok("GET", "/contacts/count", q="ivanov@example.ru")["count"] == 3

    # counterparties: ИНН+КПП is unique, so "create" cannot make a second one
    api.ok("POST", "/counterparties", {"name": "Ромашка", "inn": "7707083893", "kpp": "773601001"}, status=201)
    firms = csv_bytes([["Наименование", "ИНН", "КПП"], ["Ромашка-2", "7707083893", "773601001"],
                       ["Ромашка филиал", "7707083893", "773602001"]])
    job = run(api, firms, entity="counterparties", duplicates="create")
    assert (job["created"], job["rejected"], job["duplicates"]) == (1, 1, 1)
    job = run(api, firms, entity="counterparties", duplicates="update")
    assert (job["updated"], job["skipped"], job["duplicates"]) == (1, 1, 2)  # the branch is as the file says
    assert rows_of(api, job["id"])[1]["reason"] == "no changes"
    assert api.ok("GET", "/counterparties", q="773601001")["items"][0]["name"] == "Ромашка-2"


def test_bad_rows_are_rejected_into_an_error_file_that_imports_after_fixing(inst):
    api = inst.admin
    content = csv_bytes([
        ["Наименование", "ИНН", "КПП", "Телефон"],
        ["Верная", "500100732259", "", "+7 495 123-45-67"],   # individual: 12 digits, no КПП
        ["Неверный ИНН", "7707083894", "", ""],
        ["", "7728168971", "", ""],
        ["Хорошая", "7728168971", "772801001", ""],
    ], ";", "windows-1251")
    job = run(api, content, entity="counterparties")
    assert (job["created"], job["rejected"]) == (2, 2)
    assert job["errors_url"] == f"/api/v1/import/jobs/{job['id']}/errors.csv"
    resp = api.call("GET", job["errors_url"].removeprefix("/api/v1"))
    assert resp.status_code == 200 and resp.headers["Content-Type"].startswith("text/csv; charset=windows-1251")
    lines = list(csv.reader(io.StringIO(resp.content.decode("windows-1251")), delimiter=";"))
    assert lines[0] == ["Наименование", "ИНН", "КПП", "Телефон", "Ошибка импорта"]
    assert [line[:4] for line in lines[1:]] == [["Неверный ИНН", "7707083894", "", ""], ["", "7728168971", "", ""]]
    assert "ИНН" in lines[1][4] and "Наименование" in lines[2][4]
    # fixed, the error file imports (its reason column is left out)
    lines[1][1], lines[2][0] = "7707083893", "Без имени"
    fixed = csv_bytes(lines, ";", "windows-1251")
    assert api.call("POST", "/import/csv/suggest", params={"entity": "counterparties"},
                    data=fixed).json()["unmapped"] == ["Ошибка импорта"]
    again = run(api, fixed, entity="counterparties")
    assert (again["created"], again["rejected"]) == (2, 0), rows_of(api, again["id"])


def test_revert_removes_creations_restores_updates_and_leaves_records_changed_since(inst):
    api = inst.admin
    kept = api.ok("POST", "/products", {"name": "Старое имя", "article": "REV-1", "price": "10"}, status=201)
    content = csv_bytes([["Наименование", "Артикул", "Цена"], ["Новое имя", "REV-1", "20"],
                         ["Созданный", "REV-2", "5"], ["Изменят потом", "REV-3", "7"]])
    job = run(api, content, entity="products", duplicates="update")
    assert (job["created"], job["updated"]) == (2, 1)
    assert api.ok("GET", f"/products/{kept['id']}")["price"] == "20.00"
    later = api.ok("GET", "/products", q="REV-3")["items"][0]
    api.ok("PATCH", f"/products/{later['id']}", {"price": "8"})

    answer = api.ok("POST", f"/import/jobs/{job['id']}/revert", status=202)
    assert answer["status"] in ("reverting", "reverted")
    done = finished(api, job["id"], ("reverted",))
    assert {k: done["reverted"][k] for k in ("deleted", "restored", "left")} == {"deleted": 1, "restored": 1,
                                                                                   "left": 1}
    assert done["reverted"]["left_records"] == [{"record_id": later["id"], "reason": "changed after the import"}]
    restored = api.ok("GET", f"/products/{kept['id']}")
    assert (restored["name"], restored["price"]) == ("Старое имя", "10.00")
    assert api.ok("GET", "/products", q="REV-2")["items"] == []
    assert api.ok("GET", f"/products/{later['id']}")["price"] == "8.00"
    error_of(api.call("POST", f"/import/jobs/{job['id']}/revert"), 409, "already_reverted")

    # one journal entry for the import and one for the revert, not one per row
    entries = wait_for(lambda: (e := api.ok("GET", "/journal", entity="import", entity_id=job["id"])["items"])
                       and len(e) == 2 and e, timeout=20, message="journal entries")
    assert [e["action"] for e in entries] == ["revert", "import"]
    assert entries[1]["changes"]["created"] == 2 and entries[1]["actor"]["login"] == "admin"
    assert api.ok("GET", "/journal", entity="product", entity_id=later["id"])["items"][0]["action"] == "update"


def test_rights_on_import_and_export_and_own_scope(inst):
    admin = inst.admin
    dept = inst.department("Отдел CSV")
    role = admin.ok("POST", "/roles", {"name": "Свои и CSV", "rights": {
        "contacts.read": "own", "contacts.create": "own", "contacts.update": "own", "csv.export": "all"}},
        status=201)
    seller = inst.staff("csvseller", dept, role["id"])
    plain = inst.staff("csvplain", dept, inst.role_id("employee"))
    content = csv_bytes([["ФИО"], ["Кто-то"]])
    error_of(seller.call("POST", "/import/csv", params={"entity": "contacts"}, data=content), 403, "forbidden")
    error_of(plain.call("GET", "/export/csv", params={"entity": "contacts"}), 403, "forbidden")
    mine = seller.ok("POST", "/contacts", {"full_name": "Мой клиент Экспорт"}, status=201)
    admin.ok("POST", "/contacts", {"full_name": "Чужой клиент Экспорт"}, status=201)
    resp = seller.call("GET", "/export/csv", params={"entity": "contacts", "q": "Экспорт", "format": "plain"})
    assert resp.status_code == 200, resp.text
    lines = list(csv.reader(io.StringIO(resp.content.decode("utf-8"))))
    assert [line[0] for line in lines[1:]] == ["Мой клиент Экспорт"] and lines[1][-1] == mine["id"]
    # another user's job is not found
    job = upload(admin, content, entity="contacts")["job_id"]
    error_of(seller.call("GET", f"/import/jobs/{job}"), 404, "not_found")
    finished(admin, job)


def test_export_is_excel_ready_and_neutralises_formulas(inst):
    api = inst.admin
    api.ok("POST", "/contacts", {"full_name": "=HYPERLINK(\"http://evil\")", "position": "@SUM(A1)",
                                 "phones": ["+7 916 000-00-99"]}, status=201)
    resp = api.call("GET", "/export/csv", params={"entity": "contacts", "q": "HYPERLINK"})
    assert resp.status_code == 200
    assert resp.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert "attachment" in resp.headers["Content-Disposition"]
    assert resp.content.startswith(b"\xef\xbb\xbf")
    lines = list(csv.reader(io.StringIO(resp.content.decode("utf-8-sig")), delimiter=";"))
    assert lines[0][:5] == ["ФИО", "Должность", "Телефон", "E-mail", "Контрагент"]
    assert lines[1][:3] == ["'=HYPERLINK(\"http://evil\")", "'@SUM(A1)", "'+7 916 000-00-99"]
    # and the export imports back as it was
    job = run(api, resp.content, entity="contacts", duplicates="create")
    assert job["created"] == 1
    copy = [c for c in api.ok("GET", "/contacts", q="HYPERLINK")["items"] if c["id"] != lines[1][-1]][0]
    assert (copy["full_name"], copy["position"], copy["phones"]) == (
        "=HYPERLINK(\"http://evil\")", "@SUM(A1)", ["+7 916 000-00-99"])


def test_contacts_link_to_counterparties_by_name_or_inn(inst):
    api = inst.admin
    firm = api.ok("POST", "/counterparties", {"name": "ООО Связь", "inn": "7701234560"}, status=201)
    content = csv_bytes([["ФИО", "Компания"], ["По имени", "ооо связь"], ["По ИНН", "7701234560"],
                         ["Никто", "ООО Нет Такой"]])
    job = run(api, content, entity="contacts")
    assert (job["created"], job["rejected"]) == (2, 1)
    linked = api.ok("GET", "/contacts", counterparty_id=firm["id"])["items"]
    assert sorted(c["full_name"] for c in linked) == ["По ИНН", "По имени"]
    export = api.call("GET", "/export/csv", params={"entity": "contacts", "q": "По ИНН"}).content.decode("utf-8-sig")
    assert "ООО Связь" in export


def test_refusals_name_the_problem(inst):
    api = inst.admin
    error_of(api.call("POST", "/import/csv", params={"entity": "contacts"}, data=b"\x00\x01\x02binary"),
             422, "unreadable_file")
    error_of(api.call("POST", "/import/csv", params={"entity": "contacts"}, data=b"PK\x03\x04broken"),
             422, "unreadable_file")
    error_of(api.call("POST", "/import/csv", params={"entity": "contacts"}, data="Примечание\r\nx\r\n".encode()),
             422, "invalid_mapping")
    error = error_of(api.call("POST", "/import/csv", params={"entity": "contacts", "mapping": '{"ФИО": "nope"}'},
                              data="ФИО\r\nx\r\n".encode()), 422, "invalid_mapping")
    assert "mapping.ФИО" in error["fields"]
    error_of(api.call("POST", "/import/csv", params={"entity": "invoices"}, data=b"a\r\n1\r\n"),
             422, "validation_failed")
    # an explicit mapping: two columns fill the phones
    content = csv_bytes([["Имя клиента", "Моб", "Раб"], ["Явный", "+7 900 100-00-01", "+7 495 100-00-02"]])
    job = run(api, content, entity="contacts", mapping='{"Имя клиента": "full_name", "#2": "phones", "#3": "phones"}')
    assert job["created"] == 1
    assert api.ok("GET", "/contacts", q="Явный")["items"][0]["phones"] == ["+7 900 100-00-01", "+7 495 100-00-02"]


def test_the_disk_quota_is_checked_before_storing(suite):
    small = Instance(suite, disk_quota_mb=1)
    content = csv_bytes([["ФИО"]] + [[f"Контакт {i:07d} " + "x" * 60] for i in range(16000)])
    assert len(content) > 1024 * 1024
    error_of(small.admin.call("POST", "/import/csv", params={"entity": "contacts"}, data=content),
             409, "quota_exceeded")


def test_a_batch_sent_again_answers_as_before_and_imports_once(inst, suite):
    """What the onec service relies on to resume a job after a restart."""
    api = inst.admin
    caller = {"tenant_id": api.tenant_id, "user_id": api.user_id}
    batch = {"import_id": str(uuid.uuid4()), "batch": 0, "policy": "skip", "dry_run": False,
             "rows": [{"row": 2, "data": {"full_name": "Дважды Присланный", "emails": ["twice@example.ru"]}}]}
    with ClusterRpcProxy({"AMQP_URI": suite.containers.amqp_uri}, timeout=20) as proxy:
        first = proxy.crm.import_rows(caller, "contacts", batch)
        again = proxy.crm.import_rows(caller, "contacts", batch)
        assert first == again and first["outcomes"][0]["outcome"] == "created"
        # a dry run of the same row writes nothing and stores nothing
        dry = proxy.crm.import_rows(caller, "contacts", {**batch, "import_id": str(uuid.uuid4()), "dry_run": True})
        assert dry["outcomes"][0]["outcome"] == "skipped"
    assert api.ok("GET", "/contacts/count", q="twice@example.ru")["count"] == 1
