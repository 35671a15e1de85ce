"""Labelling: which message to show next, the session state machine, CSV and .eml exchange,
and the audit of labels the model confidently disagrees with.

Pure logic: no terminal, no model loading, no I/O beyond the :class:`Store` (and the paths)
passed in. Every answer is written to the store in its own transaction the moment it is
given, so a killed session loses at most the message on screen, and a new session resumes
because labelled messages are never queued again.
"""

from __future__ import annotations

import csv
import io
import random
from collections import Counter, deque
from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import format_datetime, formataddr
from heapq import heapify, heappop, heappush
from pathlib import Path
from typing import Any, TextIO

from . import prioritize, sanitize
from .errors import SourceError, UsageError
from .records import Message, Prediction
from .store import Store

ORDERS = ("uncertain", "recent", "random")
WINDOW, PER_SENDER, PER_THREAD = 10, 2, 1  # in any 10 queued: ≤2 per sender, ≤1 per thread
CLASS_BOOST = 0.25  # margin added to the messages of the class with the most labels so far
EXCERPT_CHARS = 200
EXPORT_COLUMNS = ("id", "sender", "subject", "excerpt", "predicted_category",
                  "predicted_urgency", "confidence", "category", "urgency")
AUDIT_MIN_PER_CLASS = 5

Labels = Mapping[str, tuple[str, str]]  # message_id -> (category, urgency), as Store.labels()


# --- the queue -----------------------------------------------------------------------------


def queue(
    messages: Sequence[Message],
    predictions: Mapping[str, Prediction],
    labels: Labels,
    *,
    order: str = "uncertain",
    limit: int | None = None,
    category: str | None = None,
    seed: int = 0,
    include_labelled: bool = False,
    skipped: Set[str] = frozenset(),
) -> list[Message]:
    """The messages to label, in the order to show them (labelled ones left out; the ones
    ``skipped`` in an earlier session come last, in the same order among themselves)."""
    if order not in ORDERS:
        raise UsageError(f"unknown order {order!r}", hint="one of " + ", ".join(ORDERS))
    pool = [m for m in messages if include_labelled or m.message_id not in labels]
    if category is not None:
        pool = [m for m in pool if category in (_predicted(predictions, m),
                                                labels.get(m.message_id, ("", ""))[0])]
    if order == "recent":
        ordered = sorted(pool, key=lambda m: (m.date, m.message_id), reverse=True)
    elif order == "random":
        ordered = sorted(pool, key=lambda m: m.message_id)
        random.Random(seed).shuffle(ordered)
    else:
        ordered = mix(by_uncertainty(pool, predictions, labels))
    if skipped:
        ordered = [m for m in ordered if m.message_id not in skipped] + [
            m for m in ordered if m.message_id in skipped
        ]
    return ordered[:limit] if limit is not None else ordered


def _predicted(predictions: Mapping[str, Prediction], m: Message) -> str:
    p = predictions.get(m.message_id)
    return p.category if p else ""


def margin(prediction: Prediction | None) -> float:
    """Top category probability minus the second: small means the model is torn."""
    if prediction is None:
        return 0.0
    probs = sorted(prediction.category_probs.values(), reverse=True)
    if not probs:
        return prediction.category_confidence
    return probs[0] - (probs[1] if len(probs) > 1 else 0.0)


def by_uncertainty(
    messages: Sequence[Message], predictions: Mapping[str, Prediction], labels: Labels
) -> list[Message]:
    """Smallest margin first; a class that already has many labels waits (its messages'
    margins grow by up to CLASS_BOOST in proportion to its label count)."""
    counts = Counter(category for category, _ in labels.values())
    most = max(counts.values(), default=0)

    def key(m: Message) -> tuple[float, float, str]:
        boost = CLASS_BOOST * counts[_predicted(predictions, m)] / most if most else 0.0
        return (margin(predictions.get(m.message_id)) + boost, -m.date.timestamp(), m.message_id)

    return sorted(messages, key=key)


