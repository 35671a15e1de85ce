"""Property-based and size tests: nothing a sender can put in a message makes ``parse`` raise,
hang or return text an encoder chokes on.

Arbitrary bytes, arbitrary header values and random (often broken) MIME trees must come back
as a Message or a ParseFailure; a 50 MB single-line body, 10,000-deep multipart nesting and
a 1 MB header must come back quickly with a warning or a ParseFailure.
"""

from __future__ import annotations

import base64
import os
import quopri

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from supportcli.model.text import message_text
from supportcli.parse import parse
from supportcli.records import Message, ParseFailure, RawMessage

# SUPPORTCLI_FUZZ_EXAMPLES=5000 for a deeper run; the default keeps this file under ~15 s.
FAST = settings(
    max_examples=int(os.environ.get("SUPPORTCLI_FUZZ_EXAMPLES", "150")),
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def check(data: bytes) -> Message | ParseFailure:
    result = parse(RawMessage("fuzz", "x", data))
    assert isinstance(result, Message | ParseFailure)
    if isinstance(result, ParseFailure):
        assert result.reason and "\n" not in result.reason.strip()
        return result
    assert result.date.tzinfo is not None
    assert result.message_id
    texts = [
        result.subject,
        result.sender_name,
        result.sender_addr,
        result.text_new,
        result.text_quoted,
        result.text_signature,
        result.language,
        result.automated,
        message_text(result),
        *result.warnings,
        *(a.filename for a in result.attachments),
    ]
    for text in texts:
        assert isinstance(text, str)
        text.encode("utf-8")  # no lone surrogates: printing or storing it never fails
    assert all(a.size >= 0 for a in result.attachments)
    return result


# --- arbitrary input -----------------------------------------------------------------------


@FAST
@given(st.binary(max_size=4096))
def test_arbitrary_bytes(data: bytes):
    check(data)


@FAST
@given(st.binary(max_size=2048))
def test_arbitrary_bytes_after_real_headers(body: bytes):
    check(b"From: a@example.com\r\nSubject: fuzz\r\nContent-Type: text/plain\r\n\r\n" + body)


HEADER_NAMES = [
    "From",
    "To",
    "Cc",
    "Subject",
    "Date",
    "Message-ID",
    "In-Reply-To",
    "References",
    "Content-Type",
    "Content-Transfer-Encoding",
    "Content-Disposition",
    "Auto-Submitted",
    "Precedence",
    "List-Id",
    "Received",
    "Sender",
    "Reply-To",
    "MIME-Version",
]
header_value = st.one_of(
    st.text(max_size=300),
    st.binary(max_size=300).map(lambda b: b.decode("latin-1")),
    st.sampled_from(
        [
            "=?utf-8?q?J=C3=BCrgen?= <j@example.de>",
            "=?bogus?b?!!!?=",
            "=?utf-8?b?",
            "multipart/mixed; boundary=",
            'text/plain; charset="x-klingon"',
            "<<<>>>",
            ";;;;",
            "text/html; charset*=utf-8''%FF%FE",
            "base64",
            "Mon, 99 Foo 20251 99:99:99 +9999",
            "attachment; filename*0*=utf-8''%E2%82; filename*1=x",
            '\\"\\\\',
        ]
    ),
)


@FAST
@given(
    st.lists(st.tuples(st.sampled_from(HEADER_NAMES), header_value), max_size=12),
    st.text(max_size=500),
)
def test_arbitrary_header_values(headers: list[tuple[str, str]], body: str):
    lines = [f"{name}: {value}" for name, value in headers]
    data = ("\r\n".join(lines) + "\r\n\r\n" + body).encode("utf-8", "surrogatepass")
    check(data)


# --- random MIME trees ---------------------------------------------------------------------

CHARSETS = [
    "utf-8",
    "us-ascii",
    "iso-8859-1",
    "windows-1252",
    "koi8-r",
    "shift_jis",
    "x-unknown",
    "utf-7",
    "",
    '"utf-8"',
    "utf-16",
]
ENCODINGS = ["7bit", "8bit", "base64", "quoted-printable", "binary", "x-uuencode", "bogus"]
LEAF_TYPES = [
    "text/plain",
    "text/html",
    "text/enriched",
    "application/pdf",
    "image/png",
    "message/delivery-status",
    "text/rfc822-headers",
    "application/octet-stream",
]
MULTI_TYPES = [
    "multipart/mixed",
    "multipart/alternative",
    "multipart/related",
    "multipart/report",
    "multipart/signed",
    "multipart/digest",
]


def encode(payload: bytes, encoding: str, mangle: bool) -> bytes:
    if encoding == "base64":
        out = base64.encodebytes(payload)
        return out[: len(out) // 2] if mangle else out
    if encoding == "quoted-printable":
        out = quopri.encodestring(payload)
        return out + b"=Z" if mangle else out
    return payload


@st.composite
def leaf(draw: st.DrawFn) -> bytes:
    ctype = draw(st.sampled_from(LEAF_TYPES))
    charset = draw(st.sampled_from(CHARSETS))
    encoding = draw(st.sampled_from(ENCODINGS))
    payload = draw(
        st.one_of(
            st.binary(max_size=400),
            st.text(max_size=400).map(lambda t: t.encode("utf-8", "surrogatepass")),
            st.sampled_from(
                [
                    b"<html><body><p>Hello<br>there &amp; <script>x()</script></p></body></html>",
                    b"On Mon, 3 Mar 2025 at 10:15, A <a@example.com> wrote:\n> quoted\n",
                    b"Hi,\n\nwhere is order #10234?\n\n-- \nsig\n",
                    b"<table>" * 50,
                    b"-----Original Message-----\nFrom: x\nSent: y\n",
                ]
            ),
        )
    )
    headers = [f"Content-Type: {ctype}" + (f"; charset={charset}" if charset else "")]
    if draw(st.booleans()):
        headers.append(f"Content-Transfer-Encoding: {encoding}")
    if draw(st.booleans()):
        name = draw(st.text(max_size=40))
        disposition = draw(st.sampled_from(["attachment", "inline", "bogus"]))
        headers.append(f'Content-Disposition: {disposition}; filename="{name}"')
    body = encode(payload, encoding, draw(st.booleans()))
    return "\r\n".join(headers).encode("utf-8", "surrogatepass") + b"\r\n\r\n" + body


def multipart(children: st.SearchStrategy[list[bytes]]) -> st.SearchStrategy[bytes]:
    @st.composite
    def build(draw: st.DrawFn) -> bytes:
        ctype = draw(st.sampled_from(MULTI_TYPES))
        boundary = draw(st.sampled_from(["b1", "b2", "=_x", "", "b1 b2", "a" * 80]))
        parts = draw(children)
        out = f'Content-Type: {ctype}; boundary="{boundary}"\r\n\r\npreamble\r\n'.encode()
        for part in parts:
            out += f"--{boundary}\r\n".encode() + part + b"\r\n"
        if draw(st.booleans()):  # a missing close delimiter is common in the wild
            out += f"--{boundary}--\r\n".encode()
        return out

    return build()


@st.composite
def attached_message(draw: st.DrawFn, inner: st.SearchStrategy[bytes]) -> bytes:
    return b"Content-Type: message/rfc822\r\n\r\nSubject: inner\r\n" + draw(inner)


mime_tree = st.recursive(
    leaf(),
    lambda children: st.one_of(
        multipart(st.lists(children, max_size=4)), attached_message(children)
    ),
    max_leaves=12,
)


@FAST
@given(mime_tree, header_value)
def test_random_mime_trees(tree: bytes, subject: str):
    top = f"From: Fuzz <fuzz@example.com>\r\nSubject: {subject}\r\nMIME-Version: 1.0\r\n"
    check(top.encode("utf-8", "surrogatepass") + tree)


# --- size and depth: bounded time, reported ------------------------------------------------

HEAD = b"From: big@example.com\r\nSubject: big\r\nDate: Mon, 03 Mar 2025 10:00:00 +0000\r\n"


@pytest.mark.timeout(120)
def test_50_mb_single_line_body_is_cut_and_reported():
    result = check(HEAD + b"\r\n" + b"A" * (50 * 1024 * 1024))
    assert isinstance(result, Message)
    assert any("cut" in w for w in result.warnings)
    assert len(result.text_new) <= 1024 * 1024


def _nested_multipart(depth: int) -> bytes:
    """A body of ``depth`` multiparts, each holding the next, with one text part at the bottom."""
    parts = [b"Content-Type: multipart/mixed; boundary=b0\r\n\r\n"]
    parts += [
        b"--b%d\r\nContent-Type: multipart/mixed; boundary=b%d\r\n\r\n" % (i, i + 1)
        for i in range(depth)
    ]
    parts.append(b"--b%d\r\nContent-Type: text/plain\r\n\r\ndeep down\r\n" % depth)
    return b"".join(parts)


@pytest.mark.timeout(120)
def test_10000_deep_multipart_nesting_is_cut_and_reported():
    result = check(HEAD + _nested_multipart(10_000))
    if isinstance(result, ParseFailure):
        assert "nested too deeply" in result.reason
    else:
        assert any("nested" in w for w in result.warnings)


@pytest.mark.timeout(60)
def test_100_deep_multipart_nesting_is_read_to_a_limit_with_a_warning():
    result = check(HEAD + _nested_multipart(100))
    assert isinstance(result, Message)
    assert any("nested deeper than" in w for w in result.warnings)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("name", ["Subject", "From", "To", "References", "Content-Type"])
def test_1_mb_header_is_cut_and_reported(name: str):
    value = b"x" * (1024 * 1024) if name != "Content-Type" else b"text/plain" + b" ;" * 500_000
    head = b"From: a@example.com\r\nSubject: s\r\n" if name not in ("From", "Subject") else b""
    result = check(head + name.encode() + b": " + value + b"\r\n\r\nhello, where is my order?\r\n")
    assert isinstance(result, Message)
    assert any(name in w and "cut" in w for w in result.warnings)


@pytest.mark.timeout(60)
def test_many_parts_are_read_to_a_limit_with_a_warning():
    parts = b"".join(
        b"--b\r\nContent-Type: application/octet-stream\r\n\r\nx\r\n" for _ in range(1000)
    )
    data = HEAD + b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n' + parts + b"--b--\r\n"
    result = check(data)
    assert isinstance(result, Message)
    assert any("MIME parts" in w for w in result.warnings)
    assert len(result.attachments) < 1000


@pytest.mark.timeout(60)
def test_100000_tiny_parts_are_cut_and_reported():
    part = b"--b\r\nContent-Type: text/plain\r\n\r\nhello\r\n"
    data = HEAD + b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n' + part * 100_000
    result = check(data)
    assert isinstance(result, Message)
    assert any("boundary lines" in w for w in result.warnings)


@pytest.mark.timeout(60)
def test_200000_header_lines():
    result = check(HEAD + b"X-Spam: yes\r\n" * 200_000 + b"\r\nwhere is my order?\r\n")
    assert isinstance(result, Message)
    assert result.text_new == "where is my order?"


def test_html_noise_is_cut_as_the_plain_regex_would_cut_it():
    """The one-pass cut of scripts, styles, heads, titles and comments gives what the obvious
    (but quadratic on unclosed tags) regex gives."""
    import random
    import re

    from supportcli.parse.mime import _strip_html_noise

    obvious = re.compile(r"<(script|style|head|title)\b[^>]*>.*?</\1\s*>|<!--.*?-->",
                         re.IGNORECASE | re.DOTALL)  # fmt: skip
    pieces = ["<script>", "</script>", "<STYLE a=1>", "</style >", "<head>", "</head>",
              "<title>", "</TITLE>", "<!--", "-->", "text ", "<p>", "</p>", "\n", "<scripts>",
              "</script"]  # fmt: skip
    rng = random.Random(0)
    for _ in range(5000):
        html = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 14)))
        assert _strip_html_noise(html) == obvious.sub(" ", html), html
