"""1C:Бухгалтерия 8.2 through the universal XML exchange of the "Конвертация
данных 2" family: a ``ФайлОбмена ВерсияФормата="2.0"`` file whose objects
are ``Объект Нпп= Тип= ИмяПравила=`` with a ``Ссылка`` (the search
properties, ``{УникальныйИдентификатор}`` first) and ``Свойство Имя= Тип=``
holding ``Значение``, ``Пусто`` or, for a reference, a ``Ссылка``.

The conversion rules are declared once, in ``RULES``:

- ``rules_xml("in")`` is the exchange-rules file the 1C side loads to unload
  from 1C into the CRM (the guide's ``CRM_1C82.xml``;
  ``GET /api/v1/exchange/versions/bp82/rules``);
- an export embeds ``rules_xml("out")`` (CRM → 1C) in its file, as 1C's
  universal exchange expects, and writes only objects and properties that
  those rules list (a test checks every one);
- the reader maps objects by the same rules.

There is no XSD for this format: the rules are the contract."""
from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from typing import IO, Any, Iterator
from xml.sax.saxutils import escape

from services.onec.xmlread import Item, Unreadable, child, children, currency, decimal, digits, truthy, walk

RULES_ID = "4d1f6a62-5c0e-4d8a-9b8e-2b7f0c1a8200"
SOURCE, TARGET = "CRM", "БухгалтерияПредприятия"
UUID_KEY = "{УникальныйИдентификатор}"


@dataclass(frozen=True)
class Prop:
    name: str
    type: str
    search: bool = False


@dataclass(frozen=True)
class Rule:
    code: str
    title: str
    type: str                      # the 1C type of the object
    kind: str                      # what it is here: counterparty, contact, product, payment, unit, …
    directions: tuple[str, ...]    # "in": 1C → CRM; "out": CRM → 1C
    props: tuple[Prop, ...]
    tables: dict[str, tuple[Prop, ...]] = field(default_factory=dict)


