"""What every exchange reader shares: the objects a file yields, walking an
XML file in bounded memory, namespace-blind lookups, and the members of a
zip.

Files are walked with lxml's ``iterparse``: each object element is handed
over when it ends, then cleared together with the siblings before it, so a
file of any size keeps one object in memory. Names are matched by their
local part, since real files carry no namespace, ``urn:1C.ru:commerceml_2``,
``…_205`` or ``…_210``; lxml takes the encoding from the XML declaration or
the BOM (UTF-8 with or without one, windows-1251)."""
from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import IO, Any, Callable, Iterator

from lxml import etree

CURRENCY_CODES = {"643": "RUB", "810": "RUB", "840": "USD", "978": "EUR", "156": "CNY", "398": "KZT",
                  "933": "BYN", "980": "UAH", "826": "GBP", "756": "CHF", "392": "JPY"}
CURRENCY_NAMES = {"руб": "RUB", "руб.": "RUB", "rub": "RUB", "рубль": "RUB", "usd": "USD", "eur": "EUR",
                  "евро": "EUR", "доллар сша": "USD"}
NUMERIC_CURRENCY = {letters: code for code, letters in CURRENCY_CODES.items() if code != "810"}


@dataclass
class Item:
    """One object of a file, in the crm contract's fields (``contracts.exchange.ExchangeObject``), or
    reference data (``unit``, ``currency``, ``organisation``) that the onec service keeps."""

    kind: str
    ref: str | None
    data: dict[str, Any] = field(default_factory=dict)
    path: str = ""
    links: dict[str, str] = field(default_factory=dict)
    deleted: bool = False
    # a record another object only points at (a payment's counterparty): created when missing, never updated
    reference: bool = False
    problem: str | None = None  # the reason it cannot be imported, found while reading


class Unreadable(Exception):
    """The file is not XML of the version (or not an archive of such files)."""


def local(tag: Any) -> str:
    return tag.rpartition("}")[2] if isinstance(tag, str) else ""


def child(el: Any, *names: str) -> Any:
    """The first child along the path of local names, or None (a loop over the few children of an
    object's element is faster here than lxml's path lookups)."""
    for name in names:
        if el is None:
            return None
        suffix = "}" + name
        for item in el:
            tag = item.tag
            if tag == name or (isinstance(tag, str) and tag.endswith(suffix)):
                el = item
                break
        else:
            return None
    return el


def children(el: Any, name: str) -> list[Any]:
    if el is None:
        return []
    suffix = "}" + name
    return [item for item in el if item.tag == name or (isinstance(item.tag, str) and item.tag.endswith(suffix))]


def text(el: Any, *names: str) -> str | None:
    found = child(el, *names) if names else el
    if found is None or found.text is None:
        return None
    value = " ".join(found.text.split())
    return value or None


def decimal(value: str | None) -> Decimal | None:
    if value is None:
        return None
    try:
        return Decimal(value.replace(",", ".").replace(" ", "").replace("\u00a0", ""))
    except InvalidOperation:
        return None


def truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("true", "1", "да", "истина")


def currency(code: str | None) -> str | None:
    if not code:
        return None
    code = code.strip()
    if code in CURRENCY_CODES:
        return CURRENCY_CODES[code]
    if re.fullmatch(r"[A-Za-z]{3}", code):
        return code.upper()
    return CURRENCY_NAMES.get(code.lower())


def vat_rate(value: str | None) -> str | None:
    """``НДС20``, ``20``, ``20%``, ``Без НДС`` → ``"20"`` / ``None``; anything else → ``"?"``."""
    if value is None:
        return "?"
    v = value.strip().lower().replace("ндс", "").replace("%", "").strip()
    if v in ("без", "безндс", "без ", "", "без налога"):
        return None
    m = re.fullmatch(r"(\d{1,2})(?:[.,]0+)?(?:/1\d\d)?", v)
    return m.group(1) if m else "?"


def digits(value: str | None) -> str | None:
    value = (value or "").strip()
    return value or None


def element_path(stack: list[str], position: int) -> str:
    return "/".join(stack) + f"[{position}]"


def walk(stream: IO[bytes], wanted: Callable[[list[str]], bool],
         on_start: Callable[[list[str], Any], None] | None = None) -> Iterator[tuple[list[str], int, Any]]:
    """(path of local names, position among its like, element) of each element ``wanted`` says is an
    object, once it has ended; the element is cleared after the caller is done with it."""
    stack: list[str] = []
    counts: dict[tuple[str, ...], int] = {}
    try:
        for event, el in etree.iterparse(stream, events=("start", "end"), huge_tree=True, resolve_entities=False,
                                         no_network=True, remove_comments=True, remove_pis=True):
            if event == "start":
                stack.append(local(el.tag))
                if on_start is not None:
                    on_start(stack, el)
                continue
            path = list(stack)
            stack.pop()
            if wanted(path):
                key = tuple(path)
                counts[key] = counts.get(key, 0) + 1
                yield path, counts[key], el
                el.clear(keep_tail=False)
                parent = el.getparent()
                if parent is not None:
                    while el.getprevious() is not None:
                        del parent[0]
    except etree.XMLSyntaxError as exc:
        raise Unreadable(f"not well-formed XML: {exc}") from None


def members(stream: IO[bytes]) -> Iterator[tuple[str, IO[bytes]]]:
    """(name, stream) of each XML file: the file itself, or each ``.xml`` member of a zip (1C's
    ``zip=yes``), catalogue files first, then offers, then the rest (CommerceML's order)."""
    head = stream.read(4)
    stream.seek(0)
    if head[:2] != b"PK":
        yield "", stream
        return
    try:
        archive = zipfile.ZipFile(stream)
    except zipfile.BadZipFile:
        raise Unreadable("a damaged zip archive") from None
    names = [i.filename for i in archive.infolist() if i.filename.lower().endswith(".xml") and not i.is_dir()]
    if not names:
        raise Unreadable("the archive holds no .xml file")

    def order(name: str) -> tuple[int, str]:
        base = name.rsplit("/", 1)[-1].lower()
        for rank, prefix in enumerate(("import", "offers", "prices", "rests")):
            if base.startswith(prefix):
                return rank, name
        return 9, name
    for name in sorted(names, key=order):
        with archive.open(name) as member:
            yield name, member
