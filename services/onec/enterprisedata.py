"""EnterpriseData 1.8 (1C:Бухгалтерия 3.0 and other 8.3 configurations):
reading messages and writing them.

Read: ``Справочник.Контрагенты`` (ИНН/КПП, contact information),
``Справочник.Номенклатура`` (ОКЕИ unit, VAT), payments received
(``Документ.ПБДСРасчетыСКонтрагентами``, ``Документ.ПКОРасчетыСКонтрагентами``,
their counterparty too), units, currencies, organisations, and
``УдалениеОбъекта`` (a deactivation). The message header's ``MessageNo``
and ``ReceivedNo`` are read, so a message already received is recognised.

Written: counterparties, products, invoices (``Документ.СчетПокупателю``),
and contacts as the counterparties' contact information, valid against the
1.8.6 schema, in UTF-8 with a BOM."""
from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import IO, Any, Iterator
from xml.sax.saxutils import escape

from services.onec.xmlread import (
    NUMERIC_CURRENCY,
    Item,
    Unreadable,
    child,
    children,
    currency,
    decimal,
    digits,
    element_path,
    local,
    text,
    truthy,
    vat_rate,
    walk,
)

NS = "http://v8.1c.ru/edi/edi_stnd/EnterpriseData/1.8"
MSG = "http://www.1c.ru/SSL/Exchange/Message"
FORMAT = "http://v8.1c.ru/edi/edi_stnd/EnterpriseData/1.8"
PAYMENTS = ("Документ.ПБДСРасчетыСКонтрагентами", "Документ.ПКОРасчетыСКонтрагентами")
DELETABLE = {"КонтрагентыСсылка": "counterparty", "НоменклатураСсылка": "product",
             "ПБДСРасчетыСКонтрагентамиСсылка": "payment", "ПКОРасчетыСКонтрагентамиСсылка": "payment",
             "ЕдиницыИзмеренияСсылка": "unit", "ВалютыСсылка": "currency", "ОрганизацииСсылка": "organisation"}
EMAIL_KINDS = ("адресэлектроннойпочты", "email", "электроннаяпочта")
PHONE_KINDS = ("телефон", "телефонрабочий", "телефонмобильный", "факс")
ADDRESS_KINDS = {"юридическийадрес": "legal", "фактическийадрес": "actual", "почтовыйадрес": "postal",
                 "адресдоставки": "delivery"}


@dataclass
class Header:
    message_no: int | None = None
    received_no: int | None = None
    sender: str | None = None
    exchange_plan: str | None = None


class Reader:
    def __init__(self) -> None:
        self.header = Header()
        self.root_seen = False

    def _wanted(self, path: list[str]) -> bool:
        return (len(path) == 3 and path[1] == "Body") or (len(path) == 2 and path[1] == "Header")

    def _started(self, path: list[str], el: Any) -> None:
        if len(path) == 1:
            if path[0] != "Message":
                raise Unreadable(f"not an EnterpriseData message: the root element is {path[0]}, not Message")
            self.root_seen = True

    def read(self, stream: IO[bytes]) -> Iterator[Item]:
        for path, position, el in walk(stream, self._wanted, self._started):
            if path[-1] == "Header":
                self._header(el)
                continue
            where = element_path(path, position)
            name = path[-1]
            if name == "Справочник.Контрагенты":
                yield counterparty(child(el, "КлючевыеСвойства"), el, where)
            elif name == "Справочник.Номенклатура":
                yield product(el, where)
            elif name in PAYMENTS:
                yield from payment(el, where)
            elif name == "Справочник.ЕдиницыИзмерения":
                keys = child(el, "КлючевыеСвойства")
                code = text(keys, "ДанныеКлассификатора", "Код") or text(keys, "Код")
                yield Item("unit", code, _clean({"code": code, "name": text(keys, "ДанныеКлассификатора",
                                                                             "Наименование") or text(keys,
                                                                                                     "Наименование"),
                                                 "full_name": text(el, "НаименованиеПолное"),
                                                 "ref": text(keys, "Ссылка")}), where,
                           problem=None if code else "ДанныеКлассификатора/Код: missing")
            elif name == "Справочник.Валюты":
                keys = child(el, "КлючевыеСвойства")
                code = text(keys, "ДанныеКлассификатора", "Код") or text(keys, "Код")
                yield Item("currency", code, _clean({"code": code, "letters": currency(code),
                                                     "name": text(keys, "ДанныеКлассификатора", "Наименование"),
                                                     "full_name": text(el, "НаименованиеПолное"),
                                                     "ref": text(keys, "Ссылка")}), where,
                           problem=None if code else "ДанныеКлассификатора/Код: missing")
            elif name == "Справочник.Организации":
                keys = child(el, "КлючевыеСвойства")
                ref = text(keys, "Ссылка")
                yield Item("organisation", ref, _clean({
                    "name": text(keys, "Наименование"), "full_name": text(keys, "НаименованиеПолное"),
                    "inn": digits(text(keys, "ИНН")), "kpp": digits(text(keys, "КПП"))}), where,
                    problem=None if ref else "Ссылка: missing")
            elif name == "УдалениеОбъекта":
                yield deletion(el, where)
            else:
                yield Item("unsupported", None, {}, where, problem=f"{name} is not an object the CRM loads")
        if not self.root_seen:
            raise Unreadable("the file is empty")

    def _header(self, el: Any) -> None:
        confirmation = child(el, "Confirmation")
        if confirmation is not None:
            self.header = Header(_int(text(confirmation, "MessageNo")), _int(text(confirmation, "ReceivedNo")),
                                 text(confirmation, "From"), text(confirmation, "ExchangePlan"))


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _clean(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if v not in (None, "", [])}


