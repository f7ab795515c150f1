"""Typed settings of the gateway, validated at start from ``config.yaml``."""
from pydantic import Field, field_validator

from crm_shared.config import ServiceSettings


class Settings(ServiceSettings):
    WEB_SERVER_ADDRESS: str = Field(pattern=r"^[^:]*:\d+$")
    CRM_OPERATOR_TOKEN: str = Field(min_length=16)
    READYZ_TIMEOUT_SECONDS: float = Field(default=2.0, gt=0, le=30)
    MAX_BODY_BYTES: int = Field(default=1_048_576, ge=1024)
    # an uploaded CSV or .xlsx file (the import); the tenant's disk quota applies as well
    GATEWAY_IMPORT_MAX_BYTES: int = Field(default=50 * 1_048_576, ge=1024)
    # proxies in front that append the client address to X-Forwarded-For (0: use the peer address)
    GATEWAY_TRUSTED_PROXY_HOPS: int = Field(default=0, ge=0, le=10)
    # how often the list of revoked sessions (and the public keys) is reloaded from auth
    GATEWAY_TOKEN_RESYNC_SECONDS: float = Field(default=30.0, ge=1, le=3600)
    # the web console's build (``npm run build`` in console/); empty: console/dist of the checkout
    CONSOLE_DIR: str | None = None

    @field_validator("CRM_OPERATOR_TOKEN", mode="before")
    @classmethod
    def _required(cls, value: object) -> object:
        return "" if value is None else value
