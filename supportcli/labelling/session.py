"""The labelling session: a state machine over the queue, each answer written to the store in
its own transaction the moment it is given; skip and undo."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .. import sanitize
from ..errors import UsageError
from ..records import Message, Prediction
from ..store import Store


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
