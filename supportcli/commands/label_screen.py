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
MAX_NEW_LINES = 40  # of the customer's new text shown before "press f" (fewer on a short screen)
SCREEN_LINES = 22  # lines around the text: facts, choices, status, keys
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
    full, picked, notice = False, None, ""
    while (message := session.current()) is not None:
        if console.is_terminal:
            console.clear()
        console.print(screen(session, message, full=full, picked=picked, notice=notice,
                             width=console.width, height=console.height))
        key = keys.read()
        if key in QUIT_KEYS:
            return
        if key == "f" and picked is None:
            full, notice = not full, ""
            continue
        try:
            picked, notice = apply_key(session, key, picked)
        except UsageError as exc:
            picked, notice = None, exc.message
        if session.current() is not message:
            full = False


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


def screen(session: Session, message: Message, *, full: bool = False,
           picked: str | None = None, notice: str = "", width: int = 100,
           height: int = 60) -> RenderableType:
    """One message with the model's opinion, the choices and the status line; the text is
    cut so that the keys stay on a ``height``-line screen (``f`` shows all of it)."""
    from rich.console import Group
    from rich.panel import Panel
    from rich.table import Table
    from rich.text import Text

    from .. import sanitize

    m = message
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="bold", no_wrap=True)
    facts.add_column()
    sender = f"{m.sender_name} <{m.sender_addr}>" if m.sender_name else m.sender_addr
    facts.add_row("from", Text(sanitize.for_terminal(sender)))
    facts.add_row("date", m.date.strftime("%Y-%m-%d %H:%M UTC"))
    facts.add_row("subject", Text(sanitize.for_terminal(m.subject or "(no subject)")))
    for a in m.attachments:
        about = f"{a.filename} ({a.content_type}, {a.size:,} bytes)"
        facts.add_row("attachment", Text(sanitize.for_terminal(about)))
    if m.automated:
        facts.add_row("automated", Text(sanitize.for_terminal(m.automated)))
    facts.add_row("id", Text(sanitize.for_terminal(m.message_id), style="dim", overflow="fold"))
    progress = session.progress()
    parts: list[RenderableType] = [
        Panel(Group(facts, Text(""), _body(m, full, _text_lines(m, height))), title="message",
              title_align="left"),
        _model_line(session), _choices(session, progress.categories, picked, width),
        Text(f"message {progress.position + 1}/{progress.total} · labelled {progress.labelled}"
             f" · skipped {progress.skipped} · labels: " + _counts(progress.categories)),
        Text(f"{picked}: urgency 1-{len(session.urgencies)} · Enter the model's · Esc back"
             if picked else "Enter/a accept · key picks a category · s skip · u undo · "
             "f full message · q quit", style="dim"),
    ]
    if notice:
        parts.append(Text(sanitize.for_terminal(notice), style="italic"))
    return Group(*parts)


def _text_lines(m: Message, height: int) -> int:
    return max(5, min(MAX_NEW_LINES, height - SCREEN_LINES - len(m.attachments)))


def _body(m: Message, full: bool, max_lines: int = MAX_NEW_LINES) -> Text:
    from rich.text import Text

    from .. import sanitize

    lines = sanitize.clean_text(m.text_new).strip().splitlines() or ["(no new text)"]
    body = Text("\n".join(lines if full else lines[:max_lines]))
    if not full and len(lines) > max_lines:
        body.append(f"\n[{len(lines) - max_lines} more lines hidden — press f]", style="dim")
    signature = sanitize.clean_text(m.text_signature).strip()
    quoted = sanitize.clean_text(m.text_quoted).strip()
    if full:
        for extra in (f"-- \n{signature}" if signature else "", quoted):
            if extra:
                body.append("\n\n" + extra, style="dim")
    elif quoted:
        n = len(quoted.splitlines())
        body.append(f"\n[{n} line{'s' if n != 1 else ''} of quoted history hidden — press f]",
                    style="dim")
    return body


def _model_line(session: Session) -> Text:
    from rich.text import Text

    p = session.prediction()
    if p is None:
        return Text("model: no prediction", style="magenta")
    line = Text()
    line.append("model: ", style="bold")
    line.append(f"{p.category} ({p.category_confidence:.0%}) · {p.urgency} "
                f"({p.urgency_confidence:.0%})")
    if p.needs_review:
        line.append(" · unsure", style="magenta")
    return line


def _choices(session: Session, counts: dict[str, int], picked: str | None,
             width: int) -> RenderableType:
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    grid = Table.grid(padding=(0, 3))
    columns = max(1, min(4, width // 31))
    for _ in range(columns):
        grid.add_column(no_wrap=True)
    cells = [Text(f"{key} {name} ({counts.get(name, 0)})",
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
