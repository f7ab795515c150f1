"""The exchange readers and writers on their own (no broker, no database):
encodings, namespaces, archives, the КД2 rules check, and the small
conversions (VAT, currencies, offer ids)."""
from __future__ import annotations

import datetime as dt
import io
import zipfile

import pytest

from services.onec import commerceml, enterprisedata, kd2
from services.onec.xmlread import Unreadable, currency, members, vat_rate

PRODUCT = ("<Каталог><Товары><Товар><Ид>p-1</Ид><Артикул>A-1</Артикул><Наименование>Ёлка</Наименование>"
           "<БазоваяЕдиница Код=\"796\">шт</БазоваяЕдиница></Товар></Товары></Каталог>")


def cml(namespace: str | None, body: str = PRODUCT, encoding: str = "UTF-8", bom: bool = False) -> bytes:
    ns = f' xmlns="{namespace}"' if namespace else ""
    text = (f'<?xml version="1.0" encoding="{encoding}"?><КоммерческаяИнформация{ns} ВерсияСхемы="2.10" '
            f'ДатаФормирования="2026-01-01T00:00:00">{body}</КоммерческаяИнформация>')
    data = text.encode("windows-1251" if encoding == "windows-1251" else "utf-8")
    return (b"\xef\xbb\xbf" if bom else b"") + data


@pytest.mark.parametrize("namespace", [None, "urn:1C.ru:commerceml_2", "urn:1C.ru:commerceml_205",
                                       "urn:1C.ru:commerceml_210"])
@pytest.mark.parametrize("encoding,bom", [("UTF-8", False), ("UTF-8", True), ("windows-1251", False)])
def test_commerceml_in_every_namespace_and_encoding(namespace, encoding, bom):
    items = list(commerceml.Reader().read(io.BytesIO(cml(namespace, encoding=encoding, bom=bom))))
    assert [(i.kind, i.ref, i.data["name"], i.data["unit"]) for i in items] == [
        ("product", "p-1", "Ёлка", {"code": "796", "name": "шт"})]


def test_not_the_format_is_unreadable():
    with pytest.raises(Unreadable, match="root element is Message"):
        list(commerceml.Reader().read(io.BytesIO(b"<Message/>")))
    with pytest.raises(Unreadable, match="not well-formed"):
        list(enterprisedata.Reader().read(io.BytesIO(b"<Message><Body>")))
    with pytest.raises(Unreadable, match="ФайлОбмена"):
        list(kd2.Reader().read(io.BytesIO("<КоммерческаяИнформация/>".encode())))


def test_a_zip_is_read_catalogue_first_and_skips_pictures():
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("offers0_1.xml", b"<a/>")
        z.writestr("import_files/ab/pic.jpg", b"\xff\xd8")
        z.writestr("import___5f0c.xml", b"<b/>")
        z.writestr("documents.xml", b"<c/>")
    names = [name for name, _ in members(io.BytesIO(archive.getvalue()))]
    assert names == ["import___5f0c.xml", "offers0_1.xml", "documents.xml"]
    with pytest.raises(Unreadable, match="damaged"):
        list(members(io.BytesIO(b"PK\x03\x04 not really")))


def test_offers_set_their_products_price_and_marks_mean_deletion():
    body = ("<ПакетПредложений><ТипыЦен><ТипЦены><Ид>t</Ид><Валюта>руб</Валюта></ТипЦены></ТипыЦен><Предложения>"
            "<Предложение><Ид>p-1#v-2</Ид><Цены><Цена><ИдТипаЦены>t</ИдТипаЦены><ЦенаЗаЕдиницу>1 234,50"
            "</ЦенаЗаЕдиницу></Цена></Цены></Предложение></Предложения></ПакетПредложений>")
    offer, = commerceml.Reader().read(io.BytesIO(cml("urn:1C.ru:commerceml_2", body)))
    assert (offer.kind, offer.ref, offer.data) == ("offer", "p-1", {"price": offer.data["price"], "currency": "RUB"})
    assert str(offer.data["price"]) == "1234.50"
    marked = PRODUCT.replace("<Артикул>", "<ПометкаУдаления>true</ПометкаУдаления><Артикул>")
    assert next(commerceml.Reader().read(io.BytesIO(cml(None, marked)))).deleted


def test_small_conversions():
    assert [vat_rate(v) for v in ("НДС20", "20%", "Без НДС", "10/110", "НДС99x")] == ["20", "20", None, "10", "?"]
    assert [currency(v) for v in ("643", "руб.", "usd", "978", "???")] == ["RUB", "RUB", "USD", "EUR", None]


def test_enterprisedata_windows_1251_and_deletions():
    body = ('<?xml version="1.0" encoding="windows-1251"?><Message xmlns:msg="http://www.1c.ru/SSL/Exchange/Message">'
            '<msg:Header><msg:Confirmation><msg:From>BP</msg:From><msg:MessageNo>7</msg:MessageNo>'
            '<msg:ReceivedNo>3</msg:ReceivedNo></msg:Confirmation></msg:Header>'
            f'<Body xmlns="{enterprisedata.NS}"><УдалениеОбъекта><СсылкаНаОбъект><СсылкаНаОбъект>'
            '<НоменклатураСсылка>r-1</НоменклатураСсылка></СсылкаНаОбъект></СсылкаНаОбъект></УдалениеОбъекта>'
            '<Справочник.Организации><КлючевыеСвойства><Ссылка>o-1</Ссылка><Наименование>ООО Ёж</Наименование>'
            '</КлючевыеСвойства></Справочник.Организации></Body></Message>').encode("windows-1251")
    reader = enterprisedata.Reader()
    items = list(reader.read(io.BytesIO(body)))
    assert [(i.kind, i.ref, i.deleted) for i in items] == [("product", "r-1", True), ("organisation", "o-1", False)]
    assert items[1].data["name"] == "ООО Ёж"
    assert (reader.header.message_no, reader.header.received_no, reader.header.sender) == (7, 3, "BP")


def test_what_we_write_in_kd2_follows_our_rules_and_a_stray_property_is_caught():
    writer = kd2.Writer()
    party = {"id": "8a6e0f2e-0000-4000-8000-000000000001", "name": "ООО Тест", "inn": "7707083893",
             "kpp": "773601001", "phones": ["+7 495 000-00-00"], "emails": [], "addresses": []}
    text = (kd2.head(dt.datetime(2026, 1, 1), None, None) + writer.counterparty(party)
            + writer.product({"id": "8a6e0f2e-0000-4000-8000-000000000002", "name": "Товар", "vat_rate": "22",
                              "unit": {"code": "166", "name": "кг"}})
            + kd2.TAIL)
    assert kd2.check_against_rules(io.BytesIO(text.encode("utf-8"))) == []
    stray = text.replace('<Свойство Имя="Телефоны"', '<Свойство Имя="Секрет" Тип="Строка"><Пусто/></Свойство>'
                                                     '<Свойство Имя="Телефоны"', 1)
    assert kd2.check_against_rules(io.BytesIO(stray.encode("utf-8"))) == [
        "Объект[1] Контрагенты: property Секрет (Строка) is not in the rule"]
    # what we write reads back as it was
    items = list(kd2.Reader().read(io.BytesIO(text.encode("utf-8"))))
    assert [(i.kind, i.data.get("inn"), i.data.get("vat_rate"), i.data.get("unit")) for i in items] == [
        ("counterparty", "7707083893", None, None), ("unit", None, None, None),
        ("product", None, "22", {"code": "166", "name": "кг"})]