S, N, B, D = "Строка", "Число", "Булево", "Дата"
PARTY = "СправочникСсылка.Контрагенты"
RULES: tuple[Rule, ...] = (
    Rule("Организации", "Организации", "СправочникСсылка.Организации", "organisation", ("in", "out"), (
        Prop(UUID_KEY, S, True), Prop("ИНН", S, True), Prop("КПП", S, True), Prop("Наименование", S),
        Prop("НаименованиеПолное", S), Prop("ПометкаУдаления", B))),
    Rule("Валюты", "Валюты", "СправочникСсылка.Валюты", "currency", ("in", "out"), (
        Prop("Код", S, True), Prop("Наименование", S), Prop("НаименованиеПолное", S))),
    Rule("ЕдиницыИзмерения", "Единицы измерения", "СправочникСсылка.КлассификаторЕдиницИзмерения", "unit",
         ("in", "out"), (Prop("Код", S, True), Prop("Наименование", S), Prop("НаименованиеПолное", S))),
    Rule("Контрагенты", "Контрагенты", PARTY, "counterparty", ("in", "out"), (
        Prop(UUID_KEY, S, True), Prop("ИНН", S, True), Prop("КПП", S, True), Prop("Наименование", S),
        Prop("НаименованиеПолное", S), Prop("ЮрФизЛицо", "ПеречислениеСсылка.ЮрФизЛицо"),
        Prop("Телефоны", S), Prop("ЭлектроннаяПочта", S), Prop("ЮридическийАдрес", S),
        Prop("ФактическийАдрес", S), Prop("ПометкаУдаления", B))),
    Rule("КонтактныеЛица", "Контакты", "СправочникСсылка.КонтактныеЛица", "contact", ("in", "out"), (
        Prop(UUID_KEY, S, True), Prop("Наименование", S), Prop("Должность", S),
        Prop("ОбъектВладелец", PARTY), Prop("Телефоны", S), Prop("ЭлектроннаяПочта", S),
        Prop("ПометкаУдаления", B))),
    Rule("Номенклатура", "Продукты", "СправочникСсылка.Номенклатура", "product", ("in", "out"), (
        Prop(UUID_KEY, S, True), Prop("Артикул", S, True), Prop("Наименование", S), Prop("НаименованиеПолное", S),
        Prop("ЕдиницаХраненияОстатков", "СправочникСсылка.КлассификаторЕдиницИзмерения"),
        Prop("СтавкаНДС", "ПеречислениеСсылка.СтавкиНДС"), Prop("Группа", S), Prop("Цена", N),
        Prop("ПометкаУдаления", B))),
    Rule("ПлатежноеПоручениеВходящее", "Поступления (безналичные)", "ДокументСсылка.ПлатежноеПоручениеВходящее",
         "payment", ("in",), (
             Prop(UUID_KEY, S, True), Prop("Номер", S, True), Prop("Дата", D, True), Prop("СуммаДокумента", N),
             Prop("ВалютаДокумента", "СправочникСсылка.Валюты"), Prop("Контрагент", PARTY),
             Prop("ДокументОснование", "ДокументСсылка.СчетНаОплатуПокупателю"), Prop("НазначениеПлатежа", S),
             Prop("ПометкаУдаления", B))),
    Rule("ПриходныйКассовыйОрдер", "Поступления (наличные)", "ДокументСсылка.ПриходныйКассовыйОрдер", "payment",
         ("in",), (
             Prop(UUID_KEY, S, True), Prop("Номер", S, True), Prop("Дата", D, True), Prop("СуммаДокумента", N),
             Prop("ВалютаДокумента", "СправочникСсылка.Валюты"), Prop("Контрагент", PARTY),
             Prop("ДокументОснование", "ДокументСсылка.СчетНаОплатуПокупателю"), Prop("Основание", S),
             Prop("ПометкаУдаления", B))),
    Rule("СчетНаОплатуПокупателю", "Счета", "ДокументСсылка.СчетНаОплатуПокупателю", "invoice", ("out",), (
        Prop(UUID_KEY, S, True), Prop("Номер", S, True), Prop("Дата", D, True),
        Prop("Организация", "СправочникСсылка.Организации"), Prop("Контрагент", PARTY),
        Prop("ВалютаДокумента", "СправочникСсылка.Валюты"), Prop("СуммаДокумента", N), Prop("СуммаВключаетНДС", B),
        Prop("Комментарий", S)),
        tables={"Товары": (Prop("Номенклатура", "СправочникСсылка.Номенклатура"), Prop("Количество", N),
                           Prop("Цена", N), Prop("Сумма", N), Prop("СтавкаНДС", "ПеречислениеСсылка.СтавкиНДС"),
                           Prop("СуммаНДС", N))}),
)
BY_TYPE = {r.type: r for r in RULES}
BY_CODE = {r.code: r for r in RULES}
VAT_IN = {"НДС20": "20", "НДС18": "18", "НДС10": "10", "НДС0": "0", "НДС22": "22", "БезНДС": None,
          "НДС20_120": "20", "НДС10_110": "10", "НДС18_118": "18"}
VAT_OUT = {None: "БезНДС", "0": "НДС0", "10": "НДС10", "18": "НДС18", "20": "НДС20", "22": "НДС22"}


# -- the rules file ------------------------------------------------------------------------

def _e(value: Any) -> str:
    return escape(str(value), {'"': "&quot;"})


