"""Loopback SMTP server for tests (aiosmtpd): STARTTLS submission and
implicit-TLS (SMTPS) ports, AUTH PLAIN/LOGIN required (only over TLS),
every accepted message saved as ``<spool>/<n>.eml`` and, with
``SMTP_LAB_LMTP_PORT`` set, delivered by LMTP (as an MTA would) to the
recipients in ``SMTP_LAB_LOCAL_DOMAIN`` (the mail lab's Dovecot).

Run as a process (``python tests/labs/smtp_server.py``) with the
environment: ``SMTP_LAB_DIR`` (holds ``cert.pem``/``key.pem`` and gets
``spool/``), ``SMTP_LAB_SUBMISSION_PORT``, ``SMTP_LAB_SMTPS_PORT`` and
``SMTP_LAB_USERS`` (``user:password[,user:password…]``). It prints
``smtp up`` once both ports listen and stops on SIGTERM.
``tests/labs/smtp.py`` starts it for a test (fixture ``smtp_lab``)."""
import asyncio
import os
import signal
import smtplib
import ssl
import threading
import time

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

D = os.environ["SMTP_LAB_DIR"]
SPOOL = os.path.join(D, "spool")
os.makedirs(SPOOL, exist_ok=True)
LMTP_PORT = int(os.environ.get("SMTP_LAB_LMTP_PORT") or 0)
LOCAL_DOMAIN = os.environ.get("SMTP_LAB_LOCAL_DOMAIN", "example.test")
USERS = dict(part.split(":", 1) for part in os.environ.get("SMTP_LAB_USERS", "").split(",") if ":" in part)


def authenticator(server, session, envelope, mechanism, auth_data):
    ok = (mechanism in ("PLAIN", "LOGIN") and isinstance(auth_data, LoginPassword)
          and USERS.get(auth_data.login.decode()) == auth_data.password.decode())
    return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)


class Handler:
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        name = f"{time.time_ns()}.eml"
        with open(os.path.join(SPOOL, name + ".tmp"), "wb") as f:
            f.write(f"X-Envelope-From: {envelope.mail_from}\r\n"
                    f"X-Envelope-To: {','.join(envelope.rcpt_tos)}\r\n"
                    f"X-Auth-User: {session.auth_data.login.decode()}\r\n".encode())
            f.write(envelope.original_content)
        os.rename(os.path.join(SPOOL, name + ".tmp"), os.path.join(SPOOL, name))
        local = [r for r in envelope.rcpt_tos if r.lower().endswith("@" + LOCAL_DOMAIN)]
        if LMTP_PORT and local:
            def lmtp():
                # one recipient per transaction: smtplib's LMTP misreads the per-recipient replies to DATA
                refused = {}
                with smtplib.LMTP("127.0.0.1", LMTP_PORT) as client:
                    for rcpt in local:
                        refused.update(client.sendmail(envelope.mail_from, [rcpt], envelope.original_content))
                return refused
            try:
                refused = await asyncio.get_running_loop().run_in_executor(None, lmtp)
            except Exception as exc:  # the client retries, as with a real MTA
                return f"451 4.3.0 local delivery failed: {exc}"
            if refused:
                return f"451 4.3.0 some recipients refused: {refused}"
        return f"250 2.0.0 OK queued as {name}"


tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
tls.load_cert_chain(os.path.join(D, "cert.pem"), os.path.join(D, "key.pem"))
common = {"authenticator": authenticator, "auth_required": True, "server_hostname": "localhost",
          "ident": "crmtest-smtp"}
# on the implicit-TLS port the whole connection is TLS already: auth_require_tls only counts STARTTLS
smtps = Controller(Handler(), hostname="127.0.0.1", port=int(os.environ["SMTP_LAB_SMTPS_PORT"]),
                   ssl_context=tls, auth_require_tls=False, **common)
submission = Controller(Handler(), hostname="127.0.0.1", port=int(os.environ["SMTP_LAB_SUBMISSION_PORT"]),
                        tls_context=tls, require_starttls=True, auth_require_tls=True, **common)
smtps.start()
submission.start()
print("smtp up", flush=True)
stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *a: stop.set())
signal.signal(signal.SIGINT, lambda *a: stop.set())
parent = os.getppid()
while not stop.wait(0.5):
    if os.getppid() != parent:  # the test process died without stopping us
        break
smtps.stop()
submission.stop()
