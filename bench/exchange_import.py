"""1C exchange import of generated files through the gateway, against the
suite's processes as ``make run`` starts them.

- EnterpriseData 1.8: one message of ``BENCH_EXCHANGE_OBJECTS`` counterparties
  (ИНН/КПП, an e-mail) and as many products (article, ОКЕИ unit, VAT);
- CommerceML 2.10: a catalogue (``import.xml``) of as many products and a
  document file of as many counterparties, zipped together as 1C sends them.

Each file goes zipped (``POST /api/v1/exchange/import``; the unzipped
EnterpriseData message is ~100 MB, over the upload limit) into a tenant of
its own; objects per second are counted from the upload to ``done``. The
baseline, measured in the same run: bare iterative parsing of the same
(unzipped) file with lxml ``iterparse`` and ``clear()``, in this process.
Peak RSS (``VmHWM``) of the gateway, onec and crm processes after both.

Goal: >= 10,000 objects/s, <= 300 MB RSS."""
from __future__ import annotations

import io
import os
import time
import uuid
import zipfile
from typing import Any

from lxml import etree

from bench.common import SuiteProcesses, infrastructure, new_tenant_admin
from bench.csv_import_export import peak_rss_mb

OBJECTS = int(os.environ.get("BENCH_EXCHANGE_OBJECTS", "100000"))
GOALS = {"objects_per_s": 10000, "peak_rss_mb": 300}
ED = "http://v8.1c.ru/edi/edi_stnd/EnterpriseData/1.8"


def _inn(n: int) -> str:
    """A valid 10-digit ИНН (the check digit computed)."""
    base = f"77{n:07d}"
    weights = (2, 4, 10, 3, 5, 9, 4, 6, 8)
    return base + str(sum(int(d) * w for d, w in zip(base, weights, strict=True)) % 11 % 10)


def enterprisedata(n: int) -> bytes:
    parts = ['<?xml version="1.0" encoding="UTF-8"?>\n<Message xmlns:msg="http://www.1c.ru/SSL/Exchange/Message">'
             f'<msg:Header><msg:Format>{ED}</msg:Format><msg:CreationDate>2026-12-01T00:00:00</msg:CreationDate>'
             f'<msg:AvailableVersion>1.8</msg:AvailableVersion></msg:Header><Body xmlns="{ED}">\n']
    for i in range(n):
        parts.append(
            f"<Справочник.Контрагенты><КлючевыеСвойства><Ссылка>{uuid.UUID(int=i + 1)}</Ссылка>"
            f"<Наименование>ООО Контрагент {i:06d}</Наименование><ИНН>{_inn(i)}</ИНН><КПП>770101001</КПП>"
            f"<ЮридическоеФизическоеЛицо>ЮридическоеЛицо</ЮридическоеФизическоеЛицо></КлючевыеСвойства>"
            f"<КонтактнаяИнформация><Строка><ВидКонтактнойИнформации>АдресЭлектроннойПочты</ВидКонтактнойИнформации>"
            f"<ЗначенияПолей>buh{i}@bench.example</ЗначенияПолей></Строка></КонтактнаяИнформация>"
            f"</Справочник.Контрагенты>\n"
            f"<Справочник.Номенклатура><КлючевыеСвойства><Ссылка>{uuid.UUID(int=10**9 + i)}</Ссылка>"
            f"<Наименование>Товар {i:06d}</Наименование><Артикул>ED-{i:06d}</Артикул></КлючевыеСвойства>"
            f"<ТипНоменклатуры>Товар</ТипНоменклатуры><ЕдиницаИзмерения><ДанныеКлассификатора><Код>796</Код>"
            f"<Наименование>шт</Наименование></ДанныеКлассификатора></ЕдиницаИзмерения><СтавкаНДС>НДС20</СтавкаНДС>"
            f"</Справочник.Номенклатура>\n")
    parts.append("</Body></Message>\n")
    return "".join(parts).encode("utf-8")


def commerceml(n: int) -> tuple[bytes, bytes]:
    head = ('<?xml version="1.0" encoding="UTF-8"?>\n<КоммерческаяИнформация xmlns="urn:1C.ru:commerceml_2" '
            'ВерсияСхемы="2.10" ДатаФормирования="2026-12-01T00:00:00">')
    catalogue = [head, '<Каталог СодержитТолькоИзменения="true"><Ид>cat</Ид><ИдКлассификатора>cls</ИдКлассификатора>'
                       '<Наименование>Каталог</Наименование><Товары>\n']
    for i in range(n):
        catalogue.append(f"<Товар><Ид>cml-{i}</Ид><Артикул>CML-{i:06d}</Артикул><Наименование>Товар {i:06d}"
                         f"</Наименование><БазоваяЕдиница Код=\"796\">шт</БазоваяЕдиница><СтавкиНалогов><СтавкаНалога>"
                         f"<Наименование>НДС</Наименование><Ставка>20</Ставка></СтавкаНалога></СтавкиНалогов></Товар>\n")
    catalogue.append("</Товары></Каталог></КоммерческаяИнформация>\n")
    parties = [head, "<Контрагенты>\n"]
    for i in range(n):
        parties.append(f"<Контрагент><Ид>party-{i}</Ид><Наименование>ООО Контрагент {i:06d}</Наименование>"
                       f"<ОфициальноеНаименование>ООО Контрагент {i:06d}</ОфициальноеНаименование>"
                       f"<ИНН>{_inn(i)}</ИНН><КПП>770101001</КПП><Контакты><Контакт><Тип>Почта</Тип>"
                       f"<Значение>buh{i}@bench.example</Значение></Контакт></Контакты></Контрагент>\n")
    parties.append("</Контрагенты></КоммерческаяИнформация>\n")
    return "".join(catalogue).encode("utf-8"), "".join(parties).encode("utf-8")


