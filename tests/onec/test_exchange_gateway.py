"""The 1C exchange through the HTTP gateway against the whole suite:
EnterpriseData 1.8 and CommerceML 2 files (the project's own fixtures, in
UTF-8 and windows-1251, with and without namespaces, zipped), bad objects
mixed with good ones, overwrite on and off, deletions, an idempotent
re-import, a message sent again, exports validated against the official
XSDs (where ``../shared/1c`` is present), rights, the log, and a runner
that dies mid-import."""
from __future__ import annotations

import datetime as dt
import io
import pathlib
import uuid
import zipfile
from typing import Any

import pytest
import requests
import sqlalchemy as sa
from lxml import etree
from nameko.standalone.rpc import ClusterRpcProxy
from sqlalchemy.orm import Session

from crm_shared.db import make_engine
from crm_shared.testing import STRONG, Api, Instance, error_of, wait_for
from services.onec import exchange
from services.onec.models import ExchangeJob, ImportFile

SHARED = pathlib.Path(__file__).resolve().parents[3] / "shared" / "1c"
ED_NS = "http://v8.1c.ru/edi/edi_stnd/EnterpriseData/1.8"


def ed_message(body: str, message_no: int | None = None, sender: str = "BP") -> str:
    confirmation = (f"<msg:Confirmation><msg:ExchangePlan>СинхронизацияДанныхЧерезУниверсальныйФормат"
                    f"</msg:ExchangePlan><msg:To>CRM</msg:To><msg:From>{sender}</msg:From>"
                    f"<msg:MessageNo>{message_no}</msg:MessageNo><msg:ReceivedNo>0</msg:ReceivedNo>"
                    f"</msg:Confirmation>") if message_no is not None else ""
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<Message xmlns:msg="http://www.1c.ru/SSL/Exchange/Message">'
            f"<msg:Header><msg:Format>{ED_NS}</msg:Format><msg:CreationDate>2026-11-30T10:00:00</msg:CreationDate>"
            f"{confirmation}<msg:AvailableVersion>1.8</msg:AvailableVersion></msg:Header>"
            f'<Body xmlns="{ED_NS}">{body}</Body></Message>')


def ed_party(ref: str, name: str, inn: str, kpp: str | None = "770701001", email: str | None = None) -> str:
    info = (f"<КонтактнаяИнформация><Строка><ВидКонтактнойИнформации>АдресЭлектроннойПочты"
            f"</ВидКонтактнойИнформации><ЗначенияПолей>{email}</ЗначенияПолей></Строка></КонтактнаяИнформация>"
            if email else "")
    return (f"<Справочник.Контрагенты><КлючевыеСвойства><Ссылка>{ref}</Ссылка><Наименование>{name}</Наименование>"
            f"<ИНН>{inn}</ИНН>{f'<КПП>{kpp}</КПП>' if kpp else ''}"
            f"<ЮридическоеФизическоеЛицо>ЮридическоеЛицо</ЮридическоеФизическоеЛицо></КлючевыеСвойства>{info}"
            f"</Справочник.Контрагенты>")


def ed_product(ref: str, name: str, article: str, vat: str = "НДС20") -> str:
    return (f"<Справочник.Номенклатура><КлючевыеСвойства><Ссылка>{ref}</Ссылка><Наименование>{name}</Наименование>"
            f"<Артикул>{article}</Артикул></КлючевыеСвойства><ТипНоменклатуры>Товар</ТипНоменклатуры>"
            f"<ЕдиницаИзмерения><ДанныеКлассификатора><Код>796</Код><Наименование>шт</Наименование>"
            f"</ДанныеКлассификатора></ЕдиницаИзмерения><СтавкаНДС>{vat}</СтавкаНДС></Справочник.Номенклатура>")


SERVICE_DATA = (
    "<Справочник.ЕдиницыИзмерения><КлючевыеСвойства><Ссылка>7b1d0000-0000-4000-8000-000000000796</Ссылка>"
    "<ДанныеКлассификатора><Код>796</Код><Наименование>шт</Наименование></ДанныеКлассификатора>"
    "</КлючевыеСвойства><НаименованиеПолное>Штука</НаименованиеПолное></Справочник.ЕдиницыИзмерения>"
    "<Справочник.Валюты><КлючевыеСвойства><Ссылка>7b1d0000-0000-4000-8000-000000000643</Ссылка>"
    "<ДанныеКлассификатора><Код>643</Код><Наименование>руб.</Наименование></ДанныеКлассификатора>"
    "</КлючевыеСвойства></Справочник.Валюты>"
    "<Справочник.Организации><КлючевыеСвойства><Ссылка>7b1d0000-0000-4000-8000-00000000a001</Ссылка>"
    "<Наименование>ООО Ромашка</Наименование><ИНН>7701234567</ИНН><КПП>770101001</КПП>"
    "<ЮридическоеФизическоеЛицо>ЮридическоеЛицо</ЮридическоеФизическоеЛицо></КлючевыеСвойства>"
    "</Справочник.Организации>")


def ed_payment(ref: str, party_ref: str, amount: str, number: str) -> str:
    return (f"<Документ.ПБДСРасчетыСКонтрагентами><КлючевыеСвойства><Ссылка>{ref}</Ссылка>"
            f"<Дата>2026-11-20T12:00:00</Дата><Номер>{number}</Номер><Организация><Наименование>ООО Ромашка"
            f"</Наименование><ЮридическоеФизическоеЛицо>ЮридическоеЛицо</ЮридическоеФизическоеЛицо></Организация>"
            f"</КлючевыеСвойства><ОбщиеДанные><ДатаВыписки>2026-11-20</ДатаВыписки><Валюта><ДанныеКлассификатора>"
            f"<Код>643</Код></ДанныеКлассификатора></Валюта><Сумма>{amount}</Сумма>"
            f"<НазначениеПлатежа>Оплата по счету</НазначениеПлатежа></ОбщиеДанные>"
            f"<ВидРасчетов>СПокупателем</ВидРасчетов><Контрагент><Ссылка>{party_ref}</Ссылка>"
            f"<Наименование>?</Наименование><ЮридическоеФизическоеЛицо>ЮридическоеЛицо</ЮридическоеФизическоеЛицо>"
            f"</Контрагент><РасшифровкаПлатежа><Строка><Сумма>{amount}</Сумма></Строка></РасшифровкаПлатежа>"
            f"</Документ.ПБДСРасчетыСКонтрагентами>")


