"""The labelling screen: keys read from the terminal in cbreak mode (one key, no Enter) or, when
stdin is not a terminal, from lines (each line's characters are keys, an empty line is Enter),
so a script or pexpect can drive it; the screen drawn for each message; and the loop that
hands each key to the :class:`~supportcli.labelling.Session`. All email text reaches rich as
``Text`` made by ``sanitize``, never as markup.
"""

from __future__ import annotations

import codecs
import os
import re
from collections import deque
from typing import TYPE_CHECKING, Any, TextIO

from ..errors import UsageError
from .common import stderr_console

if TYPE_CHECKING:
    from rich.console import Console, RenderableType
    from rich.text import Text

    from ..labelling import Session
    from ..records import Message

NO_INPUT = "label is interactive: it needs a terminal, or answers on stdin"
NO_INPUT_HINT = ("run it in a terminal, or pipe answers (one line per answer, an empty line "
                 "accepts); for scripts use `label import` or `label set`")
CATEGORY_KEYS = "123456789bcdeghijklmnoprtvwxyz"  # a, f, q, s, u are commands
ENTER = "\n"
BACK_KEYS = ("\x1b", "\x7f", "\x08")  # Esc, Backspace: leave the urgency choice
QUIT_KEYS = ("q", "Q", "\x04")
_ESCAPE_SEQUENCE = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|O.)")  # arrows, F-keys: ignored


class KeyReader:
    """Single keys from a terminal (cbreak mode), else from lines of stdin."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self.pending: deque[str] = deque()
        self._saved: Any = None
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="ignore")

    @classmethod
    def open(cls, stream: TextIO | None) -> KeyReader:
        """A reader, or a usage error when there is no terminal and no input at all."""
        if stream is None or stream.closed:
            raise UsageError(NO_INPUT, hint=NO_INPUT_HINT)
        keys = cls(stream)
        if not keys.tty:
            line = stream.readline()
            if not line:
                raise UsageError(NO_INPUT, hint=NO_INPUT_HINT)
            keys._push_line(line)
        return keys

    def __enter__(self) -> KeyReader:
        if self.tty:
            import termios
            import tty

            fd = self.stream.fileno()
            self._saved = termios.tcgetattr(fd)
            tty.setcbreak(fd)
        return self

    def __exit__(self, *_: object) -> None:
        if self._saved is not None:
            import termios

            termios.tcsetattr(self.stream.fileno(), termios.TCSADRAIN, self._saved)
            self._saved = None

    def read(self) -> str:
        """The next key: a character, ENTER, or "q" at the end of the input."""
        while not self.pending:
            if self.tty:
                data = os.read(self.stream.fileno(), 64)
                if not data:
                    return "q"
                text = _ESCAPE_SEQUENCE.sub("", self._decoder.decode(data))
                self.pending.extend(ENTER if ch in "\r\n" else ch for ch in text)
            else:
                line = self.stream.readline()
                if not line:
                    return "q"
                self._push_line(line)
        return self.pending.popleft()

    def _push_line(self, line: str) -> None:
        self.pending.extend("".join(line.split()) or ENTER)  # spaces between keys are ignored


def run_session(session: Session, keys: KeyReader, console: Console) -> None:
    """Show each message and apply keys until the queue ends or the user quits."""
    picked, notice = None, ""
    while (message := session.current()) is not None:
        if console.is_terminal:
            console.clear()
        console.print(screen(session, message, picked=picked, notice=notice,
                             width=console.width, height=console.height))
        key = keys.read()
        if key in QUIT_KEYS:
            return
        if key == "f" and picked is None:
            page_message(message, keys, console)
            notice = ""
            continue
        try:
            picked, notice = apply_key(session, key, picked)
        except UsageError as exc:
            picked, notice = None, exc.message


PAGER_KEYS = "Space/Enter/f next page · b previous · q back to labelling"


def page_message(message: Message, keys: KeyReader, console: Console) -> None:
    """``f``: the whole message (new text, signature, quoted history, attachments), one
    screen at a time, under a line saying whose it is."""
    from rich.text import Text

    from .. import sanitize

    lines = _full_text(message).wrap(console, max(20, console.width))
    per_page = max(3, console.height - 3)
    pages = max(1, -(-len(lines) // per_page))
    page = 0
    while 0 <= page < pages:
        if console.is_terminal:
            console.clear()
        who = f"{message.sender_name or message.sender_addr} · {message.date:%Y-%m-%d %H:%M}"
        head = Text(sanitize.for_terminal(f"{who} · {message.subject or '(no subject)'}"),
                    style="bold", no_wrap=True, overflow="ellipsis")
        console.print(head)
        for line in lines[page * per_page : (page + 1) * per_page]:
            console.print(line, no_wrap=True, overflow="ellipsis")
        console.print(Text(f"page {page + 1}/{pages} · {PAGER_KEYS}", style="dim", no_wrap=True,
                           overflow="ellipsis"))
        key = keys.read()
        if key in ("q", "Q", *BACK_KEYS):
            return
        page += -1 if key == "b" else 1
        page = max(page, 0)


def _full_text(m: Message) -> Text:
    from rich.text import Text

    from .. import sanitize

    text = Text(sanitize.clean_text(m.text_new).strip() or "(no new text)")
    signature = sanitize.clean_text(m.text_signature).strip()
    quoted = sanitize.clean_text(m.text_quoted).strip()
    for extra in (f"-- \n{signature}" if signature else "", quoted):
        if extra:
            text.append("\n\n" + extra, style="dim")
    for a in m.attachments:
        text.append(sanitize.for_terminal(
            f"\nattachment: {a.filename} ({a.content_type}, {a.size:,} bytes)"), style="bold")
    return text


def apply_key(session: Session, key: str, picked: str | None) -> tuple[str | None, str]:
    """One key's effect. Returns (the category waiting for its urgency, a notice)."""
    p = session.prediction()
    urgencies = session.urgencies
    if picked is not None:
        if key in BACK_KEYS:
            return None, ""
        if key == ENTER and p is not None:
            urgency = p.urgency
        elif key.isdigit() and 1 <= int(key) <= len(urgencies):
            urgency = urgencies[int(key) - 1]
        else:
            return picked, f"pick the urgency for {picked}: 1-{len(urgencies)}, Esc goes back"
        session.set(picked, urgency)
        return None, f"saved {picked} / {urgency}"
    if key in (ENTER, "a"):
        category, urgency = session.accept()
        return None, f"saved {category} / {urgency} (the model's)"
    if key == "s":
        session.skip()
        return None, "skipped"
    if key == "u":
        return None, "undone" if session.undo() is not None else "nothing to undo"
    keys = CATEGORY_KEYS[: len(session.categories)]
    if key and key in keys:
        return session.categories[keys.index(key)], ""
    return None, f"unknown key {key!r}"


