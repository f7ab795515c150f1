"""Reversible secrets (SIP and mail passwords) encrypted at rest with
AES-256-GCM. Keys come from ``CRM_SECRET_KEYS``: ``kid:base64key[,kid:key…]``,
the first is the primary (encrypts), the others still decrypt. Rotation
without downtime: put the new key first and keep the old one, re-encrypt
stored values (``reencrypt``), then drop the old key."""
from __future__ import annotations

import base64
import os
import re
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from nameko.extensions import DependencyProvider

from crm_shared.config import ConfigError, ServiceSettings, settings_of

PREFIX = "v1"
_KID = re.compile(r"^[A-Za-z0-9_-]{1,32}$")


class SecretDecryptionError(Exception):
    """A stored secret cannot be decrypted (unknown key id or tampered value)."""


def generate_key() -> str:
    return base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("=")


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SecretBox:
    def __init__(self, keys: list[tuple[str, bytes]]) -> None:
        if not keys:
            raise ConfigError("CRM_SECRET_KEYS: at least one key is required")
        self.primary_kid = keys[0][0]
        self._keys = {kid: AESGCM(key) for kid, key in keys}

    @classmethod
    def from_spec(cls, spec: str | None) -> "SecretBox":
        keys: list[tuple[str, bytes]] = []
        for part in (spec or "").split(","):
            part = part.strip()
            if not part:
                continue
            kid, sep, encoded = part.partition(":")
            if not sep or not _KID.match(kid):
                raise ConfigError("CRM_SECRET_KEYS: each key is 'kid:base64key' (kid: letters, digits, - or _)")
            try:
                key = _b64decode(encoded)
            except ValueError:
                raise ConfigError(f"CRM_SECRET_KEYS: key '{kid}' is not base64") from None
            if len(key) != 32:
                raise ConfigError(f"CRM_SECRET_KEYS: key '{kid}' must be 32 bytes (256 bits)")
            keys.append((kid, key))
        return cls(keys)

    def encrypt(self, plaintext: str, context: str = "") -> str:
        """``context`` (e.g. "tenant:mail_account:42") is authenticated, so a
        ciphertext copied to another row does not decrypt."""
        nonce = os.urandom(12)
        sealed = self._keys[self.primary_kid].encrypt(nonce, plaintext.encode(), context.encode())
        return f"{PREFIX}.{self.primary_kid}.{base64.urlsafe_b64encode(nonce + sealed).decode().rstrip('=')}"

    @staticmethod
    def key_id(token: str) -> str:
        parts = token.split(".")
        if len(parts) != 3 or parts[0] != PREFIX:
            raise SecretDecryptionError("not an encrypted secret")
        return parts[1]

    def decrypt(self, token: str, context: str = "") -> str:
        kid = self.key_id(token)
        aead = self._keys.get(kid)
        if aead is None:
            raise SecretDecryptionError(f"unknown key id '{kid}'")
        raw = _b64decode(token.split(".")[2])
        try:
            return aead.decrypt(raw[:12], raw[12:], context.encode()).decode()
        except InvalidTag:
            raise SecretDecryptionError("secret does not authenticate") from None

    def needs_reencrypt(self, token: str) -> bool:
        return self.key_id(token) != self.primary_kid

    def reencrypt(self, token: str, context: str = "") -> str:
        """The same secret under the primary key (unchanged when already there)."""
        if not self.needs_reencrypt(token):
            return token
        return self.encrypt(self.decrypt(token, context), context)


class Secrets(DependencyProvider):
    """Injects the ``SecretBox`` built from the ``CRM_SECRET_KEYS`` setting."""

    def setup(self) -> None:
        self.box = SecretBox.from_spec(settings_of(self.container.config, ServiceSettings).CRM_SECRET_KEYS)

    def get_dependency(self, worker_ctx: Any) -> SecretBox:
        return self.box


def reencrypt_table(session: Any, box: SecretBox, model: Any, key: tuple[str, ...],
                    secrets: Any, batch: int = 500) -> tuple[int, list[str]]:
    """Re-encrypts a table's secrets under the primary key, in batches by the primary ``key``
    columns (after a key rotation). ``secrets(row)`` names the row's (attribute, context) pairs;
    a missing value is skipped. Answers how many secrets changed and the rows (``a/b``) whose
    secret no configured key opens (left as they are). Safe to run again, and while the service
    runs (each batch is locked and committed)."""
    import sqlalchemy as sa

    columns = [getattr(model, name) for name in key]
    changed, unreadable = 0, list[str]()
    last: tuple[Any, ...] | None = None
    while True:
        query = sa.select(model).order_by(*columns).limit(batch)
        if last is not None:
            query = query.where(sa.tuple_(*columns) > sa.tuple_(*last))
        rows = list(session.scalars(query.with_for_update()))
        if not rows:
            return changed, unreadable
        for row in rows:
            last = tuple(getattr(row, name) for name in key)
            try:
                for attribute, context in secrets(row):
                    token = getattr(row, attribute)
                    if token and box.needs_reencrypt(token):
                        setattr(row, attribute, box.reencrypt(token, context))
                        changed += 1
            except SecretDecryptionError:
                unreadable.append("/".join(str(v) for v in last))
        session.commit()


def reencrypt_command(argv: list[str], doc: str, config_file: Any, settings_cls: Any, what: str,
                      reencrypt: Any) -> int:
    """``python -m services.<name>.reencrypt``: the service's settings from its config file and the
    environment, ``reencrypt(session, box)`` once; exit 1 naming the rows no key opens."""
    import sys

    from sqlalchemy.orm import Session

    from crm_shared.config import load_settings
    from crm_shared.db import make_engine

    if argv:
        print(doc, file=sys.stderr)
        return 2
    try:
        settings, _ = load_settings(settings_cls, config_file)
        box = SecretBox.from_spec(settings.CRM_SECRET_KEYS)
    except ConfigError as exc:
        print(f"configuration: {exc}", file=sys.stderr)
        return 2
    assert settings.DATABASE_URL
    engine = make_engine(settings.DATABASE_URL, 1, f"{settings.SERVICE_NAME}-reencrypt")
    with Session(engine) as session:
        changed, unreadable = reencrypt(session, box)
    print(f"re-encrypted {changed} {what} secret(s) under key '{box.primary_kid}'")
    if unreadable:
        print(f"{len(unreadable)} row(s) have a secret no configured key opens (left as it is; it must be "
              f"entered again): {', '.join(unreadable[:50])}", file=sys.stderr)
        return 1
    return 0