def ed_deletion(kind: str, ref: str) -> str:
    return (f"<УдалениеОбъекта><СсылкаНаОбъект><СсылкаНаОбъект><{kind}Ссылка>{ref}</{kind}Ссылка>"
            f"</СсылкаНаОбъект></СсылкаНаОбъект></УдалениеОбъекта>")


def cml(body: str, namespace: str | None = "urn:1C.ru:commerceml_2", encoding: str = "UTF-8") -> bytes:
    ns = f' xmlns="{namespace}"' if namespace else ""
    text = (f'<?xml version="1.0" encoding="{encoding}"?>\n<КоммерческаяИнформация{ns} ВерсияСхемы="2.10" '
            f'ДатаФормирования="2026-11-30T10:00:00" Ид="root-1">{body}</КоммерческаяИнформация>')
    return text.encode("windows-1251" if encoding.lower() == "windows-1251" else "utf-8")


def upload(api: Api, content: bytes | str, status: int = 202, **params: Any) -> Any:
    data = content.encode("utf-8") if isinstance(content, str) else content
    resp = api.call("POST", "/exchange/import", params=params, data=data,
                    headers={"Content-Type": "application/xml"})
    assert resp.status_code == status, resp.text
    return resp.json()


def finished(api: Api, job_id: str) -> dict[str, Any]:
    return dict(wait_for(lambda: (j := api.ok("GET", f"/exchange/jobs/{job_id}"))["status"] in ("done", "failed")
                         and j, timeout=90, message=f"exchange job {job_id}"))


def run(api: Api, content: bytes | str, **params: Any) -> dict[str, Any]:
    job = finished(api, upload(api, content, **params)["job_id"])
    assert job["status"] == "done", job
    return job


def counts(job: dict[str, Any]) -> tuple[int, ...]:
    return job["read"], job["created"], job["updated"], job["skipped"], job["rejected"]


def log_of(api: Api, job_id: str) -> list[dict[str, Any]]:
    return list(api.ok("GET", "/exchange/log", job_id=job_id, limit=500)["items"])


def one(api: Api, path: str, **query: Any) -> dict[str, Any]:
    items = api.ok("GET", path, **query)["items"]
    assert len(items) == 1, items
    return dict(items[0])


@pytest.fixture(scope="module")
def inst(suite: Any) -> Instance:
    return Instance(suite)


def test_versions_and_the_exchange_form(inst):
    api = inst.admin
    versions = api.ok("GET", "/exchange/versions")["items"]
    assert [v["id"] for v in versions] == ["bp82", "enterprisedata-1.8", "commerceml-2.10"]
    assert versions[0]["import_objects"] == ["payments", "products", "counterparties", "contacts", "service_data"]
    assert versions[0]["description"].startswith("Версия обмена предназначена для интеграции с 1С:Бухгалтерия v.8.2")
    assert [v["has_rules"] for v in versions] == [True, False, False]
    assert api.ok("GET", "/exchange/settings")["import_objects"] == []
    form = {"version": "enterprisedata-1.8", "file_name": "crm.xml", "import_objects": ["counterparties"],
            "export_objects": {"invoices": {"since": "2026-01-01T00:00:00Z", "until": "2026-12-31T00:00:00Z"}},
            "overwrite": True}
    saved = api.ok("PUT", "/exchange/settings", form)
    assert saved["overwrite"] is True and saved["export_objects"]["invoices"]["since"].startswith("2026-01-01")
    assert api.ok("GET", "/exchange/settings")["file_name"] == "crm.xml"
    error_of(api.call("PUT", "/exchange/settings", json={**form, "import_objects": ["contacts"]}), 422,
             "validation_failed")
    entry = api.ok("GET", "/journal", entity="exchange_settings")["items"][0]
    assert entry["action"] == "settings" and entry["changes"]["version"] == "enterprisedata-1.8"
    api.ok("PUT", "/exchange/settings", {"version": "enterprisedata-1.8"})


def test_enterprisedata_loads_objects_reports_bad_ones_and_respects_overwrite(inst):
    api = inst.admin
    a, b, p = (str(uuid.uuid4()) for _ in range(3))
    body = (SERVICE_DATA + ed_party(a, "ООО Лютик", "7707654321", email="buh@lutik.example")
            + ed_party(b, "ООО Кривой ИНН", "7707654322")  # a wrong check digit
            + ed_product(p, "Болт М8", "ED-A-100")
            + ed_payment(str(uuid.uuid4()), a, "1440.00", "ПП-77")
            + "<Справочник.Склады><КлючевыеСвойства><Наименование>Основной</Наименование></КлючевыеСвойства>"
              "</Справочник.Склады>")
    job = run(api, ed_message(body), file_name="from-bp.xml")
    # 3 service data, 2 counterparties (+1 the payment points at), 1 product, 1 payment, 1 unknown object
    assert counts(job) == (9, 6, 0, 2, 1), job
    party = one(api, "/counterparties", q="Лютик")
    assert (party["external_id"], party["inn"], party["kpp"], party["emails"]) == (
        a, "7707654321", "770701001", ["buh@lutik.example"])
    product = one(api, "/products", q="ED-A-100")
    assert (product["external_id"], product["vat_rate"], product["unit"]) == (p, "20", {"code": "796", "name": "шт"})
    payment = one(api, "/payments", counterparty_id=party["id"])
    assert (payment["amount"], payment["number"], payment["currency"]) == ("1440.00", "ПП-77", "RUB")
    entries = log_of(api, job["id"])
    rejected = [e for e in entries if e["level"] == "warning"]
    assert len(rejected) == 1 and "inn" in rejected[0]["message"].lower()
    assert rejected[0]["path"] == "Message/Body/Справочник.Контрагенты[2]"
    assert any(e["path"] == "Message/Body/Справочник.Склады[1]" for e in entries)
    assert entries[0]["message"].startswith("import done")

    # the same file again changes nothing
    again = run(api, ed_message(body))
    assert (again["created"], again["updated"]) == (0, 0) and again["rejected"] == 1
    assert api.ok("GET", "/counterparties/count", q="Лютик")["count"] == 1
    assert api.ok("GET", "/payments/count", counterparty_id=party["id"])["count"] == 1

    # found records change only with overwrite on; a counterparty found by ИНН+КПП takes the 1C identifier
    renamed = ed_message(ed_party(a, "ООО Лютик и К", "7707654321") + ed_party(str(uuid.uuid4()), "Тот же ИНН",
                                                                            "7707654321"))
    off = run(api, renamed, objects="counterparties", overwrite="false")
    assert (off["updated"], off["skipped"]) == (0, 2)
    on = run(api, renamed, objects="counterparties", overwrite="true")
    assert (on["updated"], on["skipped"]) == (2, 0), log_of(api, on["id"])
    assert api.ok("GET", f"/counterparties/{party['id']}")["name"] == "Тот же ИНН"

    # a deletion deactivates, and a deletion of something unknown is skipped
    gone = run(api, ed_message(ed_deletion("Номенклатура", p) + ed_deletion("Контрагенты", str(uuid.uuid4()))),
               objects="products,counterparties")
    assert (gone["updated"], gone["skipped"]) == (1, 1)
    assert api.ok("GET", f"/products/{product['id']}")["active"] is False
    assert api.ok("GET", "/products/count", q="ED-A-100", active="true")["count"] == 0
    journal = api.ok("GET", "/journal", entity="exchange", entity_id=job["id"])["items"][0]
    assert journal["action"] == "import" and journal["changes"]["created"] == 6