def mix(
    ranked: Sequence[Message], *, window: int = WINDOW, per_sender: int = PER_SENDER,
    per_thread: int = PER_THREAD,
) -> list[Message]:
    """Reorder so that in any ``window`` consecutive messages no sender appears more than
    ``per_sender`` times and no thread more than ``per_thread`` times, keeping the ranked
    order otherwise; when nothing else is left the rule gives way."""
    thread = {m.message_id: i for i, group in enumerate(prioritize.group_threads(ranked))
              for m in group}
    rank = {m.message_id: i for i, m in enumerate(ranked)}
    by_sender: dict[str, list[Message]] = {}
    for m in ranked:
        by_sender.setdefault(_sender_key(m), []).append(m)
    heap = [(rank[items[0].message_id], s) for s, items in by_sender.items()]
    heapify(heap)
    recent: deque[Message] = deque(maxlen=window)
    out: list[Message] = []
    while heap:
        senders = Counter(_sender_key(m) for m in recent)
        threads = Counter(thread[m.message_id] for m in recent)
        held: list[tuple[int, str]] = []
        pick: tuple[str, int] | None = None
        while heap and pick is None:
            head_rank, s = heappop(heap)
            items = by_sender[s]
            i = None if senders[s] >= per_sender else next(
                (i for i, m in enumerate(items) if threads[thread[m.message_id]] < per_thread),
                None)
            if i is None:
                held.append((head_rank, s))
            elif rank[items[i].message_id] > head_rank:  # head blocked by its thread: re-rank
                heappush(heap, (rank[items[i].message_id], s))
            else:
                pick = (s, i)
        if pick is None:  # every sender left is blocked: take the best anyway
            held.sort()
            pick = (held.pop(0)[1], 0)
        for _, s in held:
            heappush(heap, (rank[by_sender[s][0].message_id], s))
        s, i = pick
        chosen = by_sender[s].pop(i)
        out.append(chosen)
        recent.append(chosen)
        if by_sender[s]:
            heappush(heap, (rank[by_sender[s][0].message_id], s))
    return out


def _sender_key(m: Message) -> str:
    return m.sender_addr or f"<{m.message_id}>"


# --- the session ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Progress:
    position: int  # messages answered or skipped in this session
    total: int  # messages in this session's queue
    labelled: int  # labels saved in this session
    skipped: int
    categories: dict[str, int]  # labels per category in the whole store
    urgencies: dict[str, int]


@dataclass(frozen=True)
class _Step:
    message_id: str
    saved: tuple[str, str] | None  # the label written; None for a skip
    previous: tuple[Any, ...] | None  # the label row it replaced, restored by undo
    was_skipped: bool = False  # a skip of a message an earlier session skipped too


class Session:
    """One labelling session over a queue, independent of the terminal.

    ``current()`` is the message on screen; ``accept``, ``set`` and ``skip`` answer it and
    move on; ``undo`` steps back, removing the label it saved (or restoring the one it
    replaced). Every label is in the store before the method returns.
    """

    def __init__(self, store: Store, queue: Sequence[Message], categories: Sequence[str],
                 urgencies: Sequence[str], predictions: Mapping[str, Prediction], *,
                 labelled_by: str = "label") -> None:
        self.store = store
        self.items = list(queue)
        self.categories = tuple(categories)
        self.urgencies = tuple(urgencies)
        self.predictions = predictions
        self.labelled_by = labelled_by
        self._steps: list[_Step] = []

    def current(self) -> Message | None:
        index = len(self._steps)
        return self.items[index] if index < len(self.items) else None

    def prediction(self) -> Prediction | None:
        message = self.current()
        return self.predictions.get(message.message_id) if message else None

    def accept(self) -> tuple[str, str]:
        """Save the model's category and urgency for the current message."""
        p = self.prediction()
        if p is None:
            raise UsageError("the model has no prediction for this message: pick the labels")
        return self.set(p.category, p.urgency)

    def set(self, category: str, urgency: str) -> tuple[str, str]:
        message = self._current()
        check_label(category, urgency, self.categories, self.urgencies)
        previous = _label_row(self.store, message.message_id)
        self.store.set_label(message.message_id, category, urgency, by=self.labelled_by)
        self._steps.append(_Step(message.message_id, (category, urgency), previous))
        return category, urgency

    def skip(self) -> None:
        """Pass over the current message; the next session shows it after the others."""
        message_id = self._current().message_id
        before = self.store.is_skipped(message_id)
        self.store.set_skipped(message_id)
        self._steps.append(_Step(message_id, None, None, was_skipped=before))

    def undo(self) -> Message | None:
        """Step back one answer; returns the message that is on screen again (None: nothing
        to undo)."""
        if not self._steps:
            return None
        step = self._steps.pop()
        if step.saved is not None:
            _restore_label(self.store, step.message_id, step.previous)
        elif not step.was_skipped:  # a skip from an earlier session stays
            self.store.set_skipped(step.message_id, False)
        return self.current()

    def progress(self) -> Progress:
        labels = self.store.labels().values()
        labelled = sum(1 for s in self._steps if s.saved is not None)
        return Progress(
            position=len(self._steps), total=len(self.items), labelled=labelled,
            skipped=len(self._steps) - labelled,
            categories=dict(Counter(c for c, _ in labels)),
            urgencies=dict(Counter(u for _, u in labels)),
        )

    def _current(self) -> Message:
        message = self.current()
        if message is None:
            raise UsageError("the session is finished: no message to answer")
        return message


