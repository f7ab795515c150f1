"""Typed settings of the telephony service, validated at start from ``config.yaml``."""
from crm_shared.config import ServiceSettings


class Settings(ServiceSettings):
    pass