def test_a_message_sent_again_is_recognised(inst):
    api = inst.admin
    body = ed_party(str(uuid.uuid4()), "ООО Нумерация", "7728168971", "772801001")
    first = run(api, ed_message(body, message_no=5, sender="BP-numbering"))
    assert first["created"] == 1
    again = run(api, ed_message(body + ed_party(str(uuid.uuid4()), "Новый", "7704211201", None), message_no=5,
                                sender="BP-numbering"))
    assert again["read"] == 0 and "received already" in log_of(api, again["id"])[-2]["message"]
    later = run(api, ed_message(body, message_no=6, sender="BP-numbering"))
    assert (later["read"], later["skipped"]) == (1, 1)


CATALOGUE = (
    "<Классификатор><Ид>cls-1</Ид><Наименование>Классификатор</Наименование><Группы><Группа><Ид>g-1</Ид>"
    "<Наименование>Крепёж</Наименование><Группы><Группа><Ид>g-2</Ид><Наименование>Болты</Наименование>"
    "</Группа></Группы></Группа></Группы><ЕдиницыИзмерения><ЕдиницаИзмерения><Ид>u-796</Ид><Код>796</Код>"
    "<НаименованиеКраткое>шт</НаименованиеКраткое><НаименованиеПолное>Штука</НаименованиеПолное>"
    "</ЕдиницаИзмерения></ЕдиницыИзмерения></Классификатор>"
    "<Каталог СодержитТолькоИзменения=\"false\"><Ид>cat-1</Ид><ИдКлассификатора>cls-1</ИдКлассификатора>"
    "<Наименование>Каталог</Наименование><Товары>"
    "<Товар><Ид>cml-p-1</Ид><НомерВерсии>AAAA</НомерВерсии><ПометкаУдаления>false</ПометкаУдаления>"
    "<Артикул>CML-1</Артикул><Наименование>Болт М10 оцинкованный</Наименование>"
    "<БазоваяЕдиница Код=\"796\" НаименованиеПолное=\"Штука\">шт</БазоваяЕдиница><Группы><Ид>g-2</Ид></Группы>"
    "<СтавкиНалогов><СтавкаНалога><Наименование>НДС</Наименование><Ставка>10</Ставка></СтавкаНалога>"
    "</СтавкиНалогов></Товар>"
    "<Товар><Ид>cml-p-2</Ид><Артикул>CML-2</Артикул><Наименование>Гайка снятая</Наименование>"
    "<БазоваяЕдиница Код=\"796\">шт</БазоваяЕдиница><ПометкаУдаления>true</ПометкаУдаления></Товар>"
    "<Товар><Артикул>CML-3</Артикул><Наименование>Без Ид</Наименование></Товар>"
    "</Товары></Каталог>")
OFFERS = (
    "<ПакетПредложений СодержитТолькоИзменения=\"false\"><Ид>cat-1#</Ид><Наименование>Пакет</Наименование>"
    "<ИдКаталога>cat-1</ИдКаталога><ТипыЦен><ТипЦены><Ид>price-1</Ид><Наименование>Розница</Наименование>"
    "<Валюта>руб</Валюта></ТипЦены></ТипыЦен><Предложения>"
    "<Предложение><Ид>cml-p-1#var-1</Ид><Наименование>Болт</Наименование><Цены><Цена>"
    "<ИдТипаЦены>price-1</ИдТипаЦены><ЦенаЗаЕдиницу>12,50</ЦенаЗаЕдиницу></Цена></Цены>"
    "<Количество>100</Количество></Предложение>"
    "<Предложение><Ид>unknown-product</Ид><Цены><Цена><ЦенаЗаЕдиницу>1</ЦенаЗаЕдиницу></Цена></Цены>"
    "</Предложение></Предложения></ПакетПредложений>")


