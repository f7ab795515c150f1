"""The columns of each entity's CSV: the fields a column can fill, the
headers (Russian and English) that suggest them, and the export's headers,
which are the first synonyms, so an export imports back as it is.

``row_data`` turns a row's cells into the contract's fields (the same
create contract the API takes, so phones, e-mails, ИНН/КПП and money are
checked by the same rules) and names the problems by column."""
from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Callable, Mapping

from pydantic import BaseModel

from contracts.crm import ContactCreate, CounterpartyCreate, ProductCreate
from services.onec.exceptions import ValidationFailed


@dataclass(frozen=True)
class Column:
    field: str
    title: str                    # the export's header
    synonyms: tuple[str, ...]     # headers that suggest it (normalised, see header_key)
    required: bool = False
    many: bool = False            # list field: several columns, several values in a cell


PHONES = Column("phones", "Телефон", ("телефон", "телефоны", "phone", "phones", "тел", "tel", "telephone",
                                      "мобильный", "мобильный телефон", "рабочий телефон", "mobile", "cell"),
                many=True)
EMAILS = Column("emails", "E-mail", ("e-mail", "email", "e-mails", "emails", "эл почта", "электронная почта",
                                     "почта", "mail", "адрес электронной почты", "email address"), many=True)

COLUMNS: dict[str, tuple[Column, ...]] = {
    "contacts": (
        Column("full_name", "ФИО", ("фио", "full name", "name", "имя", "контакт", "контактное лицо",
                                    "фамилия имя отчество", "contact", "contact name"), required=True),
        Column("position", "Должность", ("должность", "position", "job title", "title", "позиция")),
        PHONES, EMAILS,
        Column("counterparty", "Контрагент", ("контрагент", "организация", "компания", "company", "organization",
                                              "organisation", "account", "инн организации")),
    ),
    "counterparties": (
        Column("name", "Наименование", ("наименование", "название", "name", "company", "организация", "контрагент",
                                        "краткое наименование", "company name"), required=True),
        Column("full_name", "Полное наименование", ("полное наименование", "full name", "legal name",
                                                    "полное название")),
        Column("kind", "Вид", ("вид", "тип", "вид контрагента", "type", "kind", "юр физ лицо")),
        Column("inn", "ИНН", ("инн", "inn", "tin", "tax id", "taxpayer id")),
        Column("kpp", "КПП", ("кпп", "kpp")),
        PHONES, EMAILS,
        Column("address", "Адрес", ("адрес", "юридический адрес", "address", "legal address", "фактический адрес")),
    ),
    "products": (
        Column("name", "Наименование", ("наименование", "название", "товар", "номенклатура", "name", "product",
                                        "product name", "услуга"), required=True),
        Column("article", "Артикул", ("артикул", "article", "sku", "код товара", "part number", "код")),
        Column("group", "Группа", ("группа", "категория", "group", "category", "группа товаров")),
        Column("unit", "Единица", ("единица", "ед изм", "единица измерения", "ед", "unit", "uom")),
        Column("price", "Цена", ("цена", "price", "стоимость", "цена с ндс", "розничная цена")),
        Column("currency", "Валюта", ("валюта", "currency")),
        Column("vat_rate", "НДС", ("ндс", "ставка ндс", "vat", "vat rate", "ндс %")),
    ),
}

CREATE_CONTRACT: dict[str, type[BaseModel]] = {
    "contacts": ContactCreate, "counterparties": CounterpartyCreate, "products": ProductCreate}

# ОКЕИ codes of the units people write in price lists
UNITS = {"шт": "796", "штука": "796", "штук": "796", "pcs": "796", "pc": "796", "кг": "166", "г": "163",
         "т": "168", "м": "006", "метр": "006", "м2": "055", "м²": "055", "м3": "113", "м³": "113", "л": "112",
         "литр": "112", "упак": "778", "уп": "778", "упаковка": "778", "компл": "839", "комплект": "839",
         "пара": "715", "ч": "356", "час": "356", "усл ед": "876", "услуга": "876", "рул": "736", "лист": "625"}

_SPLIT = re.compile(r"\s*[;,]\s*")
_NON_WORD = re.compile(r"[^\w%²³+-]+")


def header_key(header: str) -> str:
    """A header as compared with the synonyms: lower case, ё as е, punctuation as spaces."""
    text = header.replace("\ufeff", "").strip().lower().replace("ё", "е")
    return " ".join(_NON_WORD.sub(" ", text).split())


def fields_of(entity: str) -> dict[str, Column]:
    return {c.field: c for c in COLUMNS[entity]}


