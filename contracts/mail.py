"""Mail contracts: the presets, a user's mail accounts, the check, folders,
status, stored messages and sending (DESIGN section 3, mail row; the
quick-start guide's "Настройка электронной почты").

An account names a ``preset`` (gmail, yandex, mailru) or gives its servers
(``imap`` and ``smtp``). With a preset only name, email, password, timeout
and poll frequency are asked for: the servers come from the preset and the
login is the full address. Passwords are write-only: answers say
``password_set`` instead."""
from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints, field_validator, model_validator

from contracts.base import Answer, Contract, Page

Encryption = Literal["ssl", "starttls", "none"]
SmtpAuth = Literal["same_as_incoming", "special", "none"]
PresetId = Literal["gmail", "yandex", "mailru"]

Host = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=253,
                                        pattern=r"^[A-Za-z0-9._:\-\[\]]+$")]
Port = Annotated[int, Field(ge=1, le=65535)]
Login = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=320)]
Secret = Annotated[str, StringConstraints(min_length=1, max_length=500)]
FolderName = Annotated[str, StringConstraints(min_length=1, max_length=500)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]

_ADDRESS = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")


def check_address(value: str) -> str:
    value = value.strip()
    if not _ADDRESS.match(value):
        raise ValueError("not a valid e-mail address")
    return value


Address = Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=320)]


class ImapIn(Contract):
    host: Host
    port: Port = 993
    encryption: Encryption = "ssl"
    login: Login | None = Field(default=None, description="The account's e-mail when omitted")


class SmtpIn(Contract):
    host: Host
    port: Port = 465
    encryption: Encryption = "ssl"
    auth: SmtpAuth = Field(default="same_as_incoming", description="Как на сервер входящей почты / Специальная / "
                                                                   "none")
    login: Login | None = Field(default=None, description="With auth=special")
    password: Secret | None = Field(default=None, description="With auth=special; write-only")
    require_secure_auth: bool = Field(default=False, description="Refuse AUTH over an unencrypted connection")

    @model_validator(mode="after")
    def _special(self) -> "SmtpIn":
        if self.auth == "special" and not self.login:
            raise ValueError("auth=special needs smtp.login")
        return self


class _AccountFields(Contract):
    @field_validator("email", check_fields=False)
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        return None if value is None else check_address(value)


class MailAccountCreate(_AccountFields):
    name: Name
    email: Address
    password: Secret = Field(description="The IMAP password (an app password for Gmail/Yandex/Mail.ru with 2FA); "
                                         "write-only")
    preset: PresetId | None = Field(default=None, description="gmail, yandex or mailru: the servers come from it")
    imap: ImapIn | None = None
    smtp: SmtpIn | None = None
    timeout_min: int = Field(default=5, ge=1, le=60, description="Время ожидания сервера, minutes")
    poll_every_min: int = Field(default=5, ge=1, le=1440, description="Частота проверки новых сообщений, minutes")
    sent_folder: FolderName | None = Field(default=None, description="Where sent mail is read from and appended to")
    active: bool = True
    is_default: bool = False

    @model_validator(mode="after")
    def _servers(self) -> "MailAccountCreate":
        if self.preset is None and (self.imap is None or self.smtp is None):
            raise ValueError("without a preset, imap and smtp are required")
        return self


class MailAccountUpdate(_AccountFields):
    name: Name | None = None
    email: Address | None = None
    password: Secret | None = None
    preset: PresetId | None = None
    imap: ImapIn | None = None
    smtp: SmtpIn | None = None
    timeout_min: int | None = Field(default=None, ge=1, le=60)
    poll_every_min: int | None = Field(default=None, ge=1, le=1440)
    sent_folder: FolderName | None = None
    active: bool | None = None
    is_default: bool | None = None


class ImapOut(Answer):
    host: str
    port: int
    encryption: Encryption
    login: str


class SmtpOut(Answer):
    host: str
    port: int
    encryption: Encryption
    auth: SmtpAuth
    login: str | None
    password_set: bool
    require_secure_auth: bool


class MailAccountOut(Answer):
    id: str
    user_id: str
    name: str
    email: str
    preset: PresetId | None
    password_set: bool
    imap: ImapOut
    smtp: SmtpOut
    timeout_min: int
    poll_every_min: int
    sent_folder: str | None
    active: bool
    is_default: bool
    created_at: dt.datetime
    updated_at: dt.datetime


# why a server side failed, the same words for IMAP and SMTP
REASONS = ("dns", "refused", "timeout", "tls", "auth", "plaintext_refused", "protocol", "quota_exceeded")


class SideResult(Answer):
    ok: bool
    error: str | None = Field(description="What went wrong, in words; null when ok")
    reason: str | None = Field(default=None, description=f"One of {', '.join(REASONS)}; null when ok")
    elapsed_ms: int = 0


class CheckOut(Answer):
    imap: SideResult
    smtp: SideResult


class FolderOut(Answer):
    name: str = Field(description="Decoded (modified UTF-7 becomes Unicode); pass it as sent_folder")
    flags: list[str] = Field(description="Attributes, special-use ones included (\\Sent, \\Trash…)")
    special_use: str | None = Field(description="\\Sent, \\Drafts, \\Trash, \\Junk, \\Archive, \\All or null")
    delimiter: str | None


class FolderStatus(Answer):
    folder: str
    uidvalidity: int | None
    last_uid: int
    messages_behind: int
    reconciled_at: dt.datetime | None
    reconcile_missing: int