def test_commerceml_catalogue_and_offers_in_any_namespace_encoding_and_zipped(inst):
    api = inst.admin
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as z:  # offers first in the archive: the catalogue is read first anyway
        z.writestr("offers0_1.xml", cml(OFFERS, "urn:1C.ru:commerceml_210"))
        z.writestr("import0_1.xml", cml(CATALOGUE, None, "windows-1251"))
    resp = api.call("POST", "/exchange/import", params={"version": "commerceml-2.10"}, data=archive.getvalue(),
                    headers={"Content-Type": "application/zip"})
    assert resp.status_code == 202, resp.text
    job = finished(api, resp.json()["job_id"])
    assert job["status"] == "done", job
    # the unit (known from the EnterpriseData test: skipped), 3 products (one marked for deletion and
    # unknown: skipped; one without Ид: rejected), 2 offers (one for an unknown product: rejected)
    assert counts(job) == (6, 1, 1, 2, 2), log_of(api, job["id"])
    bolt = one(api, "/products", q="CML-1")
    assert (bolt["name"], bolt["group"], bolt["vat_rate"], bolt["price"], bolt["external_id"]) == (
        "Болт М10 оцинкованный", "Болты", "10", "12.50", "cml-p-1")
    assert api.ok("GET", "/products/count", q="CML-2")["count"] == 0  # marked for deletion, never loaded
    assert api.ok("GET", "/products/count", q="Без Ид")["count"] == 0
    # namespace _205 and a BOM, with the offer alone
    bom = b"\xef\xbb\xbf" + cml(OFFERS.replace("12,50", "13.00"), "urn:1C.ru:commerceml_205")
    again = run(api, bom, version="commerceml-2.10", objects="products")
    assert (again["updated"], again["rejected"]) == (1, 1)
    assert one(api, "/products", q="CML-1")["price"] == "13.00"
    # marked for deletion later: deactivated (a changes-only catalogue leaves the rest alone)
    marked = CATALOGUE.replace("<ПометкаУдаления>false</ПометкаУдаления>", "<ПометкаУдаления>true</ПометкаУдаления>")
    marked = marked.replace('СодержитТолькоИзменения="false"', 'СодержитТолькоИзменения="true"')
    gone = run(api, cml(marked), version="commerceml-2.10", objects="products")
    assert gone["updated"] == 1 and one(api, "/products", q="CML-1")["active"] is False


def test_commerceml_documents_bring_counterparties_contacts_and_payments(inst):
    api = inst.admin
    party = ("<Контрагенты><Контрагент><Ид>cml-c-1</Ид><Наименование>ООО Документ</Наименование>"
             "<ОфициальноеНаименование>ООО «Документ»</ОфициальноеНаименование><ИНН>7802345676</ИНН>"
             "<КПП>780201001</КПП><Контакты><Контакт><Тип>Почта</Тип><Значение>doc@example.ru</Значение>"
             "</Контакт></Контакты><Представители><Представитель><Ид>cml-r-1</Ид><Наименование>Петров Пётр"
             "</Наименование><Контакты><Контакт><Тип>Телефон рабочий</Тип><Значение>+7 812 000-00-01</Значение>"
             "</Контакт></Контакты><Отношение>Контактное лицо</Отношение></Представитель></Представители>"
             "<Роль>Плательщик</Роль></Контрагент></Контрагенты>")
    doc = (f"<Документ><Ид>cml-pay-1</Ид><Номер>ПП-5</Номер><Дата>2026-11-25</Дата><ХозОперация>Выплата "
           f"безналичных денег</ХозОперация><Роль>Получатель</Роль><Валюта>RUB</Валюта><Курс>1</Курс>"
           f"<Сумма>500.00</Сумма>{party}</Документ>")
    job = run(api, cml(doc), version="commerceml-2.10")
    assert counts(job) == (3, 3, 0, 0, 0), [e["message"] for e in log_of(api, job["id"])]
    found = one(api, "/counterparties", q="ООО Документ")
    contact = one(api, "/contacts", counterparty_id=found["id"])
    assert (contact["full_name"], contact["phones"], contact["external_id"]) == (
        "Петров Пётр", ["+7 812 000-00-01"], "cml-r-1")
    assert one(api, "/payments", counterparty_id=found["id"])["amount"] == "500.00"
    assert run(api, cml(doc), version="commerceml-2.10")["created"] == 0


def _ed_schema() -> Any:
    import xmlschema
    xsd = SHARED / "xsd"
    return xmlschema.XMLSchema11(str(xsd / "ed18_body_wrapper.xsd"), locations=[
        ("http://www.1c.ru/SSL/Exchange/Message", str(xsd / "ExchangeMessage.xsd"))])


def _download(api: Api, job: dict[str, Any]) -> bytes:
    resp = api.call("GET", job["download_url"].removeprefix("/api/v1"))
    assert resp.status_code == 200, resp.text
    assert resp.content.startswith(b"\xef\xbb\xbf")  # UTF-8 with a BOM, as 1C expects
    return resp.content


def test_exports_validate_against_the_official_schemas_and_round_trip(inst, suite):
    api = inst.admin
    party = api.ok("POST", "/counterparties", {"name": "ООО Экспорт", "inn": "7736207543", "kpp": "773601001",
                                               "emails": ["exp@example.ru"]}, status=201)
    contact = api.ok("POST", "/contacts", {"full_name": "Сидоров Экспорт", "counterparty_id": party["id"],
                                           "phones": ["+7 495 222-33-44"]}, status=201)
    product = api.ok("POST", "/products", {"name": "Товар экспорта", "article": "EXP-1", "price": "100.00",
                                           "vat_rate": "20"}, status=201)
    api.ok("POST", "/invoices", {"counterparty_id": party["id"], "contact_id": contact["id"],
                                 "lines": [{"product_id": product["id"], "quantity": "3"}]}, status=201)
    since = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=10)).isoformat()
    ed = finished(api, api.ok("POST", "/exchange/export", {"version": "enterprisedata-1.8", "since": since},
                              status=202)["job_id"])
    assert ed["status"] == "done" and ed["download_url"], ed
    content = _download(api, ed)
    root = etree.fromstring(content)
    body = root.find(f"{{{ED_NS}}}Body")
    names = [etree.QName(el).localname for el in body]
    assert "Документ.СчетПокупателю" in names and "Справочник.Номенклатура" in names
    cml_job = finished(api, api.ok("POST", "/exchange/export", {"version": "commerceml-2.10", "since": since},
                                   status=202)["job_id"])
    cml_content = _download(api, cml_job)
    assert "Сидоров Экспорт" in cml_content.decode("utf-8-sig")
    # a window that ends before the records were written exports none of them
    empty = finished(api, api.ok("POST", "/exchange/export", {"objects": ["products"],
                                                              "until": "2020-01-01T00:00:00Z"}, status=202)["job_id"])
    assert empty["read"] == 0
    if SHARED.is_dir():
        errors = list(_ed_schema().iter_errors(body))
        assert not errors, errors[0]
        import xmlschema
        cml_errors = list(xmlschema.XMLSchema(str(SHARED / "xsd" / "cml210_debrsky.xsd")).iter_errors(
            io.BytesIO(cml_content)))
        assert not cml_errors, cml_errors[0]
    # the exported message loads into a fresh tenant with the same records
    fresh = Instance(suite).admin
    loaded = run(fresh, content, version="enterprisedata-1.8", objects="counterparties,products")
    assert loaded["rejected"] == 0, log_of(fresh, loaded["id"])
    twin = one(fresh, "/counterparties", q="ООО Экспорт")
    assert (twin["name"], twin["kpp"], twin["external_id"]) == ("ООО Экспорт", "773601001", party["id"])
    assert (twin["emails"], twin["phones"]) == (["exp@example.ru"], ["+7 495 222-33-44"])  # the contact's phone
    copy = one(fresh, "/products", q="EXP-1")
    assert (copy["name"], copy["vat_rate"], copy["external_id"]) == ("Товар экспорта", "20", product["id"])


