"""Typed settings of the mail service, validated at start from ``config.yaml``."""
from pydantic import Field

from crm_shared.config import ServiceSettings


class Settings(ServiceSettings):
    # how often a replica looks for due accounts (each account has its own poll_every_min)
    MAIL_POLL_TICK_SECONDS: float = Field(default=5.0, gt=0, le=300)
    # polls one replica runs at once (each a greenthread with its own connection)
    MAIL_POLL_CONCURRENCY: int = Field(default=20, ge=1, le=1000)
    # a poll holds its account this long past its last batch; another replica takes it after
    MAIL_POLL_LEASE_SECONDS: float = Field(default=120.0, ge=10, le=3600)
    # messages per FETCH and per stored transaction
    MAIL_FETCH_BATCH: int = Field(default=100, ge=1, le=5000)
    # a larger message is skipped (the cursor moves past it)
    MAIL_MAX_MESSAGE_BYTES: int = Field(default=25 * 1024 * 1024, ge=1024, le=200 * 1024 * 1024)
    # how often each folder's UID list is compared with what is stored
    MAIL_RECONCILE_HOURS: float = Field(default=24.0, gt=0, le=24 * 30)
    # the longest a check, a folder list or a send waits for a server (the account's timeout if shorter)
    MAIL_CHECK_TIMEOUT_SECONDS: float = Field(default=30.0, gt=0, le=600)
    # the longest a user's "check mail now" runs; a first sync goes on in the background
    MAIL_SYNC_MAX_SECONDS: float = Field(default=120.0, gt=0, le=3600)
    # IMAP IDLE connections one replica holds (0: polling only)
    MAIL_IDLE_MAX_CONNECTIONS: int = Field(default=100, ge=0, le=10000)
