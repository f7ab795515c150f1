"""Typed settings of the mail service, validated at start from ``config.yaml``."""
from crm_shared.config import ServiceSettings


class Settings(ServiceSettings):
    pass
