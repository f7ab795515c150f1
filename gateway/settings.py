"""Typed settings of the gateway, validated at start from ``config.yaml``."""
from pydantic import Field, field_validator

from crm_shared.config import ServiceSettings


class Settings(ServiceSettings):
    WEB_SERVER_ADDRESS: str = Field(pattern=r"^[^:]*:\d+$")
    CRM_OPERATOR_TOKEN: str = Field(min_length=16)
    READYZ_TIMEOUT_SECONDS: float = Field(default=2.0, gt=0, le=30)
    MAX_BODY_BYTES: int = Field(default=1_048_576, ge=1024)

    @field_validator("CRM_OPERATOR_TOKEN", mode="before")
    @classmethod
    def _required(cls, value: object) -> object:
        return "" if value is None else value