def test_rights(inst):
    plain = inst.staff("exchangeplain", inst.department("Отдел обмена"), inst.role_id("employee"))
    error_of(plain.call("GET", "/exchange/settings"), 403, "forbidden")
    error_of(plain.call("POST", "/exchange/import", data=ed_message("").encode(),
                        headers={"Content-Type": "application/xml"}), 403, "forbidden")
    error_of(plain.call("GET", "/exchange/log"), 403, "forbidden")
    assert plain.ok("GET", "/exchange/versions")["items"]
    error_of(inst.admin.call("POST", "/exchange/import", data=b"not xml at all",
                             headers={"Content-Type": "application/xml"}), 422, "unreadable_file")
    broken = finished(inst.admin, upload(inst.admin, "<Message><Body><oops></Message>")["job_id"])
    assert broken["status"] == "failed" and "cannot be read" in broken["error"]


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/1c is absent: the real 1C samples are not here")
def test_every_real_sample_imports(inst):
    api = inst.admin
    for path in sorted((SHARED / "samples").glob("*/*.xml")) + sorted((SHARED / "handmade").glob("*.xml")):
        version = "enterprisedata-1.8" if path.name.startswith("ed18") else "commerceml-2.10"
        job = run(api, path.read_bytes(), version=version, overwrite="true")
        assert job["read"] == job["created"] + job["updated"] + job["skipped"] + job["rejected"], (path, job)


def test_a_runner_that_dies_mid_import_is_resumed_without_duplicates(inst, suite):
    """The runner applies a batch in crm, then dies before recording it; the service resumes the job."""
    api = inst.admin
    refs = [str(uuid.uuid4()) for _ in range(2500)]
    body = "".join(ed_party(r, f"Контрагент возобновления {i:05d}", "7707083893", f"77{i:05d}01"[:9])
                   for i, r in enumerate(refs))
    engine = make_engine(suite.by_name["onec"].config["DATABASE_URL"], pool_size=1)
    content = ed_message(body).encode()
    with Session(engine) as session, ClusterRpcProxy({"AMQP_URI": suite.containers.amqp_uri}, timeout=60) as rpc:
        job, parts = exchange.new_import(session, api.tenant_id, api.user_id, None,
                                         {"objects": ["counterparties"]}, content)
        job.status, job.lease_until = "running", dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1)
        session.add_all([job, *parts])
        session.commit()

        class Dies(Exception):
            pass

        class DyingCrm:
            calls = 0

            def start_apply_exchange(self, caller: dict[str, Any], batch: dict[str, Any]) -> Any:
                answer = rpc.crm.apply_exchange(caller, batch)
                self.calls += 1

                def wait() -> dict[str, Any]:
                    if self.calls == 2:
                        raise Dies()  # batch 1 is applied in crm, never recorded here
                    return dict(answer)
                return wait

        with pytest.raises(Dies):
            exchange.ImportRun(session, job, DyingCrm(), session.commit).run()  # type: ignore[arg-type]
        session.rollback()
        stored = session.get(ExchangeJob, (job.tenant_id, job.id))
        assert stored is not None
        assert (stored.position, stored.batch_no, stored.created) == (1000, 1, 1000)
        stored.lease_until = None  # the lease ran out: the service's runner takes it over
        session.commit()
        job_id = str(job.id)
    done = finished(api, job_id)
    assert counts(done) == (2500, 2500, 0, 0, 0), done
    assert api.ok("GET", "/counterparties/count", q="возобновления")["count"] == 2500
    with Session(engine) as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(ImportFile).where(
            ImportFile.job_id == uuid.UUID(job_id))) == 0
    engine.dispose()



# -- the CommerceML HTTP protocol, driven as 1C drives it ----------------------------------------

class OneC:
    """What 1C does: Basic at checkauth, then the cookie it was given."""

    def __init__(self, inst: Instance, login: str) -> None:
        self.url = f"{inst.base}/api/v1/exchange/1c"
        self.http = requests.Session()
        self.code, self.login = inst.product_code, login

    def call(self, kind: str, mode: str, data: bytes | None = None, **params: Any) -> Any:
        method = "POST" if data is not None else "GET"
        return self.http.request(method, self.url, params={"type": kind, "mode": mode, **params}, data=data,
                                 timeout=30)

    def checkauth(self, kind: str, password: str) -> Any:
        return self.http.get(self.url, params={"type": kind, "mode": "checkauth"}, timeout=30,
                             auth=(f"{self.code}\\{self.login}", password))


def _exchange_user(inst: Instance) -> str:
    """A second administrator whose password the test knows (the instance's own is generated)."""
    if not getattr(inst, "_exchange_user", None):
        inst.staff("exchange1c", inst.department("Обмен с 1С"), inst.role_id("admin"))
        inst._exchange_user = "exchange1c"  # type: ignore[attr-defined]
    return "exchange1c"


