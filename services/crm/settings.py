"""Typed settings of the crm service, validated at start from ``config.yaml``."""
from crm_shared.config import ServiceSettings


class Settings(ServiceSettings):
    pass
