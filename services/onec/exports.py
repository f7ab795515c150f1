"""CSV export: the records a list shows (the crm service filters them by the
caller's rights), written page by page in the import's own columns, so an
export imports back unchanged.

- ``excel``: UTF-8 with a BOM and ';' (a Russian-locale Excel opens it right);
- ``plain``: UTF-8 and ','.

A cell a spreadsheet would take for a formula (``=``, ``+``, ``-``, ``@``, a
tab or a carriage return first) is written with a leading ``'``; the import
drops that quote again."""
from __future__ import annotations

import csv
import io
from typing import Any, Callable

from services.onec.columns import COLUMNS
from services.onec.tables import neutralized

FORMATS = {"excel": (";", "\ufeff"), "plain": (",", "")}
KIND_TITLES = {"legal": "Юр. лицо", "individual": "Физ. лицо"}


def _joined(values: Any) -> str:
    return ", ".join(str(v) for v in values or [])


def _address(record: dict[str, Any]) -> str:
    addresses = record.get("addresses") or []
    legal = [a for a in addresses if a.get("kind") == "legal"] or addresses
    return str(legal[0].get("text") or "") if legal else ""


def _counterparty(record: dict[str, Any], names: dict[str, str]) -> str:
    linked = record.get("counterparty_id")
    return names.get(str(linked), "") if linked else ""


GETTERS: dict[str, Callable[[dict[str, Any], dict[str, str]], Any]] = {
    "phones": lambda r, _: _joined(r.get("phones")),
    "emails": lambda r, _: _joined(r.get("emails")),
    "counterparty": _counterparty,
    "kind": lambda r, _: KIND_TITLES.get(str(r.get("kind")), r.get("kind") or ""),
    "address": lambda r, _: _address(r),
    "unit": lambda r, _: (r.get("unit") or {}).get("name") or "",
    "vat_rate": lambda r, _: "без НДС" if r.get("vat_rate") is None else r.get("vat_rate"),
}


def _cells(fields: list[str], record: dict[str, Any], names: dict[str, str]) -> list[str]:
    cells = []
    for field in fields:
        get = GETTERS.get(field)
        value = get(record, names) if get else record.get(field)
        cells.append(neutralized("" if value is None else str(value)))
    cells.append(str(record.get("id") or ""))
    return cells


def header(entity: str) -> list[str]:
    return [c.title for c in COLUMNS[entity]] + ["ID"]


def chunk(entity: str, fmt: str, records: list[dict[str, Any]], names: dict[str, str], first: bool) -> str:
    """CSV text of ``records``; the first chunk starts with the BOM (excel) and the header."""
    delimiter, bom = FORMATS[fmt]
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\r\n")
    if first:
        out.write(bom)
        writer.writerow(header(entity))
    fields = [c.field for c in COLUMNS[entity]]
    writer.writerows(_cells(fields, r, names) for r in records)
    return out.getvalue()


def errors_chunk(headers: list[str], delimiter: str, rows: list[tuple[list[str], str]], first: bool,
                 bom: bool = False) -> str:
    """The error file: the original row and a reason column, in the original's dialect."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\r\n")
    if first:
        out.write("\ufeff" if bom else "")
        writer.writerow(list(headers) + [ERROR_COLUMN])
    for cells, reason in rows:
        padded = list(cells) + [""] * max(0, len(headers) - len(cells))
        writer.writerow([neutralized(c) for c in padded[:len(headers)]] + [neutralized(reason)])
    return out.getvalue()


ERROR_COLUMN = "Ошибка импорта"
