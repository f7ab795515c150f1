"""A throwaway mail system for a test module: Dovecot (IMAP with STARTTLS,
IMAPS, LMTP) on free loopback ports with its own certificate and users, the
aiosmtpd lab (``tests/labs/smtp_server.py``) delivering local mail into it by
LMTP, and optionally a private Postfix instance as a second SMTP peer.

Dovecot and Postfix come from Debian (``scripts/ci-install.sh``); where the
binaries are missing the fixtures skip with that reason. Dovecot trusts a
client from its own address, so the plaintext refusal is tested from
127.0.0.2 (``source_address``)."""
from __future__ import annotations

import email.message
import os
import shutil
import smtplib
import ssl
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from crm_shared.testing import free_port
from tests.labs.smtp import HERE, make_certificate

USERS = {f"{name}@example.test": f"{name}-pass" for name in (
    "alice", "bob", "carol", "dan", "eve", "fay", "gus", "hal", "ivy", "jon", "kim", "lou", "max")}


def missing_tools(*names: str) -> str | None:
    absent = [n for n in names if shutil.which(n) is None and not Path("/usr/sbin", n).exists()]
    return f"not installed: {', '.join(absent)} (scripts/ci-install.sh installs them)" if absent else None


def _wait_port(port: int, timeout: float = 15) -> bool:
    import socket
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


