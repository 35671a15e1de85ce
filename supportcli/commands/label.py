"""``supportcli label``: the interactive labelling session, and its non-interactive companions
(``export``, ``import``, ``set``, ``audit``).

``cli`` mounts :data:`label_app` with ``app.add_typer(label_app, name="label")``. The session
logic lives in :mod:`supportcli.labelling`; this module reads keys and draws the screen. Keys
come from the terminal in cbreak mode (one key, no Enter), or, when stdin is not a terminal,
from lines (each line's characters are keys, an empty line is Enter), so a script or pexpect
can drive it. All email text reaches rich as ``Text`` made by ``sanitize``, never as markup.
"""

from __future__ import annotations

import codecs
import os
import re
import sys
from collections import deque
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TextIO

import typer

from ..errors import UsageError
from .common import get_context, stderr_console, stdout_console

if TYPE_CHECKING:
    from rich.console import Console, RenderableType
    from rich.text import Text

    from ..config import Settings
    from ..labelling import AuditResult, Session
    from ..records import Message
    from ..store import Store

label_app = typer.Typer(
    help="Label messages so the model learns the shop's own mail.",
    add_completion=False,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    pretty_exceptions_show_locals=False,
)

CATEGORY_KEYS = "123456789bcdeghijklmnoprtvwxyz"  # a, f, q, s, u are commands
ENTER = "\n"
BACK_KEYS = ("\x1b", "\x7f", "\x08")  # Esc, Backspace: leave the urgency choice
QUIT_KEYS = ("q", "Q", "\x04")
MAX_NEW_LINES = 40  # of the customer's new text shown before "press f" (fewer on a short screen)
SCREEN_LINES = 22  # lines around the text: facts, choices, status, keys
_ESCAPE_SEQUENCE = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|O.)")  # arrows, F-keys: ignored
NO_INPUT = "label is interactive: it needs a terminal, or answers on stdin"
NO_INPUT_HINT = ("run it in a terminal, or pipe answers (one line per answer, an empty line "
                 "accepts); for scripts use `label import` or `label set`")


class Order(StrEnum):
    uncertain = "uncertain"
    recent = "recent"
    random = "random"


@label_app.callback(invoke_without_command=True)
def label(
    ctx: typer.Context,
    source: Annotated[str | None, typer.Option(
        "--source", help="Import this mailbox first (mbox, Maildir, .eml folder or file) and "
        "label its messages.")] = None,
    order: Annotated[Order, typer.Option(
        "--order", help="uncertain: least sure first; recent: newest first; random.")
    ] = Order.uncertain,
    limit: Annotated[int | None, typer.Option("--limit", "-n", min=1,
                                              help="At most N messages.")] = None,
    category: Annotated[str | None, typer.Option(
        "--category", help="Only messages the model puts in this category.")] = None,
) -> None:
    """Label messages one key at a time, least certain first; every answer is saved at once."""
    if ctx.invoked_subcommand is not None:
        return
    from ..store import Store

    if source == "-":
        raise UsageError("--source - cannot be used: stdin carries the answers",
                         hint="save the mail to a file and give its path")
    settings = get_context(ctx).settings()
    keys = KeyReader.open(sys.stdin)
    with Store(settings.store_path) as store:
        session = prepare(settings, store, source=source, order=order.value, limit=limit,
                          category=category)
        if session.current() is None:
            where = f" predicted as {category}" if category else ""
            stderr_console().print(f"nothing to label: no unlabelled messages{where}", markup=False)
            return
        with keys:
            run_session(session, keys, stdout_console())
        _summary(session)


def prepare(settings: Settings, store: Store, *, source: str | None = None,
            order: str = "uncertain", limit: int | None = None,
            category: str | None = None) -> Session:
    """The session over the store (or the messages of ``source``), queued and predicted."""
    from .. import labelling, registry, workflows
    from ..sources.files import open_path

    if category is not None and category not in settings.categories:
        raise UsageError(f"unknown category {category!r}",
                         hint="one of " + ", ".join(settings.categories))
    if len(settings.categories) > len(CATEGORY_KEYS):
        raise UsageError(f"too many categories for one key each (at most {len(CATEGORY_KEYS)})",
                         hint="use `label export` / `label import` instead")
    ids = workflows.ingest(open_path(source), store).message_ids if source else None
    messages = store.messages(message_ids=ids)
    if not messages:
        raise UsageError("no messages to label",
                         hint="give --source PATH, or fetch mail into the store first")
    labels = store.labels()
    pending = [m for m in messages if m.message_id not in labels]
    predictions = {}
    if pending:
        loaded = registry.load_active(settings)
        predictions = workflows.classify_messages(store, loaded, pending)
    items = labelling.queue(pending, predictions, labels, order=order, limit=limit,
                            category=category, skipped=store.skipped())
    return labelling.Session(store, items, settings.categories, settings.urgencies, predictions)


# --- keys ----------------------------------------------------------------------------------


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


# --- the session loop ----------------------------------------------------------------------


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


def _summary(session: Session) -> None:
    p = session.progress()
    left = p.total - p.position
    stderr_console().print(f"labelled {p.labelled}, skipped {p.skipped}"
                    + (f", {left} left: run `supportcli label` again to go on" if left else ""),
                    markup=False)


# --- non-interactive companions ------------------------------------------------------------


