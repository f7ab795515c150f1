"""Reading an uploaded table: CSV in UTF-8 (with or without a BOM) or
windows-1251, delimited by ';', ',' or a tab, with quoted fields that may
hold line breaks; or an ``.xlsx`` workbook (its first sheet), read-only and
streaming. Nothing in a cell is ever evaluated: a formula in a workbook is
read as the text of its cached value, and ``'=1+1`` in a CSV (our export's
neutralised form) comes back as ``=1+1``.

``read_table`` answers the format and the header; ``rows`` walks the data
rows as lists of strings with their row number in the file (the header is
row 1; a CSV row holding a quoted line break still counts as one row)."""
from __future__ import annotations

import codecs
import csv
import io
import zipfile
from dataclasses import dataclass
from typing import Any, BinaryIO, Callable, Iterator

from services.onec.exceptions import ValidationFailed

XLSX_MAGIC = b"PK\x03\x04"
DELIMITERS = (";", ",", "\t")
MAX_COLUMNS = 500
MAX_CELL = 10_000
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

csv.field_size_limit(MAX_CELL * 10)


def unreadable(message: str) -> ValidationFailed:
    return ValidationFailed(message, code="unreadable_file", fields={"file": message})


@dataclass
class Table:
    format: str            # csv or xlsx
    encoding: str | None   # csv only
    delimiter: str | None  # csv only
    headers: list[str]
    open: Callable[[], BinaryIO]  # the file from its start (a stored file is read part by part)

    def rows(self, start_after: int = 1) -> Iterator[tuple[int, list[str]]]:
        """(row number, cells) of the data rows numbered above ``start_after``."""
        source = self._xlsx_rows() if self.format == "xlsx" else self._csv_rows()
        next(source, None)  # the header
        for number, cells in source:
            if number > start_after and any(c.strip() for c in cells):
                yield number, cells

    def count_rows(self) -> int:
        return sum(1 for _ in self.rows())

    # -- csv -------------------------------------------------------------------
    def _csv_rows(self) -> Iterator[tuple[int, list[str]]]:
        assert self.encoding is not None and self.delimiter is not None
        text = io.TextIOWrapper(self.open(), encoding=self.encoding, newline="")
        reader = csv.reader(text, delimiter=self.delimiter)
        number = 0
        try:
            for cells in reader:
                number += 1
                yield number, [_cell(c) for c in cells[:MAX_COLUMNS]]
        except csv.Error as exc:
            raise unreadable(f"row {number + 1}: {exc}") from None

    # -- xlsx ------------------------------------------------------------------
    def _xlsx_rows(self) -> Iterator[tuple[int, list[str]]]:
        import openpyxl  # only for workbooks

        try:
            book = openpyxl.load_workbook(self.open(), read_only=True, data_only=True)
        except Exception as exc:  # noqa: BLE001 - any failure to open is an unreadable upload
            raise unreadable(f"not a workbook openpyxl can read: {type(exc).__name__}") from None
        try:
            sheet = book.worksheets[0] if book.worksheets else None
            if sheet is None:
                return
            for number, values in enumerate(sheet.iter_rows(values_only=True), start=1):
                yield number, [_cell(_xlsx_text(v)) for v in values[:MAX_COLUMNS]]
        finally:
            book.close()


def _xlsx_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # 7707083893.0 is the ИНН 7707083893
    if hasattr(value, "isoformat"):
        return str(value.isoformat())
    return str(value)


def _cell(value: str) -> str:
    value = value.replace("\x00", "")[:MAX_CELL]
    # our export writes a formula-like text as '=…; read back, it is the text again
    if len(value) > 1 and value[0] == "'" and value[1] in FORMULA_START:
        return value[1:]
    return value


