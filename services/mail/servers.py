"""Talking to the user's IMAP and SMTP servers, and saying honestly why it
failed.

Every failure becomes a ``MailServerError`` with one of the reasons of
``contracts.mail.REASONS`` (dns, refused, timeout, tls, auth,
plaintext_refused, protocol) and a sentence a user can act on. TLS verifies
the certificate and the host name against the system store
(``SSL_CERT_FILE`` replaces it). A password is never sent over an
unencrypted connection the server marks as not allowing it (IMAP
``LOGINDISABLED``), nor at all when "require secure authentication" is on."""
from __future__ import annotations

import contextlib
import os
import smtplib
import socket
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any, Callable, TypeVar

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError, LoginError

T = TypeVar("T")

SPECIAL_USE = (b"\\Sent", b"\\Drafts", b"\\Trash", b"\\Junk", b"\\Archive", b"\\All", b"\\Flagged")


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int
    encryption: str          # ssl, starttls, none
    login: str | None
    password: str | None
    timeout: float           # seconds, per connect and per read

    def __repr__(self) -> str:  # never the password, whatever logs it
        return f"Endpoint({self.host}:{self.port} {self.encryption} login={self.login!r})"


class MailServerError(Exception):
    def __init__(self, reason: str, message: str, smtp_code: int | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.smtp_code = smtp_code


def tls_context() -> ssl.SSLContext:
    return ssl.create_default_context(cafile=os.environ.get("SSL_CERT_FILE") or None)


def _network_error(exc: BaseException, ep: Endpoint, side: str) -> MailServerError | None:
    where = f"{side} server {ep.host}:{ep.port}"
    if isinstance(exc, socket.gaierror):
        return MailServerError("dns", f"the {side} server name '{ep.host}' does not resolve ({exc.strerror})")
    if isinstance(exc, ConnectionRefusedError):
        return MailServerError("refused", f"the {where} refused the connection (nothing listens on that port)")
    if isinstance(exc, (TimeoutError, socket.timeout)):
        return MailServerError("timeout", f"the {where} did not answer within {ep.timeout:g} s")
    if isinstance(exc, ssl.SSLCertVerificationError):
        return MailServerError("tls", f"the {where} presented a certificate that cannot be trusted: "
                                      f"{exc.verify_message or exc.reason}")
    if isinstance(exc, ssl.SSLError):
        return MailServerError("tls", f"TLS with the {where} failed: {exc.reason or exc}")
    if isinstance(exc, (ConnectionResetError, BrokenPipeError, EOFError)):
        return MailServerError("protocol", f"the {where} closed the connection")
    if isinstance(exc, OSError):
        return MailServerError("refused", f"cannot reach the {where}: {exc.strerror or exc}")
    return None


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


# -- IMAP ----------------------------------------------------------------------------------

def imap_login(ep: Endpoint, app_password_hint: str | None = None) -> IMAPClient:
    """A logged-in client; ``MailServerError`` naming the reason otherwise."""
    client: IMAPClient | None = None
    try:
        client = IMAPClient(ep.host, port=ep.port, ssl=ep.encryption == "ssl", ssl_context=tls_context(),
                            timeout=ep.timeout)
        if ep.encryption == "starttls":
            client.starttls(ssl_context=tls_context())
        elif ep.encryption == "none" and client.has_capability("LOGINDISABLED"):
            raise MailServerError("plaintext_refused", f"the IMAP server {ep.host}:{ep.port} refuses a login over "
                                                       "an unencrypted connection: choose SSL or STARTTLS")
        client.login(ep.login or "", ep.password or "")
        return client
    except MailServerError:
        _close(client)
        raise
    except LoginError as exc:
        _close(client)
        text = _text(exc.args[0] if exc.args else exc)
        if "PRIVACYREQUIRED" in text.upper() or "plaintext" in text.lower():
            raise MailServerError("plaintext_refused", f"the IMAP server refuses a plaintext login: {text}; "
                                                       "choose SSL or STARTTLS") from None
        hint = f" {app_password_hint}" if app_password_hint else ""
        raise MailServerError("auth", f"the IMAP server refused the login: {text}.{hint}") from None
    except IMAPClientError as exc:
        _close(client)
        raise MailServerError("protocol", f"the IMAP server answered unexpectedly: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - classified below or re-raised
        _close(client)
        classified = _network_error(exc, ep, "IMAP")
        if classified is None:
            raise
        raise classified from None


def _close(client: IMAPClient | None) -> None:
    if client is None:
        return
    try:
        client.logout()
    except Exception:  # noqa: BLE001 - closing a broken connection
        with contextlib.suppress(Exception):
            client.shutdown()


def imap_call(ep: Endpoint, work: Callable[[IMAPClient], T], app_password_hint: str | None = None) -> T:
    """Logs in, runs ``work(client)``, logs out; network and protocol failures classified."""
    client = imap_login(ep, app_password_hint)
    try:
        return work(client)
    except Exception as exc:  # noqa: BLE001 - classified, or re-raised as it is
        classified = classify(exc, ep, "IMAP")
        if classified is None or classified is exc:
            raise
        raise classified from None
    finally:
        _close(client)


def classify(exc: BaseException, ep: Endpoint, side: str) -> MailServerError | None:
    if isinstance(exc, MailServerError):
        return exc
    if isinstance(exc, IMAPClientError):
        return MailServerError("protocol", f"the IMAP server answered unexpectedly: {exc}")
    return _network_error(exc, ep, side)


def folders(client: IMAPClient) -> list[dict[str, Any]]:
    """The server's folders (names decoded from modified UTF-7 by imapclient), special use marked."""
    found = []
    for flags, delimiter, name in client.list_folders():
        names = [f if isinstance(f, bytes) else str(f).encode() for f in flags]
        special = next((f.decode() for f in names if f.lower() in {s.lower() for s in SPECIAL_USE}), None)
        found.append({"name": _text(name), "flags": [f.decode() for f in names], "special_use": special,
                      "delimiter": _text(delimiter) if delimiter else None})
    found.sort(key=lambda f: (f["name"] != "INBOX", f["special_use"] is None, str(f["name"]).lower()))
    return found


# -- SMTP ----------------------------------------------------------------------------------

def smtp_login(ep: Endpoint, authenticate: bool, require_secure: bool,
               app_password_hint: str | None = None) -> smtplib.SMTP:
    client: smtplib.SMTP | None = None
    try:
        if ep.encryption == "ssl":
            client = smtplib.SMTP_SSL(ep.host, ep.port, timeout=ep.timeout, context=tls_context())
        else:
            client = smtplib.SMTP(ep.host, ep.port, timeout=ep.timeout)
        client.ehlo()
        if ep.encryption == "starttls":
            client.starttls(context=tls_context())
            client.ehlo()
        if authenticate:
            if ep.encryption == "none" and require_secure:
                raise MailServerError("plaintext_refused", "secure authentication is required and the SMTP "
                                                           "connection is not encrypted: choose SSL or STARTTLS")
            if not client.has_extn("auth"):
                if ep.encryption == "none":
                    raise MailServerError("plaintext_refused", f"the SMTP server {ep.host}:{ep.port} offers no "
                                                               "login on an unencrypted connection: choose SSL "
                                                               "or STARTTLS")
                raise MailServerError("protocol", f"the SMTP server {ep.host}:{ep.port} offers no login (AUTH)")
            client.login(ep.login or "", ep.password or "")
        return client
    except MailServerError:
        _quit(client)
        raise
    except smtplib.SMTPAuthenticationError as exc:
        _quit(client)
        hint = f" {app_password_hint}" if app_password_hint else ""
        raise MailServerError("auth", f"the SMTP server refused the login: {exc.smtp_code} "
                                      f"{_text(exc.smtp_error)}.{hint}", exc.smtp_code) from None
    except smtplib.SMTPResponseException as exc:
        _quit(client)
        raise MailServerError("protocol", f"the SMTP server answered {exc.smtp_code} {_text(exc.smtp_error)}",
                              exc.smtp_code) from None
    except smtplib.SMTPException as exc:
        _quit(client)
        raise MailServerError("protocol", f"the SMTP server {ep.host}:{ep.port}: {exc}") from None
    except Exception as exc:  # noqa: BLE001
        _quit(client)
        classified = _network_error(exc, ep, "SMTP")
        if classified is None:
            raise
        raise classified from None


def _quit(client: smtplib.SMTP | None) -> None:
    if client is None:
        return
    try:
        client.quit()
    except Exception:  # noqa: BLE001
        client.close()


def smtp_send(client: smtplib.SMTP, ep: Endpoint, msg: EmailMessage, sender: str,
              recipients: list[str]) -> dict[str, str]:
    """Sends; the server's own reason on a refusal. Answers the recipients refused while others
    were accepted (the message went out to those)."""
    try:
        refused = client.send_message(msg, from_addr=sender, to_addrs=recipients)
    except smtplib.SMTPRecipientsRefused as exc:
        reasons = "; ".join(f"{r}: {c} {_text(m)}" for r, (c, m) in exc.recipients.items())
        raise MailServerError("protocol", f"the SMTP server refused every recipient: {reasons}") from None
    except smtplib.SMTPResponseException as exc:
        raise MailServerError("protocol", f"the SMTP server refused the message: {exc.smtp_code} "
                                          f"{_text(exc.smtp_error)}", exc.smtp_code) from None
    except smtplib.SMTPException as exc:
        raise MailServerError("protocol", f"the SMTP server: {exc}") from None
    except Exception as exc:  # noqa: BLE001
        classified = _network_error(exc, ep, "SMTP")
        if classified is None:
            raise
        raise classified from None
    return {r: f"{c} {_text(m)}" for r, (c, m) in refused.items()}
