"""The audit journal's vocabulary, one for every source (users, crm, onec, and the
coming mail and telephony entries): what ``action`` an entry carries.
``GET /api/v1/journal?action=create`` finds every creation, whoever made it."""
from __future__ import annotations

# the event a service that owns records sends for each change it makes; the users service journals it
RECORD_CHANGED = "record_changed"

CREATE, UPDATE, DELETE = "create", "update", "delete"
PASSWORD_RESET = "password_reset"  # a new instance's admin password issued again
LOCKED_OUT = "locked_out"          # too many failed logins (from auth)
IMPORT = "import"                  # a CSV import or a 1C exchange file, one entry for all its rows (onec)
REVERT = "revert"                  # a CSV import reverted (from onec)
EXPORT = "export"                  # a 1C exchange file written (from onec)
SETTINGS = "settings"              # the 1C exchange settings changed (from onec)

ACTIONS = (CREATE, UPDATE, DELETE, PASSWORD_RESET, LOCKED_OUT, IMPORT, REVERT, EXPORT, SETTINGS)

# the forms crm used before the vocabulary was one (still accepted from events in flight)
LEGACY = {"created": CREATE, "updated": UPDATE, "deleted": DELETE}


def normalized(action: str) -> str:
    return LEGACY.get(action, action)
