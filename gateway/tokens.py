"""Bearer tokens in the gateway: verified locally, no RPC per request.

The gateway fetches the auth service's public keys once (``auth.public_keys``,
a JWKS) and verifies each access token's Ed25519 signature, issuer,
audience and expiry itself. A token signed with a key id it does not know
makes it fetch the keys again (at most once every few seconds), which is
how a key rotation reaches running gateways.

Ending a user's sessions (deactivation, deletion, a password change) works the
same way by user instead of session: ``TokenVerifier.end_user`` refuses the
user's tokens issued before that moment, set by the replica that answered the
change and, on the others, by users' broadcast events (``gateway.routes.auth``).

Logout must end a token at once, everywhere: auth publishes
``session_revoked`` (through its outbox) and every gateway replica gets it
on a broadcast queue of its own (``on_session_revoked`` in
``gateway.routes.auth``); the replica that served the logout also marks the
session itself before answering. Broadcast queues are not durable, so a
replica also loads the list of revoked, not yet expired sessions by RPC when
it starts (bearer requests answer 503 until it has, never a revoked
token's data) and again every ``GATEWAY_TOKEN_RESYNC_SECONDS``, which covers
events missed while its broker connection was down. A revoked session is
forgotten once every access token it had has expired.

Verified tokens put ``tenant_id``, ``user_id`` and ``session_id`` into the
worker's context data; routes call services with ``caller(self.context)``
(``{"tenant_id", "user_id"}``) as the first argument."""
from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass
from typing import Any

import eventlet
import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from eventlet.event import Event
from eventlet.semaphore import Semaphore
from nameko.extensions import DependencyProvider, SharedExtension
from nameko.standalone.rpc import ClusterRpcProxy

from crm_shared.config import settings_of
from crm_shared.errors import CrmError, ServiceUnavailable, Unauthenticated
from crm_shared.metrics import METRICS
from gateway.settings import Settings

log = logging.getLogger(__name__)

ALGORITHM = "EdDSA"
LEEWAY_SECONDS = 5
KEY_REFETCH_MIN_SECONDS = 5.0
MAX_ACCESS_TTL_SECONDS = 3600  # the longest AUTH_ACCESS_TOKEN_TTL_SECONDS allows
_REQUIRED = ["exp", "iat", "iss", "aud", "sub", "tid", "sid"]


def _token_checks() -> Any:
    return METRICS.counter("crm_gateway_token_checks_total", "Bearer token checks by outcome.", ("outcome",))


def _revoked_gauge() -> Any:
    return METRICS.gauge("crm_gateway_revoked_sessions", "Revoked sessions whose tokens this gateway refuses.")


def _key_fetches() -> Any:
    return METRICS.counter("crm_gateway_token_key_fetches_total", "Fetches of the auth public keys and revoked "
                           "sessions, by outcome.", ("outcome",))


class UnknownKey(Exception):
    """The token names a key id this gateway has not loaded."""


@dataclass(frozen=True)
class Claims:
    tenant_id: str
    user_id: str
    session_id: str
    expires_at: int
    issued_at: float = 0.0


def _b64decode(text: str) -> bytes:
    import base64

    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _timestamp(value: Any) -> float:
    if isinstance(value, (int, float)):
        return float(value)
    return dt.datetime.fromisoformat(str(value)).timestamp()


