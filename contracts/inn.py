"""ИНН and КПП of Russian counterparties.

ИНН (taxpayer number): 10 digits for organisations, 12 for individuals
(including individual entrepreneurs). The last digit (10-digit form) or the
last two (12-digit form) are check digits: a weighted sum of the preceding
digits, modulo 11, modulo 10. The first two digits are a region code, never
``00``.

КПП (registration reason code) belongs to organisations only: 9 characters,
``NNNN PP NNN`` where ``NNNN`` is the tax office, ``PP`` the reason (digits
or capital Latin letters since 2013) and ``NNN`` a sequence number. One
organisation (one ИНН) has a КПП per registered branch."""
from __future__ import annotations

import re

_W10 = (2, 4, 10, 3, 5, 9, 4, 6, 8)
_W11 = (7, 2, 4, 10, 3, 5, 9, 4, 6, 8)
_W12 = (3, 7, 2, 4, 10, 3, 5, 9, 4, 6, 8)
_KPP = re.compile(r"^\d{4}[\dA-Z]{2}\d{3}$")


def _check(digits: str, weights: tuple[int, ...]) -> int:
    return sum(int(d) * w for d, w in zip(digits, weights, strict=False)) % 11 % 10


def inn_problem(value: str) -> str | None:
    """Why ``value`` is not a valid ИНН, or None when it is."""
    if not value.isascii() or not value.isdigit():
        return "must consist of digits only"
    if len(value) not in (10, 12):
        return "must have 10 digits (organisation) or 12 digits (individual)"
    if value.startswith("00"):
        return "the region code (first two digits) cannot be 00"
    if len(value) == 10:
        if _check(value, _W10) != int(value[9]):
            return "check digit does not match (mistyped?)"
        return None
    if _check(value, _W11) != int(value[10]) or _check(value, _W12) != int(value[11]):
        return "check digits do not match (mistyped?)"
    return None


def is_valid_inn(value: str) -> bool:
    return inn_problem(value) is None


def kpp_problem(value: str) -> str | None:
    """Why ``value`` is not a valid КПП, or None when it is."""
    if len(value) != 9:
        return "must have 9 characters"
    if not _KPP.match(value):
        return "must be 4 digits, 2 digits or capital Latin letters, 3 digits"
    return None


def clean(value: str | None) -> str | None:
    """Spaces and dashes people type inside the numbers are dropped; empty means none."""
    if value is None:
        return None
    cleaned = re.sub(r"[\s\-]", "", value).upper()
    return cleaned or None
