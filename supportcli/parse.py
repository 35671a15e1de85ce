"""Raw bytes -> :class:`Message`.

Robust by design: headers in any encoding, wrong or unknown charsets, HTML-only mail, deep
MIME trees and huge parts never raise; what cannot be read becomes a :class:`ParseFailure`,
and what had to be cut short is named in ``Message.warnings``.
The libraries doing the specialised work: inscriptis (HTML -> text), quotequail (quoted
history, multilingual reply/forward headers), mail-parser-reply (signatures),
charset-normalizer (charset detection) and py3langid (language). The glue here only decides
when to call them: each is slow on long text, so cheap regex pre-checks skip the calls (or
the lines) that cannot match.
"""

from __future__ import annotations

import email
import hashlib
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from email.header import Header, decode_header
from email.message import Message as EmailMessage
from email.utils import getaddresses, parseaddr, parsedate_to_datetime
from functools import lru_cache
from typing import Any

from .records import Attachment, Message, ParseFailure, RawMessage

MAX_RAW_BYTES = 30 * 1024 * 1024  # larger messages are cut here before parsing
MAX_TEXT_CHARS = 256 * 1024  # text kept per message
MAX_HTML_CHARS = 200 * 1024  # HTML handed to inscriptis (after <head>/<style>/<script> go)
MAX_PARTS = 200  # MIME parts visited per message
MAX_BOUNDARY_LINES = 1000  # the message is cut before the next line starting with "--"
MAX_DEPTH = 30  # MIME nesting followed
MAX_HEADER_CHARS = 8 * 1024  # per header value
MAX_MIME_HEADER_CHARS = 2 * 1024  # per Content-* header value
MAX_REPLY_SCAN_LINES = 300  # lines searched for a reply/forward header
REPLY_WINDOW_LINES = 8  # lines quotequail reads after a line that may start one
MAX_REPLY_WINDOWS = 8  # windows tried per message
MAX_REPLY_SCAN_CHARS = 32 * 1024  # and no further than this
MAX_SIGNATURE_TEXT = 6000  # longer new text is not searched for a signature
LANGUAGE_SAMPLE_CHARS = 200
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