class TokenVerifier:
    """Pure verification state: public keys by id and revoked session ids.

    A client sends the same access token with every request for minutes, so
    a verified token's claims are remembered (bounded, by the exact token
    text): the signature check (~0.15 ms of Ed25519 here) runs once per token,
    while expiry and revocation are checked on every request."""

    CACHE_SIZE = 20000

    def __init__(self, leeway: int = LEEWAY_SECONDS) -> None:
        self.leeway = leeway
        self.keys: dict[str, Ed25519PublicKey] = {}
        self.issuer = "crm-auth"
        self.audience = "crm-api"
        self.revoked: dict[str, float] = {}  # session id -> when its last access token expires
        # (tenant id, user id) -> when that user's sessions were ended: older tokens are refused
        self.users_ended: dict[tuple[str, str], float] = {}
        self._verified: dict[str, Claims] = {}

    def set_jwks(self, jwks: dict[str, Any]) -> None:
        keys = {}
        for jwk in jwks.get("keys", []):
            if jwk.get("kty") == "OKP" and jwk.get("crv") == "Ed25519" and jwk.get("kid"):
                keys[str(jwk["kid"])] = Ed25519PublicKey.from_public_bytes(_b64decode(jwk["x"]))
        if not keys:
            raise ValueError("the auth service published no Ed25519 key")
        if set(keys) != set(self.keys) or any(
                keys[k].public_bytes_raw() != self.keys[k].public_bytes_raw() for k in keys):
            self._verified.clear()  # a key left: what it signed must be checked again
        self.keys = keys
        self.issuer = str(jwks.get("issuer") or self.issuer)
        self.audience = str(jwks.get("audience") or self.audience)

    def revoke(self, session_id: str, expires_at: Any, now: float | None = None) -> None:
        try:
            until = _timestamp(expires_at) + self.leeway
        except (TypeError, ValueError):
            until = (now or time.time()) + 3600
        self.revoked[session_id] = max(until, self.revoked.get(session_id, 0.0))
        _revoked_gauge().set(len(self.revoked))

    def end_user(self, tenant_id: str, user_id: str, at: float | None = None) -> None:
        """Refuses every access token of the user issued before ``at`` (now): deactivation, deletion
        and a password change end all of the user's sessions. Tokens carry ``iat`` in milliseconds,
        so a login right after a password change works (clock skew between hosts shifts that edge
        by the skew; auth's ``session_revoked`` then names the old sessions themselves)."""
        at = at or time.time()
        key = (str(tenant_id), str(user_id))
        self.users_ended[key] = max(at, self.users_ended.get(key, 0.0))

    def prune(self, now: float | None = None) -> None:
        now = now or time.time()
        for sid in [s for s, until in self.revoked.items() if until < now]:
            self.revoked.pop(sid, None)
        horizon = now - MAX_ACCESS_TTL_SECONDS - self.leeway
        for key in [k for k, at in self.users_ended.items() if at < horizon]:
            self.users_ended.pop(key, None)
        _revoked_gauge().set(len(self.revoked))

    def verify(self, token: str, now: float | None = None) -> Claims:
        claims = self._verified.get(token)
        if claims is None:
            claims = self._verify_signed(token)
            if len(self._verified) >= self.CACHE_SIZE:
                self._verified.pop(next(iter(self._verified)))  # the oldest
            self._verified[token] = claims
        elif claims.expires_at + self.leeway < (now or time.time()):
            self._verified.pop(token, None)
            raise Unauthenticated("the access token has expired: refresh it", code="token_expired")
        if claims.session_id in self.revoked:
            raise Unauthenticated("the session has ended: log in again", code="session_ended")
        if self.users_ended:
            ended = self.users_ended.get((claims.tenant_id, claims.user_id))
            if ended is not None and claims.issued_at < ended:
                raise Unauthenticated("the session has ended: log in again", code="session_ended")
        return claims

    def _verify_signed(self, token: str) -> Claims:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            raise Unauthenticated("the access token is malformed", code="invalid_token") from None
        if header.get("alg") != ALGORITHM:
            raise Unauthenticated("the access token is not signed as expected", code="invalid_token")
        key = self.keys.get(str(header.get("kid")))
        if key is None:
            raise UnknownKey(str(header.get("kid")))
        try:
            claims = jwt.decode(token, key, algorithms=[ALGORITHM], audience=self.audience, issuer=self.issuer,
                                leeway=self.leeway, options={"require": _REQUIRED})
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("the access token has expired: refresh it", code="token_expired") from None
        except jwt.InvalidTokenError:
            raise Unauthenticated("the access token is not valid", code="invalid_token") from None
        return Claims(str(claims["tid"]), str(claims["sub"]), str(claims["sid"]), int(claims["exp"]),
                      float(claims["iat"]))