def check_label(category: str, urgency: str, categories: Sequence[str],
                urgencies: Sequence[str]) -> None:
    if category not in categories:
        raise UsageError(f"unknown category {category!r}", hint="one of " + ", ".join(categories))
    if urgency not in urgencies:
        raise UsageError(f"unknown urgency {urgency!r}", hint="one of " + ", ".join(urgencies))


def set_label(store: Store, message_id: str, category: str | None, urgency: str | None,
              categories: Sequence[str], urgencies: Sequence[str]) -> tuple[str, str] | None:
    """Label one message (for ``label set``); a missing part keeps the current label's.
    Returns the label it replaced."""
    message_id = message_id.strip().strip("<>")
    if not store.has_message(message_id):
        raise UsageError(f"no message with id {sanitize.one_line(message_id, 80)!r} in the store")
    old = store.labels().get(message_id)
    category = category or (old[0] if old else None)
    urgency = urgency or (old[1] if old else None)
    if category is None or urgency is None:
        raise UsageError("the message has no label yet: give both --category and --urgency")
    check_label(category, urgency, categories, urgencies)
    store.set_label(message_id, category, urgency, by="set")
    return old


def _label_row(store: Store, message_id: str) -> tuple[Any, ...] | None:
    row = store.db.execute(
        "SELECT category, urgency, labelled_by, labelled_at FROM labels WHERE message_id = ?",
        (message_id,),
    ).fetchone()
    return tuple(row) if row else None


def _restore_label(store: Store, message_id: str, previous: tuple[Any, ...] | None) -> None:
    with store.transaction() as db:
        if previous is None:
            db.execute("DELETE FROM labels WHERE message_id = ?", (message_id,))
        else:
            db.execute("INSERT OR REPLACE INTO labels VALUES (?, ?, ?, ?, ?)",
                       (message_id, *previous))


# --- CSV -----------------------------------------------------------------------------------


def write_csv(store: Store, stream: TextIO, predictions: Mapping[str, Prediction],
              messages: Sequence[Message] | None = None) -> int:
    """Every message (or the ones given) with its predicted and current labels."""
    labels = store.labels()
    writer = csv.writer(stream)
    writer.writerow(EXPORT_COLUMNS)
    rows = 0
    for m in store.messages() if messages is None else messages:
        p = predictions.get(m.message_id)
        category, urgency = labels.get(m.message_id, ("", ""))
        sender = f"{m.sender_name} <{m.sender_addr}>" if m.sender_name else m.sender_addr
        writer.writerow([sanitize.for_csv(value) for value in (
            m.message_id, sanitize.one_line(sender), sanitize.one_line(m.subject),
            sanitize.one_line(m.text_new)[:EXCERPT_CHARS],
            p.category if p else "", p.urgency if p else "",
            f"{p.category_confidence:.3f}" if p else "", category, urgency,
        )])
        rows += 1
    return rows


