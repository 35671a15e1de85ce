"""Headers: decoded whatever their encoding (RFC 2047 words, raw 8-bit bytes, wrong or unknown
charsets, found with charset-normalizer), cut when absurdly long, and read into sender,
subject, message ids and date."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email.header import Header, decode_header
from email.message import Message as EmailMessage
from email.utils import parseaddr, parsedate_to_datetime
from functools import lru_cache
from typing import Any

MAX_HEADER_CHARS = 8 * 1024  # per header value
MAX_MIME_HEADER_CHARS = 2 * 1024  # per Content-* header value
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SUBJECT_PREFIX = re.compile(
    r"^\s*(?:(?:re|fw|fwd|aw|wg|tr|rv|sv|vs|antw|odp|r|enc|réf|ref)\s*(?:\[\d+\])?\s*[:：]\s*)+",
    re.IGNORECASE,
)
_MSGID = re.compile(r"<([^<>\s]{1,250})>")
_SURROGATE = re.compile("[\udc80-\udcff]")
_FOLD = re.compile(r"\s*[\r\n]+\s*")
# Charset labels that mail software writes when the bytes are really windows-1252
# (the WHATWG encoding standard maps them the same way).
_WINDOWS_1252_LABELS = {
    "us-ascii",
    "ascii",
    "iso-8859-1",
    "iso8859-1",
    "latin1",
    "latin-1",
    "iso_8859-1",
    "l1",
    "cp819",
    "ibm819",
    "windows-1252",
    "cp1252",
}


def _tame_headers(part: EmailMessage, warnings: list[str]) -> None:
    """Cut absurdly long headers before anything parses them: the stdlib's parameter parsing
    is quadratic, so a Content-Type of 14 KB of ';' takes longer than the rest of the mail."""
    for name, value in part.raw_items():
        limit = MAX_MIME_HEADER_CHARS if name.lower().startswith("content-") else MAX_HEADER_CHARS
        if len(value) > limit:
            values = [v[:limit] for k, v in part.raw_items() if k.lower() == name.lower()]
            del part[name]
            for kept in values:
                part[name] = kept
            warnings.append(f"header {name[:40]} cut at {limit // 1024} KiB")


def _raw_header(msg: EmailMessage, name: str) -> str:
    """A header's text before RFC 2047 decoding; raw 8-bit bytes decoded (UTF-8, else guessed)."""
    value: Any = msg.get(name)
    if value is None:
        return ""
    if isinstance(value, Header):  # compat32 hands back raw 8-bit headers as Header objects
        chunks = decode_header(value)
        text = "".join(
            chunk if isinstance(chunk, str) else decode_bytes(chunk[:MAX_HEADER_CHARS], None)
            for chunk, _ in chunks
        )
    else:
        text = _fix_surrogates(str(value)[:MAX_HEADER_CHARS])
    return text[:MAX_HEADER_CHARS]


def _first_headers(msg: EmailMessage) -> dict[str, str]:
    """Each header's first value by lower-cased name, read once (``msg.get`` scans them all)."""
    heads: dict[str, str] = {}
    for name, value in msg.raw_items():
        heads.setdefault(name.lower(), str(value))
    return heads


def _head(heads: dict[str, str], name: str) -> str:
    """Like _raw_header, from _first_headers."""
    value = heads.get(name)
    return _fix_surrogates(value[:MAX_HEADER_CHARS]) if value else ""


def _head_text(heads: dict[str, str], name: str) -> str:
    return _decode_words(_head(heads, name))


def header_text(msg: EmailMessage, name: str) -> str:
    """A header decoded to str: RFC 2047 words, raw 8-bit bytes and unknown charsets handled."""
    return _decode_words(_raw_header(msg, name))


def _decode_words(text: str) -> str:
    if "=?" in text:
        try:
            chunks = decode_header(text)
        except Exception:
            chunks = [(text, None)]
        text = "".join(
            _fix_surrogates(chunk) if isinstance(chunk, str) else decode_bytes(chunk, charset)
            for chunk, charset in chunks
        )
    return _FOLD.sub(" ", text).strip() if "\n" in text or "\r" in text else text.strip()


def _fix_surrogates(text: str) -> str:
    """compat32 keeps undecodable 8-bit header bytes as surrogates: decode them properly."""
    if not _SURROGATE.search(text):
        return text
    return decode_bytes(text.encode("utf-8", "surrogateescape"), None)


