"""``python -m services.mail.reencrypt``: re-encrypts every stored mail
password under the first key of ``CRM_SECRET_KEYS`` (after a key rotation).

Rotation: put the new key first and keep the old one after it
(``CRM_SECRET_KEYS=new:…,old:…``), roll the services, run this once
(``MAIL_DATABASE_URL`` and ``CRM_SECRET_KEYS`` from the environment, as the
service reads them), then drop the old key. It is safe to run again and
while the service runs; it prints how many secrets it re-encrypted, and
exits 1 naming the accounts whose secret no configured key opens."""
from __future__ import annotations

import sys
from pathlib import Path

from sqlalchemy.orm import Session

from crm_shared.config import ConfigError, load_settings
from crm_shared.db import make_engine
from crm_shared.secrets import SecretBox
from services.mail.accounts import reencrypt_all
from services.mail.settings import Settings


def main(argv: list[str]) -> int:
    if argv:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        settings, _ = load_settings(Settings, Path(__file__).with_name("config.yaml"))
        box = SecretBox.from_spec(settings.CRM_SECRET_KEYS)
    except ConfigError as exc:
        print(f"configuration: {exc}", file=sys.stderr)
        return 2
    assert settings.DATABASE_URL
    engine = make_engine(settings.DATABASE_URL, 1, "mail-reencrypt")
    with Session(engine) as session:
        changed, unreadable = reencrypt_all(session, box)
    print(f"re-encrypted {changed} mail secret(s) under key '{box.primary_kid}'")
    if unreadable:
        print(f"{len(unreadable)} account(s) have a secret no configured key opens (left as it is; the user must "
              f"enter the password again): {', '.join(unreadable[:50])}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
