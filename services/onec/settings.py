"""Typed settings of the onec service, validated at start from ``config.yaml``."""
from pydantic import Field

from crm_shared.config import ServiceSettings


class Settings(ServiceSettings):
    # a runner holds a job this long past its last batch; another replica takes it over after
    ONEC_JOB_LEASE_SECONDS: float = Field(default=60.0, ge=5, le=3600)
    # one import batch's round trip to the crm service
    ONEC_BATCH_TIMEOUT_SECONDS: float = Field(default=60.0, ge=1, le=600)
    # a job whose batches keep failing on an unavailable crm service fails after this many tries
    ONEC_JOB_MAX_ATTEMPTS: int = Field(default=20, ge=1, le=1000)
    # finished import jobs (their row reports and error files) are kept this long
    ONEC_IMPORT_RETENTION_DAYS: float = Field(default=30.0, ge=1, le=3650)
    # the largest chunk 1C sends in one CommerceML HTTP ``mode=file`` call (its ``file_limit``)
    ONEC_HTTP_FILE_LIMIT_BYTES: int = Field(default=8 * 1024 * 1024, ge=64 * 1024, le=50 * 1024 * 1024)
