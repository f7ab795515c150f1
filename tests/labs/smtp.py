"""Starts ``tests/labs/smtp_server.py`` for a test: a throwaway certificate
authority and server certificate for 127.0.0.1/localhost, free ports, one
user; reads back the delivered messages."""
from __future__ import annotations

import datetime as dt
import email
import email.policy
import ipaddress
import os
import subprocess
import sys
import time
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from crm_shared.testing import free_port

HERE = Path(__file__).parent


def make_certificate(folder: Path) -> Path:
    """A self-signed CA-capable certificate for 127.0.0.1 and localhost; returns its path
    (give it to the client as ``SSL_CERT_FILE``)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "crm test smtp")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    (folder / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                       serialization.PrivateFormat.PKCS8,
                                                       serialization.NoEncryption()))
    path = folder / "cert.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


class SmtpLab:
    def __init__(self, folder: Path, user: str = "platform@crm.test", password: str = "lab-Secret-123") -> None:
        self.folder = folder
        self.user = user
        self.password = password
        self.submission_port = free_port()
        self.smtps_port = free_port()
        self.cert_file = make_certificate(folder)
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 15) -> "SmtpLab":
        env = dict(os.environ, SMTP_LAB_DIR=str(self.folder), SMTP_LAB_USERS=f"{self.user}:{self.password}",
                   SMTP_LAB_SUBMISSION_PORT=str(self.submission_port), SMTP_LAB_SMTPS_PORT=str(self.smtps_port))
        log = open(self.folder / "smtp.log", "wb")
        self.process = subprocess.Popen([sys.executable, str(HERE / "smtp_server.py")], env=env, stdout=log,
                                        stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if "smtp up" in (self.folder / "smtp.log").read_text(errors="replace"):
                return self
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("SMTP lab did not start: " + (self.folder / "smtp.log").read_text(errors="replace"))

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.process = None

    def messages(self) -> list[EmailMessage]:
        spool = self.folder / "spool"
        if not spool.is_dir():
            return []
        found = []
        for path in sorted(spool.glob("*.eml")):
            msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            found.append(msg)
        return found

    def settings(self, tls: str = "starttls") -> dict[str, Any]:
        """The auth service's PLATFORM_SMTP_* settings for this server."""
        return {"PLATFORM_SMTP_HOST": "127.0.0.1",
                "PLATFORM_SMTP_PORT": str(self.submission_port if tls == "starttls" else self.smtps_port),
                "PLATFORM_SMTP_USER": self.user, "PLATFORM_SMTP_PASSWORD": self.password,
                "PLATFORM_SMTP_FROM": "CRM Platform <platform@crm.test>", "PLATFORM_SMTP_TLS": tls,
                "PLATFORM_SMTP_TIMEOUT_SECONDS": "5"}