def rules_xml(direction: str, now: dt.datetime | None = None) -> str:
    """The conversion rules of one direction: ``in`` (Бухгалтерия → CRM, loaded by 1C to unload into
    the CRM) or ``out`` (CRM → Бухгалтерия, embedded in what the CRM writes)."""
    now = now or dt.datetime(2026, 1, 1)
    source, target = (TARGET, SOURCE) if direction == "in" else (SOURCE, TARGET)
    rules = [r for r in RULES if direction in r.directions]
    out = [f"<ПравилаОбмена><ВерсияФормата>2.01</ВерсияФормата><Ид>{RULES_ID}-{direction}</Ид>",
           f"<Наименование>{_e(source)} → {_e(target)}</Наименование>",
           f"<ДатаВремяСоздания>{now.strftime('%Y-%m-%dT%H:%M:%S')}</ДатаВремяСоздания>",
           f"<Источник ПлатформаВерсия=\"8.2\">{_e(source)}</Источник>",
           f"<Приемник ПлатформаВерсия=\"8.2\">{_e(target)}</Приемник>",
           "<Параметры/><Обработки/><ПравилаКонвертацииОбъектов>"]
    for order, rule in enumerate(rules, 1):
        out.append(f"<Правило><Код>{_e(rule.code)}</Код><Наименование>{_e(rule.title)}</Наименование>"
                   f"<Порядок>{order * 100}</Порядок>"
                   f"<СинхронизироватьПоИдентификатору>{str(any(p.name == UUID_KEY for p in rule.props)).lower()}"
                   f"</СинхронизироватьПоИдентификатору><Источник>{_e(rule.type)}</Источник>"
                   f"<Приемник>{_e(rule.type)}</Приемник>")
        searched = [p for p in rule.props if p.search and p.name != UUID_KEY]
        if searched:
            out.append("<СвойстваПоиска>" + "".join(_prop_rule(n, p) for n, p in enumerate(searched, 1))
                       + "</СвойстваПоиска>")
        out.append("<Свойства>" + "".join(_prop_rule(n, p) for n, p in enumerate(
            [p for p in rule.props if not p.search], 1)))
        for table, props in rule.tables.items():
            out.append(f"<Группа><Код>{_e(table)}</Код><Наименование>{_e(table)}</Наименование>"
                       f"<Источник Имя=\"{_e(table)}\" Вид=\"ТабличнаяЧасть\"/>"
                       f"<Приемник Имя=\"{_e(table)}\" Вид=\"ТабличнаяЧасть\"/><Свойства>"
                       + "".join(_prop_rule(n, p) for n, p in enumerate(props, 1)) + "</Свойства></Группа>")
        out.append("</Свойства></Правило>")
    out.append("</ПравилаКонвертацииОбъектов><ПравилаОчисткиДанных/><Алгоритмы/><Запросы/>")
    if direction == "in":  # what 1C unloads, and by which conversion rule
        out.append("<ПравилаВыгрузкиДанных>")
        for order, rule in enumerate(rules, 1):
            out.append(f"<Правило><Включить>true</Включить><Код>{_e(rule.code)}</Код>"
                       f"<Наименование>{_e(rule.title)}</Наименование><Порядок>{order * 100}</Порядок>"
                       f"<СпособОтбораДанных>СтандартнаяВыборка</СпособОтбораДанных>"
                       f"<ОбъектВыборки>{_e(rule.type)}</ОбъектВыборки>"
                       f"<ПравилоКонвертации>{_e(rule.code)}</ПравилоКонвертации></Правило>")
        out.append("</ПравилаВыгрузкиДанных>")
    out.append("</ПравилаОбмена>")
    return "".join(out)


def _prop_rule(n: int, prop: Prop) -> str:
    kind = "Свойство" if prop.name == UUID_KEY else "Реквизит"
    return (f"<Свойство><Код>{n}</Код><Наименование>{_e(prop.name)}</Наименование>"
            f"<Источник Имя=\"{_e(prop.name)}\" Вид=\"{kind}\" Тип=\"{_e(prop.type)}\"/>"
            f"<Приемник Имя=\"{_e(prop.name)}\" Вид=\"{kind}\" Тип=\"{_e(prop.type)}\"/></Свойство>")


def rules_file(now: dt.datetime | None = None) -> str:
    """The file the 1C side loads ("Загрузить правила"): the ``in`` rules, UTF-8 with a BOM."""
    return "\ufeff<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n" + rules_xml("in", now) + "\n"


# -- reading -----------------------------------------------------------------------------

def _values(holder: Any) -> dict[str, Any]:
    """Свойство name -> its value: text, None for Пусто, or for a reference the referenced
    object's search properties (a dict)."""
    values: dict[str, Any] = {}
    if holder is None:
        return values
    for prop in children(holder, "Свойство"):
        name = prop.get("Имя") or ""
        ref = child(prop, "Ссылка")
        if ref is not None:
            values[name] = _values(ref)
        elif child(prop, "Значение") is not None:
            raw = child(prop, "Значение").text
            values[name] = " ".join(raw.split()) if raw is not None else ""
        else:
            values[name] = None
    return values