def _kind(keys: Any) -> str:
    return "individual" if (text(keys, "ЮридическоеФизическоеЛицо") or "") == "ФизическоеЛицо" else "legal"


def _party_data(keys: Any) -> dict[str, Any]:
    kind = _kind(keys)
    return {"name": text(keys, "Наименование"), "full_name": text(keys, "НаименованиеПолное"),
            "inn": digits(text(keys, "ИНН")), "kpp": None if kind == "individual" else digits(text(keys, "КПП")),
            "kind": kind}


def counterparty(keys: Any, el: Any, where: str, reference: bool = False) -> Item:
    data = _party_data(keys)
    phones: list[str] = []
    emails: list[str] = []
    addresses: list[dict[str, str]] = []
    for row in children(child(el, "КонтактнаяИнформация"), "Строка") if el is not None else []:
        kind = (text(row, "ВидКонтактнойИнформации") or "").lower().replace(" ", "")
        value = text(row, "Представление") or text(row, "ЗначенияПолей")
        if not value or value.startswith("<"):
            continue
        if kind in EMAIL_KINDS:
            emails.append(value)
        elif kind in PHONE_KINDS:
            phones.append(value)
        elif kind in ADDRESS_KINDS:
            addresses.append({"kind": ADDRESS_KINDS[kind], "text": value})
    data.update(phones=phones, emails=emails, addresses=addresses[:10])
    ref = text(keys, "Ссылка")
    return Item("counterparty", ref, _clean(data), where, reference=reference,
                problem=None if ref or data.get("inn") else "neither Ссылка nor ИНН")


def product(el: Any, where: str) -> Item:
    keys = child(el, "КлючевыеСвойства")
    ref = text(keys, "Ссылка")
    data: dict[str, Any] = {"name": text(keys, "Наименование") or text(el, "НаименованиеПолное"),
                            "article": text(keys, "Артикул")}
    unit = child(el, "ЕдиницаИзмерения")
    code = text(unit, "ДанныеКлассификатора", "Код")
    if code:
        data["unit"] = {"code": code, "name": text(unit, "ДанныеКлассификатора", "Наименование") or code}
    group = text(el, "Группа", "Наименование")
    if group:
        data["group"] = group
    problem = None if ref else "Ссылка: missing"
    if child(el, "СтавкаНДС") is not None:
        data["vat_rate"] = vat_rate(text(el, "СтавкаНДС"))
        if data["vat_rate"] == "?":
            problem = f"СтавкаНДС: {text(el, 'СтавкаНДС')} is not a VAT rate"
    return Item("product", ref, _clean(data), where, deleted=truthy(text(el, "ПометкаУдаления")), problem=problem)


def payment(el: Any, where: str) -> Iterator[Item]:
    keys = child(el, "КлючевыеСвойства")
    common = child(el, "ОбщиеДанные")
    party = child(el, "Контрагент")
    links: dict[str, str] = {}
    if party is not None:
        item = counterparty(party, None, f"{where}/Контрагент", reference=True)
        yield item
        if item.ref:
            links["counterparty"] = item.ref
        elif item.data.get("inn"):
            links["counterparty_inn"] = item.data["inn"]
    for row in children(child(el, "РасшифровкаПлатежа"), "Строка"):
        deal = child(row, "ДанныеВзаиморасчетов")
        order = child(deal, "Заказ") if deal is not None else None
        if order is not None:
            ref = text(order, "Ссылка")
            if ref:
                links.setdefault("invoice", ref)
            if text(order, "Номер"):
                links.setdefault("invoice_number", text(order, "Номер") or "")
    amount = decimal(text(common, "Сумма"))
    date = text(keys, "Дата")
    data = {"date": date[:10] if date else None, "amount": amount,
            "currency": currency(text(common, "Валюта", "ДанныеКлассификатора", "Код")) or "RUB",
            "number": text(keys, "Номер"), "purpose": text(common, "НазначениеПлатежа") or text(common,
                                                                                           "Комментарий")}
    problem = None
    if amount is None:
        problem = "ОбщиеДанные/Сумма: missing or not a number"
    elif not links.get("counterparty") and not links.get("counterparty_inn"):
        problem = "Контрагент: missing"
    yield Item("payment", text(keys, "Ссылка"), _clean(data), where, links=links, problem=problem)


