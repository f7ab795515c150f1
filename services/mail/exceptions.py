"""Errors of the mail service. Each subclasses a ``crm_shared.errors``
class, so it crosses RPC intact and the gateway maps it to its HTTP status."""
from crm_shared.errors import Conflict, CrmError, Forbidden, NotFound, ValidationFailed

__all__ = ["Conflict", "Forbidden", "NotFound", "SendRefused", "ServerRefused", "ValidationFailed"]


class ServerRefused(CrmError):
    """The user's mail server failed or refused (502 ``mail_server_error``); ``reason`` says why
    (dns, refused, timeout, tls, auth, plaintext_refused, protocol)."""
    status, code = 502, "mail_server_error"


class SendRefused(ServerRefused):
    """The SMTP server refused the message (502 ``mail_send_failed``): nothing was stored as sent."""
    status, code = 502, "mail_send_failed"
