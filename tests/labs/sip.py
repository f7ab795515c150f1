"""A throwaway SIP network for a test module, from the verified recipes of
``shared/labs/sip`` (copied into ``tests/labs/sip-files/``; nothing here calls into
``../shared``):

- kamailio as registrar and proxy on a free loopback port, realm
  ``crm.test``, digest auth; variants ``qop`` (challenges with qop=auth) and
  ``wrong_pw_401`` (a wrong password gets a new 401 challenge, not 403);
- a sipp "PSTN" callee that answers every call to a number (kamailio routes
  ``^\\+?[0-9]{3,}$`` there), its messages traced to a file;
- baresip as ``bob``'s auto-answering desk phone;
- sipp callers (``call``), one process per call.

``crm.test`` resolves through ``/etc/hosts`` (``ensure_domain``, run as root
in CI), so the service looks the domain up as it would a real one. kamailio,
sipp and baresip come from Debian (``scripts/ci-install.sh``)."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
import wave
from pathlib import Path
from typing import Any

HERE = Path(__file__).with_name("sip-files")  # kamailio.cfg and the sipp scenarios
DOMAIN = "crm.test"
# SIP users of the registrar: alice and bob (the recipe's), and u01..u24 for the concurrency tests
USERS = {"alice": "alicepw", "bob": "bobpw", **{f"u{i:02d}": f"pw-u{i:02d}" for i in range(1, 25)}}
CALLER_NUMBER, CALLER_NAME = "+79161234567", "Ivan Petrov"  # the sipp scenarios' caller ID


def missing_tools() -> str | None:
    absent = [n for n in ("kamailio", "sipp", "baresip") if shutil.which(n) is None
              and not Path("/usr/sbin", n).exists()]
    return f"not installed: {', '.join(absent)} (scripts/ci-install.sh installs them)" if absent else None


def ensure_domain() -> str | None:
    """Maps ``crm.test`` to 127.0.0.1 in /etc/hosts; answers why not when it cannot."""
    try:
        if socket.gethostbyname(DOMAIN) == "127.0.0.1":
            return None
    except OSError:
        pass
    try:
        with open("/etc/hosts", "a") as hosts:
            hosts.write(f"\n127.0.0.1 {DOMAIN}\n")
    except OSError as exc:
        return f"cannot map {DOMAIN} to 127.0.0.1 in /etc/hosts ({exc}); add it by hand"
    return None


def free_udp_tcp_port() -> int:
    """A port free for both UDP and TCP on 127.0.0.1 (SIP listens on both)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.bind(("127.0.0.1", 0))
            port = int(u.getsockname()[1])
            try:
                with socket.socket() as t:
                    t.bind(("127.0.0.1", port))
                return port
            except OSError:
                continue


def _udp_listening(port: int) -> bool:
    out = subprocess.run(["ss", "-lun"], capture_output=True, text=True).stdout
    return f"127.0.0.1:{port} " in out


def _wait(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"SIP lab: timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


def _stop(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=5)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=5)


