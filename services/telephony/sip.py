"""The SIP engine: pjsua2 behind one small interface, so that the rest of
the service says plainly what SIP does (register an account, ring, dial,
transfer, hang up) and its tests can replace it.

pjsua2 holds one endpoint per process and aborts the whole process on a 9th
account, so an engine refuses more than ``MAX_ACCOUNTS`` (``EngineFull``).
It runs on the calling thread: ``threadCnt=0``, and ``poll`` hands pjsua2
the CPU for up to a few milliseconds and answers what happened as plain
``EngineEvent`` values. No pjsua2 object escapes this module."""
from __future__ import annotations

import hashlib
import logging
import re
import time
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

MAX_ACCOUNTS = 8  # pjsua2's PJSUA_MAX_ACCOUNTS in the wheel; the 9th aborts the process
MAX_CALLS = 4  # calls one process has at once: the wheel's PJSUA_MAX_CALLS (measured); pjsua2 answers more with 486

# event kinds
REGISTRATION, INCOMING, CALL_STATE, TRANSFER = "registration", "incoming", "call_state", "transfer"
# call states as the engine reports them
RINGING, TALKING, ENDED = "ringing", "talking", "ended"


class EngineFull(Exception):
    """This engine holds ``MAX_ACCOUNTS`` already."""


class EngineError(Exception):
    """pjsua2 refused an operation (a bad URI, no such call)."""


@dataclass(frozen=True)
class AccountSpec:
    login: str
    password: str = field(repr=False)
    domain: str
    port: int = 5060
    register: bool = True
    expires: int = 300
    retry_seconds: int = 30
    keepalive_seconds: int = 15

    @property
    def aor(self) -> str:
        return f"sip:{self.login}@{self.domain}"

    def uri(self, user: str) -> str:
        """A SIP URI for a number or user at this account's domain."""
        return f"sip:{user}@{self.domain}"


@dataclass
class EngineEvent:
    kind: str
    key: Any = None          # the account's key
    call: str | None = None  # the engine's handle of a call (its SIP Call-ID)
    code: int = 0            # the SIP status code, when there is one
    reason: str = ""
    state: str = ""
    expires: int = 0
    from_number: str | None = None
    from_name: str | None = None
    to_user: str | None = None
    final: bool = False
    extra: dict[str, Any] = field(default_factory=dict)
    at: float = field(default_factory=time.monotonic)  # when pjsua2 reported it


_NAME_URI = re.compile(r'^\s*(?:"(?P<q>(?:[^"\\]|\\.)*)"|(?P<t>[^<"]*?))\s*<(?P<uri>[^>]*)>')


def parse_party(header: str) -> tuple[str | None, str | None]:
    """``"Ivan Petrov" <sip:+79161234567@pstn.test>`` -> (``+79161234567``, ``Ivan Petrov``)."""
    m = _NAME_URI.match(header or "")
    name, uri = None, header or ""
    if m:
        name = (m.group("q") if m.group("q") is not None else m.group("t") or "").strip() or None
        uri = m.group("uri")
    um = re.match(r"^\s*(?:sips?|tel):([^@;>]+)", uri)
    user = um.group(1) if um else None
    if name:
        name = name.replace('\\"', '"')
    return user, name


def account_token(key: Any) -> str:
    return hashlib.sha256(repr(key).encode()).hexdigest()[:12]


_TOKEN = re.compile(r"^[A-Z]+ \S*;crm=([0-9a-f]{12})")


def request_token(message: str) -> str | None:
    """The ``crm=`` token of a request's Request-URI (the Contact it was sent to)."""
    m = _TOKEN.match(message or "")
    return m.group(1) if m else None


def completed_elsewhere(message: str) -> bool:
    """A CANCEL saying the call was answered on another phone (RFC 3326: ``Reason: SIP;cause=200``)."""
    for line in message.splitlines():
        if line.lower().startswith("reason:") and re.search(r"cause\s*=\s*200\b", line):
            return True
    return False


