"""Typed settings of the users service, validated at start from ``config.yaml``."""
from pydantic import Field

from crm_shared.config import ServiceSettings


class Settings(ServiceSettings):
    # how many tenants' org snapshots the principal cache keeps (least recently used go first)
    PRINCIPAL_CACHE_TENANTS: int = Field(default=500, ge=1, le=100_000)
