"""CommerceML 2 (2.05–2.10): reading catalogues, offers and documents, and
writing invoices as documents.

Read:
- ``import.xml``: the classifier's groups and units, the catalogue's
  products (article, base unit, group, VAT, ``ПометкаУдаления`` / status
  "Удален"); a catalogue without ``СодержитТолькоИзменения`` is full, and
  its products not in it are deactivated when the job ends;
- ``offers.xml`` (and split ``prices``/``rests`` files): offers set the
  price and currency of their product (``Ид`` up to ``#``);
- documents: their counterparties (with contacts and representatives) and,
  for "Выплата безналичных/наличных денег", a payment received.

Written (``invoice_document``, between ``head`` and ``TAIL``): each invoice is a "Счет на оплату" document
with its counterparty, contact person and lines, valid against the 2.10
schema, in UTF-8 with a BOM."""
from __future__ import annotations

import datetime as dt
from typing import IO, Any, Iterator
from xml.sax.saxutils import escape

from services.onec.xmlread import (
    Item,
    Unreadable,
    child,
    children,
    currency,
    decimal,
    digits,
    element_path,
    text,
    truthy,
    vat_rate,
    walk,
)

ROOT = "КоммерческаяИнформация"
PAYMENT_OPERATIONS = ("выплата безналичных денег", "выплата наличных денег")
PHONE_TYPES = ("телефон", "телефон рабочий", "телефон мобильный", "телефон домашний", "телефон внутренний")
ADDRESS_TYPES = {"АдресРегистрации": "legal", "ЮридическийАдрес": "legal", "Адрес": "actual",
                 "ФактическийАдрес": "actual"}


class Reader:
    """The items of one CommerceML file, in file order."""

    def __init__(self) -> None:
        self.groups: dict[str, str] = {}
        self.price_currency: dict[str, str] = {}
        # a catalogue not marked "changes only": the products from 1C it leaves out are deactivated
        self.full_catalogue = False
        self.root_seen = False

    def _wanted(self, path: list[str]) -> bool:
        if len(path) < 2:
            return False
        last, parent = path[-1], path[-2]
        return ((last == "Группа" and parent == "Группы" and "Классификатор" in path)
                or (last == "ЕдиницаИзмерения" and parent == "ЕдиницыИзмерения")
                or (last == "Товар" and parent == "Товары" and "Каталог" in path)
                or (last == "ТипЦены" and parent == "ТипыЦен")
                or (last == "Предложение" and parent == "Предложения")
                or (last == "Документ" and len(path) == 2 and path[0] == ROOT)
                or (last == "Контрагент" and parent == "Контрагенты" and len(path) == 3)
                or (last == "СодержитТолькоИзменения" and parent == "Каталог"))

    def _started(self, path: list[str], el: Any) -> None:
        if len(path) == 1:
            if path[0] not in (ROOT, "Классификатор"):  # a classifier alone: what some connectors split off
                raise Unreadable(f"not a CommerceML file: the root element is {path[0]}, not {ROOT}")
            self.root_seen = True
        elif path[-1] == "Каталог":
            changes = el.get("СодержитТолькоИзменения")
            self.full_catalogue = changes is None or not truthy(changes)

    def read(self, stream: IO[bytes]) -> Iterator[Item]:
        for path, position, el in walk(stream, self._wanted, self._started):
            where = element_path(path, position)
            name = path[-1]
            if name == "Группа":
                if text(el, "Ид"):
                    self.groups[text(el, "Ид") or ""] = text(el, "Наименование") or ""
            elif name == "СодержитТолькоИзменения":
                self.full_catalogue = not truthy(text(el))
            elif name == "ЕдиницаИзмерения":
                yield unit(el, where)
            elif name == "ТипЦены":
                code = currency(text(el, "Валюта"))
                if text(el, "Ид") and code:
                    self.price_currency[text(el, "Ид") or ""] = code
            elif name == "Товар":
                yield self.product(el, where)
            elif name == "Предложение":
                yield self.offer(el, where)
            elif name == "Контрагент":
                yield from party_items(el, where)
            elif name == "Документ":
                yield from document_items(el, where)
        if not self.root_seen:
            raise Unreadable("the file is empty")

    def product(self, el: Any, where: str) -> Item:
        ref = text(el, "Ид")
        deleted = truthy(text(el, "ПометкаУдаления")) or (el.get("Статус") or text(el, "Статус") or "") == "Удален"
        data: dict[str, Any] = {"name": text(el, "Наименование"), "article": text(el, "Артикул")}
        base = child(el, "БазоваяЕдиница")
        if base is not None and base.get("Код"):
            data["unit"] = {"code": base.get("Код"), "name": text(base) or base.get("НаименованиеПолное") or ""}
        group = text(el, "Группы", "Ид")
        if group and group in self.groups:
            data["group"] = self.groups[group]
        for rate in children(child(el, "СтавкиНалогов"), "СтавкаНалога"):
            if (text(rate, "Наименование") or "").upper() == "НДС":
                data["vat_rate"] = vat_rate(text(rate, "Ставка"))
        for attr in children(child(el, "ЗначенияРеквизитов"), "ЗначениеРеквизита"):
            if text(attr, "Наименование") == "Полное наименование" and not data.get("name"):
                data["name"] = text(attr, "Значение")
        problem = None if ref else "no Ид"
        if data.get("vat_rate") == "?":
            problem = "СтавкаНалога: not a VAT rate"
        return Item("product", ref, _clean(data), where, deleted=deleted, problem=problem)

    def offer(self, el: Any, where: str) -> Item:
        ref = (text(el, "Ид") or "").split("#", 1)[0] or None
        data: dict[str, Any] = {}
        price = child(el, "Цены", "Цена")
        if price is not None:
            data["price"] = decimal(text(price, "ЦенаЗаЕдиницу"))
            data["currency"] = currency(text(price, "Валюта")) or self.price_currency.get(
                text(price, "ИдТипаЦены") or "")
            if data["price"] is None:
                return Item("offer", ref, {}, where, problem="ЦенаЗаЕдиницу: not a number")
        return Item("offer", ref, _clean(data), where, problem=None if ref else "no Ид")


