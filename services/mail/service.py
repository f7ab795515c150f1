"""Nameko entrypoints of the mail service. They stay thin: validate, call
the domain code, return plain data."""
from __future__ import annotations

from crm_shared.service import DatabaseServiceBase


class MailService(DatabaseServiceBase):
    """Per-user mail accounts (presets, IMAP/SMTP settings), connection checks, folders, the poller,
    stored messages and sending."""

    name = "mail"


SERVICE = MailService
