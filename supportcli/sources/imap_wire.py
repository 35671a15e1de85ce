"""The IMAP wire below imapclient: raw FETCH/SEARCH over imaplib, and pure helpers.

1. FETCH responses: :func:`parse_fetch` reads imaplib's raw FETCH data for the few items a
   sync asks for (UID, RFC822.SIZE, FLAGS, INTERNALDATE, X-GM-MSGID/THRID, BODY[]) with
   regular expressions. imapclient's general parser costs about three times the network time
   on bulk fetches; this keeps a sync close to a bare imaplib loop. Anything it cannot read
   is simply absent from its answer, and the caller asks imapclient again for those UIDs.
   :func:`send_fetch` / :func:`finish_fetch` split one UID FETCH in two, so the next batch
   can be asked for before the current one is processed (the server works meanwhile); they
   use imaplib's internal ``_command``/``_command_complete``, as imapclient itself does.
2. BODYSTRUCTURE -> the parts worth downloading, and a small stand-in message for big mail,
   from imapclient's parsed BODYSTRUCTURE (nested tuples/lists of bytes, ints and None).
   A big message is rebuilt as its own header block (without its MIME headers) and a
   ``multipart/mixed`` body holding the fetched text parts with their original transfer
   encoding and charset, plus one empty placeholder per attachment whose
   ``Content-Disposition`` carries ``filename`` and the RFC 2183 ``size`` (which
   :mod:`supportcli.parse` reads): attachments are listed, never downloaded.
"""

from __future__ import annotations

import imaplib
import re
import secrets
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

GMAIL_ITEMS = ("X-GM-MSGID", "X-GM-THRID")
Fetched = dict[int, dict[bytes, Any]]  # UID -> {b"FLAGS": ..., b"BODY[]": ...}, like imapclient

# --- FETCH responses ---------------------------------------------------------------------------

_FIELD = re.compile(
    rb"[( ](?:(UID|RFC822\.SIZE|X-GM-MSGID|X-GM-THRID) (\d+)|FLAGS \(([^)]*)\)"
    rb'|INTERNALDATE "([^"]*)")'
)
_MONTH_NAMES = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
# The layout most servers answer a sync's FETCH with (UID first, then the items in the order
# asked for): one match instead of a scan. Anything else goes through _FIELD.
_USUAL = re.compile(rb'\d+ \(UID (\d+) RFC822\.SIZE (\d+) FLAGS \(([^)]*)\) INTERNALDATE "([^"]*)"')
_MONTHS = {m.lower().encode(): i for i, m in enumerate(_MONTH_NAMES, start=1)}
_MSGID = re.compile(rb"<([^<>\s]{1,250})>")


def parse_fetch(data: Iterable[Any]) -> Fetched:
    """imaplib's ``uid("FETCH", ...)`` data -> {UID: {item: value}} for the sync's items.

    A message is a line (``b'7 (UID 9 FLAGS ...)'``) or a (line, literal) tuple followed by
    more lines; responses without a UID (unsolicited flag updates) are left out.
    """
    out: Fetched = {}
    others: list[dict[bytes, Any]] = []  # messages not in the usual layout: UID found later
    fields: dict[bytes, Any] | None = None
    for item in data:
        if isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], bytes):
            line, literal = item
        elif isinstance(item, bytes):
            line, literal = item, None
        else:
            continue
        if fields is None or line[:1].isdigit():  # "7 (UID ..." starts a message
            usual = _USUAL.match(line)
            if usual is not None:
                uid, size, flags, when = usual.groups()
                fields = {b"RFC822.SIZE": int(size), b"FLAGS": tuple(flags.split()),
                          b"INTERNALDATE": _internaldate(when)}  # fmt: skip
                out[int(uid)] = fields
            else:
                fields = {}
                others.append(fields)
                _read_fields(line, fields)
        elif len(line) > 2:  # more items after a literal, not just the closing ")"
            _read_fields(line, fields)
        if literal is not None and line.endswith(b"}") and b" BODY[] {" in line:
            fields[b"BODY[]"] = literal
    for fields in others:
        uid = fields.pop(b"UID", None)
        if uid is not None:
            out.setdefault(uid, {}).update(fields)
    return out