def deletion(el: Any, where: str) -> Item:
    holder = child(el, "СсылкаНаОбъект", "СсылкаНаОбъект")
    target = next(iter(holder), None) if holder is not None else None
    if target is None or target.text is None:
        return Item("unsupported", None, {}, where, problem="СсылкаНаОбъект: missing")
    kind = DELETABLE.get(local(target.tag))
    if kind is None:
        return Item("unsupported", None, {}, where, problem=f"{local(target.tag)}: not an object the CRM loads")
    return Item(kind, target.text.strip(), {}, where, deleted=True)


# -- writing --------------------------------------------------------------------------

def _e(value: Any) -> str:
    return escape(str(value))


def _tag(name: str, value: Any) -> str:
    return "" if value in (None, "") else f"<{name}>{_e(value)}</{name}>"


def head(now: dt.datetime, message_no: int, received_no: int, sender: str, receiver: str) -> str:
    stamp = now.strftime("%Y-%m-%dT%H:%M:%S")
    return ("\ufeff<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            f"<Message xmlns:msg=\"{MSG}\" xmlns:xs=\"http://www.w3.org/2001/XMLSchema\" "
            "xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\">\n"
            f"<msg:Header><msg:Format>{FORMAT}</msg:Format><msg:CreationDate>{stamp}</msg:CreationDate>"
            f"<msg:Confirmation><msg:ExchangePlan>СинхронизацияДанныхЧерезУниверсальныйФормат</msg:ExchangePlan>"
            f"<msg:To>{_e(receiver)}</msg:To><msg:From>{_e(sender)}</msg:From>"
            f"<msg:MessageNo>{message_no}</msg:MessageNo><msg:ReceivedNo>{received_no}</msg:ReceivedNo>"
            f"</msg:Confirmation><msg:AvailableVersion>1.8</msg:AvailableVersion></msg:Header>\n"
            f"<Body xmlns=\"{NS}\">\n")


TAIL = "</Body>\n</Message>\n"


def party_keys(party: dict[str, Any]) -> str:
    individual = party.get("kind") == "individual"
    return (_tag("Ссылка", _ref(party)) + _tag("Наименование", party["name"])
            + _tag("НаименованиеПолное", party.get("full_name")) + _tag("ИНН", party.get("inn"))
            + ("" if individual else _tag("КПП", party.get("kpp")))
            + _tag("ЮридическоеФизическоеЛицо", "ФизическоеЛицо" if individual else "ЮридическоеЛицо"))


def _ref(record: dict[str, Any]) -> str:
    """A 1C reference is a UUID: a record from 1C keeps its own, the CRM's records give theirs."""
    ext = str(record.get("external_id") or "")
    return ext if _is_uuid(ext) else str(record["id"])


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return len(value) == 36


def write_counterparty(party: dict[str, Any], contacts: list[dict[str, Any]]) -> str:
    rows = [("АдресЭлектроннойПочты", e) for e in party.get("emails") or []]
    rows += [("Телефон", p) for p in party.get("phones") or []]
    kinds = {"legal": "ЮридическийАдрес", "actual": "ФактическийАдрес", "postal": "ПочтовыйАдрес"}
    rows += [(kinds.get(a.get("kind", ""), "ФактическийАдрес"), a["text"]) for a in party.get("addresses") or []]
    for person in contacts:  # the contact people, as the counterparty's contact information
        rows += [("Телефон", phone) for phone in person.get("phones") or [] if ("Телефон", phone) not in rows]
        rows += [("АдресЭлектроннойПочты", email) for email in person.get("emails") or []
                 if ("АдресЭлектроннойПочты", email) not in rows]
    info = "".join(f"<Строка><ВидКонтактнойИнформации>{kind}</ВидКонтактнойИнформации>"
                   f"<ЗначенияПолей>{_e(value)}</ЗначенияПолей></Строка>" for kind, value in rows)
    return ("<Справочник.Контрагенты><КлючевыеСвойства>" + party_keys(party) + "</КлючевыеСвойства>"
            + (f"<КонтактнаяИнформация>{info}</КонтактнаяИнформация>" if info else "")
            + "</Справочник.Контрагенты>\n")