def _encoding(data: bytes) -> str:
    """Checked over the whole file (a stored file is then read part by part, trusting it)."""
    if data.startswith(codecs.BOM_UTF8):
        encoding = "utf-8-sig"
    else:
        try:
            data.decode("utf-8")
            return "utf-8"
        except UnicodeDecodeError as exc:
            # a multi-byte character cut at the end of a sample is still UTF-8
            if exc.start >= len(data) - 3 and exc.reason == "unexpected end of data":
                return "utf-8"
        encoding = "windows-1251"
    try:
        data.decode(encoding)
    except UnicodeDecodeError:
        raise unreadable("the file is neither UTF-8 nor windows-1251 text") from None
    return encoding


class PartsReader(io.RawIOBase):
    """A file stored in parts, read one part at a time (``fetch(n)``: part n, or None past the end)."""

    def __init__(self, fetch: Callable[[int], bytes | None]) -> None:
        self.fetch, self.part, self.buffer, self.done = fetch, 0, b"", False

    def readable(self) -> bool:
        return True

    def readinto(self, target: Any) -> int:
        while not self.buffer and not self.done:
            chunk = self.fetch(self.part)
            self.part += 1
            if chunk is None:
                self.done = True
            else:
                self.buffer = bytes(chunk)
        n = min(len(target), len(self.buffer))
        target[:n] = self.buffer[:n]
        self.buffer = self.buffer[n:]
        return n


def stored_table(format: str, encoding: str | None, delimiter: str | None, headers: list[str],
                 fetch: Callable[[int], bytes | None]) -> Table:
    """The table of a stored file: a CSV is streamed part by part; a workbook (a zip, read at
    random) is put together first."""
    if format == "xlsx":
        def whole() -> BinaryIO:
            parts, n = [], 0
            while (chunk := fetch(n)) is not None:
                parts.append(bytes(chunk))
                n += 1
            return io.BytesIO(b"".join(parts))
        return Table(format, None, None, headers, whole)
    return Table(format, encoding, delimiter, headers,
                 lambda: io.BufferedReader(PartsReader(fetch), buffer_size=65536))


def _delimiter(first_lines: str) -> str:
    """The delimiter that splits the first lines most consistently (quotes respected)."""
    best, best_score = ";", -1.0
    lines = first_lines.splitlines()[:20] or [""]
    sample = "\n".join(lines)
    for delim in DELIMITERS:
        try:
            counts = [len(r) for r in csv.reader(io.StringIO(sample), delimiter=delim) if r]
        except csv.Error:
            continue
        if not counts or counts[0] < 2:
            continue
        header = counts[0]
        consistent = sum(1 for c in counts if c == header) / len(counts)
        score = consistent * 1000 + header
        if score > best_score:
            best, best_score = delim, score
    return best


def read_table(data: bytes) -> Table:
    """The table in ``data``; 422 ``unreadable_file`` when it is none (binary, empty, no header)."""
    if not data.strip():
        raise unreadable("the file is empty")
    if data.startswith(XLSX_MAGIC):
        if not zipfile.is_zipfile(io.BytesIO(data)):
            raise unreadable("a damaged .xlsx (not a zip archive)")
        table = Table("xlsx", None, None, [], lambda: io.BytesIO(data))
    else:
        if b"\x00" in data[:65536]:
            raise unreadable("a binary file: upload CSV text or an .xlsx workbook")
        encoding = _encoding(data)
        head = data[:65536].decode(encoding, errors="ignore")
        table = Table("csv", encoding, _delimiter(head.lstrip("\ufeff")), [], lambda: io.BytesIO(data))
    first = next(table._xlsx_rows() if table.format == "xlsx" else table._csv_rows(), None)
    headers = [h.strip() for h in (first[1] if first else [])]
    while headers and not headers[-1]:
        headers.pop()
    if not any(headers):
        raise unreadable("the first row must name the columns")
    table.headers = headers
    return table


def neutralized(value: str) -> str:
    """A cell as exported: text a spreadsheet would take for a formula gets a leading quote."""
    if value and value[0] in FORMULA_START:
        return "'" + value
    return value