def decode_bytes(data: bytes, charset: str | None) -> str:
    """Bytes to text: the declared charset, else UTF-8, else detection, never an exception.

    Labels that legacy mailers put on windows-1252 text (us-ascii, iso-8859-1) are read as
    windows-1252, as browsers do; UTF-8 is tried first because it is the commoner mislabel.
    """
    declared = _known_charset(charset)
    label = (charset or "").strip().strip("\"'").lower()
    candidates = [] if label in _WINDOWS_1252_LABELS else [declared]
    candidates.append("utf-8")
    if label in _WINDOWS_1252_LABELS:
        candidates.append("cp1252")
    for candidate in candidates:
        if candidate:
            try:
                return data.decode(candidate)
            except (UnicodeDecodeError, LookupError):
                continue
    return data.decode(_detect_charset(data) or declared or "cp1252", errors="replace")


def _detect_charset(data: bytes) -> str | None:
    """charset-normalizer's guess; among equally clean guesses windows-1252 is preferred, since
    detection on a few accented letters often picks an exotic code page."""
    try:
        from charset_normalizer import from_bytes

        matches = list(from_bytes(data[:65536]))
    except Exception:  # detection is best effort
        return None
    if not matches:
        return None
    best = matches[0]
    for match in matches:
        if match.chaos > best.chaos + 0.01:
            break
        if "cp1252" in match.could_be_from_charset:
            return "cp1252"
    return str(best.encoding)


@lru_cache(maxsize=256)
def _known_charset(charset: str | None) -> str | None:
    if not charset:
        return None
    import codecs

    name = charset.strip().strip("\"'").lower()
    aliases = {"unknown-8bit": None, "x-unknown": None, "ascii": "utf-8", "us-ascii": "utf-8"}
    if name in aliases:
        return aliases[name]
    try:
        return codecs.lookup(name).name
    except LookupError:
        return None


def _sender(heads: dict[str, str]) -> tuple[str, str]:
    raw_from = _head(heads, "from") or _head(heads, "sender") or _head(heads, "reply-to")
    raw_from = _FOLD.sub(" ", raw_from)
    name, addr = parseaddr(raw_from)  # before decoding: a decoded name may hold a comma
    if not addr and "@" in raw_from:
        found = re.search(r"[\w.+-]+@[\w.-]+", raw_from)
        addr = found.group(0) if found else ""
    name = _decode_words(name)
    return name.strip() or addr, addr.strip().lower()


def normalize_subject(subject: str) -> str:
    return re.sub(r"\s+", " ", _SUBJECT_PREFIX.sub("", subject)).strip().lower()


def _first_msgid(value: str) -> str:
    found = _MSGID.search(value)
    if found:
        return found.group(1)
    return value.strip().strip("<>")[:250] if value.strip() else ""


def _parse_date(value: str) -> datetime | None:
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return parsed if parsed.year >= 1980 else None


def utc_offset(moment: datetime) -> int:
    """Minutes east of UTC of an aware datetime, within a day (0 when unknown)."""
    offset = moment.utcoffset()
    minutes = int(offset.total_seconds() // 60) if offset is not None else 0
    return minutes if -1440 < minutes < 1440 else 0


def _date(
    heads: dict[str, str], received: datetime | None, warnings: list[str]
) -> tuple[datetime, bool]:
    """(date in UTC, True when it is a fallback rather than the message's own Date)."""
    for header in ("date", "resent-date", "delivery-date"):
        value = _head_text(heads, header)
        parsed = _parse_date(value) if value else None
        if parsed is None:
            continue
        if parsed.tzinfo is None:
            warnings.append(f"{header.title()} has no time zone: read as UTC")
            parsed = parsed.replace(tzinfo=UTC)
        return parsed, False
    received_header = _head_text(heads, "received")
    parsed = _parse_date(received_header.rsplit(";", 1)[1]) if ";" in received_header else None
    if parsed is not None:
        warnings.append("no readable Date: using the Received header")
        return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC), True
    if received is not None:
        warnings.append("no readable Date: using the time the source received it")
        return received.astimezone(UTC), True
    warnings.append("no readable Date")
    return EPOCH, True
