"""The password policy and argon2id hashing.

Policy (from the quick-start guide): at least 10 characters, with digits,
upper- and lower-case letters. Hashes are argon2id at the OWASP minimum
(m=19 MiB, t=2, p=1) or above; a stored hash made with weaker parameters is
upgraded on the next successful login."""
from __future__ import annotations

import secrets
from typing import Any

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from contracts.passwords import MAX_LENGTH, MIN_LENGTH, check_new_password, policy_problems

__all__ = ["MASK", "MAX_LENGTH", "MIN_LENGTH", "Hasher", "check_new_password", "policy_problems"]

MASK = "***"

# OWASP password storage cheat sheet, argon2id minimum configuration
OWASP_MEMORY_KIB = 19 * 1024
OWASP_TIME_COST = 2
OWASP_PARALLELISM = 1


class Hasher:
    """argon2id hashing; ``verify`` always costs one argon2 computation."""

    def __init__(self, memory_kib: int = OWASP_MEMORY_KIB, time_cost: int = OWASP_TIME_COST,
                 parallelism: int = OWASP_PARALLELISM, offload: Any = None) -> None:
        if memory_kib < OWASP_MEMORY_KIB or time_cost < OWASP_TIME_COST or parallelism < OWASP_PARALLELISM:
            raise ValueError("argon2 parameters below the OWASP minimum (m=19456 KiB, t=2, p=1)")
        self._ph = PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism,
                                  type=Type.ID)
        # runs the CPU-bound hashing off the eventlet hub (eventlet.tpool.execute) when given
        self._offload = offload or (lambda fn, *args: fn(*args))
        self._dummy = self._ph.hash(secrets.token_urlsafe(24))

    def hash(self, password: str) -> str:
        return str(self._offload(self._ph.hash, password))

    def verify(self, stored: str | None, password: str) -> bool:
        """True when ``password`` matches ``stored``; with no stored hash it
        verifies against a dummy so the time taken is the same."""
        target = stored or self._dummy
        try:
            ok = bool(self._offload(self._ph.verify, target, password))
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            ok = False
        return ok and stored is not None

    def needs_rehash(self, stored: str) -> bool:
        try:
            return bool(self._ph.check_needs_rehash(stored))
        except (InvalidHashError, ValueError):
            return True