def screen(session: Session, message: Message, *, picked: str | None = None,
           notice: str = "", width: int = 100, height: int = 60) -> RenderableType:
    """One message with the model's opinion in its header, the choices and the status line,
    fitted to a ``width`` × ``height`` screen: the text is cut so that the header and the keys
    stay visible (``f`` pages all of it)."""
    from rich.console import Group

    header, below = _header(session, message), _below(session, picked, notice, width)
    # the screen's last line stays free for the cursor; one line parts header and text
    budget = height - 2 - _rendered_lines(Group(_panel(header, None), *below), width)
    body = _body(message, max(MIN_TEXT_LINES, budget), width - 4)
    return Group(_panel(header, body), *below)


MIN_TEXT_LINES = 3


def _panel(header: RenderableType, body: RenderableType | None) -> RenderableType:
    from rich.console import Group
    from rich.panel import Panel
    from rich.text import Text

    inside = header if body is None else Group(header, Text(""), body)
    return Panel(inside, title="message", title_align="left")


def _header(session: Session, m: Message) -> RenderableType:
    from rich.table import Table
    from rich.text import Text

    from .. import sanitize

    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="bold", no_wrap=True, min_width=len("automated"))
    facts.add_column(no_wrap=True, overflow="ellipsis", ratio=1)

    def row(name: str, value: str, style: str = "") -> None:
        facts.add_row(name, Text(sanitize.for_terminal(value), style=style, no_wrap=True,
                                 overflow="ellipsis"))

    sender = f"{m.sender_name} <{m.sender_addr}>" if m.sender_name else m.sender_addr
    row("from", sender)
    row("date", m.date.strftime("%Y-%m-%d %H:%M UTC"))
    row("subject", m.subject or "(no subject)")
    facts.add_row("model", _model_line(session))
    if m.attachments:
        names = ", ".join(a.filename for a in m.attachments)
        row("attached", f"{len(m.attachments)}: {names}")
    if m.automated:
        row("automated", m.automated)
    row("id", m.message_id, style="dim")
    return facts


