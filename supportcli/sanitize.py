"""Make untrusted email text safe for each kind of output.

Everything that comes from an email is hostile until it passes through one of these:
terminal control sequences, rich markup, spreadsheet formulas and HTML are all neutralised
here, one function per output kind, so every output path uses the same rules.
"""

from __future__ import annotations

import html
import os
import re
from typing import Any

# CSI/OSC/other escape sequences, 7-bit and 8-bit, then any remaining control character.
_ANSI = re.compile(
    r"""
    \x1b\][^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?   # OSC … BEL or ST: links, titles, clipboard
    | \x1b\[[0-?]*[ -/]*[@-~]                # CSI
    | \x1b[PX^_][^\x1b\x9c]*(?:\x1b\\|\x9c)?     # DCS, SOS, PM, APC strings
    | \x1b.?                                 # any other two-byte escape
    | \x9b[0-?]*[ -/]*[@-~]                  # 8-bit CSI
    | \x9d[^\x07\x1b\x9c]{0,4096}(?:\x07|\x1b\\|\x9c)   # 8-bit OSC, terminated
    | [\x90\x98\x9e\x9f][^\x1b\x9c]{0,4096}(?:\x1b\\|\x9c)  # 8-bit DCS, SOS, PM, APC
    """,
    re.VERBOSE,
)
# C0/C1 controls except tab and newline; invisible and direction-changing characters (zero
# width, bidi embeddings/overrides/isolates, marks, word joiners, BOM, interlinear
# annotations, tag characters) and lone surrogates, which some encoders refuse.
_CONTROL = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064"
    "\u2066-\u206f\ufeff\ufff9-\ufffb\ud800-\udfff\U000e0000-\U000e007f]"
)
_LINE_BREAKS = re.compile("\r\n?|[\u2028\u2029]")
_SPACE_RUN = re.compile(r"\s+")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n", "|", "%")


def clean_text(value: str) -> str:
    """Strip escape sequences and control characters, keep newlines and tabs."""
    if not value:
        return ""
    value = _ANSI.sub("", value)
    return _CONTROL.sub("", _LINE_BREAKS.sub("\n", value))


def one_line(value: str, width: int | None = None) -> str:
    """Clean text folded onto one line (for table cells, subjects, logs)."""
    flat = _SPACE_RUN.sub(" ", clean_text(value)).strip()
    if width is not None and len(flat) > width:
        return flat[: max(width - 1, 0)] + "…"
    return flat


def for_terminal(value: str, width: int | None = None) -> str:
    """One line, safe to hand to rich as a plain ``Text`` (never as markup)."""
    return one_line(value, width)


def for_markup(value: str) -> str:
    """Safe inside a rich markup string: ``[bold]`` in the mail is shown literally."""
    from rich.markup import escape

    return escape(clean_text(value))


def for_csv(value: object) -> object:
    """A spreadsheet cell that cannot start a formula (OWASP CSV injection)."""
    if not isinstance(value, str):
        return value
    text = clean_text(value)
    if text.startswith(_FORMULA_START) or text.lstrip().startswith(_FORMULA_START):
        return "'" + text
    return text


def for_markdown(value: str, width: int | None = None) -> str:
    """One line for a markdown table cell: pipes, markup and HTML escaped."""
    text = html.escape(one_line(value, width), quote=False)
    return re.sub(r"([\\`*_{}\[\]()#+!|<>~])", r"\\\1", text)


def for_html(value: str) -> str:
    """Text for an HTML element or a quoted attribute value."""
    return html.escape(clean_text(value), quote=True)


def for_log(value: str, width: int = 80) -> str:
    """One short line for a log record."""
    return one_line(value, width)


def for_json(value: Any) -> Any:
    """A JSON-ready value with every string in it (keys included, at any depth) cleaned like
    ``clean_text``: the one pass every JSON output makes, so no field can be forgotten."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, dict):
        return {for_json(k): for_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [for_json(v) for v in value]
    return value


_SURROGATE = re.compile("[\ud800-\udfff]")


def file_name(value: str | os.PathLike[str]) -> str:
    """A name from the file system as text, losslessly: a byte that is not UTF-8 (which
    Python carries as a lone surrogate) becomes ``\\xHH`` and a backslash ``\\\\``, so the
    name can be stored, compared and printed, and the bytes read back from it."""
    text = os.fspath(value)
    return escape_surrogates(text.replace("\\", "\\\\"))


def escape_surrogates(text: str) -> str:
    """``text`` with each lone surrogate (an undecodable byte of a file name, or garbage)
    written as ``\\xHH`` (the byte) or ``\\uHHHH``: text SQLite and every stream accept."""
    if text.isascii() or not _SURROGATE.search(text):
        return text
    return _SURROGATE.sub(_escaped, text)


def _escaped(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code - 0xDC00:02x}" if 0xDC80 <= code <= 0xDCFF else f"\\u{code:04x}"