class Reader:
    def __init__(self) -> None:
        self.root_seen = False
        self.unit_names: dict[str, str] = {}  # the file's units, for the products that point at them

    def _wanted(self, path: list[str]) -> bool:
        return len(path) == 2 and path[1] in ("Объект", "ПравилаОбмена")

    def _started(self, path: list[str], el: Any) -> None:
        if len(path) == 1:
            if path[0] != "ФайлОбмена":
                raise Unreadable(f"not a universal exchange file: the root element is {path[0]}, not ФайлОбмена")
            if (el.get("ВерсияФормата") or "2.0").split(".")[0] != "2":
                raise Unreadable(f"exchange format {el.get('ВерсияФормата')} is not 2.0")
            self.root_seen = True

    def read(self, stream: IO[bytes]) -> Iterator[Item]:
        for path, position, el in walk(stream, self._wanted, self._started):
            if path[-1] == "ПравилаОбмена":
                continue  # the sender's rules: ours are the contract
            where = f"ФайлОбмена/Объект[{position}] (Нпп {el.get('Нпп') or '?'})"
            rule = BY_TYPE.get(el.get("Тип") or "") or BY_CODE.get(el.get("ИмяПравила") or "")
            if rule is None or "in" not in rule.directions:
                yield Item("unsupported", None, {}, where, problem=f"{el.get('Тип')} is not an object the CRM loads")
                continue
            keys = _values(child(el, "Ссылка"))
            values = {**keys, **_values(el)}
            item = _item(rule, keys, values, where)
            if item.kind == "unit" and item.ref and item.data.get("name"):
                self.unit_names[item.ref] = str(item.data["name"])
            elif item.kind == "product" and item.data.get("unit", {}).get("name") == item.data.get("unit", {}).get(
                    "code") and item.data.get("unit", {}).get("code") in self.unit_names:
                item.data["unit"]["name"] = self.unit_names[item.data["unit"]["code"]]
            yield item
        if not self.root_seen:
            raise Unreadable("the file is empty")


def _ref(values: dict[str, Any]) -> str | None:
    ref = values.get(UUID_KEY)
    return str(ref) if ref else None


def _refd(values: dict[str, Any], name: str) -> dict[str, Any]:
    """The search properties of a reference property (empty when it is not one)."""
    found = values.get(name)
    return found if isinstance(found, dict) else {}


def _split(value: Any) -> list[str]:
    return [part.strip() for part in str(value or "").replace(";", ",").split(",") if part.strip()]


