"""Auth routes (``/api/v1/auth``): login, refresh, logout, me; unlocking a
locked-out user; and the broadcast handler that keeps every gateway replica's
list of revoked sessions current (see ``gateway.tokens``)."""
from __future__ import annotations

import datetime as dt
import time
from typing import Any

from nameko.events import BROADCAST, event_handler
from werkzeug.wrappers import Request

from contracts.auth import LoginBody, Me, RefreshBody, TokenPair, Unlocked
from crm_shared.errors import Unauthenticated
from gateway.entrypoints import api
from gateway.tokens import TokenState, caller


def _timestamp_or_now(value: Any) -> float:
    try:
        return dt.datetime.fromisoformat(str(value)).timestamp()
    except ValueError:
        return time.time()


class AuthRoutes:
    cluster: Any
    context: Any
    token_state: Any = TokenState()

    @api("POST", "/api/v1/auth/login", auth=None, body=LoginBody, response=TokenPair, tags=("auth",),
         errors=(401, 403, 429),
         summary="Log in with product code, login and password (401 invalid_credentials, "
                 "403 seats_exhausted, 429 too_many_attempts)")
    def login(self, request: Request, body: LoginBody) -> Any:
        user_agent = (request.headers.get("User-Agent") or "")[:300]
        return self.cluster.with_timeout(self.token_state.nested_timeout).auth.login(
            body.product_code, body.login, body.password, self.token_state.client_ip(request), user_agent)

    @api("POST", "/api/v1/auth/refresh", auth=None, body=RefreshBody, response=TokenPair, tags=("auth",),
         errors=(401,),
         summary="New tokens for a refresh token (rotating; reusing a spent one ends the session)")
    def refresh(self, request: Request, body: RefreshBody) -> Any:
        try:
            return self.cluster.auth.refresh(body.refresh_token)
        except Unauthenticated as exc:
            if exc.code == "refresh_token_reused":
                # auth ended the token's session: refuse its access tokens here before answering
                # (a refresh token is "<tenant>.<session>.<secret>"; the others hear session_revoked)
                parts = body.refresh_token.split(".")
                if len(parts) == 3:
                    self.token_state.revoke(parts[1], None)
            raise

    @api("POST", "/api/v1/auth/logout", status=204, tags=("auth",),
         summary="End this session: its access token stops working at once")
    def logout(self, request: Request) -> Any:
        session_id = str(self.context.get("session_id"))
        answer = self.cluster.auth.logout(caller(self.context), session_id)
        # this replica refuses the token before answering; the others hear the broadcast
        self.token_state.revoke(session_id, answer.get("expires_at"))
        return 204, None

    @api("GET", "/api/v1/auth/me", response=Me, tags=("auth",), summary="The signed-in user and effective rights")
    def me(self, request: Request) -> Any:
        who = caller(self.context)
        principal = dict(self.cluster.users.get_principal(who["tenant_id"], who["user_id"]))
        rights = principal.pop("rights", {}) or {}
        user = {"id": principal.get("user_id", who["user_id"]), **principal}
        return {"user": user, "rights": rights, "tenant_id": who["tenant_id"],
                "session_id": str(self.context.get("session_id"))}

    @api("POST", "/api/v1/users/<string:user_id>/unlock", response=Unlocked, tags=("auth",),
         summary="Unlock a user locked out after failed logins (needs users.manage)")
    def unlock_user(self, request: Request, user_id: str) -> Any:
        return self.cluster.auth.unlock_user(caller(self.context), user_id)

    @event_handler("users", "user_deactivated", handler_type=BROADCAST, reliable_delivery=False)
    def on_user_deactivated(self, event: dict[str, Any]) -> None:
        self._end_user(event)

    @event_handler("users", "user_deleted", handler_type=BROADCAST, reliable_delivery=False)
    def on_user_deleted(self, event: dict[str, Any]) -> None:
        self._end_user(event)

    @event_handler("users", "user_password_changed", handler_type=BROADCAST, reliable_delivery=False)
    def on_user_password_changed(self, event: dict[str, Any]) -> None:
        self._end_user(event)

    def _end_user(self, event: Any) -> None:
        """Every replica refuses the user's older tokens one event hop after the change (auth's
        session_revoked, a hop later, names the sessions; a missed broadcast is covered by that and
        by the resync of revoked sessions)."""
        data = (event.get("data") or {}) if isinstance(event, dict) else {}
        tenant_id, user_id = data.get("tenant_id") or event.get("tenant_id"), data.get("user_id")
        if tenant_id and user_id:
            self.token_state.end_user(str(tenant_id), str(user_id), _timestamp_or_now(event.get("occurred_at")))

    @event_handler("auth", "session_revoked", handler_type=BROADCAST, reliable_delivery=False)
    def on_session_revoked(self, event: dict[str, Any]) -> None:
        data = event.get("data") or {}
        if data.get("session_id"):
            self.token_state.revoke(str(data["session_id"]), data.get("expires_at"))