class MailLab:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.chmod(0o755)  # dovecot's unprivileged processes must traverse it
        self.imap_port, self.imaps_port, self.lmtp_port = free_port(), free_port(), free_port()
        self.submission_port, self.smtps_port = free_port(), free_port()
        self.pf_submission_port, self.pf_smtps_port = 0, 0
        self.cert_file = make_certificate(folder)
        os.chmod(folder / "key.pem", 0o644)  # dovecot reads it before dropping privileges; a test key
        self.smtp: subprocess.Popen[bytes] | None = None
        self.postfix = False

    # -- dovecot ----------------------------------------------------------------------------
    def _dovecot_conf(self) -> Path:
        d = self.folder
        for sub in ("run", "state", "mail"):
            (d / sub).mkdir(exist_ok=True)
        subprocess.run(["chown", "vmail:vmail", str(d / "mail")], check=True)
        users = d / "users"
        users.write_text("".join(f"{u}:{{PLAIN}}{p}\n" for u, p in USERS.items()))
        users.chmod(0o644)
        conf = d / "dovecot.conf"
        conf.write_text(f"""
instance_name = crmtest-{self.imap_port}
base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
protocols = imap lmtp
listen = 127.0.0.1, 127.0.0.2
ssl = required
ssl_cert = <{d}/cert.pem
ssl_key = <{d}/key.pem
ssl_dh = </usr/share/dovecot/dh.pem
ssl_min_protocol = TLSv1.2
disable_plaintext_auth = yes
auth_mechanisms = plain login
auth_failure_delay = 0
mail_max_userip_connections = 1000
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {users}
}}
userdb {{
  driver = static
  args = uid=vmail gid=vmail home={d}/mail/%d/%n
}}
mail_location = maildir:~/Maildir
namespace inbox {{
  inbox = yes
  separator = /
  mailbox Drafts {{
    special_use = \\Drafts
    auto = subscribe
  }}
  mailbox Sent {{
    special_use = \\Sent
    auto = subscribe
  }}
  mailbox Trash {{
    special_use = \\Trash
    auto = subscribe
  }}
}}
protocol lmtp {{
  postmaster_address = postmaster@example.test
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1, 127.0.0.2
    port = {self.imap_port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1, 127.0.0.2
    port = {self.imaps_port}
    ssl = yes
  }}
  process_min_avail = 2
  service_count = 0
  client_limit = 1000
}}
service imap {{
  process_limit = 1024
}}
service lmtp {{
  inet_listener lmtp {{
    address = 127.0.0.1
    port = {self.lmtp_port}
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    port = 0
  }}
  inet_listener pop3s {{
    port = 0
  }}
}}
service auth {{
  unix_listener auth-client {{
    mode = 0666
  }}
}}
# no auth penalty (2, 4 … 15 s delays for an IP after a failed login): the tests fail logins on purpose
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
""")
        return conf

    def start(self, postfix: bool = False) -> "MailLab":
        if subprocess.run(["id", "vmail"], capture_output=True).returncode != 0:
            subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", "vmail"],
                           check=True)
        self.conf = self._dovecot_conf()
        subprocess.run(["dovecot", "-c", str(self.conf)], check=True)
        if not (_wait_port(self.imaps_port) and _wait_port(self.imap_port) and _wait_port(self.lmtp_port)):
            raise RuntimeError("dovecot did not start: " + self._log("dovecot.log"))
        self._start_smtp()
        if postfix:
            self._start_postfix()
        return self

    def _log(self, name: str) -> str:
        path = self.folder / name
        return path.read_text(errors="replace")[-3000:] if path.exists() else "(no log)"

    def _start_smtp(self) -> None:
        env = dict(os.environ, SMTP_LAB_DIR=str(self.folder),
                   SMTP_LAB_USERS=",".join(f"{u}:{p}" for u, p in USERS.items()),
                   SMTP_LAB_SUBMISSION_PORT=str(self.submission_port), SMTP_LAB_SMTPS_PORT=str(self.smtps_port),
                   SMTP_LAB_LMTP_PORT=str(self.lmtp_port), SMTP_LAB_LOCAL_DOMAIN="example.test")
        log = open(self.folder / "smtp.log", "wb")
        self.smtp = subprocess.Popen([sys.executable, str(HERE / "smtp_server.py")], env=env, stdout=log,
                                     stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 15
        while "smtp up" not in self._log("smtp.log"):
            if self.smtp.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("SMTP lab did not start: " + self._log("smtp.log"))
            time.sleep(0.05)

    def _start_postfix(self) -> None:
        d, p, q = self.folder, self.folder / "postfix", self.folder / "postfix-spool"
        self.pf_submission_port, self.pf_smtps_port = free_port(), free_port()
        (q / "queue").mkdir(parents=True, exist_ok=True)
        (q / "data").mkdir(parents=True, exist_ok=True)
        p.mkdir(exist_ok=True)
        subprocess.run(["chown", "postfix", str(q / "data")], check=True)
        (p / "main.cf").write_text(f"""compatibility_level = 3.6
queue_directory = {q}/queue
data_directory = {q}/data
meta_directory = /etc/postfix
maillog_file = {q}/maillog
maillog_file_prefixes = {q}
myhostname = localhost
mydomain = example.test
myorigin = example.test
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_banner = $myhostname ESMTP crmtest-postfix
virtual_mailbox_domains = example.test
virtual_transport = lmtp:inet:127.0.0.1:{self.lmtp_port}
default_transport = error:outbound mail disabled in test
relay_transport = error:outbound mail disabled in test
smtp_dns_support_level = disabled
alias_maps =
alias_database =
smtpd_tls_cert_file = {d}/cert.pem
smtpd_tls_key_file = {d}/key.pem
smtpd_tls_security_level = may
smtpd_sasl_type = dovecot
smtpd_sasl_path = {d}/run/auth-client
smtpd_sasl_auth_enable = no
smtpd_relay_restrictions = permit_sasl_authenticated, reject_unauth_destination
""")
        opts = ("-o smtpd_sasl_auth_enable=yes -o smtpd_client_restrictions=permit_sasl_authenticated,reject "
                "-o smtpd_relay_restrictions=permit_sasl_authenticated,reject")
        (p / "master.cf").write_text(
            f"127.0.0.1:{self.pf_submission_port} inet n - n - - smtpd -o syslog_name=postfix/submission "
            f"-o smtpd_tls_security_level=encrypt -o smtpd_tls_auth_only=yes {opts}\n"
            f"127.0.0.1:{self.pf_smtps_port} inet n - n - - smtpd -o syslog_name=postfix/submissions "
            f"-o smtpd_tls_wrappermode=yes {opts}\n"
            + "".join(line + "\n" for line in (
                "pickup    unix  n - n 60   1 pickup", "cleanup   unix  n - n -    0 cleanup",
                "qmgr      unix  n - n 300  1 qmgr", "tlsmgr    unix  - - n 1000? 1 tlsmgr",
                "rewrite   unix  - - n -    - trivial-rewrite", "bounce    unix  - - n -    0 bounce",
                "defer     unix  - - n -    0 bounce", "trace     unix  - - n -    0 bounce",
                "verify    unix  - - n -    1 verify", "flush     unix  n - n 1000? 0 flush",
                "proxymap  unix  - - n -    - proxymap", "showq     unix  n - n -    - showq",
                "error     unix  - - n -    - error", "retry     unix  - - n -    - error",
                "discard   unix  - - n -    - discard", "lmtp      unix  - - n -    - lmtp",
                "anvil     unix  - - n -    1 anvil", "scache    unix  - - n -    1 scache",
                "postlog   unix-dgram n - n - 1 postlogd")))
        subprocess.run(["postfix", "-c", str(p), "check"], check=True, capture_output=True)
        subprocess.run(["postfix", "-c", str(p), "start"], check=True, capture_output=True)
        self.postfix = True
        if not (_wait_port(self.pf_submission_port) and _wait_port(self.pf_smtps_port)):
            raise RuntimeError("postfix did not start: " + self._log("postfix-spool/maillog"))

    def stop(self) -> None:
        if self.postfix:
            subprocess.run(["postfix", "-c", str(self.folder / "postfix"), "stop"], capture_output=True)
            self.postfix = False
        if self.smtp is not None and self.smtp.poll() is None:
            self.smtp.terminate()
            try:
                self.smtp.wait(10)
            except subprocess.TimeoutExpired:
                self.smtp.kill()
        self.smtp = None
        subprocess.run(["doveadm", "-c", str(self.conf), "stop"], capture_output=True)

    # -- helpers for tests ----------------------------------------------------------------------
    def tls_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.cert_file))

    def imap(self, user: str) -> Any:
        from imapclient import IMAPClient
        client = IMAPClient("127.0.0.1", port=self.imaps_port, ssl=True, ssl_context=self.tls_context(), timeout=30)
        client.login(user, USERS[user])
        return client

    def deliver(self, to: str, raw: bytes, sender: str = "lead@example.org") -> None:
        """Delivers as an MTA would (LMTP into Dovecot)."""
        with smtplib.LMTP("127.0.0.1", self.lmtp_port) as lmtp:
            lmtp.sendmail(sender, [to], raw)

    def append(self, user: str, folder: str, messages: list[bytes], flags: tuple[bytes, ...] = ()) -> None:
        client = self.imap(user)
        try:
            for i in range(0, len(messages), 200):
                client.multiappend(folder, [{"msg": m, "flags": flags} for m in messages[i:i + 200]])
        finally:
            client.logout()

    def reset_uidvalidity(self, user: str, folder: str = "INBOX") -> None:
        """A new UIDVALIDITY with the same messages (what a server's mailbox rebuild does)."""
        subprocess.run(["doveadm", "-c", str(self.conf), "mailbox", "update", "-u", user,
                        "--uid-validity", str(int(time.time()) + 17), folder], check=True, capture_output=True)


def simple_message(subject: str, to: str = "alice@example.test", sender: str = "lead@example.org",
                   body: str = "hello\n", message_id: str | None = None) -> bytes:
    m = email.message.EmailMessage()
    m["From"], m["To"], m["Subject"] = sender, to, subject
    if message_id:
        m["Message-ID"] = message_id
    m.set_content(body)
    return m.as_bytes()
