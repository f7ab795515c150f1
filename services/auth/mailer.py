"""The platform's own mail: tells the owner of a new instance how to sign in.

SMTP settings ``PLATFORM_SMTP_*``; an empty host disables mail. TLS is
``starttls`` (port 587), ``ssl`` (implicit TLS, port 465) or ``none``;
certificates are verified against the system store, which ``SSL_CERT_FILE``
can replace. The message is the one place besides the creation response
where the admin password appears; it is never logged."""
from __future__ import annotations

import logging
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SmtpSettings:
    host: str = ""
    port: int = 587
    user: str = ""
    password: str = ""
    sender: str = ""
    tls: str = "starttls"
    timeout: float = 10.0

    @property
    def enabled(self) -> bool:
        return bool(self.host)

    @classmethod
    def from_settings(cls, s: Any) -> "SmtpSettings":
        """From the auth service's validated ``Settings``."""
        return cls(s.PLATFORM_SMTP_HOST, s.PLATFORM_SMTP_PORT, s.PLATFORM_SMTP_USER, s.PLATFORM_SMTP_PASSWORD,
                   s.PLATFORM_SMTP_FROM, s.PLATFORM_SMTP_TLS, s.PLATFORM_SMTP_TIMEOUT_SECONDS)


def welcome_message(sender: str, to: str, company_name: str, product_code: str, password: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = f"CRM: экземпляр «{company_name}» создан / your CRM instance is ready"
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2].strip(">") or None)
    msg.set_content(
        f"Здравствуйте!\n\n"
        f"Для «{company_name}» создан экземпляр CRM. Данные для входа:\n\n"
        f"  Код продукта: {product_code}\n"
        f"  Логин: admin\n"
        f"  Пароль: {password}\n\n"
        f"Смените пароль после первого входа.\n\n"
        f"---\n\n"
        f"Your CRM instance for \"{company_name}\" is ready. Sign in with:\n\n"
        f"  Product code: {product_code}\n"
        f"  Login: admin\n"
        f"  Password: {password}\n\n"
        f"Please change the password after the first sign-in.\n"
    )
    return msg


def send(settings: SmtpSettings, msg: EmailMessage) -> None:
    """Sends one message; raises on any failure (the caller decides what that means)."""
    context = ssl.create_default_context()
    client: smtplib.SMTP
    if settings.tls == "ssl":
        client = smtplib.SMTP_SSL(settings.host, settings.port, timeout=settings.timeout, context=context)
    else:
        client = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout)
    try:
        client.ehlo()
        if settings.tls == "starttls":
            client.starttls(context=context)
            client.ehlo()
        if settings.user:
            client.login(settings.user, settings.password)
        client.send_message(msg)
    finally:
        try:
            client.quit()
        except (smtplib.SMTPException, OSError):
            client.close()
