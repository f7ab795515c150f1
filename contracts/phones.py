"""Phone numbers and e-mail addresses: stored as entered (shown so), and
normalised for matching (an incoming call's number or a mail's sender is
looked up by its normalised form).

Phone rules (Russia first, then the international forms):

- an extension is cut off (``доб. 12``, ``ext 12``, ``x12``, ``#12``, ``,12``);
- ``+`` followed by digits is already international: ``+`` and the digits;
- ``00…`` and ``810…`` are international access codes: the rest is the number;
- 11 digits starting with 8 or 7 are a Russian number: ``+7`` and the last 10;
- 10 digits are a Russian number without the trunk prefix: ``+7`` and them;
- 11 to 15 digits otherwise: an international number written without ``+``;
- anything shorter cannot be placed (a local number without its area code).

So ``8 (916) 123-45-67``, ``+7 916 1234567`` and ``9161234567`` all become
``+79161234567``. A valid E.164 number has 7 to 15 digits after the ``+``."""
from __future__ import annotations

import re

_EXTENSION = re.compile(r"(?:доб\.?|добавочный|ext\.?|extension|x|#|,|;|\bвн\.?)\s*\d*\s*$", re.IGNORECASE)
_ALLOWED = re.compile(r"^[\d\s+()\-./]*$")
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s.]{2,}$")
MIN_DIGITS, MAX_DIGITS = 7, 15


class PhoneError(ValueError):
    """The text is not a phone number that can be normalised."""


def normalize_phone(text: str) -> str:
    """E.164 (``+79161234567``) or ``PhoneError`` saying why not."""
    raw = text.strip()
    main = _EXTENSION.sub("", raw).strip()
    if not main:
        raise PhoneError("is empty")
    if not _ALLOWED.match(main):
        raise PhoneError("may contain only digits, spaces, + ( ) - . / and an extension (доб. 123)")
    digits = re.sub(r"\D", "", main)
    plus = main.startswith("+")
    if plus:
        number = digits
    elif digits.startswith("00"):
        number = digits[2:]
    elif len(digits) > 11 and digits.startswith("810"):
        number = digits[3:]
    elif len(digits) == 11 and digits[0] in "78":
        number = "7" + digits[1:]
    elif len(digits) == 10:
        number = "7" + digits
    elif 11 <= len(digits) <= MAX_DIGITS:
        number = digits
    else:
        raise PhoneError("too short to tell the country and area code: write it as +7 XXX XXX-XX-XX")
    if not MIN_DIGITS <= len(number) <= MAX_DIGITS or number.startswith("0"):
        raise PhoneError(f"an international number has {MIN_DIGITS} to {MAX_DIGITS} digits after the country "
                         "code's +, and no country code starts with 0")
    return "+" + number


def try_normalize_phone(text: str | None) -> str | None:
    """The E.164 form, or None (for matching input that may be anything)."""
    if not text:
        return None
    try:
        return normalize_phone(str(text))
    except PhoneError:
        return None


def phone_digits(text: str) -> str:
    return re.sub(r"\D", "", text)


def normalize_email(text: str) -> str:
    """Lower case, surrounding spaces and angle brackets removed; ``ValueError`` when not an address."""
    value = text.strip().strip("<>").strip().lower()
    if len(value) > 320 or not _EMAIL.match(value):
        raise ValueError("not a valid e-mail address")
    return value


def try_normalize_email(text: str | None) -> str | None:
    if not text:
        return None
    try:
        return normalize_email(str(text))
    except ValueError:
        return None