@label_app.command("export")
def export_labels(
    ctx: typer.Context,
    file: Annotated[Path | None, typer.Argument(
        help="CSV to write: id, sender, subject, excerpt, predicted and current labels "
        "(- for stdout).")] = None,
    eml: Annotated[Path | None, typer.Option(
        "--eml", help="Write the labelled messages to DIR as .eml files + labels.csv "
        "(the samples/ format).")] = None,
) -> None:
    """Write messages and their labels to a CSV (to edit in a spreadsheet) or as samples."""
    from .. import labelling, registry, workflows
    from ..store import Store

    if file is None and eml is None:
        raise UsageError("give a FILE.csv to write, or --eml DIR")
    settings = get_context(ctx).settings()
    with Store(settings.store_path) as store:
        if file is not None:
            messages = store.messages()
            loaded = registry.load_active(settings) if messages else None
            predictions = workflows.classify_messages(store, loaded, messages) if loaded else {}
            if str(file) == "-":
                rows = labelling.write_csv(store, sys.stdout, predictions, messages)
            else:
                rows = labelling.export_csv(store, file, predictions, messages)
                stderr_console().print(f"wrote {rows} message(s) to {file}", markup=False)
        if eml is not None:
            count = labelling.export_eml(store, eml)
            stderr_console().print(f"wrote {count} labelled message(s) and labels.csv to {eml}",
                            markup=False)


@label_app.command("import")
def import_labels(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="An edited `label export` CSV.")],
) -> None:
    """Read the category and urgency columns of an edited export back; bad rows are listed."""
    from .. import labelling
    from ..store import Store

    settings = get_context(ctx).settings()
    with Store(settings.store_path) as store:
        result = labelling.import_csv(store, file, settings.categories, settings.urgencies)
    err = stderr_console()
    for line, problem in result.errors[:50]:
        err.print(f"{file}:{line}: {problem}", markup=False)
    if len(result.errors) > 50:
        err.print(f"… and {len(result.errors) - 50} more", markup=False)
    err.print(f"imported {result.imported} label(s), {result.unchanged} unchanged, "
              f"{result.blank} row(s) without labels, {len(result.errors)} with errors",
              markup=False)
    if result.errors:
        raise UsageError(f"{len(result.errors)} row(s) not imported (the other rows were)")


@label_app.command("set")
def set_label(
    ctx: typer.Context,
    message_id: Annotated[str, typer.Argument(help="The Message-ID, with or without <>.")],
    category: Annotated[str | None, typer.Option("--category", "-c", help="Category.")] = None,
    urgency: Annotated[str | None, typer.Option("--urgency", "-u", help="Urgency.")] = None,
) -> None:
    """Label one message (for scripts); a part left out keeps its current value."""
    from .. import labelling
    from ..store import Store

    if category is None and urgency is None:
        raise UsageError("give --category and/or --urgency")
    settings = get_context(ctx).settings()
    with Store(settings.store_path) as store:
        old = labelling.set_label(store, message_id, category, urgency, settings.categories,
                                  settings.urgencies)
        new = store.labels()[message_id.strip().strip("<>")]
    was = f" (was {old[0]} / {old[1]})" if old and old != new else ""
    stderr_console().print(f"labelled: {new[0]} / {new[1]}{was}", markup=False)


@label_app.command("audit")
def audit_labels(
    ctx: typer.Context,
    min_confidence: Annotated[float, typer.Option(
        "--min-confidence", min=0.0, max=1.0,
        help="Only disagreements at least this confident.")] = 0.8,
    with_samples: Annotated[bool, typer.Option(
        "--with-samples", help="Check the bundled samples too (they also help the model).")
    ] = False,
) -> None:
    """List labels that a model trained without them confidently disagrees with."""
    from .. import labelling
    from ..store import Store

    settings = get_context(ctx).settings()
    with Store(settings.store_path) as store:
        texts, categories, urgencies, ids, subjects = _labelled_data(store, with_samples)
    if not texts:
        raise UsageError("no labels to audit yet", hint="label messages with `supportcli label`")
    result = labelling.audit(texts, categories, urgencies, ids, min_confidence=min_confidence)
    stdout_console().print(_audit_table(result, subjects, min_confidence))
    for target, small in result.too_small.items():
        stderr_console().print(f"not checked ({target}, fewer than {labelling.AUDIT_MIN_PER_CLASS} "
                        "labels): " + ", ".join(f"{c} ({n})" for c, n in small.items()),
                        markup=False)


def _labelled_data(store: Store, with_samples: bool) -> tuple[
        list[str], list[str], list[str], list[str], dict[str, str]]:
    from .. import dataset, resources
    from ..features import message_text

    labels = store.labels()
    messages = store.messages(message_ids=list(labels))
    texts = [message_text(m) for m in messages]
    ids = [m.message_id for m in messages]
    categories = [labels[i][0] for i in ids]
    urgencies = [labels[i][1] for i in ids]
    subjects = {m.message_id: m.subject for m in messages}
    if with_samples:
        data = dataset.load_folder(resources.samples_dir())
        texts += data.texts
        categories += data.categories
        urgencies += data.urgencies
        ids += [f"samples:{name}" for name in data.names]
        subjects.update({f"samples:{name}": m.subject for name, m in
                         zip(data.names, data.messages, strict=True) if m is not None})
    return texts, categories, urgencies, ids, subjects


def _audit_table(result: AuditResult, subjects: dict[str, str],
                 min_confidence: float) -> RenderableType:
    from rich.table import Table
    from rich.text import Text

    from .. import sanitize

    table = Table(title=f"{len(result.items)} label(s) the model disagrees with at ≥"
                  f"{min_confidence:.0%} confidence (of {result.checked} checked)",
                  title_justify="left")
    for column in ("id", "subject", "target", "labelled", "model says", "conf"):
        table.add_column(column, overflow="fold")
    for item in result.items:
        table.add_row(Text(sanitize.for_terminal(item.message_id), overflow="fold"),
                      Text(sanitize.for_terminal(subjects.get(item.message_id, ""), 50)),
                      item.target, item.label, item.predicted, f"{item.confidence:.0%}")
    return table
