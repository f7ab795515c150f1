"""Product codes: what a tenant's staff type to reach their instance.

A code is 11 random symbols and one check symbol, shown in three groups of
four (``K7QM-3XWA-9RTC``). The alphabet has 31 symbols: the digits 2–9 and
the Latin capitals without I, L and O, so nothing can be misread as 0/O or
1/I/L. 31**11 ≈ 2.5·10^16 codes (≈ 54 bits): not guessable, the more so as a
login also needs a login and a password and failures are throttled.

The check symbol makes ``sum((i + 1) * value(s_i)) ≡ 0 (mod 31)`` over all
12 symbols. 31 is prime and the weights 1..12 are distinct and non-zero
modulo 31, so every single-symbol typo and every swap of two symbols is
detected: a mistyped code is rejected, never matched to another tenant.

Input is forgiving about form only: case, spaces and dashes are ignored."""
from __future__ import annotations

import re
import secrets

ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
MODULUS = len(ALPHABET)  # 31, prime
DATA_LENGTH = 11
LENGTH = DATA_LENGTH + 1
GROUP = 4
_VALUE = {ch: i for i, ch in enumerate(ALPHABET)}
_SEPARATORS = re.compile(r"[\s\-_]+")

assert MODULUS == 31 and LENGTH < MODULUS


class InvalidProductCode(ValueError):
    """Not a product code: wrong length, a symbol outside the alphabet or a failed check."""


def check_symbol(data: str) -> str:
    """The symbol that completes ``data`` (``DATA_LENGTH`` symbols) to a valid code."""
    total = sum((i + 1) * _VALUE[ch] for i, ch in enumerate(data))
    weight = len(data) + 1
    # weight * value ≡ -total (mod 31): weight is invertible since 31 is prime
    value = (-total * pow(weight, -1, MODULUS)) % MODULUS
    return ALPHABET[value]


def is_consistent(code: str) -> bool:
    return sum((i + 1) * _VALUE[ch] for i, ch in enumerate(code)) % MODULUS == 0


def generate() -> str:
    """A new random code in canonical form (12 symbols, no separators)."""
    data = "".join(secrets.choice(ALPHABET) for _ in range(DATA_LENGTH))
    return data + check_symbol(data)


def normalize(text: str) -> str:
    """The canonical form of a typed code; raises ``InvalidProductCode``."""
    if not isinstance(text, str) or len(text) > 64:
        raise InvalidProductCode("not a product code")
    code = _SEPARATORS.sub("", text).upper()
    if len(code) != LENGTH:
        raise InvalidProductCode(f"a product code has {LENGTH} symbols")
    bad = sorted({ch for ch in code if ch not in _VALUE})
    if bad:
        raise InvalidProductCode(f"symbols not used in product codes: {''.join(bad)}")
    if not is_consistent(code):
        raise InvalidProductCode("the check symbol does not match: a symbol is mistyped")
    return code


def display(code: str) -> str:
    """``K7QM3XWA9RTC`` -> ``K7QM-3XWA-9RTC``."""
    return "-".join(code[i:i + GROUP] for i in range(0, len(code), GROUP))