class MailStatusOut(Answer):
    account_id: str
    active: bool
    state: Literal["never", "ok", "error", "quota_exceeded", "paused"]
    last_poll_at: dt.datetime | None
    last_success_at: dt.datetime | None
    last_error: str | None
    last_error_reason: str | None
    next_poll_at: dt.datetime | None
    messages_behind: int
    messages_stored: int
    reconcile_missing: int = Field(description="Messages the last reconciliation found missing and fetched")
    reconciled_at: dt.datetime | None
    idle: bool = Field(description="An IMAP IDLE connection watches INBOX now")
    folders: list[FolderStatus]


class SyncOut(MailStatusOut):
    fetched: int = Field(description="Messages stored by this poll")


class MailAddress(Answer):
    email: str
    name: str | None


class AttachmentOut(Answer):
    filename: str | None
    content_type: str
    size: int


class MessageOut(Answer):
    id: str
    message_id: str | None = Field(description="The Message-ID header, normalised")
    direction: Literal["incoming", "outgoing"]
    subject: str | None
    sender: MailAddress | None
    to: list[MailAddress]
    cc: list[MailAddress]
    sent_at: dt.datetime | None
    size: int
    attachments: list[AttachmentOut]
    contact_id: str | None
    counterparty_id: str | None
    accounts: list[str] = Field(description="The caller-visible accounts holding it")
    created_at: dt.datetime


class MessageDetailOut(MessageOut):
    text: str | None
    html: str | None


class MessageQuery(Page):
    account_id: str | None = Field(default=None, max_length=64)
    contact_id: str | None = Field(default=None, max_length=64)
    counterparty_id: str | None = Field(default=None, max_length=64)
    direction: Literal["incoming", "outgoing"] | None = None
    q: str | None = Field(default=None, max_length=200, description="Part of the subject or an address")


class AttachmentIn(Contract):
    filename: Annotated[str, StringConstraints(min_length=1, max_length=255)]
    content_type: Annotated[str, StringConstraints(max_length=200,
                                                   pattern=r"^[\w.+-]+/[\w.+-]+$")] = "application/octet-stream"
    content_b64: Annotated[str, StringConstraints(max_length=15_000_000)] = Field(description="The file, base64")


class SendIn(Contract):
    account_id: str | None = Field(default=None, max_length=64, description="Your default account when omitted")
    to: list[Address] = Field(min_length=1, max_length=100)
    cc: list[Address] = Field(default_factory=list, max_length=100)
    bcc: list[Address] = Field(default_factory=list, max_length=100)
    subject: Annotated[str, StringConstraints(max_length=998)] = ""
    text: Annotated[str, StringConstraints(max_length=5_000_000)] | None = None
    html: Annotated[str, StringConstraints(max_length=5_000_000)] | None = None
    attachments: list[AttachmentIn] = Field(default_factory=list, max_length=20)

    @field_validator("to", "cc", "bcc")
    @classmethod
    def _addresses(cls, values: list[str]) -> list[str]:
        return [check_address(v) for v in values]

    @model_validator(mode="after")
    def _body(self) -> "SendIn":
        if self.text is None and self.html is None:
            raise ValueError("give text, html or both")
        return self


class SentOut(Answer):
    message: MessageOut
    sent_copy: Literal["appended", "no_sent_folder", "failed"] = Field(
        description="Whether the copy reached the sent folder")
    sent_copy_error: str | None = None
    refused: dict[str, str] = Field(default_factory=dict, description="Recipients the server refused while it "
                                                                      "accepted the others")


# -- presets (DESIGN section 4; the guide's "Подключение к распространенным почтовым серверам") --

class PresetServer(Answer):
    host: str
    port: int
    encryption: Encryption


class PresetOut(Answer):
    id: PresetId
    title: str
    domains: list[str]
    imap: PresetServer
    smtp: PresetServer
    smtp_alternatives: list[PresetServer]
    smtp_auth: SmtpAuth
    login: Literal["full_address"]
    timeout_min: int
    poll_every_min: int
    app_password_hint: str


_APP_PASSWORD = ("{title} refuses the login: check the address and password. With two-factor authentication, "
                 "or when the provider's security settings demand it, {title} accepts only an app password "
                 "(a password for external mail programs) created in its account settings.")


def _preset(id: str, title: str, domains: list[str], imap: str, smtp: str, alternatives: list[dict[str, Any]],
            timeout_min: int) -> PresetOut:
    return PresetOut(id=id, title=title, domains=domains,  # type: ignore[arg-type]
                     imap=PresetServer(host=imap, port=993, encryption="ssl"),
                     smtp=PresetServer(host=smtp, port=465, encryption="ssl"),
                     smtp_alternatives=[PresetServer(host=smtp, **a) for a in alternatives],
                     smtp_auth="same_as_incoming", login="full_address", timeout_min=timeout_min, poll_every_min=5,
                     app_password_hint=_APP_PASSWORD.format(title=title))


PRESETS: dict[str, PresetOut] = {p.id: p for p in (
    _preset("gmail", "Gmail", ["gmail.com", "googlemail.com"], "imap.gmail.com", "smtp.gmail.com",
            [{"port": 587, "encryption": "starttls"}], 5),
    _preset("yandex", "Яндекс Почта", ["yandex.ru", "ya.ru", "yandex.com"], "imap.yandex.ru", "smtp.yandex.ru", [], 5),
    _preset("mailru", "Почта Mail.ru", ["mail.ru", "inbox.ru", "list.ru", "bk.ru"], "imap.mail.ru", "smtp.mail.ru",
            [{"port": 587, "encryption": "starttls"}], 1),
)}