def _item(rule: Rule, keys: dict[str, Any], v: dict[str, Any], where: str) -> Item:
    deleted = truthy(v.get("ПометкаУдаления"))
    ref = _ref(keys)
    if rule.kind == "counterparty":
        kind = "individual" if v.get("ЮрФизЛицо") == "ФизЛицо" else "legal"
        addresses = [{"kind": k, "text": str(v[name])} for name, k in (("ЮридическийАдрес", "legal"),
                                                                        ("ФактическийАдрес", "actual")) if v.get(name)]
        data = {"name": v.get("Наименование"), "full_name": v.get("НаименованиеПолное"),
                "inn": digits(v.get("ИНН")), "kpp": None if kind == "individual" else digits(v.get("КПП")),
                "kind": kind, "phones": _split(v.get("Телефоны")), "emails": _split(v.get("ЭлектроннаяПочта")),
                "addresses": addresses}
        return Item("counterparty", ref, _clean(data), where, deleted=deleted,
                    problem=None if ref or data.get("inn") else "neither {УникальныйИдентификатор} nor ИНН")
    if rule.kind == "contact":
        owner = _refd(v, "ОбъектВладелец")
        owned = {"counterparty": str(owner[UUID_KEY])} if owner.get(UUID_KEY) else {}
        data = {"full_name": v.get("Наименование"), "position": v.get("Должность"),
                "phones": _split(v.get("Телефоны")), "emails": _split(v.get("ЭлектроннаяПочта"))}
        return Item("contact", ref, _clean(data), where, links=owned, deleted=deleted,
                    problem=None if ref else "no {УникальныйИдентификатор}")
    if rule.kind == "product":
        unit = _refd(v, "ЕдиницаХраненияОстатков")
        data = {"name": v.get("Наименование") or v.get("НаименованиеПолное"), "article": v.get("Артикул"),
                "group": v.get("Группа"), "price": decimal(v.get("Цена")) if v.get("Цена") else None}
        if unit.get("Код"):
            data["unit"] = {"code": str(unit["Код"]), "name": str(unit.get("Наименование") or unit["Код"])}
        problem = None if ref else "no {УникальныйИдентификатор}"
        if v.get("СтавкаНДС") is not None:
            if v["СтавкаНДС"] not in VAT_IN:
                problem = f"СтавкаНДС: {v['СтавкаНДС']} is not a VAT rate"
            else:
                data["vat_rate"] = VAT_IN[v["СтавкаНДС"]]
                if data["vat_rate"] is None:
                    data["vat_rate"] = "без НДС"
        return Item("product", ref, _clean(data), where, deleted=deleted, problem=problem)
    if rule.kind == "payment":
        party = _refd(v, "Контрагент")
        basis = _refd(v, "ДокументОснование")
        money = _refd(v, "ВалютаДокумента")
        links: dict[str, str] = {}
        if party.get(UUID_KEY):
            links["counterparty"] = str(party[UUID_KEY])
        elif party.get("ИНН"):
            links["counterparty_inn"] = str(party["ИНН"])
        if basis.get(UUID_KEY):
            links["invoice"] = str(basis[UUID_KEY])
        if basis.get("Номер"):
            links["invoice_number"] = str(basis["Номер"])
        amount = decimal(v.get("СуммаДокумента"))
        data = {"date": str(v.get("Дата") or "")[:10] or None, "amount": amount,
                "currency": currency(str(money.get("Код") or "")) or "RUB", "number": v.get("Номер"),
                "purpose": v.get("НазначениеПлатежа") or v.get("Основание")}
        problem = None if amount is not None else "СуммаДокумента: missing or not a number"
        if not problem and not links:
            problem = "Контрагент: missing"
        return Item("payment", ref, _clean(data), where, links=links, deleted=deleted, problem=problem)
    if rule.kind == "unit":
        code = v.get("Код")
        return Item("unit", str(code) if code else None, _clean({"code": code, "name": v.get("Наименование"),
                                                                 "full_name": v.get("НаименованиеПолное")}),
                    where, problem=None if code else "Код: missing")
    if rule.kind == "currency":
        code = v.get("Код")
        return Item("currency", str(code) if code else None, _clean({
            "code": code, "letters": currency(str(code or "")), "name": v.get("Наименование"),
            "full_name": v.get("НаименованиеПолное")}), where, problem=None if code else "Код: missing")
    ref = ref or (f"inn:{v.get('ИНН')}/{v.get('КПП') or ''}" if v.get("ИНН") else None)
    return Item("organisation", ref, _clean({"name": v.get("Наименование"), "full_name": v.get("НаименованиеПолное"),
                                             "inn": digits(v.get("ИНН")), "kpp": digits(v.get("КПП"))}),
                where, deleted=deleted, problem=None if ref else "neither {УникальныйИдентификатор} nor ИНН")


def _clean(data: dict[str, Any]) -> dict[str, Any]:
    return {k: val for k, val in data.items() if val not in (None, "", [])}


# -- writing --------------------------------------------------------------------------------

def head(now: dt.datetime, since: str | None, until: str | None) -> str:
    stamp = now.strftime("%Y-%m-%dT%H:%M:%S")
    return ("\ufeff<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            f"<ФайлОбмена ВерсияФормата=\"2.0\" ДатаВыгрузки=\"{stamp}\" "
            f"НачалоПериодаВыгрузки=\"{_e((since or '')[:19])}\" ОкончаниеПериодаВыгрузки=\"{_e((until or '')[:19])}\" "
            f"ИмяКонфигурацииИсточника=\"{SOURCE}\" ИмяКонфигурацииПриемника=\"{TARGET}\" "
            f"ИдПравилКонвертации=\"{RULES_ID}-out\" Комментарий=\"CRM\">\n" + rules_xml("out", now) + "\n")


TAIL = "</ФайлОбмена>\n"


def _uuid(record: dict[str, Any]) -> str:
    ext = str(record.get("external_id") or "")
    try:
        return str(uuid.UUID(ext)) if len(ext) == 36 else str(record["id"])
    except ValueError:
        return str(record["id"])


@dataclass(frozen=True)
class Ref:
    """A reference property, written."""

    xml: str


