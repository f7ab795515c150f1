"""Errors of the telephony service. Each subclasses a ``crm_shared.errors``
class, so it crosses RPC intact and the gateway maps it to its HTTP status."""
from crm_shared.errors import Conflict, CrmError, Forbidden, NotFound, ValidationFailed

__all__ = ["Conflict", "Forbidden", "NotFound", "PbxRefused", "ValidationFailed", "WebhookRefused",
           "WebhookReplayed"]


class PbxRefused(CrmError):
    """The Mango Office PBX refused a command or did not answer (502 ``pbx_error``)."""
    status, code = 502, "pbx_error"


class WebhookRefused(CrmError):
    """A webhook with a wrong signature, an unknown key, a stale timestamp or a malformed body
    (403 ``webhook_refused``; ``reason`` says which)."""
    status, code = 403, "webhook_refused"


class WebhookReplayed(CrmError):
    """A webhook taken already (409 ``webhook_replayed``)."""
    status, code = 409, "webhook_replayed"