_SUBJECT_PREFIX = re.compile(
    r"^\s*(?:(?:re|fw|fwd|aw|wg|tr|rv|sv|vs|antw|odp|r|enc|réf|ref)\s*(?:\[\d+\])?\s*[:：]\s*)+",
    re.IGNORECASE,
)
_MSGID = re.compile(r"<([^<>\s]{1,250})>")
# One pass, leftmost match first, so "SO-10234" is never also read as "10234":
# "#10234" | "Order (no.|nr.|#|:)* 10234" in several languages | "SO-10234", "ORD-2026-0042"
# | "PO10234"-style codes.
_ORDER_NUMBER = re.compile(
    r"(?<![\w&])#\s?(\d{4,10})\b"
    r"|\b(?=[obacpirfOBACPIRF])(?i:order|bestellung|bestellnummer|auftrag|commande|pedido|ordine"
    r"|bestelling|invoice|rechnung|facture|factura)"
    r"(?:\s*(?i:no\.?|nr\.?|number|nummer|num[eé]ro|n[°º.]|#|:|-))*\s*(\d{4,10})\b"
    r"|\b(?=[soipSOIP])((?i:SO|ORD|PO|INV|ORDER)-[0-9][0-9a-zA-Z]*(?:-[0-9a-zA-Z]+)*)\b"
    r"|\b((?:SO|ORD|PO|INV)-?[A-Z0-9]*\d{3,}[A-Z0-9]*)\b"
)
MAX_ORDER_SCAN_CHARS = 8000
_NOREPLY = re.compile(
    r"^(?:no[-_.]?reply|do[-_.]?not[-_.]?reply|mailer-daemon|postmaster|bounces?|"
    r"notifications?|auto[-_.]?reply|automated)\b",
    re.IGNORECASE,
)
_QUOTED_LINE = re.compile(r"^\s*>")
# Where quotequail could find a reply/forward header — a superset of its patterns, searched
# in lower-cased text: "… wrote:", "Am … schrieb …:", "Le … a écrit :", "---- Forwarded
# message ----", "Begin forwarded message:" … (maybe wrapped onto a second line), Gmail's
# "2025/03/03 Name <a@b>", Outlook's 32 underscores, and header blocks (two known header
# names close together). Lines above the first such line are new text for sure, so
# quotequail (which tries ~40 regexes on every line it reads) only reads a few lines around
# each candidate, and most mail never reaches it. A bare '>' block is left to
# _split_angle_quotes: quotequail would only call it a quote.
_REPLY_WORDS = (
    r"wrote|schrieb|[ée]crit|escribi[óo]|scritto|написал|skrev|escreveu|schreef|geschreven"
)
_FORWARD_WORDS = (
    r"message|e-?mail|r[ée]exp[ée]di[ée]|reenviado|bericht|meddelande|original|nachricht|"
    r"transf[ée]r[ée]|сообщение"
)
_HEADER_NAMES = (
    r"from|von|de|от кого|från|van|to|an|para|à|pour|кому|till|aan|cc|kopie|kopia|bcc|cco|"
    r"blindkopie|reply-to|antwort an|répondre à|responder a|antwoord aan|date|sent|received|"
    r"datum|gesendet|enviado el|enviados|fecha|дата|verzonden|subject|betreff|asunto|objet|"
    r"sujet|тема|ämne|onderwerp"
)
_QUOTE_TRIGGER = re.compile(r"^[ \t>]*(?:\d{4}/\d\d?/\d\d?|_{32}[ \t]*$)", re.MULTILINE)
_LINE_END_MARK = re.compile(r"[:\-][ \t]*$", re.MULTILINE)
_HEADER_WORDS = re.compile(rf"{_REPLY_WORDS}|{_FORWARD_WORDS}")
_HEADER_LINE = re.compile(rf"^[>* \t]*(?:{_HEADER_NAMES})[ \t]*:", re.MULTILINE)
HEADER_BLOCK_GAP = 6  # lines between two header lines of one block (quotequail: any)
# What mail-parser-reply could take for a reply header (searched in lower-cased text): a
# "… wrote:" line in one of REPLY_LANGUAGES, "-----Original Message-----" or two header lines
# ("From: …", "Von: …", "Da: …") close together. Without one, its slow header regex is skipped.
_REPLY_HEADER_WORDS = re.compile(rf"{_REPLY_WORDS}|original message")
_REPLY_HEADER_LINE = re.compile(
    r"^[>* \t]*(?:from|sent|to|subject|date|cc|organization|von|gesendet|an|betreff|datum|"
    r"organisation|de|envoyé|à|objet|para|asunto|fecha|enviado|organización|da|inviato|a|"
    r"oggetto|data|van|verzonden|aan|onderwerp)[ *\t]*:",
    re.MULTILINE,
)
_NEVER = re.compile(r"(?!)")
_SURROGATE = re.compile("[\udc80-\udcff]")
_FOLD = re.compile(r"\s*[\r\n]+\s*")
_LONG_BLANK = re.compile(r"[^\S\n]{64,}")
REPLY_LANGUAGES = ("en", "de", "fr", "es", "it", "nl")
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


def parse(raw: RawMessage, content_hash: str | None = None) -> Message | ParseFailure:
    """Parse one message; never raises for anything the bytes contain. ``content_hash``: the
    sha256 hex digest of ``raw.data``, when the caller has it already."""
    try:
        return _parse(raw, content_hash or hashlib.sha256(raw.data).hexdigest())
    except RecursionError:
        return ParseFailure(raw.source, raw.key, "MIME structure nested too deeply")
    except MemoryError:
        return ParseFailure(raw.source, raw.key, "message too large to parse")
    except Exception as exc:  # one broken email never stops a run
        return ParseFailure(raw.source, raw.key, f"{type(exc).__name__}: {exc}"[:300])