def send_fetch(conn: imaplib.IMAP4, uids: Sequence[int], items: Sequence[str]) -> bytes:
    """Send ``UID FETCH`` without waiting for the answer; returns its tag for finish_fetch."""
    ids = ",".join(map(str, uids))
    tag: bytes = conn._command("UID", "FETCH", ids, "(" + " ".join(items) + ")")
    return tag


def finish_fetch(conn: imaplib.IMAP4, tag: bytes) -> Fetched:
    """Read the answer to a :func:`send_fetch` (commands are answered in the order sent)."""
    typ, data = conn._command_complete("UID", tag)
    if typ != "OK":
        raise imaplib.IMAP4.error(f"FETCH failed: {data!r:.200}")
    return parse_fetch(conn._untagged_response(typ, data, "FETCH")[1])


def search(conn: imaplib.IMAP4, criteria: Sequence[str]) -> list[int]:
    typ, data = conn.uid("SEARCH", *criteria)
    if typ != "OK":
        raise imaplib.IMAP4.error(f"SEARCH failed: {data!r:.200}")
    return parse_search(data)


def _read_fields(line: bytes, fields: dict[bytes, Any]) -> None:
    for name, number, flags, when in _FIELD.findall(line):
        if name:
            fields[name] = int(number)
        elif when:
            fields[b"INTERNALDATE"] = _internaldate(when)
        else:
            fields[b"FLAGS"] = tuple(flags.split())


_ZONES: dict[bytes, timezone] = {b"+0000": UTC, b"-0000": UTC}


def _internaldate(text: bytes) -> datetime | None:
    """``b"23-Nov-2026 02:08:31 +0100"`` (day may be space-padded) -> aware UTC datetime."""
    text = text.strip()
    if len(text) == 25:
        text = b"0" + text
    if len(text) != 26 or text[2:3] != b"-" or text[6:7] != b"-" or text[14:15] != b":":
        return None
    t = text
    try:
        tz = _ZONES.get(t[21:]) or _zone(t[21:])
        month = _MONTHS[t[3:6].lower()]
        when = datetime(int(t[7:11]), month, int(t[:2]), int(t[12:14]), int(t[15:17]),
                        int(t[18:20]), tzinfo=tz)  # fmt: skip
    except (ValueError, KeyError):
        return None
    return when if tz is UTC else when.astimezone(UTC)


def _zone(text: bytes) -> timezone:
    if len(text) != 5 or text[:1] not in (b"+", b"-") or not text[1:].isdigit():
        raise ValueError(text)
    offset = timedelta(hours=int(text[1:3]), minutes=int(text[3:5]))
    zone = timezone(-offset if text[:1] == b"-" else offset)
    if len(_ZONES) < 256:
        _ZONES[text] = zone
    return zone


def parse_search(data: Iterable[Any]) -> list[int]:
    """imaplib's ``uid("SEARCH", ...)`` data -> UIDs."""
    return [int(n) for line in data if isinstance(line, bytes) for n in line.split() if n.isdigit()]


def imap_date(day: date) -> str:
    """A SEARCH date (``1-Mar-2024``), in English whatever the locale."""
    return f"{day.day}-{_MONTH_NAMES[day.month - 1]}-{day.year}"


def to_utc(value: Any) -> datetime | None:
    if not isinstance(value, datetime):
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


_FLAG_TEXT: dict[bytes, str] = {}


def flags_of(fields: Mapping[bytes, Any]) -> tuple[str, ...]:
    """FLAGS as text without the per-session ``\\Recent``; Gmail ids as "X-GM-THRID:<id>"."""
    flags = []
    for flag in fields.get(b"FLAGS", ()):
        text = _FLAG_TEXT.get(flag) if isinstance(flag, bytes) else str(flag)
        if text is None:
            text = flag.decode("utf-8", "replace")
            if len(_FLAG_TEXT) < 1024:
                _FLAG_TEXT[flag] = text
        if text.lower() != "\\recent":
            flags.append(text)
    for item in GMAIL_ITEMS:
        value = fields.get(item.encode())
        if value is not None:
            flags.append(f"{item}:{value}")
    return tuple(flags)


