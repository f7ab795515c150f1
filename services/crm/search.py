"""``q``: fragment search over names, ИНН/КПП, phones and e-mails.

Every record keeps a lower-case ``search`` text (``ё`` folded to ``е``)
holding what ``q`` may find, including each phone's digits as entered and in
E.164 (so ``8916``, ``7916`` and ``916123`` all find ``8 (916) 123-45-67``).
A query is split into words and every word must occur (``LIKE '%word%'``,
served by the pg_trgm GIN index on ``(tenant_id, search)``). A query made
only of digits and phone punctuation (``+7 (916) 12``) searches its digits;
when it is a whole number (10 digits or more that normalise, as stored
phones are: ``89161234560``, ``8 (916) 123-45-60``, ``+7 916 123-45-60``),
it searches the E.164 digits every stored phone carries, so the trunk prefix
8 finds a number entered with +7 and the other way round.
Words shorter than 3 characters cannot use trigrams; they still work, by
scanning the tenant's rows the other conditions leave."""
from __future__ import annotations

import re
from typing import Any, Iterable

from contracts.phones import phone_digits, try_normalize_phone

_PHONEISH = re.compile(r"^[\d\s+()\-.]+$")
MAX_WORDS = 8


def fold(text: str) -> str:
    return text.lower().replace("ё", "е")


def search_text(*parts: Any, phones: Iterable[str] = (), emails: Iterable[str] = ()) -> str:
    words: list[str] = [fold(str(p)) for p in parts if p not in (None, "")]
    for phone in phones:
        digits = phone_digits(phone)
        words.append(digits)
        e164 = try_normalize_phone(phone)
        if e164 and e164[1:] != digits:
            words.append(e164[1:])
    words.extend(fold(e) for e in emails)
    return " ".join(words)


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def terms(q: str) -> list[str]:
    """The LIKE fragments a query asks for (empty: no search)."""
    q = q.strip()
    if not q:
        return []
    digits = phone_digits(q)
    if _PHONEISH.match(q) and len(digits) >= 3:
        e164 = try_normalize_phone(q) if len(digits) >= 10 else None
        return [e164[1:] if e164 else digits]
    return [fold(word) for word in q.split()[:MAX_WORDS]]


def condition(column: Any, q: str | None) -> list[Any]:
    """The WHERE conditions for ``q`` on a ``search`` column."""
    if not q:
        return []
    return [column.like(f"%{_escape_like(term)}%", escape="\\") for term in terms(q)]