def unit(el: Any, where: str) -> Item:
    code = text(el, "Код")
    data = {"code": code, "name": text(el, "НаименованиеКраткое") or text(el, "Наименование"),
            "full_name": text(el, "НаименованиеПолное"), "international": text(el, "МеждународноеСокращение")}
    return Item("unit", code, _clean(data), where, deleted=truthy(text(el, "ПометкаУдаления")),
                problem=None if code else "no Код")


def _contacts(el: Any) -> tuple[list[str], list[str]]:
    phones: list[str] = []
    emails: list[str] = []
    holders = children(child(el, "Контакты"), "Контакт") + children(child(el, "КонтактнаяИнформация"),
                                                                    "КонтактнаяИнформация")
    for contact in holders:
        kind, value = (text(contact, "Тип") or "").lower(), text(contact, "Значение")
        if not value:
            continue
        if kind in ("почта", "электронная почта", "email") and value not in emails:
            emails.append(value)
        elif kind in PHONE_TYPES and value not in phones:
            phones.append(value)
    return phones, emails


def party_items(el: Any, where: str, role_ref: bool = False) -> Iterator[Item]:
    """A counterparty, then its representatives as contacts."""
    ref = text(el, "Ид")
    inn, kpp = digits(text(el, "ИНН")), digits(text(el, "КПП"))
    phones, emails = _contacts(el)
    addresses: list[dict[str, str]] = []
    for name, kind in ADDRESS_TYPES.items():
        shown = text(el, name, "Представление")
        if shown and all(a["text"] != shown for a in addresses):
            addresses.append({"kind": kind, "text": shown})
    individual = child(el, "Фамилия") is not None or (inn is not None and len(inn) == 12 and not kpp)
    data = {"name": text(el, "Наименование") or text(el, "ОфициальноеНаименование"),
            "full_name": text(el, "ПолноеНаименование") or text(el, "ОфициальноеНаименование"),
            "inn": inn, "kpp": kpp, "kind": "individual" if individual else "legal",
            "phones": phones, "emails": emails, "addresses": addresses[:10]}
    yield Item("counterparty", ref, _clean(data), where, deleted=truthy(text(el, "ПометкаУдаления")),
               problem=None if ref or inn else "neither Ид nor ИНН")
    for n, rep in enumerate(children(child(el, "Представители"), "Представитель"), 1):
        person = child(rep, "Контрагент") if child(rep, "Контрагент") is not None else rep
        rphones, remails = _contacts(person)
        full_name = text(person, "ПолноеНаименование") or text(person, "Наименование")
        yield Item("contact", text(person, "Ид"),
                   _clean({"full_name": full_name, "position": text(rep, "Должность"), "phones": rphones,
                           "emails": remails}),
                   f"{where}/Представители/Представитель[{n}]", links={"counterparty": ref} if ref else {},
                   problem=None if text(person, "Ид") else "no Ид")


def document_items(el: Any, where: str) -> Iterator[Item]:
    parties = children(child(el, "Контрагенты"), "Контрагент")
    for n, party in enumerate(parties, 1):
        yield from party_items(party, f"{where}/Контрагенты/Контрагент[{n}]")
    operation = (text(el, "ХозОперация") or "").lower()
    if operation not in PAYMENT_OPERATIONS:
        return
    payer = next((p for p in parties if (text(p, "Роль") or "") == "Плательщик"), parties[0] if parties else None)
    date = text(el, "Дата")
    data = {"date": date, "amount": decimal(text(el, "Сумма")), "currency": currency(text(el, "Валюта")) or "RUB",
            "number": text(el, "Номер"), "purpose": text(el, "Комментарий") or text(el, "НазначениеПлатежа")}
    links: dict[str, str] = {}
    if payer is not None and text(payer, "Ид"):
        links["counterparty"] = text(payer, "Ид") or ""
    elif payer is not None and text(payer, "ИНН"):
        links["counterparty_inn"] = text(payer, "ИНН") or ""
    subordinate = child(el, "ПодчиненныеДокументы", "ПодчиненныйДокумент")
    if subordinate is not None:
        if text(subordinate, "Ид"):
            links["invoice"] = text(subordinate, "Ид") or ""
        if text(subordinate, "Номер"):
            links["invoice_number"] = text(subordinate, "Номер") or ""
    problem = None
    if data["amount"] is None:
        problem = "Сумма: not a number"
    elif not links.get("counterparty") and not links.get("counterparty_inn"):
        problem = "the payment names no counterparty"
    yield Item("payment", text(el, "Ид"), _clean(data), where, links=links,
               deleted=truthy(text(el, "ПометкаУдаления")), problem=problem or (None if text(el, "Ид") else "no Ид"))