class TokenStore(SharedExtension):
    """One per gateway process: the verifier, kept in sync with the auth service."""

    def setup(self) -> None:
        settings = settings_of(self.container.config, Settings)
        self.verifier = TokenVerifier()
        self.rpc_config = {"AMQP_URI": settings.AMQP_URI}
        self.rpc_timeout = settings.RPC_TIMEOUT_SECONDS
        self.resync_seconds = settings.GATEWAY_TOKEN_RESYNC_SECONDS
        self.loaded = Event()
        self._fetch_lock = Semaphore(1)
        self._last_key_fetch = 0.0
        self._thread: Any = None

    def start(self) -> None:
        self._thread = self.container.spawn_managed_thread(self._sync_forever)

    def stop(self) -> None:
        if self._thread is not None:
            self._thread.kill()
            self._thread = None

    kill = stop

    # -- loading ------------------------------------------------------------
    def _proxy(self) -> ClusterRpcProxy:
        return ClusterRpcProxy(self.rpc_config, timeout=self.rpc_timeout)

    def sync(self) -> None:
        """Loads the public keys and the revoked sessions (raises when auth does not answer)."""
        with self._proxy() as cluster:
            jwks = cluster.auth.public_keys()
            revoked = cluster.auth.revoked_sessions()
        self.verifier.set_jwks(jwks)
        now = time.time()
        for item in revoked:
            self.verifier.revoke(str(item["session_id"]), item.get("expires_at"), now)
        self.verifier.prune(now)
        self._last_key_fetch = time.monotonic()
        _key_fetches().labels("ok").inc()
        if not self.loaded.ready():
            self.loaded.send(True)
            log.info("token keys loaded", extra={"fields": {"kids": sorted(self.verifier.keys)}})

    def _sync_forever(self) -> None:
        retry = 0.2
        first = True
        while True:
            try:
                self.sync()
                retry = 0.2
                # a second load right after start covers events published before the
                # broadcast queue was bound
                wait = 1.0 if first else self.resync_seconds
                first = False
            except Exception as exc:  # auth not up yet, or the broker is away: try again
                _key_fetches().labels("failed").inc()
                log.warning("cannot load token keys yet: %s: %s", exc.__class__.__name__, exc)
                wait, retry = retry, min(retry * 2, 5.0)
            eventlet.sleep(wait)

    def _refetch_keys(self) -> bool:
        """Fetches the keys again for an unknown key id; at most once per few seconds."""
        with self._fetch_lock:
            if time.monotonic() - self._last_key_fetch < KEY_REFETCH_MIN_SECONDS:
                return False
            self._last_key_fetch = time.monotonic()
            try:
                with self._proxy() as cluster:
                    self.verifier.set_jwks(cluster.auth.public_keys())
                _key_fetches().labels("ok").inc()
                return True
            except Exception as exc:
                _key_fetches().labels("failed").inc()
                log.warning("cannot refetch token keys: %s: %s", exc.__class__.__name__, exc)
                return False

    # -- use --------------------------------------------------------------------
    def verify(self, token: str) -> Claims:
        if not self.loaded.ready():
            _token_checks().labels("not_ready").inc()
            raise ServiceUnavailable("the gateway has not loaded the token keys yet; retry shortly",
                                     code="auth_keys_unavailable")
        try:
            try:
                claims = self.verifier.verify(token)
            except UnknownKey:
                if not self._refetch_keys():
                    raise Unauthenticated("the access token is signed with an unknown key",
                                          code="invalid_token") from None
                try:
                    claims = self.verifier.verify(token)
                except UnknownKey:
                    raise Unauthenticated("the access token is signed with an unknown key",
                                          code="invalid_token") from None
        except CrmError as exc:
            _token_checks().labels(exc.code).inc()
            raise
        _token_checks().labels("ok").inc()
        return claims

    def revoke(self, session_id: str, expires_at: Any) -> None:
        self.verifier.revoke(session_id, expires_at)
        self.verifier.prune()

    def end_user(self, tenant_id: str, user_id: str, at: float | None = None) -> None:
        self.verifier.end_user(tenant_id, user_id, at)


class TokenState(DependencyProvider):
    """Gives workers (the revocation handler, the auth routes) the process's
    ``TokenStore`` and the gateway settings they need."""

    store = TokenStore()

    def setup(self) -> None:
        settings = settings_of(self.container.config, Settings)
        self.trusted_hops = settings.GATEWAY_TRUSTED_PROXY_HOPS
        # a call that itself makes calls (login, tenant creation) waits for theirs
        self.nested_timeout = settings.RPC_TIMEOUT_SECONDS * 2 + 1

    class Handle:
        def __init__(self, provider: "TokenState") -> None:
            self._provider = provider
            self.nested_timeout = provider.nested_timeout

        def revoke(self, session_id: str, expires_at: Any) -> None:
            self._provider.store.revoke(session_id, expires_at)

        def end_user(self, tenant_id: str, user_id: str, at: float | None = None) -> None:
            self._provider.store.end_user(tenant_id, user_id, at)

        def client_ip(self, request: Any) -> str:
            return client_ip(request, self._provider.trusted_hops)

        def verify(self, token: str) -> Claims:
            return self._provider.store.verify(token)

    def get_dependency(self, worker_ctx: Any) -> "TokenState.Handle":
        return TokenState.Handle(self)


def client_ip(request: Any, trusted_hops: int = 0) -> str:
    """The client's address: with ``trusted_hops`` proxies in front (each appending to
    ``X-Forwarded-For``), the entry that the outermost trusted proxy added; otherwise
    the peer address. Never trust the header without a proxy that sets it."""
    remote = str(request.remote_addr or "")
    if trusted_hops > 0:
        chain = [p.strip() for p in request.headers.get("X-Forwarded-For", "").split(",") if p.strip()]
        if chain:
            return chain[-trusted_hops] if len(chain) >= trusted_hops else chain[0]
    return remote


def caller(context: Any) -> dict[str, str]:
    """The first argument of a service call made for the signed-in user."""
    tenant_id, user_id = context.get("tenant_id"), context.get("user_id")
    if not tenant_id or not user_id:
        raise Unauthenticated("not signed in")
    return {"tenant_id": str(tenant_id), "user_id": str(user_id)}
