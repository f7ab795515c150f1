"""Telephony contracts: a user's SIP account and its check, the active
calls, the call log, click-to-call, and the Mango Office settings (DESIGN
section 3, telephony row; the quick-start guide's "Настройка телефонии" and
"Подключение к ВТС «Манго-Офис»").

An account is either ``{login, password, domain, port, notify_incoming}``
or ``{mango_username: "user@mycompany.mangosip.ru", password,
notify_incoming}`` (split at the ``@`` into login and domain, port 5060).
The password is write-only: answers say ``password_set``."""
from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints, model_validator

from contracts.base import Answer, Contract, Page

Secret = Annotated[str, StringConstraints(min_length=1, max_length=200)]
_SIP_USER = re.compile(r"^[A-Za-z0-9._~!$&'()*+,;=%\-]+$")
SipLogin = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128,
                                            pattern=r"^[A-Za-z0-9._~!$&'()*+,;=%\-]+$")]
Domain = Annotated[str, StringConstraints(strip_whitespace=True, to_lower=True, min_length=1, max_length=253,
                                          pattern=r"^[A-Za-z0-9](?:[A-Za-z0-9\-.]*[A-Za-z0-9])?$")]
Number = Annotated[str, StringConstraints(strip_whitespace=True, min_length=2, max_length=32,
                                          pattern=r"^\+?[0-9][0-9 ()\-]*[0-9]$|^[0-9]+$")]
MangoUsername = Annotated[str, StringConstraints(strip_whitespace=True, to_lower=True, min_length=3, max_length=382,
                                                 pattern=r"^[^@\s]+@[A-Za-z0-9](?:[A-Za-z0-9\-.]*[A-Za-z0-9])?$")]

RegistrationState = Literal["off", "registering", "registered", "failed"]
CallState = Literal["ringing", "talking", "transferring", "ended"]
Direction = Literal["incoming", "outgoing"]
# how a call ended
Outcome = Literal["missed", "answered_elsewhere", "answered", "transferred", "no_answer", "transfer_failed",
                  "failed", "engine_lost"]
# why a check failed
CHECK_REASONS = ("wrong_credentials", "unknown_user", "timeout", "dns", "refused", "error")


class SipAccountIn(Contract):
    """``PUT /users/{id}/sip``: the whole account."""

    login: SipLogin | None = Field(default=None, description="Логин: the SIP provider's login")
    password: Secret | None = Field(default=None, description="Пароль; write-only. May be left out when changing "
                                                              "an account that has one")
    domain: Domain | None = Field(default=None, description="Домен, e.g. testsip.ru")
    port: int = Field(default=5060, ge=1, le=65535, description="Порт")
    mango_username: MangoUsername | None = Field(
        default=None, description="Mango Office: the user name, e.g. user@mycompany.mangosip.ru (instead of login "
                                  "and domain; port 5060)")
    notify_incoming: bool = Field(default=True, description="Keep a registration to show incoming calls")
    extension: Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[0-9]{1,16}$")] | None = Field(
        default=None, description="The user's extension (добавочный номер) on the Mango Office PBX: click-to-call "
                                  "through the PBX and its webhooks find the user by it. Set by users.manage "
                                  "only; left out, it stays as it is")

    @model_validator(mode="after")
    def _one_form(self) -> "SipAccountIn":
        if self.mango_username is not None:
            login, domain = self.mango_username.split("@", 1)
            if len(login) > 128 or len(domain) > 253 or not _SIP_USER.match(login):
                raise ValueError("mango_username: the user part is no SIP user, or a part is too long")
            if self.login not in (None, login) or self.domain not in (None, domain):
                raise ValueError("give mango_username, or login and domain, not both")
            self.login, self.domain = login, domain
            if "port" not in self.model_fields_set:
                self.port = 5060
        elif self.login is None or self.domain is None:
            raise ValueError("login and domain are required (or mango_username)")
        return self


class RegistrationOut(Answer):
    state: RegistrationState
    reason: str | None
    expires_at: str | None


class SipAccountOut(Answer):
    user_id: str
    login: str
    domain: str
    port: int
    mango_username: str | None
    notify_incoming: bool
    extension: str | None
    active: bool = Field(description="The user is active and has «Подключить SIP запись» (sip_enabled)")
    password_set: bool
    registration: RegistrationOut
    created_at: str
    updated_at: str


class SipCheckOut(Answer):
    ok: bool
    status: int | None = Field(description="The registrar's final SIP status (200, 401, 403, 404…); null when "
                                           "none came")
    reason: str | None = Field(description="null when ok; else one of " + ", ".join(CHECK_REASONS))
    detail: str | None = Field(default=None, description="The registrar's reason phrase or the local error")
    elapsed_ms: int


class CallOut(Answer):
    call_id: str
    direction: Direction
    state: CallState
    source: str = Field(description="sip (the user's SIP account) or mango (the Mango Office PBX)")
    from_number: str | None
    from_name: str | None
    to_number: str | None
    user_id: str | None
    contact_id: str | None
    counterparty_id: str | None
    started_at: str
    answered_at: str | None
    ended_at: str | None
    outcome: Outcome | None
    end_reason: str | None


class CallIn(Contract):
    """``POST /calls``: click-to-call from your own SIP phone."""

    to_number: Number


class CallStarted(Answer):
    call_id: str


class CallQuery(Page):
    direction: Direction | None = None
    user_id: str | None = None
    contact_id: str | None = None
    outcome: Outcome | None = None


class MangoSettingsIn(Contract):
    api_key: Secret = Field(description="Уникальный код АТС (vpbx_api_key); write-only")
    api_salt: Secret = Field(description="Ключ для создания подписи (vpbx_api_salt); write-only")
    api_base: Annotated[str, StringConstraints(strip_whitespace=True, min_length=8, max_length=500,
                                               pattern=r"^https?://[^\s]+$")] = Field(
        default="https://app.mango-office.ru/vpbx/", description="The API base address")


class MangoSettingsOut(Answer):
    configured: bool
    api_base: str | None
    api_key_set: bool
    api_salt_set: bool
    updated_at: str | None


def mango_username(login: str, domain: str, mango: bool) -> str | None:
    return f"{login}@{domain}" if mango else None


def registration(state: str, reason: Any, expires_at: Any) -> dict[str, Any]:
    return {"state": state, "reason": reason, "expires_at": expires_at}
