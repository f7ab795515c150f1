"""The CSV import's parts without a broker: reading files, the suggested
mapping, cells to fields, formula neutralisation, and a job run against a
fake crm service (the contract of ``crm.import_rows``) on a real onec
database: batch boundaries at duplicates within the file, and resuming after
a stop without sending a done batch as a new one."""
from __future__ import annotations

import codecs
import io
import uuid
from typing import Any

import openpyxl
import pytest
import sqlalchemy as sa
from pydantic import ValidationError
from sqlalchemy.orm import sessionmaker

from contracts.imports import ImportQuery, duplicate_keys
from crm_shared.db import make_engine
from crm_shared.errors import ValidationFailed
from crm_shared.testing import migrated_database
from services.onec import columns, exports, imports
from services.onec.models import ImportFile, ImportRow
from services.onec.tables import neutralized, read_table


def problems_of(entity: str, data: dict[str, Any]) -> str | None:
    """The reason a row gets: the create contract's problems (as the crm service finds them),
    named by the file's columns."""
    try:
        columns.CREATE_CONTRACT[entity].model_validate({k: v for k, v in data.items() if k != "counterparty"})
    except ValidationError as exc:
        return columns.titled_reason(entity, [(".".join(str(p) for p in e["loc"]), str(e["msg"]))
                                              for e in exc.errors()])
    return None


def table_rows(data: bytes) -> list[list[str]]:
    return [cells for _, cells in read_table(data).rows()]


@pytest.mark.parametrize("encoding,delimiter", [("windows-1251", ";"), ("utf-8", ","), ("utf-8-sig", "\t"),
                                                ("utf-8", ";")])
def test_encoding_and_delimiter_are_detected(encoding, delimiter):
    text = delimiter.join(["ФИО", "Телефон", "Должность"]) + "\r\n" + \
        delimiter.join(["Щукин Ёжик", '"8 (495) 1,2"', "Гл. бух"]) + "\r\n"
    table = read_table(text.encode(encoding))
    assert (table.encoding, table.delimiter) == (encoding, delimiter)
    assert table.headers == ["ФИО", "Телефон", "Должность"]
    assert table_rows(text.encode(encoding)) == [["Щукин Ёжик", "8 (495) 1,2", "Гл. бух"]]


def test_quoted_line_breaks_and_empty_rows_keep_the_file_row_numbers():
    data = b'a;b\r\n"1\r\nstill 1";x\r\n;\r\n2;y\r\n'
    assert list(read_table(data).rows()) == [(2, ["1\r\nstill 1", "x"]), (4, ["2", "y"])]


def test_unreadable_inputs_are_refused_naming_the_file():
    for data in (b"", b"   \r\n", b"\x00\x01binary", b"PK\x03\x04not a zip", codecs.BOM_UTF8 + b";;;\r\n1;2\r\n"):
        with pytest.raises(ValidationFailed) as caught:
            read_table(data)
        assert caught.value.code == "unreadable_file" and "file" in caught.value.fields


def test_xlsx_first_sheet_numbers_as_text():
    book = openpyxl.Workbook()
    book.active.append(["ИНН", "Наименование"])
    book.active.append([7707083893, "Ромашка"])
    out = io.BytesIO()
    book.save(out)
    table = read_table(out.getvalue())
    assert table.format == "xlsx" and table.headers == ["ИНН", "Наименование"]
    assert table_rows(out.getvalue()) == [["7707083893", "Ромашка"]]


def test_suggested_mapping_in_russian_and_english():
    headers = ["ФИО", "Телефон рабочий", "Мобильный", "E-mail", "Должность", "Комментарий", "Full name"]
    assert columns.suggest("contacts", headers) == {
        "ФИО": "full_name", "Мобильный": "phones", "E-mail": "emails", "Должность": "position",
        "Телефон рабочий": "phones"}
    assert columns.suggest("counterparties", ["Наименование", "ИНН", "КПП", "Юридический адрес"]) == {
        "Наименование": "name", "ИНН": "inn", "КПП": "kpp", "Юридический адрес": "address"}
    assert columns.suggest("products", ["Product", "SKU", "Price", "VAT", "Unit"]) == {
        "Product": "name", "SKU": "article", "Price": "price", "VAT": "vat_rate", "Unit": "unit"}


