"""Telephony routes: a user's SIP account (``/api/v1/users/{id}/sip``) and its
check, the active calls, the call log (declared once as a resource),
click-to-call, the Mango Office settings and the PBX's webhooks. The
telephony service runs them and checks the rights: your own account, anyone's
with ``users.manage``; ``telephony.use`` for calls; ``communications.read``
for other users' calls. The webhooks carry no bearer token: the PBX signs
them, and the service verifies the signature and refuses replays."""
from __future__ import annotations

from typing import Any

from werkzeug.wrappers import Request

from contracts.base import list_of
from contracts.telephony import (
    CallIn,
    CallOut,
    CallQuery,
    CallStarted,
    MangoSettingsIn,
    MangoSettingsOut,
    SipAccountIn,
    SipAccountOut,
    SipCheckOut,
)
from gateway.entrypoints import api
from gateway.resources import Area, Resource
from gateway.tokens import caller

SIP = "/api/v1/users/<string:user_id>/sip"
# a check answers within TELEPHONY_CHECK_TIMEOUT_SECONDS (10 s), after waiting for a free slot
CHECK_TIMEOUT = 40.0
PBX_TIMEOUT = 30.0
FORM = ("application/x-www-form-urlencoded",)

CallRoutes = Area("telephony", tag="telephony", right_prefix=False).routes(
    Resource("calls", "call", CallOut, query=CallQuery, actions=("list",),
             summaries={"list": "The call log, newest first: yours, and others' under communications.read"}),
    name="CallRoutes",
)


class TelephonyRoutes:
    cluster: Any
    context: Any

    def _telephony(self, timeout: float | None = None) -> Any:
        return (self.cluster.with_timeout(timeout) if timeout else self.cluster).telephony

    @api("GET", SIP, response=SipAccountOut, tags=("telephony",), errors=(403, 404),
         summary="A user's SIP account with its registration (the password is never answered)")
    def get_sip_account(self, request: Request, user_id: str) -> Any:
        return self._telephony().get_sip_account(caller(self.context), user_id)

    @api("PUT", SIP, body=SipAccountIn, response=SipAccountOut, tags=("telephony",), errors=(403, 404, 409),
         summary="Set a user's SIP account: {login, password, domain, port, notify_incoming} or "
                 "{mango_username, password, notify_incoming}; the user needs sip_enabled (409 sip_not_enabled)")
    def put_sip_account(self, request: Request, user_id: str, body: SipAccountIn) -> Any:
        return self._telephony().put_sip_account(caller(self.context), user_id,
                                                 body.model_dump(mode="json", exclude_unset=True))

    @api("DELETE", SIP, status=204, tags=("telephony",), errors=(403, 404),
         summary="Remove a user's SIP account (its registration ends)")
    def delete_sip_account(self, request: Request, user_id: str) -> Any:
        self._telephony().delete_sip_account(caller(self.context), user_id)
        return None

    @api("POST", f"{SIP}/check", response=SipCheckOut, tags=("telephony",), errors=(403, 404),
         summary="«Проверить»: a real REGISTER with digest auth to domain:port, then unregister; answers "
                 "within 10 s with ok, the SIP status, why not and the elapsed time")
    def check_sip_account(self, request: Request, user_id: str) -> Any:
        return self._telephony(CHECK_TIMEOUT).check_sip_account(caller(self.context), user_id)

    @api("GET", "/api/v1/calls/active", response=list_of(CallOut, "ActiveCallList"), tags=("telephony",),
         errors=(403,), summary="The calls ringing or going on now (telephony.use), with the caller and the "
                                "matched contact; ended ones stay a few seconds")
    def list_active_calls(self, request: Request) -> Any:
        return self._telephony().list_active_calls(caller(self.context))

    @api("POST", "/api/v1/calls", body=CallIn, response=CallStarted, status=202, tags=("telephony",),
         errors=(403, 409, 502),
         summary="Click-to-call (telephony.use): rings your own SIP phone, then transfers the call to "
                 "to_number; progress shows in /calls/active")
    def place_call(self, request: Request, body: CallIn) -> Any:
        return self._telephony(PBX_TIMEOUT).place_call(caller(self.context), body.model_dump(mode="json"))

    @api("GET", "/api/v1/telephony/mango", response=MangoSettingsOut, tags=("telephony",), errors=(403,),
         summary="The Mango Office PBX settings (users.manage; the key and salt are never answered)")
    def get_mango_settings(self, request: Request) -> Any:
        return self._telephony().get_mango_settings(caller(self.context))

    @api("PUT", "/api/v1/telephony/mango", body=MangoSettingsIn, response=MangoSettingsOut, tags=("telephony",),
         errors=(403, 409), summary="Set the Mango Office PBX: API key, salt and API base address (users.manage)")
    def put_mango_settings(self, request: Request, body: MangoSettingsIn) -> Any:
        return self._telephony().put_mango_settings(caller(self.context), body.model_dump(mode="json"))

    @api("POST", "/api/v1/telephony/mango/events/<string:kind>", auth=None, raw_body=FORM, tags=("telephony",),
         errors=(403, 404, 409), max_body_bytes=256 * 1024,
         summary="The Mango Office PBX's webhooks (events/call, events/summary): a form of vpbx_api_key, sign "
                 "and json, signed with the instance's key and salt; a replay is refused (409)")
    def mango_webhook(self, request: Request, kind: str, content: bytes) -> Any:
        return self._telephony().mango_webhook(kind, content.decode("utf-8", "replace"))

