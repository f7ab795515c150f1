"""Decoding a fetched message: headers (encoded words, raw 8-bit),
the text and HTML bodies in whatever charset, a declared charset that is
wrong, the attachments with their sizes, and the key that stores a message
once per tenant.

The key is the normalised Message-ID (no angle brackets or spaces, the
domain in lower case); without one, a hash of what every copy shares (the
originating headers and the body), not of the raw bytes, which servers
change on delivery (``Received``, ``Delivered-To``…)."""
from __future__ import annotations

import datetime as dt
import email
import email.policy
import hashlib
import re
from dataclasses import dataclass, field
from email.header import decode_header
from email.headerregistry import Address
from email.message import EmailMessage, Message
from email.utils import formatdate, getaddresses, parsedate_to_datetime
from typing import Any

# the charsets tried, in order, when the declared one is absent or wrong
FALLBACKS = ("utf-8", "windows-1251", "koi8-r")
_CYRILLIC_LOWER = re.compile("[а-яё]")
_CYRILLIC_UPPER = re.compile("[А-ЯЁ]")
_SURROGATES = re.compile("[\udc80-\udcff]")


@dataclass
class Attachment:
    filename: str | None
    content_type: str
    size: int


@dataclass
class Parsed:
    key: str
    message_id: str | None
    subject: str | None
    sender: dict[str, Any] | None
    to: list[dict[str, Any]]
    cc: list[dict[str, Any]]
    sent_at: dt.datetime | None
    text: str | None
    html: str | None
    attachments: list[Attachment] = field(default_factory=list)

    def addresses(self) -> list[str]:
        return [a["email"] for a in ([self.sender] if self.sender else []) + self.to + self.cc]


def _cyrillic_score(text: str) -> int:
    """Russian prose is mostly lower case: the decoding with more lower-case letters is the right one
    (windows-1251 and KOI8-R swap the cases of each other's letters)."""
    return len(_CYRILLIC_LOWER.findall(text)) - len(_CYRILLIC_UPPER.findall(text))


def decode_bytes(data: bytes, declared: str | None = None) -> str:
    """``_decode`` without NUL characters, which no text column stores."""
    return _decode(data, declared).replace("\x00", "")


def _decode(data: bytes, declared: str | None = None) -> str:
    """Text from bytes: the declared charset when it decodes cleanly, else UTF-8, else the better of
    windows-1251 and KOI8-R, else the declared (or UTF-8) with replacement characters."""
    if declared:
        try:
            text = data.decode(declared)
            if declared.lower().replace("_", "-") not in ("us-ascii", "ascii") or data.isascii():
                # a single-byte charset decodes anything: prefer UTF-8 when the bytes are valid UTF-8
                if not data.isascii() and declared.lower() in ("iso-8859-1", "latin-1", "windows-1252"):
                    try:
                        return data.decode("utf-8")
                    except UnicodeDecodeError:
                        pass
                return text
        except (UnicodeDecodeError, LookupError):
            pass
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    candidates = [data.decode(cs, "replace") for cs in ("windows-1251", "koi8-r")]
    best = max(candidates, key=_cyrillic_score)
    return best


def _header(msg: Message, name: str) -> str | None:
    """A header's text: encoded words decoded (each in its charset, with the same fallbacks as a body),
    raw 8-bit bytes decoded as a body's would be."""
    # as stored: parsed, a header with raw 8-bit bytes comes back with replacement characters
    wanted = name.lower()
    value = next((v for k, v in msg.raw_items() if k.lower() == wanted), None)
    if value is None:
        return None
    text = str(value)
    if _SURROGATES.search(text):
        text = decode_bytes(text.encode("utf-8", "surrogateescape"))
    if "=?" in text:
        try:
            pieces = decode_header(text)
        except (ValueError, LookupError, AssertionError):  # a broken encoded word stays as written
            pieces = [(text, None)]
        text = "".join(decode_bytes(p, charset) if isinstance(p, bytes) else p for p, charset in pieces)
    return " ".join(text.replace("\x00", "").split()) or None


def normalize_message_id(value: str | None) -> str | None:
    if not value:
        return None
    text = value.strip()
    found = re.search(r"<([^<>]+)>", text)
    text = (found.group(1) if found else text).strip().replace(" ", "")
    if not text:
        return None
    local, at, domain = text.rpartition("@")
    return f"{local}@{domain.lower()}" if at else text


