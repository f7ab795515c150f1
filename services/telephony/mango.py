"""The Mango Office virtual PBX: its API's wire format, in this one module
(the documented VPBX API: https://www.mango-office.ru/support/api/).

Every request and every webhook is a form of three fields: ``vpbx_api_key``,
``json`` and ``sign = sha256_hex(api_key + json + api_salt)``.

- Click-to-call: ``POST {api_base}commands/callback`` with
  ``{command_id, from: {extension, number}, to_number}``; the answer's
  ``result`` is 1000 when the PBX took the command.
- Webhooks (the PBX calls us): ``events/call`` (``entry_id``, ``call_id``,
  ``timestamp``, ``seq``, ``call_state``: Appeared, Connected, OnHold,
  Disconnected; ``location``; ``from``/``to`` with ``extension`` and
  ``number``; ``command_id`` for a call our command started) and
  ``events/summary`` (``entry_id``, ``call_direction``: 1 incoming, 2
  outgoing; ``create_time``, ``talk_time``, ``end_time``; ``entry_result``:
  1 answered, 0 lost).

A webhook is taken only with a valid signature, a timestamp within
``TELEPHONY_MANGO_MAX_SKEW_SECONDS`` and a signature not seen before (a
replay is refused)."""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import uuid
from dataclasses import dataclass
from typing import Any

OK_RESULT = 1000
APPEARED, CONNECTED, DISCONNECTED = "Appeared", "Connected", "Disconnected"


class MangoRefused(Exception):
    """A webhook that is not to be taken; ``code`` says why (bad_signature, replayed, malformed, stale)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


def secret_context(tenant_id: str, part: str) -> str:
    return f"mango:{tenant_id}:{part}"


def sign(api_key: str, payload: str, api_salt: str) -> str:
    return hashlib.sha256((api_key + payload + api_salt).encode("utf-8")).hexdigest()


def fingerprint(api_key: str) -> str:
    """How a webhook finds its tenant without the key being stored in the clear."""
    return hashlib.sha256(b"mango-api-key:" + api_key.encode("utf-8")).hexdigest()


def signed_form(api_key: str, api_salt: str, payload: dict[str, Any]) -> dict[str, str]:
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    return {"vpbx_api_key": api_key, "sign": sign(api_key, body, api_salt), "json": body}


def callback_command(command_id: str, extension: str, to_number: str, number: str | None = None) -> dict[str, Any]:
    party: dict[str, Any] = {"extension": extension}
    if number:
        party["number"] = number
    return {"command_id": command_id, "from": party, "to_number": to_number}


def callback_url(api_base: str) -> str:
    return api_base.rstrip("/") + "/commands/callback"


def verify(form: dict[str, Any], api_key: str, api_salt: str) -> dict[str, Any]:
    """The webhook's JSON, when its signature is right."""
    given, body = str(form.get("sign") or ""), form.get("json")
    if not isinstance(body, str) or not given:
        raise MangoRefused("malformed", "a webhook needs vpbx_api_key, sign and json")
    if not hmac.compare_digest(given.lower().encode("utf-8"), sign(api_key, body, api_salt).encode()):
        raise MangoRefused("bad_signature", "the signature does not match")
    try:
        data = json.loads(body)
    except ValueError:
        raise MangoRefused("malformed", "json is not JSON") from None
    if not isinstance(data, dict):
        raise MangoRefused("malformed", "json is not an object")
    return data


def check_fresh(timestamp: Any, now: dt.datetime, max_skew: float) -> None:
    try:
        at = dt.datetime.fromtimestamp(int(timestamp), dt.timezone.utc)
    except (TypeError, ValueError, OverflowError, OSError):
        raise MangoRefused("malformed", "the webhook has no timestamp") from None
    if abs((now - at).total_seconds()) > max_skew:
        raise MangoRefused("stale", "the webhook's timestamp is too far from now (a replay?)")


def _party(value: Any) -> tuple[str | None, str | None]:
    if not isinstance(value, dict):
        return None, None
    ext, num = value.get("extension"), value.get("number")
    return (str(ext) if ext not in (None, "") else None), (str(num) if num not in (None, "") else None)


@dataclass
class CallEvent:
    entry_id: str
    state: str
    timestamp: int
    from_extension: str | None
    from_number: str | None
    to_extension: str | None
    to_number: str | None
    command_id: str | None
    location: str | None


def call_event(data: dict[str, Any]) -> CallEvent:
    entry, state = data.get("entry_id") or data.get("call_id"), data.get("call_state")
    if not entry or state not in (APPEARED, CONNECTED, DISCONNECTED, "OnHold"):
        raise MangoRefused("malformed", "events/call needs entry_id (or call_id) and a known call_state")
    fe, fn = _party(data.get("from"))
    te, tn = _party(data.get("to"))
    return CallEvent(str(entry)[:200], str(state), int(data.get("timestamp") or 0), fe, fn, te, tn,
                     str(data["command_id"]) if data.get("command_id") else None,
                     str(data.get("location")) if data.get("location") else None)


@dataclass
class Summary:
    entry_id: str
    direction: str
    from_extension: str | None
    from_number: str | None
    to_extension: str | None
    to_number: str | None
    created: dt.datetime
    talk: dt.datetime | None
    ended: dt.datetime
    answered: bool


def _time(value: Any) -> dt.datetime | None:
    try:
        stamp = int(value)
    except (TypeError, ValueError):
        return None
    return dt.datetime.fromtimestamp(stamp, dt.timezone.utc) if stamp > 0 else None


def summary(data: dict[str, Any]) -> Summary:
    entry = data.get("entry_id")
    created, ended = _time(data.get("create_time")), _time(data.get("end_time"))
    if not entry or created is None or ended is None:
        raise MangoRefused("malformed", "events/summary needs entry_id, create_time and end_time")
    fe, fn = _party(data.get("from"))
    te, tn = _party(data.get("to"))
    direction = "outgoing" if str(data.get("call_direction")) == "2" else "incoming"
    return Summary(str(entry)[:200], direction, fe, fn, te, tn, created, _time(data.get("talk_time")), ended,
                   str(data.get("entry_result")) == "1")


def new_command_id() -> str:
    return f"crm-{uuid.uuid4()}"