def test_the_commerceml_http_protocol_catalogue_zipped_and_chunked(inst):
    onec = OneC(inst, _exchange_user(inst))
    refused = onec.checkauth("catalog", "wrong password")
    assert refused.status_code == 401 and refused.text.startswith("failure")
    assert onec.call("catalog", "init").text.startswith("failure")  # no session yet
    auth = onec.checkauth("catalog", STRONG)
    assert auth.status_code == 200, auth.text
    lines = auth.text.splitlines()
    assert lines[0] == "success" and lines[1] == "crm_1c_session" and onec.http.cookies.get(lines[1]) == lines[2]
    init = onec.call("catalog", "init").text.splitlines()
    assert init[0] == "zip=yes" and init[1].startswith("file_limit=") and len(init) == 2
    newer = onec.call("catalog", "init", version="3.1").text.splitlines()
    assert newer[2].startswith("sessid=") and newer[3] == "version=3.1"
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("import0_1.xml", cml(CATALOGUE.replace("cml-p-", "http-p-").replace("CML-", "HTTP-")))
        z.writestr("offers0_1.xml", cml(OFFERS.replace("cml-p-", "http-p-").replace("12,50", "77.00")))
    data = archive.getvalue()
    chunks = [data[i:i + 700] for i in range(0, len(data), 700)]
    assert len(chunks) >= 2
    for chunk in chunks:
        assert onec.call("catalog", "file", chunk, filename="import.zip").text.startswith("success")
    assert onec.call("catalog", "file", b"\xff\xd8 a picture", filename="import_files/ab/p.jpg").text.startswith(
        "success")
    for name in ("import0_1.xml", "offers0_1.xml"):
        answers: list[str] = []

        def step(name: str = name) -> bool:  # 1C asks again while the answer is "progress"
            answers.append(onec.call("catalog", "import", filename=name).text.split("\n", 1)[0])
            return answers[-1] != "progress"
        wait_for(step, timeout=60, message=f"the import of {name}")
        assert answers[0] == "progress" and answers[-1] == "success", answers
    api = inst.admin
    bolt = one(api, "/products", q="HTTP-1")
    assert (bolt["price"], bolt["external_id"]) == ("77.00", "http-p-1")
    assert onec.call("catalog", "import", filename="missing.xml").text.startswith("failure")


def test_the_commerceml_http_protocol_sale_query_success_and_documents(inst):
    api = inst.admin
    party = api.ok("POST", "/counterparties", {"name": "ООО Заказ Сайта", "inn": "7704211201",
                                               "kpp": "770401001"}, status=201)
    product = api.ok("POST", "/products", {"name": "Товар сайта", "price": "10.00"}, status=201)
    invoice = api.ok("POST", "/invoices", {"counterparty_id": party["id"],
                                           "lines": [{"product_id": product["id"], "quantity": "2"}]}, status=201)
    onec = OneC(inst, _exchange_user(inst))
    assert onec.checkauth("sale", STRONG).text.startswith("success")
    assert onec.call("sale", "init").text.startswith("zip=")
    orders = onec.call("sale", "query")
    assert orders.status_code == 200 and orders.content.startswith(b"\xef\xbb\xbf")
    root = etree.fromstring(orders.content)
    numbers = [el.text for el in root.iter("{urn:1C.ru:commerceml_2}Номер")]
    assert invoice["number"] in numbers
    if SHARED.is_dir():
        import xmlschema
        errors = list(xmlschema.XMLSchema(str(SHARED / "xsd" / "cml210_debrsky.xsd")).iter_errors(
            io.BytesIO(orders.content)))
        assert not errors, errors[0]
    assert onec.call("sale", "success").text.startswith("success")
    again = etree.fromstring(onec.call("sale", "query").content)
    assert invoice["number"] not in [el.text for el in again.iter("{urn:1C.ru:commerceml_2}Номер")]
    payment = (f"<Документ><Ид>http-pay-1</Ид><Номер>ПП-9</Номер><Дата>2026-11-28</Дата><ХозОперация>Выплата "
               f"безналичных денег</ХозОперация><Роль>Получатель</Роль><Валюта>RUB</Валюта><Курс>1</Курс>"
               f"<Сумма>20.00</Сумма><Контрагенты><Контрагент><Ид>{party['id']}</Ид><Наименование>ООО Заказ Сайта"
               f"</Наименование><ИНН>7704211201</ИНН><КПП>770401001</КПП><Роль>Плательщик</Роль></Контрагент>"
               f"</Контрагенты><ПодчиненныеДокументы><ПодчиненныйДокумент><Ид>{invoice['id']}</Ид>"
               f"<Номер>{invoice['number']}</Номер></ПодчиненныйДокумент></ПодчиненныеДокументы></Документ>")
    assert onec.call("sale", "file", cml(payment), filename="from1c.xml").text.startswith("success")
    paid = wait_for(lambda: (i := api.ok("GET", f"/invoices/{invoice['id']}"))["paid_amount"] == "20.00" and i,
                    timeout=60, message="the payment from 1C")
    assert paid["status"] == "paid"


def test_the_http_protocol_needs_the_exchange_right(inst):
    inst.staff("siteplain", inst.department("Отдел сайта"), inst.role_id("employee"))
    onec = OneC(inst, login="siteplain")
    answer = onec.checkauth("catalog", STRONG)
    assert answer.status_code == 403 and answer.text.startswith("failure")


# -- 1C:Бухгалтерия 8.2, the universal exchange (КД 2.0) ---------------------------------------------

def kd2_prop(name: str, kind: str, value: str | None) -> str:
    body = "<Пусто/>" if value is None else f"<Значение>{value}</Значение>"
    return f'<Свойство Имя="{name}" Тип="{kind}">{body}</Свойство>'


def kd2_ref(name: str, kind: str, npp: int, **keys: str) -> str:
    props = "".join(kd2_prop(k.replace("UUID", "{УникальныйИдентификатор}"), "Строка", v) for k, v in keys.items())
    return f'<Свойство Имя="{name}" Тип="{kind}"><Ссылка Нпп="{npp}">{props}</Ссылка></Свойство>'


def kd2_object(npp: int, kind: str, rule: str, keys: dict[str, str], *props: str) -> str:
    ref = "".join(kd2_prop(k.replace("UUID", "{УникальныйИдентификатор}"), "Строка", v) for k, v in keys.items())
    return (f'<Объект Нпп="{npp}" Тип="{kind}" ИмяПравила="{rule}"><Ссылка Нпп="{npp}">{ref}</Ссылка>'
            f'{"".join(props)}</Объект>')


def kd2_file(*objects: str) -> bytes:
    return ('<?xml version="1.0" encoding="windows-1251"?>\n<ФайлОбмена ВерсияФормата="2.0" '
            'ДатаВыгрузки="2026-11-30T10:00:00" ИмяКонфигурацииИсточника="БухгалтерияПредприятия" '
            'ИмяКонфигурацииПриемника="CRM"><ПравилаОбмена><ВерсияФормата>2.01</ВерсияФормата></ПравилаОбмена>'
            + "".join(objects) + "</ФайлОбмена>").encode("windows-1251")


