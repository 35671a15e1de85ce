"""The MIME tree: which part is the body (plain text, else HTML turned into text by inscriptis),
which are attachments (listed from the structure, never decoded), with limits on parts, depth
and size."""

from __future__ import annotations

import re
from collections.abc import Iterator
from email.message import Message as EmailMessage
from typing import Any

from ..records import Attachment
from .headers import _decode_words, _fix_surrogates, _tame_headers, decode_bytes, header_text

MAX_TEXT_CHARS = 256 * 1024  # text kept per message
MAX_HTML_CHARS = 200 * 1024  # HTML handed to inscriptis (after <head>/<style>/<script> go)
MAX_PARTS = 200  # MIME parts visited per message
MAX_DEPTH = 30  # MIME nesting followed


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
