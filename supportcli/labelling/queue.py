"""Which message to label next: the model's least certain first (or the most recent, or
random), mixed so that no sender, thread or class crowds the screen."""

from __future__ import annotations

import random
from collections import Counter, deque
from collections.abc import Mapping, Sequence, Set
from heapq import heapify, heappop, heappush

from .. import prioritize
from ..errors import UsageError
from ..records import Message, Prediction

ORDERS = ("uncertain", "recent", "random")
WINDOW, PER_SENDER, PER_THREAD = 10, 2, 1  # in any 10 queued: ≤2 per sender, ≤1 per thread
CLASS_BOOST = 0.25  # margin added to the messages of the class with the most labels so far
Labels = Mapping[str, tuple[str, str]]  # message_id -> (category, urgency), as Store.labels()


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