class Writer:
    """Objects numbered (``Нпп``) in the file; a reference names the referenced object's number when
    that object is in the file."""

    def __init__(self) -> None:
        self.numbers: dict[tuple[str, str], int] = {}
        self.next = 0

    def _npp(self, code: str, key: str) -> tuple[int, bool]:
        found = self.numbers.get((code, key))
        if found is not None:
            return found, False
        self.next += 1
        self.numbers[(code, key)] = self.next
        return self.next, True

    @staticmethod
    def _value(prop: Prop, value: Any) -> str:
        body = "<Пусто/>" if value in (None, "") else f"<Значение>{_e(value)}</Значение>"
        return f"<Свойство Имя=\"{_e(prop.name)}\" Тип=\"{_e(prop.type)}\">{body}</Свойство>"

    def _object(self, rule: Rule, values: dict[str, Any], refs: dict[str, Ref] | None = None,
                tables: dict[str, list[dict[str, Any]]] | None = None) -> str:
        npp, _ = self._npp(rule.code, str(values.get(UUID_KEY) or values.get("Код")))
        keys = "".join(self._value(p, values.get(p.name)) for p in rule.props if p.search)
        body = []
        for prop in (p for p in rule.props if not p.search):
            if refs and prop.name in refs:
                body.append(refs[prop.name].xml)
            else:
                body.append(self._value(prop, values.get(prop.name)))
        for table, props in (rule.tables or {}).items():
            rows = "".join("<Запись>" + "".join(self._cell(p, row.get(p.name)) for p in props) + "</Запись>"
                           for row in (tables or {}).get(table, []))
            body.append(f"<ТабличнаяЧасть Имя=\"{_e(table)}\">{rows}</ТабличнаяЧасть>")
        return (f"<Объект Нпп=\"{npp}\" Тип=\"{_e(rule.type)}\" ИмяПравила=\"{_e(rule.code)}\">"
                f"<Ссылка Нпп=\"{npp}\">{keys}</Ссылка>{''.join(body)}</Объект>\n")

    def _cell(self, prop: Prop, value: Any) -> str:
        """A table cell: a reference already written (``_reference``), or a value."""
        if isinstance(value, Ref):
            return value.xml
        return self._value(prop, value)

    def _reference(self, name: str, rule: Rule, values: dict[str, Any]) -> Ref:
        npp, _ = self._npp(rule.code, str(values.get(UUID_KEY) or values.get("Код")))
        keys = "".join(self._value(p, values.get(p.name)) for p in rule.props if p.search)
        return Ref(f"<Свойство Имя=\"{_e(name)}\" Тип=\"{_e(rule.type)}\"><Ссылка Нпп=\"{npp}\">{keys}</Ссылка>"
                   "</Свойство>")

    @staticmethod
    def party_values(party: dict[str, Any]) -> dict[str, Any]:
        addresses = {a.get("kind"): a.get("text") for a in party.get("addresses") or []}
        return {UUID_KEY: _uuid(party), "ИНН": party.get("inn"), "КПП": party.get("kpp"),
                "Наименование": party.get("name"), "НаименованиеПолное": party.get("full_name") or party.get("name"),
                "ЮрФизЛицо": "ФизЛицо" if party.get("kind") == "individual" else "ЮрЛицо",
                "Телефоны": ", ".join(party.get("phones") or []), "ЭлектроннаяПочта": ", ".join(party.get("emails")
                                                                                               or []),
                "ЮридическийАдрес": addresses.get("legal"), "ФактическийАдрес": addresses.get("actual"),
                "ПометкаУдаления": "false" if party.get("active", True) else "true"}

    def counterparty(self, party: dict[str, Any]) -> str:
        return self._object(BY_CODE["Контрагенты"], self.party_values(party))

    def contact(self, person: dict[str, Any], party: dict[str, Any] | None) -> str:
        refs = {"ОбъектВладелец": self._reference("ОбъектВладелец", BY_CODE["Контрагенты"],
                                                  self.party_values(party))} if party else {}
        return self._object(BY_CODE["КонтактныеЛица"], {
            UUID_KEY: _uuid(person), "Наименование": person.get("full_name"), "Должность": person.get("position"),
            "Телефоны": ", ".join(person.get("phones") or []), "ЭлектроннаяПочта": ", ".join(person.get("emails")
                                                                                           or []),
            "ПометкаУдаления": "false" if person.get("active", True) else "true"}, refs)

    @staticmethod
    def _unit(unit: dict[str, Any] | None) -> dict[str, Any]:
        unit = unit or {"code": "796", "name": "шт"}
        return {"Код": unit["code"], "Наименование": unit.get("name") or unit["code"]}

    def product(self, item: dict[str, Any]) -> str:
        vat = item.get("vat_rate")
        unit = self._unit(item.get("unit"))
        # the unit itself, the first time a product names it (1C finds it by code; the name travels too)
        first = "" if ("ЕдиницыИзмерения", str(unit["Код"])) in self.numbers else self._object(
            BY_CODE["ЕдиницыИзмерения"], unit)
        refs = {"ЕдиницаХраненияОстатков": self._reference("ЕдиницаХраненияОстатков", BY_CODE["ЕдиницыИзмерения"],
                                                           unit)}
        return first + self._object(BY_CODE["Номенклатура"], {
            UUID_KEY: _uuid(item), "Артикул": item.get("article"), "Наименование": item.get("name"),
            "НаименованиеПолное": item.get("name"), "СтавкаНДС": VAT_OUT.get(str(vat).split(".")[0] if vat else None,
                                                                             "НДС22"),
            "Группа": item.get("group"), "Цена": item.get("price"),
            "ПометкаУдаления": "false" if item.get("active", True) else "true"}, refs)

    def invoice(self, invoice: dict[str, Any], party: dict[str, Any], organisation: dict[str, Any],
                products: dict[str, dict[str, Any]]) -> str:
        org = {UUID_KEY: _uuid(organisation), "ИНН": organisation.get("inn"), "КПП": organisation.get("kpp")}
        money = {"Код": {"RUB": "643", "USD": "840", "EUR": "978"}.get(invoice["currency"], "643")}
        refs = {"Организация": self._reference("Организация", BY_CODE["Организации"], org),
                "Контрагент": self._reference("Контрагент", BY_CODE["Контрагенты"], self.party_values(party)),
                "ВалютаДокумента": self._reference("ВалютаДокумента", BY_CODE["Валюты"], money)}
        rows = []
        for line in invoice.get("lines") or []:
            product = products.get(str(line["product_id"]), {"id": line["product_id"], "name": line["name"]})
            vat = line.get("vat_rate")
            rows.append({"Номенклатура": self._reference("Номенклатура", BY_CODE["Номенклатура"], {
                UUID_KEY: _uuid(product), "Артикул": product.get("article")}),
                "Количество": line["quantity"], "Цена": line["price"], "Сумма": line["total"],
                "СтавкаНДС": VAT_OUT.get(str(vat).split(".")[0] if vat else None, "НДС22"),
                "СуммаНДС": line["vat_amount"]})
        return self._object(BY_CODE["СчетНаОплатуПокупателю"], {
            UUID_KEY: _uuid(invoice), "Номер": invoice["number"], "Дата": f"{str(invoice['date'])[:10]}T00:00:00",
            "СуммаДокумента": invoice["total"], "СуммаВключаетНДС": "true", "Комментарий": invoice.get("comment")},
            refs, {"Товары": rows})