def suggest(entity: str, headers: list[str]) -> dict[str, str]:
    """header -> field for the headers recognised: an exact synonym first, then a header
    that starts with one ("Телефон рабочий"); a single-value field takes one column."""
    mapping: dict[str, str] = {}
    taken: set[str] = set()
    keys = [header_key(h) for h in headers]
    for exact in (True, False):
        for header, key in zip(headers, keys, strict=True):
            if not header or header in mapping:
                continue
            for column in COLUMNS[entity]:
                if column.field in taken and not column.many:
                    continue
                hit = key in column.synonyms if exact else any(
                    key.startswith(s + " ") for s in column.synonyms if len(s) > 2)
                if hit:
                    mapping[header] = column.field
                    taken.add(column.field)
                    break
    return mapping


def check_mapping(entity: str, headers: list[str], mapping: Mapping[str, str | None]) -> dict[str, str]:
    """The given mapping, cleaned: unknown headers or fields are a 422 naming them."""
    known = fields_of(entity)
    problems: dict[str, str] = {}
    clean: dict[str, str] = {}
    counts: dict[str, int] = {}
    for given, field in mapping.items():
        if not field:
            continue
        header = given
        if given.startswith("#") and given[1:].isdigit():  # a column by its number
            number = int(given[1:])
            header = headers[number - 1] if 1 <= number <= len(headers) else ""
        if header not in headers or not header:
            problems[f"mapping.{given}"] = "no such column in the file"
        elif field not in known:
            problems[f"mapping.{given}"] = f"no field '{field}' (one of: {', '.join(known)})"
        else:
            clean[header] = field
            counts[field] = counts.get(field, 0) + 1
    for field, n in counts.items():
        if n > 1 and not known[field].many:
            problems[f"mapping.{field}"] = "only one column may fill this field"
    for column in COLUMNS[entity]:
        if column.required and column.field not in clean.values():
            problems[f"mapping.{column.field}"] = "no column fills this required field"
    if problems:
        raise ValidationFailed("the mapping does not fit the file", code="invalid_mapping", fields=problems)
    return clean


# -- cells to fields ---------------------------------------------------------------------

def money_text(value: str) -> str:
    """"1 499,90 руб." -> "1499.90" (spaces, no-break spaces and a currency word dropped)."""
    text = value.replace("\u00a0", "").replace("\u202f", "").replace(" ", "")
    text = re.sub(r"(?i)(руб\.?|р\.|₽|rub)$", "", text)
    if text.count(",") == 1 and "." not in text:
        text = text.replace(",", ".")
    elif "," in text and "." in text:
        text = text.replace(",", "")
    try:
        Decimal(text)
    except InvalidOperation:
        return value.strip()
    return text


def _kind(value: str) -> str:
    key = header_key(value)
    if key in ("физ лицо", "физическое лицо", "фл", "individual", "ип", "индивидуальный предприниматель",
               "физлицо", "person"):
        return "individual"
    if key in ("юр лицо", "юридическое лицо", "юл", "legal", "организация", "company", "юрлицо"):
        return "legal"
    return value.strip()


def _vat(value: str) -> str:
    return value.strip().replace(",", ".")


CONVERT: dict[str, Callable[[str], Any]] = {"price": money_text, "kind": _kind, "vat_rate": _vat}


def row_data(entity: str, headers: list[str], mapping: dict[str, str], cells: list[str]) -> dict[str, Any]:
    """The contract fields of one row (empty cells give nothing; list fields gather every
    mapped column and split a cell at ',' or ';')."""
    known = fields_of(entity)
    data: dict[str, Any] = {}
    for index, header in enumerate(headers):
        field = mapping.get(header)
        if not field or index >= len(cells):
            continue
        value = cells[index].strip()
        if not value:
            continue
        if known[field].many:
            data.setdefault(field, []).extend(v for v in _SPLIT.split(value) if v)
        else:
            data[field] = CONVERT.get(field, str)(value)
    if entity == "products" and "unit" in data:
        name = str(data.pop("unit"))
        code = UNITS.get(header_key(name).rstrip("."))
        data["unit"] = {"code": code, "name": name} if code else {"code": "", "name": name}
    if entity == "counterparties":
        if "address" in data:
            data["addresses"] = [{"kind": "legal", "text": data.pop("address")}]
        if "kind" not in data and len(str(data.get("inn") or "").strip()) == 12:
            data["kind"] = "individual"
    return data


def titled_reason(entity: str, problems: list[tuple[str, str]]) -> str:
    """A row's problems (``(field path, message)``, as the crm service found them with the create
    contract) named by the file's columns: "Телефон 2: not a phone number"."""
    titles = fields_of(entity)
    parts = []
    for path, message in problems:
        loc = path.split(".")
        head = "address" if loc[0] == "addresses" else loc[0]
        column = titles.get(head)
        where = column.title if column else path
        if column and column.many and len(loc) > 1 and loc[1].isdigit():
            where = f"{where} {int(loc[1]) + 1}"
        if head == "unit":
            message = f"unknown unit of measure (known: {', '.join(sorted(set(UNITS)))})"
        parts.append(f"{where}: {message.removeprefix('Value error, ')}")
    return "; ".join(dict.fromkeys(parts))