def export_csv(store: Store, path: Path, predictions: Mapping[str, Prediction],
               messages: Sequence[Message] | None = None) -> int:
    try:
        with path.open("w", encoding="utf-8", newline="") as handle:
            return write_csv(store, handle, predictions, messages)
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror}") from None


@dataclass
class ImportResult:
    imported: int = 0  # labels written
    unchanged: int = 0  # rows whose labels equal the stored ones
    errors: list[tuple[int, str]] = field(default_factory=list)  # (CSV line, problem)
    blank: int = 0  # rows with neither category nor urgency: left alone


def import_csv(store: Store, path: Path, categories: Sequence[str],
               urgencies: Sequence[str]) -> ImportResult:
    """Read edited ``category``/``urgency`` columns back. Every row is checked; a bad row is
    reported with its line number and the good rows are imported."""
    result = ImportResult()
    reader = csv.reader(io.StringIO(_read_text(path), newline=""))
    try:
        header = [name.strip().lower() for name in next(reader)]
    except (StopIteration, csv.Error) as exc:
        result.errors.append((1, "no header row" if isinstance(exc, StopIteration) else str(exc)))
        return result
    missing = [name for name in ("id", "category", "urgency") if name not in header]
    if missing:
        result.errors.append((1, f"missing column(s): {', '.join(missing)}"))
        return result
    columns = {name: header.index(name) for name in ("id", "category", "urgency")}
    lookup = ({c.lower(): c for c in categories}, {u.lower(): u for u in urgencies})
    stored = store.labels()
    first_line: dict[str, int] = {}
    while True:
        line = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            result.errors.append((line, f"unreadable row: {exc}"))
            if reader.line_num < line:
                break
            continue
        if not any(cell.strip() for cell in row):
            continue
        checked = _check_row(store, row, len(header), columns, lookup)
        if isinstance(checked, str):
            result.errors.append((line, checked))
        elif checked is None:
            result.blank += 1
        elif checked[0] in first_line:
            result.errors.append((line, f"duplicate id (first on line {first_line[checked[0]]})"))
        else:
            message_id, category, urgency = checked
            first_line[message_id] = line
            if stored.get(message_id) == (category, urgency):
                result.unchanged += 1
            else:
                store.set_label(message_id, category, urgency, by="import")
                result.imported += 1
    return result


def _read_text(path: Path) -> str:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SourceError(f"cannot read {path}: {exc.strerror}") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:  # a spreadsheet saved it in the Windows code page
        return data.decode("cp1252", errors="replace")


def _check_row(store: Store, row: list[str], width: int, columns: dict[str, int],
               lookup: tuple[dict[str, str], dict[str, str]]) -> tuple[str, str, str] | str | None:
    """(message_id, category, urgency), an error message, or None for a row without labels."""
    absent = [name for name, index in columns.items() if index >= len(row)]
    if absent:
        return f"missing column(s): {', '.join(absent)} ({len(row)} of {width} fields)"
    if any(cell.strip() for cell in row[width:]):
        return f"{len(row)} fields, the header has {width} (a comma outside quotes?)"
    raw_id, category, urgency = (row[columns[name]].strip() for name in columns)
    if not category and not urgency:
        return None
    problems = []
    message_id = _resolve_id(store, raw_id)
    if message_id is None:
        problems.append(f"unknown id {sanitize.one_line(raw_id, 60)!r}" if raw_id else "empty id")
    for value, name, known in ((category, "category", lookup[0]), (urgency, "urgency", lookup[1])):
        if not value:
            problems.append(f"{name} is empty")
        elif value.lower() not in known:
            problems.append(f"unknown {name} {sanitize.one_line(value, 40)!r}")
    if problems or message_id is None:
        return "; ".join(problems)
    return message_id, lookup[0][category.lower()], lookup[1][urgency.lower()]


def _resolve_id(store: Store, raw: str) -> str | None:
    """The stored Message-ID for a cell (``<…>`` and the CSV formula guard ``'`` undone)."""
    for candidate in (raw, raw.removeprefix("'")):
        candidate = candidate.strip().strip("<>")
        if candidate and store.has_message(candidate):
            return candidate
    return None


# --- .eml export ---------------------------------------------------------------------------


