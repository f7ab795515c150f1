"""CSV import and export of 100,000 contacts through the gateway, against the
suite's processes as ``make run`` starts them.

- import: ``POST /api/v1/import/csv`` of a windows-1251 ``;`` file (name,
  position, phone, e-mail per row), until the job is done: rows per second
  from the upload to ``done``;
- export: ``GET /api/v1/export/csv`` of those contacts, streamed to the end:
  rows per second, right after the import (the first read of each new page sets its hint
  bits) and after ``VACUUM ANALYZE`` (what autovacuum does within a minute);
- peak RSS (``VmHWM``) of the gateway, onec and crm processes after both;
- the revert of the whole import: records deleted per second;
- baselines measured in the same run: creating contacts one by one with
  ``POST /api/v1/contacts``, and reading them page by page with
  ``GET /api/v1/contacts?limit=500``; the ratios say what the bulk paths buy.

Goals: import >= 5,000 rows/s, export >= 20,000 rows/s, RSS <= 200 MB."""
from __future__ import annotations

import csv
import io
import os
import time
from typing import Any

import requests

from bench.common import SuiteProcesses, infrastructure, new_tenant_admin
from crm_shared.db import make_engine

ROWS = int(os.environ.get("BENCH_CSV_ROWS", "100000"))
BASELINE_CREATES = 300
GOALS = {"import_rows_per_s": 5000, "export_rows_per_s": 20000, "peak_rss_mb": 200}


def contacts_file(rows: int) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    writer.writerow(["ФИО", "Должность", "Телефон", "E-mail"])
    for i in range(rows):
        writer.writerow([f"Контакт Тестовый {i:06d}", "менеджер по закупкам", f"+7 9{i:09d}",
                         f"contact{i}@bench.example"])
    return out.getvalue().encode("windows-1251")


def peak_rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def export(http: requests.Session, api: str) -> tuple[float, int, int]:
    """Seconds, rows and bytes of the whole contacts export, streamed to the end."""
    started = time.perf_counter()
    exported_bytes, lines = 0, 0
    with http.get(f"{api}/export/csv", params={"entity": "contacts"}, stream=True, timeout=300) as resp:
        assert resp.status_code == 200, resp.text
        for chunk in resp.iter_content(65536):
            exported_bytes += len(chunk)
            lines += chunk.count(b"\r\n")
    rows = lines - 1
    assert rows == ROWS + BASELINE_CREATES, rows
    return time.perf_counter() - started, rows, exported_bytes


def run() -> dict[str, Any]:
    with infrastructure() as (uri, dbs):
        suite = SuiteProcesses(uri, dbs)
        try:
            suite.start()
            base = suite.base
            http, _ = new_tenant_admin(base, suite.operator_token, "Бенчмарк CSV", disk_quota_mb=500)
            api = f"{base}/api/v1"

            # baseline: the same rows created one by one through the API
            started = time.perf_counter()
            for i in range(BASELINE_CREATES):
                resp = http.post(f"{api}/contacts", timeout=30, json={
                    "full_name": f"Базовый {i}", "position": "менеджер", "phones": [f"+7 8{i:09d}"],
                    "emails": [f"base{i}@bench.example"]})
                assert resp.status_code == 201, resp.text
            api_creates_per_s = BASELINE_CREATES / (time.perf_counter() - started)

            content = contacts_file(ROWS)
            started = time.perf_counter()
            resp = http.post(f"{api}/import/csv", params={"entity": "contacts", "file_name": "bench.csv"},
                             data=content, timeout=300)
            assert resp.status_code == 202, resp.text
            job_id = resp.json()["job_id"]
            uploaded = time.perf_counter() - started
            while True:
                job = http.get(f"{api}/import/jobs/{job_id}", timeout=30).json()
                if job["status"] in ("done", "failed"):
                    break
                time.sleep(0.2)
            import_s = time.perf_counter() - started
            assert job["status"] == "done" and job["created"] == ROWS, job
            # right after the import, the first read of each new page also sets its hint bits
            cold_s, _, _ = export(http, api)
            # settle the database as it is between an import and a later export (autovacuum would
            # otherwise flush the search index's pending list during the measurements below)
            settle_started = time.perf_counter()
            engine = make_engine(suite.database_urls["crm"], pool_size=1)
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.exec_driver_sql("VACUUM (ANALYZE) contacts, match_keys")
            engine.dispose()
            settle_s = time.perf_counter() - settle_started

            # baseline: reading them through the list, 500 a page
            started = time.perf_counter()
            listed, cursor = 0, None
            while True:
                page = http.get(f"{api}/contacts", params={"limit": 500, **({"cursor": cursor} if cursor else {})},
                                timeout=60).json()
                listed += len(page["items"])
                cursor = page["next_cursor"]
                if not cursor:
                    break
            list_s = time.perf_counter() - started

            export_s, exported_rows, exported_bytes = export(http, api)
            rss = {name: peak_rss_mb(suite.procs[name].pid) for name in ("gateway", "onec", "crm")}

            # the revert of the whole import
            started = time.perf_counter()
            resp = http.post(f"{api}/import/jobs/{job_id}/revert", timeout=60)
            assert resp.status_code == 202, resp.text
            while (job := http.get(f"{api}/import/jobs/{job_id}", timeout=30).json())["status"] == "reverting":
                time.sleep(0.2)
            revert_s = time.perf_counter() - started
            assert job["status"] == "reverted" and job["reverted"]["deleted"] == ROWS, job
        finally:
            suite.stop()
    import_rate = ROWS / import_s
    export_rate = exported_rows / export_s
    results: dict[str, Any] = {
        "rows": ROWS, "file_bytes": len(content),
        "import": {"seconds": round(import_s, 2), "upload_seconds": round(uploaded, 2),
                   "vacuum_after_seconds": round(settle_s, 2),
                   "rows_per_s": round(import_rate), "ratio_to_api_creates": round(import_rate / api_creates_per_s, 1)},
        "export": {"seconds": round(export_s, 2), "rows": exported_rows, "bytes": exported_bytes,
                   "rows_per_s": round(export_rate), "ratio_to_list_pages": round(export_rate / (listed / list_s), 2),
                   "right_after_import": {"seconds": round(cold_s, 2), "rows_per_s": round(exported_rows / cold_s)}},
        "revert": {"seconds": round(revert_s, 2), "rows_per_s": round(ROWS / revert_s)},
        "baselines": {"api_creates_per_s": round(api_creates_per_s, 1), "api_creates": BASELINE_CREATES,
                      "list_rows_per_s": round(listed / list_s), "list_rows": listed},
        "peak_rss_mb": rss,
    }
    results["goals"] = {
        "import_rows_per_s": {"value": results["import"]["rows_per_s"], "goal": GOALS["import_rows_per_s"],
                              "met": import_rate >= GOALS["import_rows_per_s"]},
        "export_rows_per_s": {"value": results["export"]["rows_per_s"], "goal": GOALS["export_rows_per_s"],
                              "met": export_rate >= GOALS["export_rows_per_s"]},
        "peak_rss_mb": {"value": max(rss.values()), "goal": GOALS["peak_rss_mb"],
                        "met": max(rss.values()) <= GOALS["peak_rss_mb"]},
    }
    results["notes"] = ("one tenant, admin (scope all); import = upload to status done, 2000-row batches; "
                        "peak RSS = VmHWM of each process over the whole run (baselines included); "
                        "export right_after_import: before VACUUM; the export and list figures: after VACUUM ANALYZE "
                        "of contacts (what autovacuum does within a minute), which sets the new pages' hint bits")
    return results