class SipEngine:
    """pjsua2 in this process: up to ``MAX_ACCOUNTS`` accounts, each registered or not."""

    def __init__(self, max_accounts: int = MAX_ACCOUNTS, sip_port: int = 0, bind: str = "",
                 public_address: str = "", log_level: int = 0) -> None:
        if not 1 <= max_accounts <= MAX_ACCOUNTS:
            raise ValueError(f"an engine holds 1 to {MAX_ACCOUNTS} accounts")
        self.max_accounts = max_accounts
        self.sip_port, self.bind, self.public_address, self.log_level = sip_port, bind, public_address, log_level
        self.events: list[EngineEvent] = []
        self._accounts: dict[Any, Any] = {}
        self._specs: dict[Any, AccountSpec] = {}
        self._tokens: dict[str, Any] = {}  # the Contact's ";crm=" parameter -> the account's key
        self._calls: dict[str, Any] = {}
        self._ended: list[Any] = []
        self._ep: Any = None

    # -- life -------------------------------------------------------------------------------------
    def start(self) -> None:
        import pjsua2 as pj  # a native library: imported only where an engine runs

        self._pj = pj
        ep = pj.Endpoint()
        ep.libCreate()
        cfg = pj.EpConfig()
        cfg.uaConfig.threadCnt = 0
        cfg.uaConfig.mainThreadOnly = True
        cfg.uaConfig.maxCalls = MAX_CALLS
        cfg.uaConfig.userAgent = "crm-telephony"
        cfg.logConfig.level = self.log_level
        cfg.logConfig.consoleLevel = self.log_level
        cfg.medConfig.noVad = True
        ep.libInit(cfg)
        transport = pj.TransportConfig()
        transport.port = self.sip_port
        if self.bind:
            transport.boundAddress = self.bind
        if self.public_address:
            transport.publicAddress = self.public_address
        ep.transportCreate(pj.PJSIP_TRANSPORT_UDP, transport)
        ep.audDevManager().setNullDev()
        ep.libStart()
        self._ep = ep

    def stop(self) -> None:
        """Hangs up, unregisters and shuts pjsua2 down (best effort: the process is ending)."""
        if self._ep is None:
            return
        for call in list(self._calls.values()):
            self._quiet(call.hangup, self._pj.CallOpParam(True))
        for key in list(self._accounts):
            self.remove(key)
        self.poll(200)
        self._calls.clear()
        self._ended.clear()
        self._ep.libDestroy()
        self._ep = None

    @property
    def free(self) -> int:
        return self.max_accounts - len(self._accounts)

    # -- accounts ---------------------------------------------------------------------------------
    def add(self, key: Any, spec: AccountSpec) -> None:
        if key in self._accounts:
            self.remove(key)
        if len(self._accounts) >= self.max_accounts:
            raise EngineFull(f"this engine holds {self.max_accounts} accounts")
        pj = self._pj
        cfg = pj.AccountConfig()
        cfg.idUri = spec.aor
        cfg.regConfig.registrarUri = f"sip:{spec.domain}:{spec.port}" if spec.register else ""
        cfg.regConfig.registerOnAdd = spec.register
        cfg.regConfig.timeoutSec = spec.expires
        cfg.regConfig.retryIntervalSec = spec.retry_seconds
        cfg.regConfig.firstRetryIntervalSec = min(spec.retry_seconds, 5)
        cfg.regConfig.delayBeforeRefreshSec = max(1, min(5, spec.expires // 3))
        cfg.sipConfig.proxies.append(f"sip:{spec.domain}:{spec.port};lr")
        cfg.sipConfig.authCreds.append(pj.AuthCredInfo("digest", "*", spec.login, 0, spec.password))
        cfg.natConfig.udpKaIntervalSec = spec.keepalive_seconds
        cfg.mediaConfig.transportConfig.port = 0
        # pjsua2 picks the account of an INVITE by its To header, which two tenants' accounts at one
        # provider can share: the registered Contact carries the account's own token instead
        token = account_token(key)
        cfg.sipConfig.contactUriParams = f";crm={token}"
        account = _Account(self, key)
        try:
            account.create(cfg)
        except pj.Error as exc:
            raise EngineError(exc.info()) from None
        self._accounts[key] = account
        self._specs[key] = spec
        self._tokens[token] = key

    def remove(self, key: Any) -> None:
        """Unregisters (REGISTER with Expires: 0) and forgets the account and its calls."""
        account = self._accounts.pop(key, None)
        self._specs.pop(key, None)
        self._tokens.pop(account_token(key), None)
        if account is None:
            return
        for call in list(self._calls.values()):
            if call.key == key:
                self._quiet(call.hangup, self._pj.CallOpParam(True))
        self._quiet(account.shutdown)
        self._ended.append(account)

    def spec(self, key: Any) -> AccountSpec | None:
        return self._specs.get(key)

    # -- calls ------------------------------------------------------------------------------------
    def dial(self, key: Any, target: str) -> str:
        """Calls ``target`` (a number or user at the account's domain, or a SIP URI) from the account;
        answers the call's handle."""
        account, spec = self._accounts[key], self._specs[key]
        uri = target if target.startswith("sip:") else spec.uri(target)
        call = _Call(self, key, account)
        try:
            call.makeCall(uri, self._pj.CallOpParam(True))
            handle = str(call.getInfo().callIdString)
        except self._pj.Error as exc:
            raise EngineError(exc.info()) from None
        call.handle = handle
        call.outgoing = True
        self._calls[handle] = call
        return handle

    def transfer(self, handle: str, target: str) -> None:
        """A blind transfer (REFER) of an answered call to ``target``."""
        call = self._calls.get(handle)
        if call is None:
            raise EngineError("no such call")
        spec = self._specs[call.key]
        uri = target if target.startswith("sip:") else spec.uri(target)
        try:
            call.xfer(uri, self._pj.CallOpParam(True))
        except self._pj.Error as exc:
            raise EngineError(exc.info()) from None

    def hangup(self, handle: str) -> None:
        call = self._calls.get(handle)
        if call is not None:
            self._quiet(call.hangup, self._pj.CallOpParam(True))

    # -- the loop ---------------------------------------------------------------------------------
    def poll(self, milliseconds: int = 10) -> list[EngineEvent]:
        """Lets pjsua2 work for up to ``milliseconds``; answers the events since the last poll."""
        if self._ep is not None:
            self._ep.libHandleEvents(milliseconds)
        # pjsua2 objects die outside their own callbacks
        self._ended.clear()
        events, self.events = self.events, []
        return events

    def _quiet(self, fn: Any, *args: Any) -> None:
        try:
            fn(*args)
        except Exception as exc:  # noqa: BLE001 - pjsua2 raises for calls already gone
            log.debug("pjsua2: %s", exc)

    def _emit(self, event: EngineEvent) -> None:
        self.events.append(event)


def _make_account_class() -> Any:
    import pjsua2 as pj

    class Account(pj.Account):
        def __init__(self, engine: SipEngine, key: Any) -> None:
            super().__init__()
            self.engine, self.key = engine, key

        def onRegState(self, prm: Any) -> None:  # noqa: N802 - pjsua2's name
            code = int(prm.code)
            expires = int(prm.expiration) if code // 100 == 2 else 0
            if code // 100 == 2 and expires > 0:
                state = "registered"
            elif code // 100 == 2:
                state = "off"
            else:
                state = "failed"
            self.engine._emit(EngineEvent(REGISTRATION, key=self.key, code=code, reason=str(prm.reason),
                                          state=state, expires=expires))

        def onIncomingCall(self, prm: Any) -> None:  # noqa: N802
            engine = self.engine
            token = request_token(str(prm.rdata.wholeMsg))
            key = engine._tokens.get(token, self.key) if token else self.key
            account = engine._accounts.get(key, self)
            call = _Call(engine, key, account, prm.callId)
            info = call.getInfo()
            call_id = str(info.callIdString)
            if token is not None and token not in engine._tokens:
                # sent to an account this engine no longer holds (a stale binding): not ours to ring
                call.ignored = True
                op = pj.CallOpParam()
                op.statusCode = 404
                engine._quiet(call.answer, op)
                return
            own = engine._calls.get(call_id)
            if own is not None and own.outgoing:
                # our own click-to-call forked back to this registration: not a call to ring
                call.ignored = True
                op = pj.CallOpParam()
                op.statusCode = 486
                self.engine._quiet(call.answer, op)
                return
            number, name = parse_party(str(info.remoteUri))
            to_user, _ = parse_party(str(info.localUri))
            # one handle per account: a forking proxy may send the same Call-ID to several of them
            handle = f"{account_token(key)}:{call_id}"
            call.handle = handle
            engine._calls[handle] = call
            op = pj.CallOpParam()
            op.statusCode = 180  # ring, and never answer: the user's real phone takes the call
            engine._quiet(call.answer, op)
            engine._emit(EngineEvent(INCOMING, key=key, call=handle, from_number=number, from_name=name,
                                     to_user=to_user, state=RINGING))

    return Account


def _cancelled_elsewhere(event: Any) -> bool:
    """The SIP event is a received CANCEL saying the call was answered elsewhere."""
    import pjsua2 as pj

    try:
        if event.type != pj.PJSIP_EVENT_TSX_STATE or event.body.tsxState.type != pj.PJSIP_EVENT_RX_MSG:
            return False
        message = str(event.body.tsxState.src.rdata.wholeMsg)
    except Exception as exc:  # noqa: BLE001 - a part of the event missing: nothing to learn
        log.debug("no message in the SIP event: %s", exc)
        return False
    return message.startswith("CANCEL") and completed_elsewhere(message)


def _make_call_class() -> Any:
    import pjsua2 as pj

    class Call(pj.Call):
        def __init__(self, engine: SipEngine, key: Any, account: Any, call_id: int = -1) -> None:
            if call_id < 0:
                super().__init__(account)
            else:
                super().__init__(account, call_id)
            self.engine, self.key = engine, key
            self.handle: str = ""
            self.outgoing = False
            self.elsewhere = False
            self.ignored = False  # our own call forked back to us: no events

        def onCallTsxState(self, prm: Any) -> None:  # noqa: N802
            # a CANCEL with "Reason: SIP;cause=200": the call was answered on another phone
            if _cancelled_elsewhere(prm.e):
                self.elsewhere = True

        def onCallState(self, prm: Any) -> None:  # noqa: N802
            info = self.getInfo()
            if self.ignored:
                if int(info.state) == pj.PJSIP_INV_STATE_DISCONNECTED:
                    self.engine._ended.append(self)
                return
            if not self.handle:
                self.handle = str(info.callIdString)
            state = int(info.state)
            if state == pj.PJSIP_INV_STATE_CONFIRMED:
                self.engine._emit(EngineEvent(CALL_STATE, key=self.key, call=self.handle, state=TALKING,
                                              code=int(info.lastStatusCode)))
            elif state == pj.PJSIP_INV_STATE_DISCONNECTED:
                if _cancelled_elsewhere(prm.e):
                    self.elsewhere = True
                self.engine._emit(EngineEvent(CALL_STATE, key=self.key, call=self.handle, state=ENDED,
                                              code=int(info.lastStatusCode), reason=str(info.lastReason),
                                              extra={"elsewhere": self.elsewhere,
                                                     "connected": int(info.connectDuration.sec)}))
                if self.engine._calls.get(self.handle) is self:
                    del self.engine._calls[self.handle]
                self.engine._ended.append(self)

        def onCallTransferStatus(self, prm: Any) -> None:  # noqa: N802
            self.engine._emit(EngineEvent(TRANSFER, key=self.key, call=self.handle, code=int(prm.statusCode),
                                          reason=str(prm.reason), final=bool(prm.finalNotify)))

    return Call


class _Lazy:
    """The pjsua2 subclasses, made on first use (the module imports without the native library)."""

    def __init__(self, make: Any) -> None:
        self.make: Any = make
        self.cls: Any = None

    def __call__(self, *args: Any) -> Any:
        if self.cls is None:
            self.cls = self.make()
        return self.cls(*args)


_Account = _Lazy(_make_account_class)
_Call = _Lazy(_make_call_class)