def to_eml(m: Message) -> bytes:
    """A simple RFC 822 message rebuilt from the stored fields (attachments are not kept)."""
    msg = EmailMessage()
    msg["From"] = formataddr((sanitize.one_line(m.sender_name), m.sender_addr))
    if m.to:
        msg["To"] = ", ".join(sanitize.one_line(a) for a in m.to)
    msg["Subject"] = sanitize.one_line(m.subject)
    msg["Date"] = format_datetime(m.date)
    msg["Message-ID"] = f"<{m.message_id}>"
    if m.in_reply_to:
        msg["In-Reply-To"] = f"<{m.in_reply_to}>"
    if m.references:
        msg["References"] = " ".join(f"<{r}>" for r in m.references)
    if m.automated:
        msg["Auto-Submitted"] = "auto-generated"
    parts = [m.text_new.strip(), f"-- \n{m.text_signature.strip()}" if m.text_signature.strip()
             else "", m.text_quoted.strip()]
    msg.set_content(sanitize.clean_text("\n\n".join(p for p in parts if p)) + "\n")
    return msg.as_bytes()


def export_eml(store: Store, directory: Path) -> int:
    """Each labelled message as ``label-NNNN.eml`` plus ``labels.csv`` (``file,category,
    urgency``): the ``samples/`` format, ready for training."""
    labels = store.labels()
    try:
        directory.mkdir(parents=True, exist_ok=True)
        rows = []
        for n, m in enumerate(store.messages(message_ids=list(labels)), start=1):
            name = f"label-{n:04d}.eml"
            (directory / name).write_bytes(to_eml(m))
            rows.append((name, *labels[m.message_id]))
        with (directory / "labels.csv").open("w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(("file", "category", "urgency"))
            writer.writerows(rows)
    except OSError as exc:
        raise UsageError(f"cannot write to {directory}: {exc.strerror}") from None
    return len(rows)


# --- audit ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class AuditItem:
    message_id: str
    target: str  # "category" or "urgency"
    label: str  # what the label says
    predicted: str  # what the cross-validated model says
    confidence: float


@dataclass
class AuditResult:
    items: list[AuditItem]  # most confident disagreement first
    checked: int
    too_small: dict[str, dict[str, int]]  # target -> classes with too few labels to check


def audit(texts: Sequence[str], categories: Sequence[str], urgencies: Sequence[str],
          ids: Sequence[str], *, min_confidence: float = 0.8, folds: int = 5) -> AuditResult:
    """Labels that a model trained without them (cross-validated) confidently contradicts."""
    items: list[AuditItem] = []
    too_small: dict[str, dict[str, int]] = {}
    for target, labels in (("category", categories), ("urgency", urgencies)):
        found, small = _disagreements(target, texts, labels, ids, min_confidence, folds)
        items += found
        if small:
            too_small[target] = small
    items.sort(key=lambda item: (-item.confidence, item.message_id, item.target))
    return AuditResult(items, len(texts), too_small)


def _disagreements(target: str, texts: Sequence[str], labels: Sequence[str], ids: Sequence[str],
                   min_confidence: float, folds: int) -> tuple[list[AuditItem], dict[str, int]]:
    counts = Counter(labels)
    small = {c: n for c, n in sorted(counts.items()) if n < AUDIT_MIN_PER_CLASS}
    keep = [i for i, label in enumerate(labels) if label not in small]
    if len({labels[i] for i in keep}) < 2:
        return [], small
    import numpy as np
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    from .model import SEED, build_pipeline

    y = np.asarray([labels[i] for i in keep])
    smallest = min(n for c, n in counts.items() if c not in small)
    cv = StratifiedKFold(n_splits=min(folds, smallest), shuffle=True, random_state=SEED)
    probs = cross_val_predict(build_pipeline(), [texts[i] for i in keep], y, cv=cv,
                              method="predict_proba")
    classes = np.unique(y)
    found = []
    for row, i in zip(probs, keep, strict=True):
        best = int(np.argmax(row))
        if str(classes[best]) != labels[i] and row[best] >= min_confidence:
            found.append(AuditItem(ids[i], target, labels[i], str(classes[best]), float(row[best])))
    return found, small