def message_ids(header_block: bytes) -> set[str]:
    """Message-IDs (without <>) in a header block, e.g. In-Reply-To and References."""
    return {m.decode("utf-8", "replace") for m in _MSGID.findall(header_block)}


# --- BODYSTRUCTURE and the stand-in for big mail --------------------------------------------------

TEXT_TYPES = ("text/plain", "text/html")
MAX_PARTS = 200
_MIME_HEADERS = frozenset({b"content-type", b"content-transfer-encoding", b"mime-version",
                           b"content-disposition"})  # fmt: skip
PARTIAL_HEADER = b"X-Supportcli-Partial: text parts only, attachments not downloaded"


@dataclass(frozen=True, slots=True)
class Part:
    """One leaf of a message's MIME tree as BODYSTRUCTURE describes it."""

    section: str  # IMAP section number: "1", "2.1", ...
    content_type: str  # lower-case "type/subtype"
    params: tuple[tuple[bytes, bytes], ...]  # Content-Type parameters, as sent
    encoding: str  # lower-case transfer encoding: "7bit", "base64", ...
    octets: int  # size as transferred (encoded)
    disposition: str  # lower-case "attachment", "inline" or ""
    disposition_params: tuple[tuple[bytes, bytes], ...]

    @property
    def is_attachment(self) -> bool:
        return self.disposition == "attachment" or self.content_type not in TEXT_TYPES

    @property
    def filename_param(self) -> tuple[bytes, bytes] | None:
        """(name, value) of the file name: Content-Disposition filename, else Content-Type name.

        RFC 2231 forms (``filename*``) are kept as they are, for the mail parser to decode.
        """
        for params, wanted in ((self.disposition_params, b"filename"), (self.params, b"name")):
            for key, value in params:
                if key.lower().split(b"*")[0] == wanted:
                    return key.lower(), value
        return None

    @property
    def decoded_size(self) -> int:
        """Estimated size after decoding (base64 with 76-character lines + CRLF: 57/78)."""
        if self.encoding == "base64":
            return self.octets * 57 // 78
        return self.octets


def parse_structure(body: Any) -> list[Part]:
    """Leaf parts of a BODYSTRUCTURE in order; attached messages are leaves, not entered."""
    return list(_walk(body, ""))[:MAX_PARTS]


def _walk(body: Any, prefix: str) -> Iterator[Part]:
    if not isinstance(body, Sequence) or not body:
        return
    if isinstance(body[0], list):  # multipart: ([children], subtype, ...)
        for index, child in enumerate(body[0], start=1):
            yield from _walk(child, f"{prefix}.{index}" if prefix else str(index))
        return
    yield _leaf(body, prefix or "1")


def _leaf(body: Sequence[Any], section: str) -> Part:
    ctype = f"{_text(body[0])}/{_text(body[1])}".lower()
    if ctype.startswith("text/"):
        disposition_at = 9  # type subtype params id desc enc size lines md5 disposition
    elif ctype in ("message/rfc822", "message/global"):
        disposition_at = 11  # ... size envelope body lines md5 disposition
    else:
        disposition_at = 8  # ... size md5 disposition
    disposition = body[disposition_at] if len(body) > disposition_at else None
    disp_name = b""
    disp_params: tuple[tuple[bytes, bytes], ...] = ()
    if isinstance(disposition, tuple | list) and disposition:
        disp_name = _bytes(disposition[0])
        disp_params = _pairs(disposition[1] if len(disposition) > 1 else None)
    return Part(
        section=section,
        content_type=ctype,
        params=_pairs(body[2] if len(body) > 2 else None),
        encoding=_text(body[5] if len(body) > 5 else b"7bit").lower() or "7bit",
        octets=_int(body[6] if len(body) > 6 else 0),
        disposition=disp_name.decode("ascii", "replace").lower(),
        disposition_params=disp_params,
    )