def _parse(raw: RawMessage, content_hash: str) -> Message | ParseFailure:
    data = raw.data
    warnings: list[str] = []
    if not data or not data.strip():
        errors = [flag[6:] for flag in raw.flags if flag.startswith("error:")]
        return ParseFailure(raw.source, raw.key, errors[0] if errors else "empty message")
    if len(data) > MAX_RAW_BYTES:
        warnings.append(f"message cut at {MAX_RAW_BYTES // (1024 * 1024)} MiB")
        data = data[:MAX_RAW_BYTES]
    if data.count(b"\n--") > MAX_BOUNDARY_LINES:  # thousands of tiny parts parse slowly
        data = data[: _nth(data, b"\n--", MAX_BOUNDARY_LINES)]
        warnings.append(f"message cut after {MAX_BOUNDARY_LINES} MIME boundary lines")
    msg = email.message_from_bytes(data)
    if not msg.keys():
        return ParseFailure(raw.source, raw.key, "no mail headers found")
    _tame_headers(msg, warnings)

    heads = _first_headers(msg)
    subject = _head_text(heads, "subject")
    sender_name, sender_addr = _sender(heads)
    body, is_html, attachments, is_report = _body_and_attachments(msg, warnings)
    new, quoted, signature = split_reply(body)
    date, date_fallback = _date(heads, raw.received, warnings)
    message_id = _first_msgid(_head_text(heads, "message-id"))
    references = tuple(_MSGID.findall(_head_text(heads, "references")))
    return Message(
        message_id=message_id or f"sha256:{content_hash[:32]}",
        source=raw.source,
        source_key=raw.key,
        date=date,
        date_is_fallback=date_fallback,
        sender_name=sender_name,
        sender_addr=sender_addr,
        to=tuple(addr.lower() for _, addr in getaddresses([_head(heads, "to")]) if addr),
        subject=subject,
        norm_subject=normalize_subject(subject),
        in_reply_to=_first_msgid(_head_text(heads, "in-reply-to")),
        references=references[-50:],
        text_new=new,
        text_quoted=quoted,
        text_signature=signature,
        is_html=is_html,
        attachments=tuple(attachments),
        order_numbers=find_order_numbers(subject + "\n" + new),
        automated=_automated(heads, sender_addr, is_report),
        language=detect_language(new or quoted or subject),
        content_hash=content_hash,
        flags=raw.flags,
        warnings=tuple(dict.fromkeys(warnings)),
    )


def _nth(data: bytes, needle: bytes, n: int) -> int:
    """Offset of the n-th occurrence of ``needle`` (1-based); len(data) if there are fewer."""
    offset = -1
    for _ in range(n):
        offset = data.find(needle, offset + 1)
        if offset < 0:
            return len(data)
    return offset


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


# --- headers -------------------------------------------------------------------------------


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
        return parsed.astimezone(UTC), False
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


# --- body ----------------------------------------------------------------------------------


def _walk(msg: EmailMessage, warnings: list[str]) -> Iterator[EmailMessage]:
    """Leaf parts, iteratively, bounded in depth and count; never enters attached messages."""
    stack: list[tuple[EmailMessage, int]] = [(msg, 0)]
    seen = 0
    while stack:
        if seen >= MAX_PARTS:
            warnings.append(f"only the first {MAX_PARTS} MIME parts read")
            return
        part, depth = stack.pop()
        seen += 1
        if depth:
            _tame_headers(part, warnings)
        payload = part.get_payload()
        if part.get_content_maintype() == "message" or not isinstance(payload, list):
            yield part
        elif depth >= MAX_DEPTH:
            warnings.append(f"MIME parts nested deeper than {MAX_DEPTH} skipped")
        else:
            stack.extend(
                (child, depth + 1) for child in reversed(payload) if isinstance(child, EmailMessage)
            )


