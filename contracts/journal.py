"""The audit journal's vocabulary, one for every source (users, crm, and the
coming mail, telephony and 1C entries): what ``action`` an entry carries.
``GET /api/v1/journal?action=create`` finds every creation, whoever made it."""
from __future__ import annotations

CREATE, UPDATE, DELETE = "create", "update", "delete"
PASSWORD_RESET = "password_reset"  # a new instance's admin password issued again
LOCKED_OUT = "locked_out"          # too many failed logins (from auth)

ACTIONS = (CREATE, UPDATE, DELETE, PASSWORD_RESET, LOCKED_OUT)

# the forms crm used before the vocabulary was one (still accepted from events in flight)
LEGACY = {"created": CREATE, "updated": UPDATE, "deleted": DELETE}


def normalized(action: str) -> str:
    return LEGACY.get(action, action)