def test_cells_become_contract_fields_and_problems_name_the_column():
    headers = ["Наименование", "Цена", "НДС", "Ед. изм."]
    mapping = columns.suggest("products", headers)
    data = columns.row_data("products", headers, mapping, ["Стул", "1 499,90 руб.", "10%", "шт."])
    assert data == {"name": "Стул", "price": "1499.90", "vat_rate": "10%", "unit": {"code": "796", "name": "шт."}}
    assert problems_of("products", data) is None
    bad = columns.row_data("products", headers, mapping, ["", "дорого", "", "бочка"])
    problem = problems_of("products", bad) or ""
    assert "Наименование" in problem and "Цена" in problem and "unknown unit" in problem
    phones = columns.row_data("contacts", ["ФИО", "Тел"], {"ФИО": "full_name", "Тел": "phones"},
                              ["X", "+7 916 111-22-33; 8 495 1234567"])
    assert phones["phones"] == ["+7 916 111-22-33", "8 495 1234567"]
    assert problems_of("contacts", {"full_name": "X", "phones": ["+7 916 111-22-33", "abc"]}) \
        .startswith("Телефон 2:")


def test_duplicate_keys():
    assert duplicate_keys("contacts", {"emails": ["A@B.ru"], "phones": ["8 (916) 111-22-33"]}) == [
        "a@b.ru", "+79161112233"]
    assert duplicate_keys("counterparties", {"inn": "7707083893", "kpp": None}) == ["inn:7707083893/"]
    assert duplicate_keys("products", {"article": " СТ-1 "}) == ["article:ст-1"]


def test_formula_like_cells_are_neutralised_and_read_back():
    for text in ("=1+1", "+7 916", "-5", "@SUM(A1)", "\tx", "\rx"):
        assert neutralized(text) == "'" + text
    assert neutralized("обычный") == "обычный"
    exported = exports.chunk("contacts", "excel", [{"id": "1", "full_name": "=cmd|' /C calc'!A0",
                                                    "phones": ["+7 1"], "emails": []}], {}, first=True)
    assert exported.startswith("\ufeffФИО;")
    assert table_rows(exported.encode("utf-8"))[0][:3] == ["=cmd|' /C calc'!A0", "", "+7 1"]


# -- a job run against a fake crm service ---------------------------------------------

class FakeCrm:
    """``crm.import_rows``'s contract: creates what it has not seen, a batch sent twice
    answers as before. ``fail_after`` batches, it raises (a crm service going away)."""

    def __init__(self, fail_after: int | None = None) -> None:
        self.batches: dict[int, list[dict[str, Any]]] = {}
        self.sent: list[tuple[int, list[int]]] = []
        self.fail_after = fail_after

    def start_import_rows(self, caller: dict[str, Any], kind: str, batch: dict[str, Any]) -> Any:
        try:
            answer = self.import_rows(caller, kind, batch)
        except ConnectionError as exc:
            error = exc

            def fails() -> dict[str, Any]:
                raise error
            return fails
        return lambda: answer

    def import_rows(self, caller: dict[str, Any], kind: str, batch: dict[str, Any]) -> dict[str, Any]:
        self.sent.append((batch["batch"], [r["row"] for r in batch["rows"]]))
        if batch["batch"] in self.batches:
            return {"outcomes": self.batches[batch["batch"]]}
        if self.fail_after is not None and len(self.batches) >= self.fail_after:
            raise ConnectionError("crm went away")
        outcomes = []
        for row in batch["rows"]:
            same = row["same_as"]
            if same:
                outcomes.append({"row": row["row"], "outcome": "skipped", "record_id": str(uuid.uuid4()),
                                 "duplicate": True, "reason": f"repeats row {same['row']} of the file"})
            else:
                outcomes.append({"row": row["row"], "outcome": "created", "record_id": str(uuid.uuid4()),
                                 "duplicate": False, "reason": None})
        self.batches[batch["batch"]] = outcomes
        return {"outcomes": outcomes}

    def revert_import(self, *args: Any) -> dict[str, Any]:
        raise NotImplementedError


