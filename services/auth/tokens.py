"""Access and refresh tokens.

Access tokens are JWTs signed with Ed25519 (``EdDSA``), short-lived, with
the key id in the ``kid`` header; the gateway verifies them locally with the
public keys it fetched once (``auth.public_keys``). Claims: ``iss``, ``aud``,
``sub`` (user id), ``tid`` (tenant id), ``sid`` (session id), ``iat``, ``exp``.

Signing keys come from ``AUTH_SIGNING_KEYS``: ``kid:base64url-seed[,kid:seed…]``
(a 32-byte Ed25519 seed each). The first key signs; every listed key is
published, so tokens signed before a rotation stay valid until they expire.
Rotation: put a new key first and keep the old one for at least the access
token lifetime, then drop it. ``python -m services.auth.tokens`` prints a
new key.

Refresh tokens are opaque random strings that name their tenant and session
(``<tenant_id>.<session_id>.<secret>``); only their SHA-256 is stored (they
carry 256 random bits, so a slow hash adds nothing)."""
from __future__ import annotations

import base64
import hashlib
import os
import re
import secrets
import sys
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from crm_shared.config import ConfigError

ISSUER = "crm-auth"
AUDIENCE = "crm-api"
ALGORITHM = "EdDSA"
_KID = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
_ID = re.compile(r"^[0-9a-f]{32}$")


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def generate_key_spec(kid: str | None = None) -> str:
    kid = kid or "k" + secrets.token_hex(4)
    return f"{kid}:{_b64encode(os.urandom(32))}"


@dataclass(frozen=True)
class SigningKey:
    kid: str
    private_key: Ed25519PrivateKey

    def public_jwk(self) -> dict[str, str]:
        raw = self.private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        return {"kty": "OKP", "crv": "Ed25519", "alg": ALGORITHM, "use": "sig", "kid": self.kid,
                "x": _b64encode(raw)}


class SigningKeys:
    def __init__(self, keys: list[SigningKey]) -> None:
        if not keys:
            raise ConfigError("AUTH_SIGNING_KEYS: at least one signing key is required "
                              "(generate one with: python -m services.auth.tokens)")
        kids = [k.kid for k in keys]
        if len(set(kids)) != len(kids):
            raise ConfigError("AUTH_SIGNING_KEYS: key ids must be unique")
        self.keys = keys
        self.active = keys[0]

    @classmethod
    def from_spec(cls, spec: str | None) -> "SigningKeys":
        keys: list[SigningKey] = []
        for part in (spec or "").split(","):
            part = part.strip()
            if not part:
                continue
            kid, sep, encoded = part.partition(":")
            if not sep or not _KID.match(kid):
                raise ConfigError("AUTH_SIGNING_KEYS: each key is 'kid:base64url-seed' "
                                  "(kid: 1-32 letters, digits, - or _)")
            try:
                seed = _b64decode(encoded)
            except ValueError:
                raise ConfigError(f"AUTH_SIGNING_KEYS: key '{kid}' is not base64") from None
            if len(seed) != 32:
                raise ConfigError(f"AUTH_SIGNING_KEYS: key '{kid}' must be a 32-byte Ed25519 seed")
            keys.append(SigningKey(kid, Ed25519PrivateKey.from_private_bytes(seed)))
        return cls(keys)

    def jwks(self) -> dict[str, Any]:
        return {"issuer": ISSUER, "audience": AUDIENCE, "keys": [k.public_jwk() for k in self.keys]}

    def sign_access_token(self, *, tenant_id: str, user_id: str, session_id: str, issued_at: float,
                          ttl_seconds: int) -> str:
        claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": user_id, "tid": tenant_id, "sid": session_id,
                  "iat": issued_at, "exp": int(issued_at) + ttl_seconds}
        return jwt.encode(claims, self.active.private_key, algorithm=ALGORITHM, headers={"kid": self.active.kid})


# -- refresh tokens ---------------------------------------------------------

@dataclass(frozen=True)
class RefreshToken:
    tenant_id: str
    session_id: str
    secret: str

    def __str__(self) -> str:
        return f"{self.tenant_id}.{self.session_id}.{self.secret}"

    @property
    def digest(self) -> str:
        return hash_refresh_token(str(self))


def new_refresh_token(tenant_id: str, session_id: str) -> RefreshToken:
    return RefreshToken(tenant_id, session_id, secrets.token_urlsafe(32))


def parse_refresh_token(text: str) -> RefreshToken | None:
    """The parts of a well-formed refresh token; None for anything else."""
    if not isinstance(text, str) or len(text) > 200:
        return None
    parts = text.split(".")
    if len(parts) != 3 or not _ID.match(parts[0]) or not _ID.match(parts[1]) or len(parts[2]) < 32:
        return None
    return RefreshToken(parts[0], parts[1], parts[2])


def hash_refresh_token(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


if __name__ == "__main__":
    print(generate_key_spec(sys.argv[1] if len(sys.argv) > 1 else None))
