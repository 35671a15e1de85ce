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
from datetime import UTC
from email.utils import getaddresses

from ..records import Message, ParseFailure, RawMessage
from .detect import _automated, detect_language, find_order_numbers, release_language_model
from .headers import (
    _MSGID,
    _date,
    _first_headers,
    _first_msgid,
    _head,
    _head_text,
    _sender,
    _tame_headers,
    decode_bytes,
    header_text,
    normalize_subject,
    utc_offset,
)
from .mime import _body_and_attachments, html_to_text
from .relay import unwrap
from .reply import split_reply

__all__ = [
    "decode_bytes",
    "detect_language",
    "find_order_numbers",
    "header_text",
    "html_to_text",
    "normalize_subject",
    "parse",
    "release_language_model",
    "split_reply",
]

MAX_RAW_BYTES = 30 * 1024 * 1024  # larger messages are cut here before parsing
MAX_BOUNDARY_LINES = 1000  # the message is cut before the next line starting with "--"


def parse(
    raw: RawMessage, content_hash: str | None = None, order_pattern: re.Pattern[str] | None = None
) -> Message | ParseFailure:
    """Parse one message; never raises for anything the bytes contain. ``content_hash``: the
    sha256 hex digest of ``raw.data``, when the caller has it already; ``order_pattern``: the
    shop's own order-number pattern (``[triage] order_pattern``)."""
    try:
        return _parse(raw, content_hash or hashlib.sha256(raw.data).hexdigest(), order_pattern)
    except RecursionError:
        return ParseFailure(raw.source, raw.key, "MIME structure nested too deeply")
    except MemoryError:
        return ParseFailure(raw.source, raw.key, "message too large to parse")
    except Exception as exc:  # one broken email never stops a run
        return ParseFailure(raw.source, raw.key, f"{type(exc).__name__}: {exc}"[:300])


def _parse(
    raw: RawMessage, content_hash: str, order_pattern: re.Pattern[str] | None = None
) -> Message | ParseFailure:
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
    automated = _automated(heads, sender_addr, is_report)
    relayed_by = ""
    relayed = unwrap(new) if automated or _is_form_sender(sender_addr) else None
    if relayed is not None:  # a contact-form relay is the customer's own mail
        relayed_by, automated = sender_addr, ""
        sender_name, sender_addr = relayed.name, relayed.address
        new = relayed.message
    local_date, date_fallback = _date(heads, raw.received, warnings)
    date = local_date.astimezone(UTC)
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
        order_numbers=find_order_numbers(
            subject + "\n" + (body if relayed_by else new), order_pattern
        ),
        automated=automated,
        language=detect_language(new or quoted or subject),
        content_hash=content_hash,
        flags=raw.flags,
        warnings=tuple(dict.fromkeys(warnings)),
        utc_offset=utc_offset(local_date),
        relayed_by=relayed_by,
    )


def _is_form_sender(address: str) -> bool:
    local = address.split("@", 1)[0]
    return any(word in local for word in ("form", "website", "wordpress", "webmaster", "contact"))


def _nth(data: bytes, needle: bytes, n: int) -> int:
    """Offset of the n-th occurrence of ``needle`` (1-based); len(data) if there are fewer."""
    offset = -1
    for _ in range(n):
        offset = data.find(needle, offset + 1)
        if offset < 0:
            return len(data)
    return offset