def zipped(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return out.getvalue()


def bare_parse(files: list[bytes], depth: int) -> tuple[float, int]:
    """Seconds and elements at ``depth`` of lxml iterparse with clear() over the files."""
    started = time.perf_counter()
    count = 0
    for data in files:
        level = 0
        for event, el in etree.iterparse(io.BytesIO(data), events=("start", "end"), huge_tree=True):
            if event == "start":
                level += 1
                continue
            if level == depth:
                count += 1
                el.clear()
                while el.getprevious() is not None:
                    del el.getparent()[0]
            level -= 1
    return time.perf_counter() - started, count


def load(http: Any, api: str, content: bytes, version: str) -> tuple[float, dict[str, Any]]:
    started = time.perf_counter()
    resp = http.post(f"{api}/exchange/import", params={"version": version, "file_name": "bench.zip"}, data=content,
                     headers={"Content-Type": "application/zip"}, timeout=600)
    assert resp.status_code == 202, resp.text
    job_id = resp.json()["job_id"]
    while True:
        job = http.get(f"{api}/exchange/jobs/{job_id}", timeout=30).json()
        if job["status"] in ("done", "failed"):
            break
        time.sleep(0.5)
    assert job["status"] == "done" and job["created"] == 2 * OBJECTS, job
    return time.perf_counter() - started, job


def run() -> dict[str, Any]:
    ed = enterprisedata(OBJECTS)
    catalogue, parties = commerceml(OBJECTS)
    ed_zip = zipped({"message.xml": ed})
    cml_zip = zipped({"import0_1.xml": catalogue, "documents0_1.xml": parties})
    ed_bare_s, ed_bare_n = bare_parse([ed], 3)
    cml_bare_s, cml_bare_n = bare_parse([catalogue, parties], 3)
    cml_bare_n -= 1  # the catalogue's Товары holder sits at the same depth as the parties
    cml_bare_s_products, _ = bare_parse([catalogue], 4)
    results: dict[str, Any] = {"objects": 2 * OBJECTS, "formats": {}}
    with infrastructure() as (uri, dbs):
        suite = SuiteProcesses(uri, dbs)
        try:
            suite.start()
            api = f"{suite.base}/api/v1"
            for name, content, raw, version, bare in (
                    ("enterprisedata-1.8", ed_zip, len(ed), "enterprisedata-1.8", (ed_bare_s, ed_bare_n)),
                    ("commerceml-2.10", cml_zip, len(catalogue) + len(parties), "commerceml-2.10",
                     (cml_bare_s + cml_bare_s_products, 2 * OBJECTS))):
                http, _ = new_tenant_admin(suite.base, suite.operator_token, f"Бенчмарк {name}", disk_quota_mb=2000)
                seconds, job = load(http, api, content, version)
                rate = 2 * OBJECTS / seconds
                bare_rate = bare[1] / bare[0]
                results["formats"][name] = {
                    "file_bytes": raw, "zip_bytes": len(content), "seconds": round(seconds, 2),
                    "objects_per_s": round(rate), "bare_iterparse_objects_per_s": round(bare_rate),
                    "ratio_to_bare_parse": round(bare_rate / rate, 1), "created": job["created"]}
            rss = {n: peak_rss_mb(suite.procs[n].pid) for n in ("gateway", "onec", "crm")}
        finally:
            suite.stop()
    results["peak_rss_mb"] = rss
    slowest = min(f["objects_per_s"] for f in results["formats"].values())
    results["goals"] = {
        "objects_per_s": {"value": slowest, "goal": GOALS["objects_per_s"], "met": slowest >= GOALS["objects_per_s"]},
        "peak_rss_mb": {"value": max(rss.values()), "goal": GOALS["peak_rss_mb"],
                        "met": max(rss.values()) <= GOALS["peak_rss_mb"]}}
    results["notes"] = ("one tenant per format, admin (scope all), a new tenant (every object created); "
                        "seconds = zipped upload to status done; 1000-object batches to crm; "
                        "bare parse = lxml iterparse + clear of the unzipped files in the bench process; "
                        "peak RSS = VmHWM of each process over both imports")
    return results
