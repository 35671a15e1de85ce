"""BODYSTRUCTURE -> the parts worth downloading, and a small stand-in message for big mail.

Pure functions over imapclient's parsed BODYSTRUCTURE (nested tuples/lists of bytes, ints
and None); no network and no imapclient import, so this is cheap to test. A big message is
rebuilt as: its own header block (without its MIME headers), ``multipart/mixed`` holding the
fetched text parts with their original transfer-encoding and charset, and one empty
placeholder per attachment whose ``Content-Disposition`` carries ``filename`` and the RFC 2183
``size`` (which :mod:`supportcli.parse` reads), so attachments are listed, never downloaded.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

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
