"""Raw bytes -> :class:`Message`.

Robust by design: headers in any encoding, wrong or unknown charsets, HTML-only mail, deep
MIME trees and huge parts never raise; what cannot be read becomes a :class:`ParseFailure`.
The libraries doing the specialised work: inscriptis (HTML -> text), quotequail (quoted
history, multilingual reply/forward headers), mail-parser-reply (signatures),
charset-normalizer (charset detection) and py3langid (language).
"""

from __future__ import annotations

import email
import hashlib
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from email.header import decode_header
from email.message import Message as EmailMessage
from email.utils import getaddresses, parseaddr, parsedate_to_datetime
from functools import lru_cache
from typing import Any

from .records import Attachment, Message, ParseFailure, RawMessage

MAX_RAW_BYTES = 30 * 1024 * 1024  # larger messages are cut here before parsing
MAX_TEXT_CHARS = 256 * 1024  # text kept per message
MAX_PARTS = 200  # MIME parts visited per message
MAX_DEPTH = 30  # MIME nesting followed
MAX_HEADER_CHARS = 8 * 1024  # per header value
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

_SUBJECT_PREFIX = re.compile(
    r"^\s*(?:(?:re|fw|fwd|aw|wg|tr|rv|sv|vs|antw|odp|r|enc|réf|ref)\s*(?:\[\d+\])?\s*[:：]\s*)+",
    re.IGNORECASE,
)
_MSGID = re.compile(r"<([^<>\s]{1,250})>")
_ORDER_PATTERNS = (
    re.compile(r"(?<![\w&])#\s?(\d{4,10})\b"),
    re.compile(
        r"\b(?:order|bestellung|bestellnummer|auftrag|commande|pedido|ordine|bestelling|"
        r"invoice|rechnung|facture|factura)"
        r"(?:\s*(?:no\.?|nr\.?|number|nummer|num[eé]ro|n[°º.]|#|:|-))*\s*(\d{4,10})\b",
        re.IGNORECASE,
    ),
    re.compile(r"\b((?:SO|ORD|PO|INV|ORDER)-[0-9][0-9A-Z-]{2,20})\b", re.IGNORECASE),
    re.compile(r"\b((?:SO|ORD|PO|INV)-?[A-Z0-9]*\d{3,}[A-Z0-9]*)\b"),
)
_NOREPLY = re.compile(
    r"^(?:no[-_.]?reply|do[-_.]?not[-_.]?reply|mailer-daemon|postmaster|bounces?|"
    r"notifications?|auto[-_.]?reply|automated)\b",
    re.IGNORECASE,
)
_QUOTED_LINE = re.compile(r"^\s*>")
# Cheap pre-check: quotequail looks for a reply/forward header on every line, which is slow on
# long mail; only ask it when a line could be such a header.
_MAYBE_REPLY_HEADER = re.compile(
    r"wrote|schrieb|[ée]crit|escribi[óo]|scrisse|schreef|skrev|napisa|-{3,}|_{5,}|"
    r"^\s*\*?(?:from|von|de|da|van|fr[åa]n|od|envoy[ée]|sent|gesendet)\s?\*?:",
    re.IGNORECASE | re.MULTILINE,
)
MAX_REPLY_SCAN_LINES = 300


def parse(raw: RawMessage) -> Message | ParseFailure:
    """Parse one message; never raises for anything the bytes contain."""
    try:
        return _parse(raw)
    except RecursionError:
        return ParseFailure(raw.source, raw.key, "MIME structure nested too deeply")
    except MemoryError:
        return ParseFailure(raw.source, raw.key, "message too large to parse")
    except Exception as exc:  # one broken email never stops a run
        return ParseFailure(raw.source, raw.key, f"{type(exc).__name__}: {exc}"[:300])