def _body_and_attachments(
    msg: EmailMessage, warnings: list[str]
) -> tuple[str, bool, list[Attachment], bool]:
    plain: list[str] = []
    html: str | None = None
    other_text: str | None = None
    attachments: list[Attachment] = []
    is_report = msg.get_content_type() == "multipart/report"
    for part in _walk(msg, warnings):
        ctype = part.get_content_type()
        filename = _filename(part)
        if ctype == "message/delivery-status":
            is_report = True
        elif part.get_content_maintype() == "message" and isinstance(part.get_payload(), list):
            attachments.append(_attachment(part, filename or _attached_subject(part)))
        elif part.get_content_disposition() == "attachment" or (
            filename and part.get_content_maintype() != "text"
        ):
            attachments.append(_attachment(part, filename))
        elif ctype == "text/plain" or part.get_content_maintype() == "multipart":
            plain.append(_part_text(part, warnings))  # a multipart without parts: its text
        elif ctype == "text/html":
            html = _part_text(part, warnings) if html is None else html
        elif ctype == "text/rfc822-headers":  # a bounce's copy of the original's headers
            continue
        elif part.get_content_maintype() == "text":
            other_text = _part_text(part, warnings) if other_text is None else other_text
        elif part.get_content_maintype() != "message":
            attachments.append(_attachment(part, filename))
    text = "\n\n".join(p.strip("\n") for p in plain if p.strip())[:MAX_TEXT_CHARS]
    if text:
        return text, False, attachments, is_report
    if html and html.strip():
        return html_to_text(html), True, attachments, is_report
    return other_text or "", False, attachments, is_report


def _filename(part: EmailMessage) -> str:
    try:
        name: Any = part.get_filename()
    except Exception:
        return ""
    if not name:
        return ""
    if isinstance(name, tuple):  # undecoded RFC 2231 triple
        return decode_bytes(name[2].encode("latin-1", "replace"), name[0])
    return _decode_words(_fix_surrogates(str(name)))


def _attached_subject(part: EmailMessage) -> str:
    inner = part.get_payload()
    if isinstance(inner, list) and inner and isinstance(inner[0], EmailMessage):
        subject = header_text(inner[0], "subject")
        return f"{subject[:100]}.eml" if subject else ""
    return ""


def _attachment(part: EmailMessage, filename: str) -> Attachment:
    return Attachment(filename or "(unnamed)", part.get_content_type(), _encoded_size(part))