# the rates the 1.8.6 schema lists: it has no 22 % (the standard rate since 2026), so a 22 % line
# is written without its rate (optional in the schema) and its VAT amount says it all
VAT = {None: "БезНДС", "0": "НДС0", "10": "НДС10", "18": "НДС18", "20": "НДС20"}


def _vat(rate: Any) -> str | None:
    key = None if rate is None else str(rate).split(".")[0]
    return VAT.get(key)


def write_product(item: dict[str, Any]) -> str:
    unit = item.get("unit") or {"code": "796", "name": "шт"}
    return ("<Справочник.Номенклатура><КлючевыеСвойства>" + _tag("Ссылка", _ref(item))
            + _tag("НаименованиеПолное", item["name"]) + _tag("КодВПрограмме", item.get("article"))
            + _tag("Наименование", item["name"]) + _tag("Артикул", item.get("article"))
            + "</КлючевыеСвойства><ТипНоменклатуры>Товар</ТипНоменклатуры>"
            + f"<ЕдиницаИзмерения><Ссылка>{_unit_ref(unit['code'])}</Ссылка><ДанныеКлассификатора>"
            + f"{_tag('Код', unit['code'])}{_tag('Наименование', unit.get('name') or unit['code'])}"
            + "</ДанныеКлассификатора></ЕдиницаИзмерения>"
            + _tag("СтавкаНДС", _vat(item.get("vat_rate")))
            + "<Маркируемый>false</Маркируемый><ИспользоватьСерии>false</ИспользоватьСерии>"
            + "<ПодакцизныйТовар>false</ПодакцизныйТовар></Справочник.Номенклатура>\n")


def _unit_ref(code: str) -> str:
    """A stable reference for an ОКЕИ unit (1C matches units by their classifier code anyway)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"okei:{code}"))


def write_invoice(invoice: dict[str, Any], party: dict[str, Any], organisation: dict[str, Any],
                  products: dict[str, dict[str, Any]]) -> str:
    lines = []
    for line in invoice.get("lines") or []:
        item = products.get(str(line["product_id"]), {"id": line["product_id"], "name": line["name"]})
        unit = line.get("unit") or {"code": "796", "name": "шт"}
        lines.append(
            "<Строка><ДанныеНоменклатуры><Номенклатура>" + _tag("Ссылка", _ref(item))
            + _tag("НаименованиеПолное", item.get("name") or line["name"])
            + _tag("Наименование", item.get("name") or line["name"]) + "</Номенклатура></ДанныеНоменклатуры>"
            + f"<ЕдиницаИзмерения><Ссылка>{_unit_ref(unit['code'])}</Ссылка><ДанныеКлассификатора>"
            + f"{_tag('Код', unit['code'])}{_tag('Наименование', unit.get('name') or unit['code'])}"
            + "</ДанныеКлассификатора></ЕдиницаИзмерения>"
            + _tag("Количество", line["quantity"]) + _tag("Сумма", line["total"]) + _tag("Цена", line["price"])
            + _tag("СтавкаНДС", _vat(line.get("vat_rate"))) + _tag("СуммаНДС", line["vat_amount"]) + "</Строка>")
    code = NUMERIC_CURRENCY.get(invoice["currency"], "643")
    return ("<Документ.СчетПокупателю><КлючевыеСвойства>" + _tag("Ссылка", _ref(invoice))
            + _tag("Дата", f"{str(invoice['date'])[:10]}T00:00:00") + _tag("Номер", invoice["number"])
            + "<Организация>" + party_keys(organisation) + "</Организация></КлючевыеСвойства>"
            + f"<Валюта><ДанныеКлассификатора><Код>{code}</Код></ДанныеКлассификатора></Валюта>"
            + _tag("Сумма", invoice["total"])
            + "<Контрагент>" + party_keys(party) + "</Контрагент>"
            + "<ДанныеВзаиморасчетов><ВалютаВзаиморасчетов><ДанныеКлассификатора>"
            + f"<Код>{code}</Код></ДанныеКлассификатора></ВалютаВзаиморасчетов>"
            + "<КурсВзаиморасчетов>1</КурсВзаиморасчетов><КратностьВзаиморасчетов>1</КратностьВзаиморасчетов>"
            + "</ДанныеВзаиморасчетов><СуммаВключаетНДС>true</СуммаВключаетНДС>"
            + ("<Товары>" + "".join(lines) + "</Товары>" if lines else "")
            + "</Документ.СчетПокупателю>\n")