def _parse(raw: RawMessage) -> Message | ParseFailure:
    data = raw.data
    warnings: list[str] = []
    if not data or not data.strip():
        errors = [flag[6:] for flag in raw.flags if flag.startswith("error:")]
        return ParseFailure(raw.source, raw.key, errors[0] if errors else "empty message")
    if len(data) > MAX_RAW_BYTES:
        warnings.append(f"message cut at {MAX_RAW_BYTES // (1024 * 1024)} MiB")
        data = data[:MAX_RAW_BYTES]
    msg = email.message_from_bytes(data)
    if not _looks_like_mail(msg):
        return ParseFailure(raw.source, raw.key, "no mail headers found")

    subject = header_text(msg, "subject")
    sender_name, sender_addr = _sender(msg)
    body, is_html, attachments, is_report = _body_and_attachments(msg, warnings)
    new, quoted, signature = split_reply(body)
    date, date_fallback = _date(msg, raw.received)
    message_id = _first_msgid(header_text(msg, "message-id"))
    content_hash = hashlib.sha256(data).hexdigest()
    references = tuple(_MSGID.findall(header_text(msg, "references")))
    return Message(
        message_id=message_id or f"sha256:{content_hash[:32]}",
        source=raw.source,
        source_key=raw.key,
        date=date,
        date_is_fallback=date_fallback,
        sender_name=sender_name,
        sender_addr=sender_addr,
        to=tuple(addr.lower() for _, addr in getaddresses([header_text(msg, "to")]) if addr),
        subject=subject,
        norm_subject=normalize_subject(subject),
        in_reply_to=_first_msgid(header_text(msg, "in-reply-to")),
        references=references[-50:],
        text_new=new,
        text_quoted=quoted,
        text_signature=signature,
        is_html=is_html,
        attachments=tuple(attachments),
        order_numbers=find_order_numbers(subject + "\n" + new),
        automated=_automated(msg, sender_addr, is_report),
        language=detect_language(new or subject),
        content_hash=content_hash,
        flags=raw.flags,
        warnings=tuple(warnings),
    )


def _looks_like_mail(msg: EmailMessage) -> bool:
    keys = {k.lower() for k in msg.keys()}
    return bool(keys & {"from", "subject", "message-id", "date", "to", "content-type"})


# --- headers -------------------------------------------------------------------------------


def header_text(msg: EmailMessage, name: str) -> str:
    """A header decoded to str: RFC 2047 words, raw 8-bit bytes and unknown charsets handled."""
    value: Any = msg.get(name)
    if value is None:
        return ""
    text = value if isinstance(value, str) else str(value)
    text = text[:MAX_HEADER_CHARS]
    try:
        chunks = decode_header(text)
    except Exception:
        chunks = [(text, None)]
    out = []
    for chunk, charset in chunks:
        if isinstance(chunk, str):
            out.append(_fix_surrogates(chunk))
        else:
            out.append(decode_bytes(chunk, charset))
    joined = "".join(out)
    return re.sub(r"\s*[\r\n]+\s*", " ", joined).strip()


def _fix_surrogates(text: str) -> str:
    """compat32 keeps undecodable 8-bit header bytes as surrogates: decode them properly."""
    if not any("\udc80" <= ch <= "\udcff" for ch in text):
        return text
    return decode_bytes(text.encode("utf-8", "surrogateescape"), None)


def decode_bytes(data: bytes, charset: str | None) -> str:
    """Bytes to text: the declared charset, else UTF-8, else detection, never an exception."""
    for candidate in (_known_charset(charset), "utf-8"):
        if candidate:
            try:
                return data.decode(candidate)
            except (UnicodeDecodeError, LookupError):
                continue
    try:
        from charset_normalizer import from_bytes

        best = from_bytes(data[:65536]).best()
        if best is not None and best.encoding:
            return data.decode(best.encoding, errors="replace")
    except Exception:  # detection is best effort
        pass
    return data.decode(_known_charset(charset) or "latin-1", errors="replace")


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


def _sender(msg: EmailMessage) -> tuple[str, str]:
    raw_from = header_text(msg, "from") or header_text(msg, "sender") or header_text(msg, "reply-to")
    name, addr = parseaddr(raw_from)
    if not addr and "@" in raw_from:
        found = re.search(r"[\w.+-]+@[\w.-]+", raw_from)
        addr = found.group(0) if found else ""
    return name.strip() or addr, addr.strip().lower()


def normalize_subject(subject: str) -> str:
    return re.sub(r"\s+", " ", _SUBJECT_PREFIX.sub("", subject)).strip().lower()