def choose_parts(parts: Sequence[Part]) -> tuple[list[Part], list[Part]]:
    """(text parts to fetch: the first text/plain and first text/html body, attachments)."""
    texts: dict[str, Part] = {}
    attachments: list[Part] = []
    for part in parts:
        if not part.is_attachment and part.content_type not in texts:
            texts[part.content_type] = part
        elif part.is_attachment or part.filename_param is not None:
            attachments.append(part)
    return list(texts.values()), attachments


def rebuild(
    header: bytes, texts: Sequence[tuple[Part, bytes]], attachments: Sequence[Part]
) -> bytes:
    """A small RFC 822 message standing in for a big one (see the module docstring)."""
    boundary = b"supportcli-" + secrets.token_hex(12).encode()
    out = [
        strip_mime_headers(header),
        b"MIME-Version: 1.0\r\n",
        b'Content-Type: multipart/mixed; boundary="' + boundary + b'"\r\n',
        PARTIAL_HEADER + b"\r\n\r\n",
    ]
    for part, data in texts:
        out += [b"--", boundary, b"\r\n", _text_headers(part), b"\r\n", _trim(part, data), b"\r\n"]
    for part in attachments:
        out += [b"--", boundary, b"\r\n", _placeholder_headers(part), b"\r\n\r\n"]
    out += [b"--", boundary, b"--\r\n"]
    return b"".join(out)


def strip_mime_headers(header: bytes) -> bytes:
    """The header block without its MIME headers (folded lines included), no blank line."""
    kept: list[bytes] = []
    keep = True
    for line in header.splitlines(keepends=True):
        if not line.strip():
            break
        if line[:1] not in (b" ", b"\t"):
            name = line.split(b":", 1)[0].strip().lower()
            keep = name not in _MIME_HEADERS
        if keep:
            kept.append(line if line.endswith(b"\n") else line + b"\r\n")
    return b"".join(kept)


def _text_headers(part: Part) -> bytes:
    params = b"".join(b"; " + _param(k, v) for k, v in part.params if k.lower() != b"name")
    return (
        b"Content-Type: " + part.content_type.encode() + params + b"\r\n"
        b"Content-Transfer-Encoding: " + part.encoding.encode() + b"\r\n"
    )


def _placeholder_headers(part: Part) -> bytes:
    disposition = b"Content-Disposition: attachment"
    found = part.filename_param
    if found is not None:
        key, value = found
        rfc2231 = key[key.index(b"*") :] if b"*" in key else b""  # keep "*" / "*0*" suffixes
        disposition += b"; " + _param(b"filename" + rfc2231, value)
    size = b"; size=" + str(part.decoded_size).encode()
    return b"Content-Type: " + part.content_type.encode() + b"\r\n" + disposition + size


def _trim(part: Part, data: bytes) -> bytes:
    """A cut-off base64 or quoted-printable part ends on a whole line, so it still decodes."""
    if len(data) < part.octets and part.encoding in ("base64", "quoted-printable"):
        cut = data.rfind(b"\n")
        if cut > 0:
            return data[: cut + 1]
    return data


_TOKEN = re.compile(rb"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")


def _param(key: bytes, value: bytes) -> bytes:
    if key.endswith(b"*") and _TOKEN.match(value.replace(b"%", b"")):
        return key + b"=" + value  # RFC 2231 extended value: already encoded
    quoted = value.replace(b"\\", b"\\\\").replace(b'"', b'\\"')
    quoted = quoted.replace(b"\r", b"").replace(b"\n", b"")
    return key + b'="' + quoted + b'"'


def _pairs(value: Any) -> tuple[tuple[bytes, bytes], ...]:
    if not isinstance(value, tuple | list):
        return ()
    items = [_bytes(v) for v in value]
    return tuple(zip(items[0::2], items[1::2], strict=False))


def _bytes(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    return b"" if value is None else str(value).encode("utf-8", "replace")


def _text(value: Any) -> str:
    return _bytes(value).decode("ascii", "replace")


def _int(value: Any) -> int:
    try:
        return max(0, int(value))
    except (TypeError, ValueError):
        return 0
