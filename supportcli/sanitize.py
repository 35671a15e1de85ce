"""Make untrusted email text safe for each kind of output.

Everything that comes from an email is hostile until it passes through one of these:
terminal control sequences, rich markup, spreadsheet formulas and HTML are all neutralised
here, one function per output kind, so every output path uses the same rules.
"""

from __future__ import annotations

import html
import re

# CSI/OSC/other escape sequences, then any remaining C0/C1 control character.
_ANSI = re.compile(
    r"""
    \x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?   # OSC ... BEL or ST (hyperlinks, titles)
    | \x1b\[[0-?]*[ -/]*[@-~]            # CSI
    | \x1b[PX^_][^\x1b]*(?:\x1b\\)?      # DCS, SOS, PM, APC strings
    | \x1b.?                             # any other two-byte escape
    | \x9b[0-?]*[ -/]*[@-~]              # 8-bit CSI
    """,
    re.VERBOSE,
)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069]")
_SPACE_RUN = re.compile(r"\s+")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "|", "%")


def clean_text(value: str) -> str:
    """Strip escape sequences and control characters, keep newlines and tabs."""
    if not value:
        return ""
    value = _ANSI.sub("", value)
    return _CONTROL.sub("", value.replace("\r\n", "\n").replace("\r", "\n"))


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
    if text.startswith(_FORMULA_START) or (text[:1].isspace() and text.strip()[:1] in "=+-@"):
        return "'" + text
    return text


def for_markdown(value: str, width: int | None = None) -> str:
    """One line for a markdown table cell: pipes, markup and HTML escaped."""
    text = html.escape(one_line(value, width), quote=False)
    return re.sub(r"([\\`*_{}\[\]()#+!|<>~])", r"\\\1", text)


def for_html(value: str) -> str:
    return html.escape(clean_text(value), quote=True)


def for_log(value: str, width: int = 80) -> str:
    return one_line(value, width)