def _first_msgid(value: str) -> str:
    found = _MSGID.search(value)
    if found:
        return found.group(1)
    return value.strip().strip("<>")[:250] if value.strip() else ""


def _date(msg: EmailMessage, received: datetime | None) -> tuple[datetime, bool]:
    for header in ("date", "resent-date", "delivery-date"):
        value = header_text(msg, header)
        if not value:
            continue
        try:
            parsed = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError, OverflowError):
            continue
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        if parsed.year >= 1980:
            return parsed.astimezone(UTC), False
    received_header = str(msg.get("received", "") or "")
    if ";" in received_header:
        try:
            parsed = parsedate_to_datetime(received_header.rsplit(";", 1)[1].strip())
            return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC), True
        except (TypeError, ValueError, IndexError, OverflowError):
            pass
    return (received.astimezone(UTC) if received else EPOCH), True


# --- body ----------------------------------------------------------------------------------


def _walk(msg: EmailMessage) -> Iterator[EmailMessage]:
    """Leaf parts, iteratively, bounded in depth and count; never enters attached messages."""
    stack: list[tuple[EmailMessage, int]] = [(msg, 0)]
    seen = 0
    while stack and seen < MAX_PARTS:
        part, depth = stack.pop()
        seen += 1
        payload = part.get_payload() if part.is_multipart() else None
        if isinstance(payload, list) and depth < MAX_DEPTH and not _is_attached_message(part):
            stack.extend((child, depth + 1) for child in reversed(payload))
        else:
            yield part


def _is_attached_message(part: EmailMessage) -> bool:
    return part.get_content_type() == "message/rfc822" and bool(
        part.get_filename() or part.get_content_disposition() == "attachment"
    )


def _body_and_attachments(
    msg: EmailMessage, warnings: list[str]
) -> tuple[str, bool, list[Attachment], bool]:
    plain: str | None = None
    html: str | None = None
    attachments: list[Attachment] = []
    is_report = msg.get_content_type() == "multipart/report"
    for part in _walk(msg):
        ctype = part.get_content_type()
        disposition = part.get_content_disposition()
        filename = _filename(part)
        if disposition == "attachment" or (filename and not ctype.startswith("text/")):
            attachments.append(Attachment(filename or "(unnamed)", ctype, _encoded_size(part)))
            continue
        if ctype == "text/plain" and plain is None:
            plain = _part_text(part, warnings)
        elif ctype == "text/html" and html is None:
            html = _part_text(part, warnings)
        elif ctype == "message/delivery-status":
            is_report = True
        elif not ctype.startswith(("text/", "multipart/", "message/")):
            attachments.append(Attachment(filename or "(unnamed)", ctype, _encoded_size(part)))
    if plain and plain.strip():
        return plain, False, attachments, is_report
    if html:
        return html_to_text(html), True, attachments, is_report
    return plain or "", False, attachments, is_report


def _filename(part: EmailMessage) -> str:
    try:
        name = part.get_filename()
    except Exception:
        return ""
    if not name:
        return ""
    if isinstance(name, tuple):  # undecoded RFC 2231 triple
        return decode_bytes(name[2].encode("latin-1", "replace"), name[0])
    return header_text_value(name)


def header_text_value(value: str) -> str:
    fake = EmailMessage()
    fake["x"] = value
    return header_text(fake, "x")


def _encoded_size(part: EmailMessage) -> int:
    declared = part.get_param("size", header="content-disposition")  # RFC 2183
    if isinstance(declared, str) and declared.strip().isdigit():
        return int(declared)
    payload = part.get_payload(decode=False)
    if not isinstance(payload, str):
        return 0
    encoding = str(part.get("content-transfer-encoding", "")).strip().lower()
    return len(payload) * 3 // 4 if encoding == "base64" else len(payload)


def _part_text(part: EmailMessage, warnings: list[str]) -> str:
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return ""
    if len(payload) > MAX_TEXT_CHARS * 4:
        warnings.append("text part cut to the first 1 MiB")
        payload = payload[: MAX_TEXT_CHARS * 4]
    text = decode_bytes(payload, part.get_content_charset())
    return text[:MAX_TEXT_CHARS]


