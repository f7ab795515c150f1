"""Mail routes: the presets, a user's mail accounts (``/api/v1/users/{id}/mail-accounts``,
declared once as a nested resource), their check, folders, sync and status,
the stored messages and sending. The mail service runs them and checks the
rights: your own accounts, anyone's with ``users.manage``; ``mail.send`` to
send; ``communications.read`` for other users' messages."""
from __future__ import annotations

from typing import Any

from werkzeug.wrappers import Request

from contracts.base import list_of
from contracts.mail import (
    PRESETS,
    CheckOut,
    FolderOut,
    MailAccountCreate,
    MailAccountOut,
    MailAccountUpdate,
    MailStatusOut,
    MessageDetailOut,
    MessageOut,
    MessageQuery,
    PresetOut,
    SendIn,
    SentOut,
    SyncOut,
)
from gateway.entrypoints import api
from gateway.resources import Area, Resource
from gateway.tokens import caller

ACCOUNT = "/api/v1/users/<string:user_id>/mail-accounts/<string:account_id>"
# a check, a folder list or a send waits for the user's servers (MAIL_CHECK_TIMEOUT_SECONDS, 30 s)
SERVER_TIMEOUT = 70.0
# a user's "check mail now" runs up to MAIL_SYNC_MAX_SECONDS (120 s), after a running poll
SYNC_TIMEOUT = 300.0

MailAccountRoutes = Area("mail", tag="mail", right_prefix=False).routes(
    Resource("mail-accounts", "mail_account", MailAccountOut, create=MailAccountCreate, update=MailAccountUpdate,
             parent="users/<string:user_id>", plural="mail_accounts",
             actions=("list", "create", "read", "update", "delete"), errors={"create": (403, 404)},
             summaries={
                 "list": "A user's mail accounts (yours, or anyone's with users.manage)",
                 "create": "Add a mail account: a preset (gmail, yandex, mailru) with name, email, password, "
                           "timeout and poll frequency, or your own IMAP and SMTP servers",
                 "read": "A mail account (passwords are never answered)",
                 "update": "Change a mail account: the fields given change",
                 "delete": "Delete a mail account; messages no other account holds go with it"}),
    name="MailAccountRoutes",
)


class MailRoutes:
    cluster: Any
    context: Any

    def _mail(self, timeout: float | None = None) -> Any:
        return (self.cluster.with_timeout(timeout) if timeout else self.cluster).mail

    @api("GET", "/api/v1/mail/presets", response=list_of(PresetOut), tags=("mail",),
         summary="The mail presets (Gmail, Yandex, Mail.ru) with the guide's servers")
    def list_mail_presets(self, request: Request) -> Any:
        return {"items": [p.model_dump() for p in PRESETS.values()], "next_cursor": None}

    @api("POST", f"{ACCOUNT}/check", response=CheckOut, tags=("mail",), errors=(403, 404),
         summary="«Проверить»: log in to the IMAP and the SMTP server for real; each side answers ok or why not")
    def check_mail_account(self, request: Request, user_id: str, account_id: str) -> Any:
        return self._mail(SERVER_TIMEOUT).check_mail_account(caller(self.context), user_id, account_id)

    @api("POST", "/api/v1/users/<string:user_id>/mail-accounts/check", body=MailAccountCreate, response=CheckOut,
         tags=("mail",), errors=(403, 404),
         summary="«Проверить» before saving: log in with a new account's settings, each side answers ok "
                 "or why not; nothing is stored")
    def check_mail_settings(self, request: Request, user_id: str, body: MailAccountCreate) -> Any:
        return self._mail(SERVER_TIMEOUT).check_mail_settings(caller(self.context), user_id,
                                                              body.model_dump(mode="json", exclude_unset=True))

    @api("POST", "/api/v1/users/<string:user_id>/mail-accounts/folders", body=MailAccountCreate,
         response=list_of(FolderOut), tags=("mail",), errors=(403, 404, 502),
         summary="«Загрузить папки» before saving: the folders the new account's settings reach; nothing is stored")
    def list_mail_folders_of_settings(self, request: Request, user_id: str, body: MailAccountCreate) -> Any:
        data = body.model_dump(mode="json", exclude_unset=True)
        return self._mail(SERVER_TIMEOUT).list_mail_folders_of_settings(caller(self.context), user_id, data)

    @api("GET", f"{ACCOUNT}/folders", response=list_of(FolderOut), tags=("mail",), errors=(403, 404, 502),
         summary="«Загрузить папки»: the server's folders with their special use (pick the sent folder)")
    def list_mail_folders(self, request: Request, user_id: str, account_id: str) -> Any:
        return self._mail(SERVER_TIMEOUT).list_mail_folders(caller(self.context), user_id, account_id)

    @api("POST", f"{ACCOUNT}/sync", response=SyncOut, tags=("mail",), errors=(403, 404, 409),
         summary="Check mail now: polls the account and answers when that poll has finished or failed")
    def sync_mail_account(self, request: Request, user_id: str, account_id: str) -> Any:
        return self._mail(SYNC_TIMEOUT).sync_mail_account(caller(self.context), user_id, account_id)

    @api("GET", f"{ACCOUNT}/status", response=MailStatusOut, tags=("mail",), errors=(403, 404),
         summary="The account's status: last poll, last error and why, messages behind, reconciliation")
    def mail_account_status(self, request: Request, user_id: str, account_id: str) -> Any:
        return self._mail().mail_account_status(caller(self.context), user_id, account_id)

    @api("GET", "/api/v1/mail/messages", query=MessageQuery, response=list_of(MessageOut), tags=("mail",),
         summary="Stored messages, newest first: your accounts', and others' under communications.read")
    def list_mail_messages(self, request: Request, query: MessageQuery) -> Any:
        return self._mail().list_mail_messages(caller(self.context), query.model_dump(mode="json",
                                                                                      exclude_none=True))

    @api("GET", "/api/v1/mail/messages/<string:message_id>", response=MessageDetailOut, tags=("mail",),
         errors=(404,), summary="A stored message with its text and HTML")
    def get_mail_message(self, request: Request, message_id: str) -> Any:
        return self._mail().get_mail_message(caller(self.context), message_id)

    @api("POST", "/api/v1/mail/send", body=SendIn, response=SentOut, tags=("mail",), errors=(403, 404, 409, 502),
         max_body_bytes=40 * 1024 * 1024,
         summary="Send from one of your accounts (mail.send): SMTP, then a copy in the sent folder; "
                 "a refusal answers 502 with the server's reason and stores nothing")
    def send_mail(self, request: Request, body: SendIn) -> Any:
        return self._mail(SERVER_TIMEOUT).send_mail(caller(self.context), body.model_dump(mode="json"))
