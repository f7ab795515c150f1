"""Domain metrics of the onec service."""
from __future__ import annotations

from typing import Any

from crm_shared.metrics import METRICS


def jobs() -> Any:
    return METRICS.counter("crm_onec_jobs_total", "Jobs finished, by kind (csv_import, csv_revert) and outcome: "
                           "done, expected_error (refused: rights, bad file) or error.", ("kind", "outcome"))


def import_rows() -> Any:
    return METRICS.counter("crm_onec_import_rows_total", "CSV rows imported, by entity and outcome (created, "
                           "updated, skipped, rejected).", ("entity", "outcome"))


def export_rows() -> Any:
    return METRICS.counter("crm_onec_export_rows_total", "CSV rows exported, by entity.", ("entity",))


def batch_duration() -> Any:
    return METRICS.histogram("crm_onec_import_batch_seconds", "Time of one import batch's round trip to the crm "
                             "service.", ("entity",))


def open_jobs() -> Any:
    return METRICS.gauge("crm_onec_open_jobs", "Import jobs queued, running or reverting (all tenants).")


def oldest_open_job() -> Any:
    return METRICS.gauge("crm_onec_oldest_open_job_seconds", "Age of the oldest import job not finished "
                         "(0 when there is none).")
