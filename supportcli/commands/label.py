"""``supportcli label``: the interactive labelling session, and its non-interactive companions
(``export``, ``import``, ``set``, ``audit``).

``cli`` mounts :data:`label_app` with ``app.add_typer(label_app, name="label")``. The session
logic lives in :mod:`supportcli.labelling`, the keys and the screen in :mod:`.label_screen`;
this module wires them to the store, the model and the options.
"""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ..errors import UsageError
from .common import get_context, stderr_console, stdout_console
from .label_screen import CATEGORY_KEYS, KeyReader, run_session, summary

if TYPE_CHECKING:
    from rich.console import RenderableType

    from ..config import Settings
    from ..labelling import AuditResult, Session
    from ..model.text import ModelInput
    from ..store import Store

label_app = typer.Typer(
    help="Label messages so the model learns the shop's own mail.",
    add_completion=False,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    pretty_exceptions_show_locals=False,
)



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
        summary(session)


def prepare(settings: Settings, store: Store, *, source: str | None = None,
            order: str = "uncertain", limit: int | None = None,
            category: str | None = None) -> Session:
    """The session over the store (or the messages of ``source``), queued and predicted."""
    from .. import labelling, workflows
    from ..sources.files import open_path

    if category is not None and category not in settings.categories:
        raise UsageError(f"unknown category {category!r}",
                         hint="one of " + ", ".join(settings.categories))
    if len(settings.categories) > len(CATEGORY_KEYS):
        raise UsageError(f"too many categories for one key each (at most {len(CATEGORY_KEYS)})",
                         hint="use `label export` / `label import` instead")
    ids = None
    if source:
        found = workflows.ingest(open_path(source), store, order_pattern=settings.order_pattern)
        ids = found.message_ids
    messages = store.messages(message_ids=ids)
    if not messages:
        raise UsageError("no messages to label",
                         hint="give --source PATH, or fetch mail into the store first")
    labels = store.labels()
    pending = [m for m in messages if m.message_id not in labels]
    predictions = {}
    if pending:
        loaded = workflows.load_model(settings)
        predictions = workflows.classify_messages(store, loaded, pending, settings.timezone)
    items = labelling.queue(pending, predictions, labels, order=order, limit=limit,
                            category=category, skipped=store.skipped())
    return labelling.Session(store, items, settings.categories, settings.urgencies, predictions)


# --- keys ----------------------------------------------------------------------------------


# --- the session loop ----------------------------------------------------------------------


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
    from .. import labelling, workflows
    from ..store import Store

    if file is None and eml is None:
        raise UsageError("give a FILE.csv to write, or --eml DIR")
    settings = get_context(ctx).settings()
    with Store(settings.store_path) as store:
        if file is not None:
            messages = store.messages()
            loaded = workflows.load_model(settings) if messages else None
            predictions = (workflows.classify_messages(store, loaded, messages, settings.timezone)
                           if loaded else {})
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
        list[ModelInput], list[str], list[str], list[str], dict[str, str]]:
    from .. import resources
    from ..model import dataset
    from ..model.text import message_input

    labels = store.labels()
    messages = store.messages(message_ids=list(labels))
    texts = [message_input(m) for m in messages]
    ids = [m.message_id for m in messages]
    categories = [labels[i][0] for i in ids]
    urgencies = [labels[i][1] for i in ids]
    subjects = {m.message_id: m.subject for m in messages}
    if with_samples:
        data = dataset.load_folder(resources.samples_dir())
        texts += data.inputs
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