def check_against_rules(stream: IO[bytes]) -> list[str]:
    """What in a file written by us is not in our ``out`` rules: objects of a type no rule converts,
    properties a rule does not list (the test of the exports)."""
    problems: list[str] = []
    rules = {r.type: r for r in RULES if "out" in r.directions}
    for path, position, el in walk(stream, lambda p: len(p) == 2 and p[1] == "Объект"):
        rule = rules.get(el.get("Тип") or "")
        if rule is None or el.get("ИмяПравила") != rule.code:
            problems.append(f"Объект[{position}]: no rule converts {el.get('Тип')} / {el.get('ИмяПравила')}")
            continue
        allowed = {p.name: p.type for p in rule.props}
        holders = [child(el, "Ссылка"), el]
        for holder in holders:
            for prop in children(holder, "Свойство"):
                if allowed.get(prop.get("Имя") or "") != prop.get("Тип"):
                    problems.append(f"Объект[{position}] {rule.code}: property {prop.get('Имя')} "
                                    f"({prop.get('Тип')}) is not in the rule")
        for table in children(el, "ТабличнаяЧасть"):
            columns = {p.name: p.type for p in rule.tables.get(table.get("Имя") or "", ())}
            if not columns:
                problems.append(f"Объект[{position}] {rule.code}: no table {table.get('Имя')} in the rule")
            for record in children(table, "Запись"):
                for prop in children(record, "Свойство"):
                    if columns.get(prop.get("Имя") or "") != prop.get("Тип"):
                        problems.append(f"Объект[{position}] {rule.code}.{table.get('Имя')}: property "
                                        f"{prop.get('Имя')} is not in the rule")
        del path
    return problems