def html_to_text(html: str) -> str:
    from inscriptis import get_text

    try:
        text = get_text(html[:MAX_TEXT_CHARS])
    except Exception:
        text = re.sub(r"<[^>]+>", " ", html)
    return re.sub(r"\n{3,}", "\n\n", "\n".join(line.rstrip() for line in text.splitlines()))


# --- reply splitting ----------------------------------------------------------------------


def split_reply(body: str) -> tuple[str, str, str]:
    """(new text, quoted history, signature) of a message body."""
    import quotequail

    body = body.replace("\r\n", "\n").replace("\r", "\n").strip()
    if not body:
        return "", "", ""
    new, quoted = body, ""
    head = "\n".join(body.split("\n", MAX_REPLY_SCAN_LINES)[:MAX_REPLY_SCAN_LINES])
    unwrapped = None
    if _MAYBE_REPLY_HEADER.search(head):
        try:
            unwrapped = quotequail.unwrap(head)
        except Exception:
            unwrapped = None
    if unwrapped and unwrapped.get("text_top") is not None:
        new = unwrapped["text_top"].strip()
        quoted = body[len(new) :].strip() if body.startswith(new) else unwrapped.get("text", "")
    new, more_quoted = _split_angle_quotes(new)
    quoted = "\n".join(p for p in (more_quoted, quoted) if p)
    new, signature = _split_signature(new)
    return new, quoted, signature


def _split_angle_quotes(text: str) -> tuple[str, str]:
    """Lines quoted with '>' (no reply header to go by) are history, not new text."""
    lines = text.split("\n")
    if not any(_QUOTED_LINE.match(line) for line in lines):
        return text, ""
    kept = [line for line in lines if not _QUOTED_LINE.match(line)]
    quoted = [line for line in lines if _QUOTED_LINE.match(line)]
    return "\n".join(kept).strip(), "\n".join(quoted)


@lru_cache(maxsize=1)
def _reply_parser() -> Any:
    from mailparser_reply import EmailReplyParser

    return EmailReplyParser(languages=["en", "de", "fr", "es", "it", "nl"])


def _split_signature(text: str) -> tuple[str, str]:
    if not text or len(text) > 6000:
        return text, ""
    try:
        replies = _reply_parser().read(text).replies
    except Exception:
        return text, ""
    if not replies:
        return text, ""
    first = replies[0]
    body = (first.body or "").strip()
    if not body:  # the whole text looked like a signature: keep it as text
        return text, ""
    return body, (first.signatures or "").strip()


# --- facts ---------------------------------------------------------------------------------


def find_order_numbers(text: str) -> tuple[str, ...]:
    found: dict[str, None] = {}
    for pattern in _ORDER_PATTERNS:
        for match in pattern.finditer(text[:20000]):
            found.setdefault(match.group(1).upper(), None)
    numbers = list(found)
    # "SO-10234" and "10234" are one order: keep the longer spelling only once
    return tuple(n for n in numbers if not any(n != m and m.endswith("-" + n) for m in numbers))


def _automated(msg: EmailMessage, sender: str, is_report: bool) -> str:
    auto = header_text(msg, "auto-submitted").lower()
    if auto and auto != "no":
        return f"Auto-Submitted: {auto[:40]}"
    precedence = header_text(msg, "precedence").lower()
    if precedence in {"bulk", "list", "junk", "auto_reply"}:
        return f"Precedence: {precedence}"
    if is_report:
        return "delivery-status report"
    for header in ("x-autoreply", "x-autorespond"):
        if header_text(msg, header):
            return f"{header} header"
    if msg.get("list-id") or msg.get("list-unsubscribe"):
        return "mailing list (List-Id/List-Unsubscribe)"
    local = sender.split("@", 1)[0]
    if local and _NOREPLY.match(local):
        return f"no-reply sender {local}@…"
    return ""


def detect_language(text: str) -> str:
    sample = re.sub(r"\s+", " ", text[:600]).strip()
    if len(sample) < 12:
        return ""
    try:
        import py3langid

        code, _ = py3langid.classify(sample)
    except Exception:
        return ""
    return str(code)