def _addresses(msg: Message, name: str) -> list[dict[str, Any]]:
    raw = [_header(msg, name)]
    found = []
    for display, address in getaddresses([r for r in raw if r]):
        address = address.strip()
        if "@" not in address:
            continue
        local, _, domain = address.rpartition("@")
        found.append({"email": f"{local}@{domain.lower()}", "name": display.strip() or None})
    return found


def _part_text(part: Message) -> str:
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return ""
    return decode_bytes(payload, part.get_content_charset())


def _walk(msg: Message, found: dict[str, Any]) -> None:
    """The first text/plain and text/html that are not attachments, and every attachment."""
    for part in msg.walk():
        if part.is_multipart():
            continue
        disposition = (part.get_content_disposition() or "").lower()
        ctype = part.get_content_type()
        filename = part.get_filename()
        if isinstance(filename, str) and _SURROGATES.search(filename):
            filename = decode_bytes(filename.encode("utf-8", "surrogateescape"))
        if disposition != "attachment" and not filename and ctype in ("text/plain", "text/html"):
            key = "text" if ctype == "text/plain" else "html"
            if found[key] is None:
                found[key] = _part_text(part)
                continue
        if disposition == "attachment" or filename or not ctype.startswith(("text/", "multipart/")):
            payload = part.get_payload(decode=True)
            found["attachments"].append(Attachment(filename, ctype, len(payload) if isinstance(payload, bytes)
                                                   else 0))


def message_key(message_id: str) -> str:
    """``mid:<id>``; an id too long for the key column is keyed by its hash."""
    key = f"mid:{message_id}"
    return key if len(key) <= 400 else "mid-sha256:" + hashlib.sha256(message_id.encode()).hexdigest()


def content_hash(msg: Message, raw: bytes) -> str:
    head, sep, body = raw.partition(b"\r\n\r\n")
    if not sep:
        head, sep, body = raw.partition(b"\n\n")
    shared = "\n".join(f"{n}:{msg.get(n, '')}" for n in ("From", "To", "Cc", "Date", "Subject"))
    return hashlib.sha256(shared.encode("utf-8", "surrogateescape") + b"\n" + body.replace(b"\r\n", b"\n")
                          ).hexdigest()


def parse(raw: bytes) -> Parsed:
    msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    message_id = normalize_message_id(_header(msg, "Message-ID"))
    sent_at = None
    date = _header(msg, "Date")
    if date:
        try:
            sent_at = parsedate_to_datetime(date)
            if sent_at.tzinfo is None:
                sent_at = sent_at.replace(tzinfo=dt.timezone.utc)
        except (TypeError, ValueError, IndexError):
            sent_at = None
    found: dict[str, Any] = {"text": None, "html": None, "attachments": []}
    _walk(msg, found)
    subject = _header(msg, "Subject")
    senders = _addresses(msg, "From")
    return Parsed(key=message_key(message_id) if message_id else f"sha256:{content_hash(msg, raw)}",
                  message_id=message_id, subject=subject, sender=senders[0] if senders else None,
                  to=_addresses(msg, "To"), cc=_addresses(msg, "Cc"), sent_at=sent_at,
                  text=found["text"], html=found["html"], attachments=found["attachments"])


def build(sender: str, sender_name: str | None, to: list[str], cc: list[str], subject: str, text: str | None,
          html: str | None, attachments: list[tuple[str, str, bytes]], message_id: str) -> EmailMessage:
    """A message to send (Bcc is left out of the headers)."""
    msg = EmailMessage()
    msg["From"] = str(Address(sender_name or "", addr_spec=sender)) if sender_name else sender
    msg["To"] = ", ".join(to)
    if cc:
        msg["Cc"] = ", ".join(cc)
    msg["Subject"] = subject
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = message_id
    if text is not None:
        msg.set_content(text)
        if html is not None:
            msg.add_alternative(html, subtype="html")
    else:
        msg.set_content(html or "", subtype="html")
    for filename, ctype, content in attachments:
        maintype, _, subtype = ctype.partition("/")
        msg.add_attachment(content, maintype=maintype, subtype=subtype or "octet-stream", filename=filename)
    return msg
