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

from crm_shared.secrets import reencrypt_command
from services.mail.accounts import reencrypt_all
from services.mail.settings import Settings


def main(argv: list[str]) -> int:
    return reencrypt_command(argv, str(__doc__), Path(__file__).with_name("config.yaml"), Settings, "mail",
                             reencrypt_all)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