def _below(session: Session, picked: str | None, notice: str, width: int) -> list[RenderableType]:
    from rich.text import Text

    from .. import sanitize

    progress = session.progress()
    parts: list[RenderableType] = [
        _choices(session, progress.categories, picked, width),
        Text(f"message {progress.position + 1}/{progress.total} · labelled {progress.labelled}"
             f" · skipped {progress.skipped} · labels: " + _counts(progress.categories),
             no_wrap=True, overflow="ellipsis"),
        Text(f"{picked}: urgency 1-{len(session.urgencies)} · Enter the model's · Esc back"
             if picked else "Enter/a accept · key: category · s skip · u undo · "
             "f full message · q quit", style="dim"),
    ]
    if notice:
        parts.append(Text(sanitize.for_terminal(notice), style="italic"))
    return parts


def _rendered_lines(renderable: RenderableType, width: int) -> int:
    import io

    from rich.console import Console

    measure = Console(width=width, file=io.StringIO(), color_system=None)
    return len(measure.render_lines(renderable, measure.options, pad=False))


def _body(m: Message, max_lines: int, width: int) -> Text:
    """The customer's new text, cut to ``max_lines`` screen lines (one of them then says how
    much is hidden); a line says when quoted history is hidden."""
    import io

    from rich.console import Console
    from rich.text import Text

    from .. import sanitize

    text = Text(sanitize.clean_text(m.text_new).strip() or "(no new text)")
    lines = list(text.wrap(Console(width=max(width, 10), file=io.StringIO()), max(width, 10)))
    quoted = sanitize.clean_text(m.text_quoted).strip()
    note = ""
    if len(lines) > max_lines:
        hidden = len(lines) - (max_lines - 1)
        lines = lines[: max_lines - 1]
        note = f"[{hidden} more lines hidden — press f]"
    elif quoted and len(lines) < max_lines:
        n = len(quoted.splitlines())
        note = f"[{n} line{'s' if n != 1 else ''} of quoted history hidden — press f]"
    body = Text("\n").join(lines)
    if note:
        body.append("\n" + note, style="dim")
    return body


def _model_line(session: Session) -> Text:
    from rich.text import Text

    p = session.prediction()
    if p is None:
        return Text("no prediction", style="magenta")
    line = Text(f"{p.category} ({p.category_confidence:.0%}) · {p.urgency} "
                f"({p.urgency_confidence:.0%})", no_wrap=True, overflow="ellipsis")
    if p.needs_review:
        line.append(" · unsure", style="magenta")
    return line


def _choices(session: Session, counts: dict[str, int], picked: str | None,
             width: int) -> RenderableType:
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    from ..render import short_category

    wide = width >= 4 * 31  # four columns of full names; else short names ("billing")
    grid = Table.grid(padding=(0, 2))
    columns = 4 if wide else max(1, min(4, width // 19))
    for _ in range(columns):
        grid.add_column(no_wrap=True, overflow="ellipsis")
    cells = [Text(f"{key} {name if wide else short_category(name)} ({counts.get(name, 0)})",
                  style="reverse" if name == picked else "")
             for key, name in zip(CATEGORY_KEYS, session.categories, strict=False)]
    for start in range(0, len(cells), columns):
        grid.add_row(*cells[start : start + columns])
    urgencies = Text("urgency: " + "  ".join(
        f"{i} {u}" for i, u in enumerate(session.urgencies, start=1)),
        style="bold" if picked else "")
    return Group(grid, urgencies)


def _counts(counts: dict[str, int]) -> str:
    if not counts:
        return "none yet"
    return ", ".join(f"{name} {n}" for name, n in sorted(counts.items(), key=lambda kv: -kv[1]))


def summary(session: Session) -> None:
    p = session.progress()
    left = p.total - p.position
    stderr_console().print(f"labelled {p.labelled}, skipped {p.skipped}"
                    + (f", {left} left: run `supportcli label` again to go on" if left else ""),
                    markup=False)