def test_bp82_rules_file_and_a_file_from_1c(inst):
    api = inst.admin
    resp = api.call("GET", "/exchange/versions/bp82/rules")
    assert resp.status_code == 200 and resp.content.startswith(b"\xef\xbb\xbf")
    rules = etree.fromstring(resp.content)
    codes = [el.text for el in rules.iterfind("ПравилаКонвертацииОбъектов/Правило/Код")]
    assert {"Контрагенты", "КонтактныеЛица", "Номенклатура", "ПлатежноеПоручениеВходящее",
            "ЕдиницыИзмерения", "Валюты", "Организации"} <= set(codes)
    assert [el.text for el in rules.iterfind("ПравилаВыгрузкиДанных/Правило/ОбъектВыборки")][0].startswith(
        "СправочникСсылка.")
    error_of(api.call("GET", "/exchange/versions/commerceml-2.10/rules"), 404, "not_found")
    party, person, item, pay = (str(uuid.uuid4()) for _ in range(4))
    content = kd2_file(
        kd2_object(1, "СправочникСсылка.КлассификаторЕдиницИзмерения", "ЕдиницыИзмерения", {"Код": "166"},
                   kd2_prop("Наименование", "Строка", "кг")),
        kd2_object(2, "СправочникСсылка.Контрагенты", "Контрагенты",
                   {"UUID": party, "ИНН": "7728168971", "КПП": "772801002"},
                   kd2_prop("Наименование", "Строка", "ООО КД2 Партнёр"),
                   kd2_prop("ЮрФизЛицо", "ПеречислениеСсылка.ЮрФизЛицо", "ЮрЛицо"),
                   kd2_prop("Телефоны", "Строка", "+7 495 123-45-67"), kd2_prop("ЭлектроннаяПочта", "Строка", None)),
        kd2_object(3, "СправочникСсылка.КонтактныеЛица", "КонтактныеЛица", {"UUID": person},
                   kd2_prop("Наименование", "Строка", "Кузнецова Мария"),
                   kd2_prop("Должность", "Строка", "Бухгалтер"),
                   kd2_ref("ОбъектВладелец", "СправочникСсылка.Контрагенты", 2, UUID=party)),
        kd2_object(4, "СправочникСсылка.Номенклатура", "Номенклатура", {"UUID": item, "Артикул": "KD2-1"},
                   kd2_prop("Наименование", "Строка", "Цемент М500"),
                   kd2_ref("ЕдиницаХраненияОстатков", "СправочникСсылка.КлассификаторЕдиницИзмерения", 1, Код="166"),
                   kd2_prop("СтавкаНДС", "ПеречислениеСсылка.СтавкиНДС", "НДС10"), kd2_prop("Цена", "Число", "350")),
        kd2_object(5, "ДокументСсылка.ПлатежноеПоручениеВходящее", "ПлатежноеПоручениеВходящее",
                   {"UUID": pay, "Номер": "00000000123", "Дата": "2026-11-29T00:00:00"},
                   kd2_prop("СуммаДокумента", "Число", "1000.00"),
                   kd2_ref("Контрагент", "СправочникСсылка.Контрагенты", 2, UUID=party),
                   kd2_prop("НазначениеПлатежа", "Строка", "Оплата за цемент")),
        kd2_object(6, "СправочникСсылка.Номенклатура", "Номенклатура", {"UUID": str(uuid.uuid4())},
                   kd2_prop("Наименование", "Строка", "Плохая ставка"),
                   kd2_prop("СтавкаНДС", "ПеречислениеСсылка.СтавкиНДС", "НДС99")),
        kd2_object(7, "СправочникСсылка.Склады", "Склады", {"Код": "1"}))
    job = run(api, content, version="bp82")
    assert counts(job) == (7, 5, 0, 1, 1), [e["message"] for e in log_of(api, job["id"])]
    found = one(api, "/counterparties", q="КД2 Партнёр")
    assert (found["external_id"], found["phones"], found["kpp"]) == (party, ["+7 495 123-45-67"], "772801002")
    contact = one(api, "/contacts", counterparty_id=found["id"])
    assert (contact["full_name"], contact["position"]) == ("Кузнецова Мария", "Бухгалтер")
    product = one(api, "/products", q="KD2-1")
    assert (product["vat_rate"], product["price"], product["unit"]) == ("10", "350.00", {"code": "166",
                                                                                      "name": "кг"})
    assert one(api, "/payments", counterparty_id=found["id"])["amount"] == "1000.00"
    rejected = [e for e in log_of(api, job["id"]) if e["level"] == "warning"]
    assert rejected[0]["path"].startswith("ФайлОбмена/Объект[6]") and "НДС99" in rejected[0]["message"]
    assert run(api, content, version="bp82")["created"] == 0


def test_bp82_export_follows_our_rules_and_round_trips(inst, suite):
    from services.onec import kd2
    api = inst.admin
    party = api.ok("POST", "/counterparties", {"name": "ООО Круговой КД2", "inn": "7704211201", "kpp": "770401002",
                                               "phones": ["+7 495 765-43-21"]}, status=201)
    api.ok("POST", "/contacts", {"full_name": "Орлов Круговой", "counterparty_id": party["id"],
                                 "position": "Директор"}, status=201)
    product = api.ok("POST", "/products", {"name": "Круговой товар", "article": "RT-KD2", "price": "99.90",
                                           "vat_rate": "22"}, status=201)
    api.ok("POST", "/invoices", {"counterparty_id": party["id"],
                                 "lines": [{"product_id": product["id"], "quantity": "1"}]}, status=201)
    since = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=5)).isoformat()
    job = finished(api, api.ok("POST", "/exchange/export", {"version": "bp82", "since": since}, status=202)["job_id"])
    assert job["status"] == "done" and job["read"] >= 4, job
    content = _download(api, job)
    assert kd2.check_against_rules(io.BytesIO(content)) == []
    root = etree.fromstring(content)
    assert root.tag == "ФайлОбмена" and root.get("ВерсияФормата") == "2.0" and root.find("ПравилаОбмена") is not None
    assert "ДокументСсылка.СчетНаОплатуПокупателю" in {o.get("Тип") for o in root.iterfind("Объект")}
    fresh = Instance(suite).admin
    loaded = run(fresh, content, version="bp82")
    assert loaded["rejected"] == 0, [e["message"] for e in log_of(fresh, loaded["id"])]
    twin = one(fresh, "/counterparties", q="Круговой КД2")
    assert (twin["inn"], twin["kpp"], twin["phones"], twin["external_id"]) == (
        "7704211201", "770401002", ["+7 495 765-43-21"], party["id"])
    person = one(fresh, "/contacts", counterparty_id=twin["id"])
    assert (person["full_name"], person["position"]) == ("Орлов Круговой", "Директор")
    copy = one(fresh, "/products", q="RT-KD2")
    assert (copy["name"], copy["price"], copy["vat_rate"]) == ("Круговой товар", "99.90", "22")


