"""Typed settings of the telephony service, validated at start from ``config.yaml``."""
from pydantic import Field

from crm_shared.config import ServiceSettings
from services.telephony.sip import MAX_ACCOUNTS


class Settings(ServiceSettings):
    # SIP engine processes one replica runs (each holds up to TELEPHONY_ACCOUNTS_PER_WORKER accounts); 0: none
    TELEPHONY_ENGINE_WORKERS: int = Field(default=4, ge=0, le=256)
    # accounts one engine process holds (pjsua2 aborts the process on a 9th); a process rings at most
    # MAX_CALLS (4) calls at once, so 4 keeps one ringing call per account
    TELEPHONY_ACCOUNTS_PER_WORKER: int = Field(default=4, ge=1, le=MAX_ACCOUNTS)
    # a worker holds its accounts this long past its last renewal; another worker takes them after
    TELEPHONY_LEASE_SECONDS: float = Field(default=30.0, ge=3, le=3600)
    # how often a worker renews its leases and looks for accounts to take (changes also wake it at once)
    TELEPHONY_ENGINE_SYNC_SECONDS: float = Field(default=5.0, gt=0, le=600)
    # the registration's Expires: refreshed before it runs out; short keeps a NAT binding and survives a
    # registrar restart quickly
    TELEPHONY_REGISTER_EXPIRES_SECONDS: int = Field(default=120, ge=10, le=3600)
    # after a failed registration, the next attempt
    TELEPHONY_REGISTER_RETRY_SECONDS: int = Field(default=30, ge=1, le=3600)
    # UDP keep-alives towards the registrar (NAT bindings); 0: none
    TELEPHONY_KEEPALIVE_SECONDS: int = Field(default=15, ge=0, le=3600)
    # a check's bound: an answer within this, whatever the registrar does
    TELEPHONY_CHECK_TIMEOUT_SECONDS: float = Field(default=10.0, gt=0, le=60)
    # checks one replica runs at once (each a short-lived engine process)
    TELEPHONY_CHECK_CONCURRENCY: int = Field(default=4, ge=1, le=64)
    # click-to-call: how long the user's own phone may ring before the call ends as not answered
    TELEPHONY_RING_SECONDS: float = Field(default=30.0, gt=0, le=600)
    # click-to-call: how long a dial waits for the worker holding the user's account
    TELEPHONY_DIAL_WAIT_SECONDS: float = Field(default=15.0, gt=0, le=600)
    # how long an ended call stays in the active list (state "ended")
    TELEPHONY_ENDED_VISIBLE_SECONDS: float = Field(default=5.0, ge=0, le=600)
    # how often a replica matches new calls' numbers to contacts (crm match_contact)
    TELEPHONY_MATCH_TICK_SECONDS: float = Field(default=0.2, gt=0, le=60)
    # the engines' SIP port (0: any free one) and address; the public address to put in Via/Contact
    TELEPHONY_SIP_PORT: int = Field(default=0, ge=0, le=65535)
    TELEPHONY_SIP_BIND: str | None = None
    TELEPHONY_SIP_PUBLIC_ADDRESS: str | None = None
    # Mango Office: a webhook older (or newer) than this by its timestamp is refused as a replay
    TELEPHONY_MANGO_MAX_SKEW_SECONDS: float = Field(default=300.0, gt=0, le=86400)
    # Mango Office: the API's answer wait
    TELEPHONY_MANGO_TIMEOUT_SECONDS: float = Field(default=10.0, gt=0, le=120)