def _encoded_size(part: EmailMessage) -> int:
    """Decoded size in bytes, worked out from the encoded text without decoding it."""
    declared = part.get_param("size", header="content-disposition")  # RFC 2183
    if isinstance(declared, str) and declared.strip().isdigit() and len(declared) < 16:
        return int(declared)
    payload: Any = part.get_payload(decode=False)
    if isinstance(payload, list):  # an attached message: its headers and parts as sent
        return _message_size(payload)
    if not isinstance(payload, str):
        return 0
    encoding = str(part.get("content-transfer-encoding", "")).strip().lower()
    if encoding == "base64":
        chars = len(payload) - sum(payload.count(ch) for ch in " \t\r\n")
        return max(chars * 3 // 4 - payload.rstrip().count("=", -2), 0)
    if encoding == "quoted-printable":
        return max(len(payload) - 2 * payload.count("="), 0)  # "=XX" is one byte, "=\n" none
    return len(payload.encode("utf-8", "surrogateescape"))


def _message_size(parts: list[Any]) -> int:
    """Roughly the bytes of an attached message: header lines and encoded part bodies, read
    from at most MAX_PARTS parts, so a message nested a thousand deep costs no more."""
    total, seen, stack = 0, 0, [p for p in parts if isinstance(p, EmailMessage)]
    while stack and seen < MAX_PARTS:
        part = stack.pop()
        seen += 1
        total += sum(len(name) + len(str(value)) + 3 for name, value in part.raw_items()) + 2
        payload = part.get_payload()
        if isinstance(payload, list):
            stack.extend(p for p in payload if isinstance(p, EmailMessage))
        elif isinstance(payload, str):
            total += len(payload)
    return total


def _part_text(part: EmailMessage, warnings: list[str]) -> str:
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return ""
    if len(payload) > MAX_TEXT_CHARS * 4:
        warnings.append("text part cut to the first 1 MiB")
        payload = payload[: MAX_TEXT_CHARS * 4]
    text = decode_bytes(payload, part.get_content_charset())
    return text[:MAX_TEXT_CHARS]


_NOISE_OPEN = re.compile(r"<(script|style|head|title)\b[^<>]*>|<!--", re.IGNORECASE)
_NOISE_CLOSE = {
    tag: re.compile(rf"</{tag}\s*>", re.IGNORECASE) for tag in ("script", "style", "head", "title")
}


def _strip_html_noise(html: str) -> str:
    """The HTML without <script>, <style>, <head> and <title> elements and comments, so that
    more of the text fits under the size cap (inscriptis would hide them anyway). One pass:
    an element that never closes is left as it is and its kind is not searched for again."""
    parts: list[str] = []
    kept = searched = 0
    unclosed: set[str] = set()
    while match := _NOISE_OPEN.search(html, searched):
        kind = (match.group(1) or "!--").lower()
        searched = match.end()
        if kind in unclosed:
            continue
        if kind == "!--":
            end = html.find("-->", searched)
            end = end + 3 if end >= 0 else -1
        else:
            close = _NOISE_CLOSE[kind].search(html, searched)
            end = close.end() if close else -1
        if end < 0:
            unclosed.add(kind)
            continue
        parts += [html[kept : match.start()], " "]
        kept = searched = end
    parts.append(html[kept:])
    return "".join(parts)


def html_to_text(html: str) -> str:
    """Readable text of an HTML body (inscriptis); scripts, styles and comments never show."""
    from inscriptis import get_text

    html = _strip_html_noise(html[: MAX_HTML_CHARS * 4])[:MAX_HTML_CHARS]
    try:
        text = get_text(html)
    except Exception:  # RecursionError on absurd nesting, lxml errors: keep the bare text
        text = re.sub(r"<[^>]*>", " ", html)
    return re.sub(r"\n{3,}", "\n\n", "\n".join(line.rstrip() for line in text.splitlines()))


# --- reply splitting ----------------------------------------------------------------------


def split_reply(body: str) -> tuple[str, str, str]:
    """(new text, quoted history, signature) of a message body."""
    body = body.replace("\r\n", "\n").replace("\r", "\n").strip()
    if not body:
        return "", "", ""
    new, quoted = _unwrap_history(body)
    new, angle_quoted = _split_angle_quotes(new)
    new, signature, later = _split_signature(new)
    quoted = "\n\n".join(p for p in (angle_quoted, later, quoted) if p)
    return new, quoted, signature


def _unwrap_history(body: str) -> tuple[str, str]:
    """quotequail finds the reply/forward header or header block: text above it is new, the
    rest history, except text below a '>' quoted block that follows the header (a
    bottom-poster's answer), which is new too."""
    lines = body.split("\n")
    found = _find_history(lines)
    if found is None:
        return body, ""
    start, result = found
    top = result.get("text_top", "")
    event = start
    if top:
        window = "\n".join(lines[start : start + REPLY_WINDOW_LINES + 1])
        event += window[: window.find(top) + len(top)].count("\n") + 1
    while event < len(lines) and not lines[event].strip():
        event += 1
    end = _quoted_block_end(lines, event)
    new = "\n".join(lines[:event]).strip()
    below = "\n".join(lines[end:]).strip()
    return (f"{new}\n\n{below}".strip() if below else new), "\n".join(lines[event:end]).strip()


def _quoted_block_end(lines: list[str], header: int) -> int:
    """End of the '>' block right after a reply header (as quotequail reads it), else the end
    of the text: history without '>' marks (Outlook, forwards) runs to the end."""
    others = 0
    for i in range(header + 1, min(header + 8, len(lines))):
        if lines[i].startswith(">"):
            return next(
                (j for j in range(i, len(lines)) if not lines[j].startswith(">")), len(lines)
            )
        if lines[i].strip():
            others += 1  # a wrapped header line, "<snip>" …; more means no '>' block
            if others > 2:
                break
    return len(lines)


def _find_history(lines: list[str]) -> tuple[int, dict[str, str]] | None:
    """(first line of the window, quotequail's result) for the first reply or forward header;
    quotequail only ever reads a small window of lines from just before each trigger line."""
    import quotequail

    # lower-cased, so the same lines and line numbers, but no slow case-insensitive regexes
    low = "\n".join(lines[:MAX_REPLY_SCAN_LINES])[:MAX_REPLY_SCAN_CHARS].lower()
    pos = 0
    for _ in range(MAX_REPLY_WINDOWS):
        trigger = _next_trigger(low, pos)
        if trigger is None:
            return None
        line = low.count("\n", 0, trigger)
        start, end = max(line - 1, 0), line + REPLY_WINDOW_LINES
        try:
            result = quotequail.unwrap("\n".join(lines[start:end]))
        except Exception:
            return None
        if result:
            # bare '>' quoting without a header is left to _split_angle_quotes
            return None if result.get("type") == "quote" else (start, result)
        # later triggers seen with enough lines after them need no second look
        pos = max(_line_offset(low, line + REPLY_WINDOW_LINES - 4), low.find("\n", trigger) + 1)
        if pos == 0:
            return None
    return None


def _next_trigger(low: str, pos: int) -> int | None:
    """Offset of the first line from ``pos`` where quotequail could see a header."""
    found = _QUOTE_TRIGGER.search(low, pos)
    limit = found.start() if found else len(low)
    first = limit if found else None
    for mark in _LINE_END_MARK.finditer(low, pos, limit):  # "… wrote:" maybe over two lines
        line_start = low.rfind("\n", pos, mark.start()) + 1 or pos
        prev_start = low.rfind("\n", pos, max(line_start - 1, pos)) + 1 or pos
        if _HEADER_WORDS.search(low, prev_start, mark.start()):
            first = limit = mark.start()
            break
    previous: tuple[int, int] | None = None  # a header line: (offset, line number)
    for header in _HEADER_LINE.finditer(low, pos, limit):  # two header lines close together
        line = low.count("\n", pos, header.start())
        if previous is not None and line - previous[1] <= HEADER_BLOCK_GAP:
            return previous[0]
        previous = (header.start(), line)
    return first


def _line_offset(text: str, line: int) -> int:
    """Offset where line number ``line`` starts (the text's length past the last line)."""
    offset = 0
    for _ in range(line):
        offset = text.find("\n", offset) + 1
        if offset == 0:
            return len(text)
    return offset


def _split_angle_quotes(text: str) -> tuple[str, str]:
    """Lines quoted with '>' (no reply header to go by) are history, not new text."""
    lines = text.split("\n")
    if not any(_QUOTED_LINE.match(line) for line in lines):
        return text, ""
    kept = [line for line in lines if not _QUOTED_LINE.match(line)]
    quoted = [line for line in lines if _QUOTED_LINE.match(line)]
    return "\n".join(kept).strip(), "\n".join(quoted)


@lru_cache(maxsize=1)
def _reply_regexes() -> tuple[Any, Any, Any]:
    """mail-parser-reply rebuilds its three big regexes for every message: build them once."""
    from mailparser_reply import EmailMessage as ReplyMessage

    probe = ReplyMessage(text="", languages=list(REPLY_LANGUAGES), keep_hyphen_lists=True)
    return probe.HEADER_REGEX, probe.DISCLAIMERS_REGEX, probe.SIGNATURE_REGEX


def _may_hold_reply_header(text: str) -> bool:
    low = text.lower()
    if _REPLY_HEADER_WORDS.search(low):
        return True
    last = -9
    for match in _REPLY_HEADER_LINE.finditer(low):
        line = low.count("\n", 0, match.start())
        if line - last <= 3:
            return True
        last = line
    return False


def _split_signature(text: str) -> tuple[str, str, str]:
    """(text, signature, later history) by mail-parser-reply; hyphen lists are not signatures
    and a "signature" whose first line reads like a sentence is kept as text."""
    if not text or len(text) > MAX_SIGNATURE_TEXT:
        return text, "", ""
    from mailparser_reply import EmailMessage as ReplyMessage

    header_rx, disclaimers_rx, signature_rx = _reply_regexes()
    text = _LONG_BLANK.sub("  ", text)  # its signature regex is quadratic in runs of blanks
    try:
        replies = (
            ReplyMessage(
                text=text,
                languages=list(REPLY_LANGUAGES),
                keep_hyphen_lists=True,
                _header_regex=header_rx if _may_hold_reply_header(text) else _NEVER,
                _disclaimers_regex=disclaimers_rx,
                _signature_regex=signature_rx,
            )
            .read()
            .replies
        )
    except Exception:
        return text, "", ""
    if not replies or replies[0].headers:  # starts with a reply header: all history
        return (text, "", "") if not replies else ("", "", text)
    first = replies[0]
    later = "\n\n".join(r.content for r in replies[1:] if r.content).strip()
    body, signature = (first.body or "").strip(), (first.signatures or "").strip()
    if not body:  # the whole text looked like a signature: keep it as text
        return text, "", later
    if signature and len(signature.split("\n", 1)[0].split()) > 6:
        return first.full_body.strip(), "", later
    return body, signature, later


# --- facts ---------------------------------------------------------------------------------


def find_order_numbers(text: str) -> tuple[str, ...]:
    """Order numbers in the order they appear; "SO-10234" wins over a "10234" elsewhere."""
    found: dict[str, None] = {}
    for match in _ORDER_NUMBER.finditer(text[:MAX_ORDER_SCAN_CHARS]):
        found.setdefault(next(g for g in match.groups() if g).upper(), None)
    numbers = list(found)
    return tuple(
        n
        for n in numbers
        if not any(n != m and (n in m.split("-") or m.startswith(n + "-")) for m in numbers)
    )


def _automated(heads: dict[str, str], sender: str, is_report: bool) -> str:
    auto = _head_text(heads, "auto-submitted").lower()
    if auto and auto != "no":
        return f"Auto-Submitted: {auto[:40]}"
    precedence = _head_text(heads, "precedence").lower()
    if precedence in {"bulk", "list", "junk", "auto_reply"}:
        return f"Precedence: {precedence}"
    if is_report:
        return "delivery-status report"
    for header in ("x-autoreply", "x-autorespond"):
        if _head_text(heads, header):
            return f"{header} header"
    if heads.get("list-id") or heads.get("list-unsubscribe"):
        return "mailing list (List-Id/List-Unsubscribe)"
    local = sender.split("@", 1)[0]
    if local and _NOREPLY.match(local):
        return f"no-reply sender {local}@…"
    return ""


_language_identifier: Any = None


def detect_language(text: str) -> str:
    """ISO 639-1 code of the text by py3langid, "" when too short to tell."""
    global _language_identifier
    sample = re.sub(r"\s+", " ", text[: LANGUAGE_SAMPLE_CHARS * 2]).strip()
    if len(sample) < 12:
        return ""
    try:
        if _language_identifier is None:
            from py3langid.langid import MODEL_FILE, LanguageIdentifier

            _language_identifier = LanguageIdentifier.from_model_file(MODEL_FILE)
        code, _ = _language_identifier.classify(sample[:LANGUAGE_SAMPLE_CHARS])
    except Exception:
        return ""
    return str(code)


def release_language_model() -> None:
    """Free py3langid's model (about 70 MB); the next ``detect_language`` loads it again.
    A big triage calls this once parsing is over, before the classifier's peak."""
    global _language_identifier
    _language_identifier = None