class SipLab:
    def __init__(self, folder: Path, variant: str = "", users: dict[str, str] | None = None) -> None:
        self.folder = folder
        self.users = {**USERS, **(users or {})}
        self.port = free_udp_tcp_port()
        self.pstn_port = free_udp_tcp_port()
        self.phone_port = free_udp_tcp_port()
        self.variant = variant
        self.kamailio: subprocess.Popen[bytes] | None = None
        self.pstn: subprocess.Popen[bytes] | None = None
        self.phone: subprocess.Popen[bytes] | None = None
        self.pstn_trace = folder / "pstn-messages.log"

    def _spawn(self, args: list[str], log: str) -> subprocess.Popen[bytes]:
        with open(self.folder / log, "ab") as out:
            return subprocess.Popen(args, cwd=self.folder, stdout=out, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True)

    # -- kamailio -------------------------------------------------------------------------------
    def start_kamailio(self, variant: str | None = None) -> None:
        if variant is not None:
            self.variant = variant
        users = "".join(f'    $sht(users=>{u}) = "{p}";\n' for u, p in self.users.items())
        cfg = self.folder / "kamailio.cfg"
        cfg.write_text((HERE / "kamailio.cfg").read_text().replace("@USERS@", users))
        defines = ["-A", f"SIP_PORT={self.port}", "-A", f'PSTN_DU="sip:127.0.0.1:{self.pstn_port}"']
        for name in {"qop": ["WITH_QOP"], "wrong_pw_401": ["WRONG_PW_401"]}.get(self.variant, []):
            defines += ["-A", name]
        run = self.folder / "kamailio-run"
        run.mkdir(exist_ok=True)
        self.kamailio = self._spawn(["kamailio", "-f", str(cfg), "-DD", "-E", "-m", "32", "-M", "4", "-Y", str(run),
                                     "-P", str(run / "kamailio.pid"), *defines], "kamailio.log")
        _wait(lambda: _udp_listening(self.port), 15, f"kamailio on {self.port}")

    def stop_kamailio(self) -> None:
        _stop(self.kamailio)
        self.kamailio = None
        _wait(lambda: not _udp_listening(self.port), 10, "kamailio to stop")

    def restart_kamailio(self, variant: str | None = None) -> None:
        """A restart loses every registration (usrloc keeps nothing on disk). bob's desk phone is
        restarted too, so that it is registered again at once (the service's own accounts are not)."""
        self.stop_kamailio()
        self.start_kamailio(variant)
        if self.phone is not None:
            _stop(self.phone)
            (self.folder / "baresip-bob.log").unlink(missing_ok=True)
            self.start_phone()

    def kamailio_log(self) -> str:
        return (self.folder / "kamailio.log").read_text(errors="replace")

    # -- the "PSTN" callee and bob's desk phone ------------------------------------------------
    def start_pstn(self) -> None:
        self.pstn = self._spawn(["sipp", "-sf", str(HERE / "uas_answer.xml"), "-i", "127.0.0.1",
                                 "-p", str(self.pstn_port), "-nostdin", "-trace_msg",
                                 "-message_file", str(self.pstn_trace)], "sipp-pstn.log")
        _wait(lambda: _udp_listening(self.pstn_port), 10, "the sipp PSTN callee")

    def pstn_received(self, number: str) -> bool:
        return self.pstn_trace.exists() and f"INVITE sip:{number}@" in self.pstn_trace.read_text(errors="replace")

    def start_phone(self) -> None:
        """baresip registered as bob, answering every call at once."""
        home = self.folder / "baresip-bob"
        home.mkdir(exist_ok=True)
        (home / "accounts").write_text(f'<sip:bob@{DOMAIN}>;auth_pass={USERS["bob"]};'
                                       f'outbound="sip:127.0.0.1:{self.port}";answermode=auto;regint=60;'
                                       f'audio_codecs=pcmu\n')
        (home / "contacts").write_text("")
        silence = home / "silence.wav"
        with wave.open(str(silence), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(8000)
            w.writeframes(b"\0\0" * 8000 * 5)
        (home / "config").write_text(f"""poll_method epoll
sip_listen 127.0.0.1:{self.phone_port}
module_path /usr/lib/baresip/modules
module g711.so
module aufile.so
module menu.so
module account.so
audio_player aufile,/dev/null
audio_source aufile,{silence}
audio_alert aufile,/dev/null
""")
        self.phone = self._spawn(["baresip", "-f", str(home)], "baresip-bob.log")
        _wait(lambda: "bob@crm.test" in self._phone_log() and "200 OK" in self._phone_log(), 15,
              "baresip to register as bob")

    def _phone_log(self) -> str:
        path = self.folder / "baresip-bob.log"
        return path.read_text(errors="replace") if path.exists() else ""

    # -- callers ----------------------------------------------------------------------------------
    def call(self, to_user: str, scenario: str = "call_cancel.xml", calls: int = 1, rate: float = 0,
             timeout: float = 40, extra: tuple[str, ...] = ()) -> subprocess.Popen[bytes]:
        """A sipp caller (``+79161234567``, "Ivan Petrov") to ``to_user``: by default rings 1.5 s,
        then cancels. Answers the process; ``wait_call`` waits for it."""
        port = free_udp_tcp_port()
        args = ["sipp", "-sf", scenario, "-s", to_user, "-i", "127.0.0.1", "-p", str(port),
                "-m", str(calls), "-nostdin", "-timeout", f"{int(timeout)}", "-timeout_error", "-trace_err",
                "-error_file", str(self.folder / f"sipp-caller-{port}.err")]
        if rate:
            args += ["-r", str(rate), "-l", str(max(calls, 1))]
        if not scenario.startswith("/"):
            args[2] = str(HERE / scenario)
        return self._spawn([*args, *extra, f"127.0.0.1:{self.port}"], f"sipp-caller-{port}.log")

    @staticmethod
    def wait_call(proc: subprocess.Popen[bytes], timeout: float = 60) -> int:
        return proc.wait(timeout=timeout)

    # -- the whole lab ----------------------------------------------------------------------------
    def start(self, phone: bool = True) -> None:
        self.start_kamailio()
        self.start_pstn()
        if phone:
            self.start_phone()

    def stop(self) -> None:
        for proc in (self.phone, self.pstn, self.kamailio):
            _stop(proc)
