"""The new text of a reply, apart from the quoted history (quotequail: multilingual reply and
forward headers) and the signature (mail-parser-reply). Both libraries are slow on long text,
so cheap regex pre-checks decide which lines they read, or whether they are called at all."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

MAX_REPLY_SCAN_LINES = 300  # lines searched for a reply/forward header
REPLY_WINDOW_LINES = 8  # lines quotequail reads after a line that may start one
MAX_REPLY_WINDOWS = 8  # windows tried per message
MAX_REPLY_SCAN_CHARS = 32 * 1024  # and no further than this
MAX_SIGNATURE_TEXT = 6000  # longer new text is not searched for a signature
_QUOTED_LINE = re.compile(r"^\s*>")
_QUOTE_MARK = re.compile(r"^[ \t]*[>|]")  # a quoted line: '>' or '|' (Alpine, mutt), indented
_SEPARATOR = re.compile(r"[ \t]*(?:[_=*~-][ \t]*){3,}|[ \t]*")  # a blank or a rule line
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
_LONG_BLANK = re.compile(r"[^\S\n]{64,}")
REPLY_LANGUAGES = ("en", "de", "fr", "es", "it", "nl")


def split_reply(body: str) -> tuple[str, str, str]:
    """(new text, quoted history, signature) of a message body."""
    body = body.replace("\r\n", "\n").replace("\r", "\n").strip()
    if not body:
        return "", "", ""
    new, quoted = _unwrap_history(body)
    if not new and quoted:
        new, quoted = _after_last_quote(body, quoted)
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
    while end < len(lines) and _SEPARATOR.fullmatch(lines[end]):
        end += 1  # a rule line ("____") between the quote and the answer below it
    new = "\n".join(lines[:event]).strip()
    below = "\n".join(lines[end:]).strip()
    return (f"{new}\n\n{below}".strip() if below else new), "\n".join(lines[event:end]).strip()


def _quoted_block_end(lines: list[str], header: int) -> int:
    """End of the '>' (or '|') block right after a reply header (as quotequail reads it),
    else the end of the text: history without quote marks (Outlook, forwards) runs to the
    end."""
    others = 0
    for i in range(header + 1, min(header + 8, len(lines))):
        if _QUOTE_MARK.match(lines[i]):
            return next(
                (j for j in range(i, len(lines)) if not _QUOTE_MARK.match(lines[j])), len(lines)
            )
        if lines[i].strip():
            others += 1  # a wrapped header line, "<snip>" …; more means no '>' block
            if others > 2:
                break
    return len(lines)


def _after_last_quote(body: str, quoted: str) -> tuple[str, str]:
    """The second look at a reply whose new text came out empty: text below the last quoted
    block ('>' or '|' lines, maybe indented) is new text, written under the quote (a
    bottom-poster below a header block, an "On … wrote:" with '|' quoting, an "Original
    Message" with a '____' line before the answer). (new text, history)."""
    lines = body.split("\n")
    last = max((i for i, line in enumerate(lines) if _QUOTE_MARK.match(line)), default=None)
    if last is None:
        return "", quoted
    start = last + 1
    while start < len(lines) and _SEPARATOR.fullmatch(lines[start]):
        start += 1
    new = "\n".join(lines[start:]).strip()
    return (new, "\n".join(lines[:start]).strip()) if new else ("", quoted)


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