def _clean(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if v not in (None, "", [])}


# -- writing --------------------------------------------------------------------------

def _e(value: Any) -> str:
    return escape(str(value), {'"': "&quot;"})


def _tag(name: str, value: Any) -> str:
    return "" if value in (None, "") else f"<{name}>{_e(value)}</{name}>"


def head(now: dt.datetime) -> str:
    return ("\ufeff<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            f"<КоммерческаяИнформация xmlns=\"urn:1C.ru:commerceml_2\" ВерсияСхемы=\"2.10\" "
            f"ДатаФормирования=\"{now.strftime('%Y-%m-%dT%H:%M:%S')}\">\n")


TAIL = "</КоммерческаяИнформация>\n"


def _party(party: dict[str, Any], contact: dict[str, Any] | None) -> str:
    """A document's counterparty, in the schema's order: Ид, Наименование, the legal or the individual
    details, Контакты, Представители, Роль."""
    individual = party.get("kind") == "individual"
    out = ["<Контрагент>", _tag("Ид", party.get("external_id") or party["id"]), _tag("Наименование", party["name"]),
           _tag("ПолноеНаименование" if individual else "ОфициальноеНаименование",
                party.get("full_name") or party["name"]),
           _tag("ИНН", party.get("inn")), "" if individual else _tag("КПП", party.get("kpp"))]
    contacts = [("Почта", e) for e in party.get("emails") or []] + [("Телефон рабочий", p)
                                                                     for p in party.get("phones") or []]
    if contacts:
        out.append("<Контакты>" + "".join(f"<Контакт><Тип>{_e(t)}</Тип><Значение>{_e(v)}</Значение></Контакт>"
                                          for t, v in contacts) + "</Контакты>")
    if contact:
        out.append("<Представители><Представитель>" + _tag("Ид", contact.get("external_id") or contact["id"])
                   + _tag("Наименование", contact["full_name"]) + _tag("ПолноеНаименование", contact["full_name"])
                   + _tag("Отношение", "Контактное лицо") + "</Представитель></Представители>")
    out.append(_tag("Роль", "Покупатель"))
    out.append("</Контрагент>")
    return "".join(out)


def invoice_document(invoice: dict[str, Any], party: dict[str, Any], contact: dict[str, Any] | None,
                     products: dict[str, dict[str, Any]]) -> str:
    date = str(invoice["date"])[:10]
    lines = []
    for line in invoice.get("lines") or []:
        product = products.get(str(line["product_id"]), {})
        unit = line.get("unit") or {}
        vat = line.get("vat_rate")
        lines.append(
            "<Товар>" + _tag("Ид", product.get("external_id") or line["product_id"])
            + _tag("Артикул", product.get("article")) + _tag("Наименование", line["name"])
            + (f"<БазоваяЕдиница Код=\"{_e(unit['code'])}\">{_e(unit.get('name') or '')}</БазоваяЕдиница>"
               if unit.get("code") else "<БазоваяЕдиница>шт</БазоваяЕдиница>")
            + _tag("ЦенаЗаЕдиницу", line["price"]) + _tag("Количество", line["quantity"])
            + _tag("Сумма", line["total"])
            + (f"<Налоги><Налог><Наименование>НДС</Наименование><УчтеноВСумме>true</УчтеноВСумме>"
               f"<Сумма>{_e(line['vat_amount'])}</Сумма><Ставка>{_e(vat)}</Ставка></Налог></Налоги>"
               if vat is not None else "")
            + "</Товар>")
    return ("<Документ>" + _tag("Ид", invoice.get("external_id") or invoice["id"]) + _tag("Номер", invoice["number"])
            + _tag("Дата", date) + _tag("ХозОперация", "Счет на оплату") + _tag("Роль", "Продавец")
            + _tag("Валюта", invoice["currency"]) + _tag("Курс", "1") + _tag("Сумма", invoice["total"])
            + "<Контрагенты>" + _party(party, contact) + "</Контрагенты>"
            + _tag("Комментарий", invoice.get("comment")) + "<Товары>" + "".join(lines) + "</Товары>"
            + "</Документ>\n")
