"""Typed settings of the crm service, validated at start from ``config.yaml``."""
from pydantic import Field

from crm_shared.config import ServiceSettings


class Settings(ServiceSettings):
    # how long a caller's principal (rights) is cached at most; principal_changed drops it at once
    CRM_PRINCIPAL_TTL_SECONDS: float = Field(default=30.0, gt=0, le=3600)
    CRM_PRINCIPAL_CACHE_SIZE: int = Field(default=10_000, ge=100, le=1_000_000)
    # how long create request ids (redelivery/retry dedupe) and processed event ids are kept
    CRM_IDEMPOTENCY_RETENTION_HOURS: float = Field(default=72.0, ge=1, le=24 * 90)
    # what CSV imports did (batches applied, changes for revert) is kept this long; keep it at least
    # ONEC_IMPORT_RETENTION_DAYS, or older imports can no longer be reverted
    CRM_IMPORT_RETENTION_DAYS: float = Field(default=30.0, ge=1, le=3650)