@pytest.fixture(scope="module")
def onec_session(databases: Any) -> Any:
    url = migrated_database(databases, "onec", "onec_units")
    engine = make_engine(url, pool_size=1)
    yield sessionmaker(engine, expire_on_commit=False)
    engine.dispose()


def _job(session: Any, content: bytes) -> Any:
    query = ImportQuery(entity="contacts", duplicates="skip")
    job, parts = imports.new_job("t-units", str(uuid.uuid4()), None, query, content)
    session.add_all([job, *parts])
    session.commit()
    return job


def test_a_row_repeating_one_in_the_same_batch_sends_the_batch_first(onec_session, monkeypatch):
    monkeypatch.setattr(imports, "BATCH", 3)
    lines = ["ФИО;E-mail", "A;a@x.ru", "B;b@x.ru", "A again;A@x.ru", "C;c@x.ru", "D;d@x.ru", "E;e@x.ru"]
    with onec_session() as session:
        job = _job(session, "\r\n".join(lines).encode())
        crm = FakeCrm()
        run = imports.ImportRun(session, job, imports.table_of(session, job), crm, session.commit)
        assert run.run()
        # row 4 repeats row 2, still waiting: rows 2-3 go first, so row 4 knows row 2's record
        assert crm.sent == [(0, [2, 3]), (1, [4, 5, 6]), (2, [7])]
        assert (job.created, job.skipped, job.duplicates, job.read, job.last_row) == (5, 1, 1, 6, 7)


def test_a_stopped_run_resumes_without_importing_a_batch_twice(onec_session, monkeypatch):
    monkeypatch.setattr(imports, "BATCH", 2)
    lines = ["ФИО;E-mail"] + [f"P{i};p{i}@x.ru" for i in range(7)] + ["P0 again;p0@x.ru"]
    with onec_session() as session:
        job = _job(session, "\r\n".join(lines).encode())
        crm = FakeCrm(fail_after=2)
        run = imports.ImportRun(session, job, imports.table_of(session, job), crm, session.commit)
        with pytest.raises(ConnectionError):
            run.run()
        session.rollback()
        job = session.get(type(job), (job.tenant_id, job.id))
        assert (job.last_row, job.batch_no, job.created) == (5, 2, 4)
        # the crm service applied batch 2 but the answer was lost: the resumed run sends it again
        crm.fail_after = None
        crm.batches[2] = [{"row": 6, "outcome": "created", "record_id": str(uuid.uuid4()), "duplicate": False,
                           "reason": None},
                          {"row": 7, "outcome": "created", "record_id": str(uuid.uuid4()), "duplicate": False,
                           "reason": None}]
        resumed = imports.ImportRun(session, job, imports.table_of(session, job), crm, session.commit)
        assert resumed.run()
        assert crm.sent[-2:] == [(2, [6, 7]), (3, [8, 9])]
        assert (job.created, job.skipped, job.read) == (7, 1, 8)
        rows = session.scalars(sa.select(ImportRow).where(ImportRow.job_id == job.id).order_by(ImportRow.row_no))
        outcomes = [(r.row_no, r.outcome) for r in rows]
        assert outcomes == [(n, "created") for n in range(2, 9)] + [(9, "skipped")]


def test_a_stored_file_is_read_part_by_part(onec_session, monkeypatch):
    """Parts far smaller than a row, split inside multi-byte characters and quoted line breaks."""
    monkeypatch.setattr(imports, "PART_BYTES", 5)
    text = 'ФИО;Должность\r\n"Щукин\r\nЁжик";Гл. бух\r\nЯковлева Юлия;директор\r\n'
    for encoding in ("utf-8", "windows-1251"):
        with onec_session() as session:
            job = _job(session, text.encode(encoding))
            assert session.scalar(sa.select(sa.func.count()).select_from(ImportFile)
                                  .where(ImportFile.job_id == job.id)) > 10
            table = imports.table_of(session, job)
            assert table is not None and table.encoding == encoding
            assert list(table.rows()) == [(2, ["Щукин\r\nЁжик", "Гл. бух"]), (3, ["Яковлева Юлия", "директор"])]