def test_housekeeping_forgets_finished_jobs_past_the_retention(inst, suite):
    api = inst.admin
    engine = make_engine(suite.by_name["onec"].config["DATABASE_URL"], pool_size=1)
    done = finished(api, api.ok("POST", "/exchange/export", {"version": "commerceml-2.10"}, status=202)["job_id"])
    kept = finished(api, api.ok("POST", "/exchange/export", {"version": "commerceml-2.10"}, status=202)["job_id"])
    old = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=40)
    with Session(engine) as session:
        job = session.get(ExchangeJob, (api.tenant_id, uuid.UUID(done["id"])))
        assert job is not None
        job.finished_at = old
        session.execute(sa.update(exchange.ExchangeLogEntry).where(
            exchange.ExchangeLogEntry.job_id == job.id).values(at=old))
        session.commit()
        exchange.forget_before(session, dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=30))
        session.commit()
    error_of(api.call("GET", f"/exchange/jobs/{done['id']}"), 404, "not_found")
    assert log_of(api, done["id"]) == []
    assert api.ok("GET", f"/exchange/jobs/{kept['id']}")["status"] == "done"
    assert _download(api, kept).startswith(b"\xef\xbb\xbf<?xml")
    engine.dispose()


def _catalogue(*articles: str, changes_only: bool = False) -> bytes:
    goods = "".join(f"<Товар><Ид>full-{a}</Ид><Артикул>FULL-{a}</Артикул><Наименование>Товар {a}</Наименование>"
                    f"<БазоваяЕдиница Код=\"796\">шт</БазоваяЕдиница></Товар>" for a in articles)
    flag = "true" if changes_only else "false"
    return cml(f'<Каталог СодержитТолькоИзменения="{flag}"><Ид>c</Ид><ИдКлассификатора>c</ИдКлассификатора>'
               f"<Наименование>Каталог</Наименование><Товары>{goods}</Товары></Каталог>")


def test_a_full_catalogue_deactivates_what_it_leaves_out_and_a_changes_only_one_does_not(suite):
    api = Instance(suite).admin  # a tenant of its own: a full catalogue speaks for all its products from 1C
    own = api.ok("POST", "/products", {"name": "Свой товар без 1С"}, status=201)
    first = run(api, _catalogue("1", "2", "3"), version="commerceml-2.10")
    assert (first["created"], first["deactivated"]) == (3, 0)
    changes = run(api, _catalogue("1", changes_only=True), version="commerceml-2.10")
    assert changes["deactivated"] == 0 and api.ok("GET", "/products/count", q="FULL", active="true")["count"] == 3
    full = run(api, _catalogue("1", "3"), version="commerceml-2.10")
    assert (full["deactivated"], full["skipped"]) == (1, 2)
    assert one(api, "/products", q="FULL-2")["active"] is False
    assert api.ok("GET", f"/products/{own['id']}")["active"] is True  # never came from 1C
    assert "1 product(s) from 1C it does not list deactivated" in log_of(api, full["id"])[1]["message"]
    # the HTTP exchange: mode=deactivate once 1C has sent its full catalogue, file by file
    inst = Instance(suite)
    onec = OneC(inst, _exchange_user(inst))
    assert onec.checkauth("catalog", STRONG).text.startswith("success")
    for name, content in (("import0_1.xml", _catalogue("7", "8")),):
        assert onec.call("catalog", "file", content, filename=name).text.startswith("success")
        wait_for(lambda name=name: onec.call("catalog", "import", filename=name).text.startswith("success"),
                 timeout=60, message=f"the import of {name}")
    assert onec.call("catalog", "deactivate").text.startswith("success\n0 product")
    onec = OneC(inst, _exchange_user(inst))
    assert onec.checkauth("catalog", STRONG).text.startswith("success")
    assert onec.call("catalog", "file", _catalogue("8"), filename="import0_1.xml").text.startswith("success")
    wait_for(lambda: onec.call("catalog", "import", filename="import0_1.xml").text.startswith("success"),
             timeout=60, message="the second exchange")
    assert onec.call("catalog", "deactivate").text.startswith("success\n1 product")
    assert one(inst.admin, "/products", q="FULL-7")["active"] is False


def test_an_export_holds_what_the_callers_rights_show(inst):
    admin = inst.admin
    since = dt.datetime.now(dt.timezone.utc).isoformat()  # this test's invoices only
    role = admin.ok("POST", "/roles", {"name": "Обмен, свои контрагенты", "rights": {
        "exchange.run": "all", "invoices.read": "all", "invoices.create": "own", "counterparties.read": "own",
        "counterparties.create": "own", "products.read": "all", "contacts.read": "own"}}, status=201)
    clerk = inst.staff("exchangeclerk", inst.department("Бухгалтерия обмена"), role["id"])
    product = admin.ok("POST", "/products", {"name": "Товар прав", "price": "5.00"}, status=201)
    theirs = admin.ok("POST", "/counterparties", {"name": "ООО Чужое Право"}, status=201)
    mine = clerk.ok("POST", "/counterparties", {"name": "ООО Своё Право"}, status=201)
    for who, party in ((admin, theirs), (clerk, mine)):
        who.ok("POST", "/invoices", {"counterparty_id": party["id"], "lines": [{"product_id": product["id"],
                                                                               "quantity": "1"}]}, status=201)
    job = finished(clerk, clerk.ok("POST", "/exchange/export", {"version": "commerceml-2.10", "since": since},
                                   status=202)["job_id"])
    text = _download(clerk, job).decode("utf-8-sig")
    assert "ООО Своё Право" in text and "ООО Чужое Право" not in text
    assert job["skipped"] == 1 and "outside your read rights" in log_of(clerk, job["id"])[1]["message"]
