"""``show``: one thread, newest message first, and the customer behind it (their other threads,
answered or not, and their order numbers): what a person needs before replying.

A triage run remembers which message each rank stood for (``last-triage.json`` in the state
dir, mode 0600), so ``supportcli show 3`` opens the third row of the last table. Nothing here
prints."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from . import prioritize, resources
from .config import Settings
from .errors import UsageError
from .records import Message, Prediction, TriageItem
from .store import Store

LAST_TRIAGE = "last-triage.json"
THREAD_WINDOW = timedelta(days=90)  # replies to a thread are looked for this far around it


@dataclass(frozen=True)
class ThreadSummary:
    """One of the customer's threads, as listed under their history."""

    first: datetime
    last: datetime
    subject: str
    size: int
    category: str
    urgency: str
    answered: bool
    message_id: str  # the customer's latest message in it


@dataclass
class ShowResult:
    thread: list[Message]  # newest first
    summary: ThreadSummary
    prediction: Prediction | None
    customer_addr: str
    customer_name: str
    other_threads: list[ThreadSummary]  # newest first
    order_numbers: list[str]  # every order number the customer mentioned, first seen first
    rank: int | None = None
    shop_addresses: frozenset[str] = field(default_factory=frozenset)


def remember_ranks(
    settings: Settings, items: Sequence[TriageItem], *, demo: bool, source: str | None = None
) -> None:
    """Keep rank -> Message-ID of the rows a triage run showed, for ``show RANK``; ``source``:
    the mailbox the run ranked without storing it, which ``show`` reads again."""
    path = settings.state_dir / LAST_TRIAGE
    if source is not None and source != "-":
        source = str(Path(source).expanduser().resolve())
    data = {"demo": demo, "source": None if demo else source,
            "ranks": {str(i.rank): i.message.message_id for i in items}}
    try:
        settings.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle)
        os.replace(tmp, path)
    except OSError:  # ranks are a convenience: a read-only state dir never fails a triage
        return


def resolve(settings: Settings, ref: str) -> tuple[str, str | None, int | None]:
    """(Message-ID, the mailbox it is in when not in the store, rank) for a Message-ID or a
    rank of the last triage run."""
    ref = ref.strip()
    if not ref.isdigit():
        return ref.strip("<>"), None, None
    try:
        data = json.loads((settings.state_dir / LAST_TRIAGE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise UsageError(
            f"no triage run to take rank {ref} from",
            hint="run `supportcli triage` first, or give the Message-ID",
        ) from None
    message_id = data.get("ranks", {}).get(str(int(ref)))
    if not isinstance(message_id, str):
        raise UsageError(
            f"the last triage run showed no rank {ref}",
            hint="run `supportcli triage` again, or give the Message-ID",
        )
    source = str(resources.demo_dir()) if data.get("demo") else data.get("source")
    if source == "-":
        raise UsageError(
            "the last triage read standard input without storing it: its ranks cannot be shown",
            hint="triage the mailbox from a file, or without --no-store",
        )
    return message_id, source if isinstance(source, str) else None, int(ref)


def show(settings: Settings, ref: str, *, demo: bool = False) -> ShowResult:
    message_id, source, rank = resolve(settings, ref)
    with _open_store(settings, str(resources.demo_dir()) if demo else source) as store:
        message = store.get_message(message_id)
        if message is None:
            raise UsageError(
                f"no stored message with Message-ID {ref}",
                hint="see the message_id column of `supportcli triage --format csv`",
            )
        result = _gather(settings, store, message)
    result.rank = rank
    return result


@contextmanager
def _open_store(settings: Settings, source: str | None) -> Iterator[Store]:
    """The store, or (``source``: the demo, or a mailbox ranked with --no-store) that mailbox
    read into a store of its own."""
    if source is None:
        with Store(settings.store_path) as store:
            yield store
        return
    from .sources.files import open_path
    from .workflows import ingest

    with Store(":memory:") as store:
        ingest(open_path(source), store, order_pattern=settings.order_pattern)
        yield store


def _gather(settings: Settings, store: Store, message: Message) -> ShowResult:
    shop = frozenset(settings.shop_addresses)
    around = store.messages(since=message.date - THREAD_WINDOW, light=True)
    customer = _latest_customer(_thread_of(message, around), shop).sender_addr
    own = store.messages(sender=customer, light=True)
    candidates = {m.message_id: m for m in [*own, *around]}
    threads = prioritize.group_threads(sorted(candidates.values(), key=lambda m: m.date))
    current = _thread_of(message, threads=threads)
    mine = [t for t in threads if t is current or any(m.sender_addr == customer for m in t)]
    latest = {id(t): _latest_customer(t, shop) for t in mine}
    predictions = _predictions(settings, store, [m.message_id for m in latest.values()])
    answered = frozenset(store.answered_ids())
    summaries = {id(t): _summary(t, latest[id(t)], predictions, shop, answered) for t in mine}
    full = store.messages(message_ids=[m.message_id for m in current])
    orders = [o for m in own for o in m.order_numbers]
    return ShowResult(
        thread=sorted(full, key=lambda m: m.date, reverse=True),
        summary=summaries[id(current)],
        prediction=predictions.get(latest[id(current)].message_id),
        customer_addr=customer,
        customer_name=latest[id(current)].sender_name,
        other_threads=sorted(
            (summaries[id(t)] for t in mine if t is not current), key=lambda s: s.last, reverse=True
        ),
        order_numbers=list(dict.fromkeys(orders)),
        shop_addresses=shop,
    )


def _thread_of(
    message: Message, messages: Sequence[Message] = (), threads: list[list[Message]] | None = None
) -> list[Message]:
    if threads is None:
        unique = {m.message_id: m for m in [*messages, message]}
        threads = prioritize.group_threads(sorted(unique.values(), key=lambda m: m.date))
    return next(t for t in threads if any(m.message_id == message.message_id for m in t))


def _latest_customer(thread: Sequence[Message], shop: frozenset[str]) -> Message:
    customer = [m for m in thread if m.sender_addr not in shop]
    return customer[-1] if customer else thread[-1]


def _predictions(settings: Settings, store: Store, ids: list[str]) -> dict[str, Prediction]:
    from .workflows import classify_ids, load_model

    return classify_ids(store, load_model(settings), ids, settings.timezone)


def _summary(
    thread: Sequence[Message],
    latest: Message,
    predictions: dict[str, Prediction],
    shop: frozenset[str],
    answered: frozenset[str],
) -> ThreadSummary:
    p = predictions.get(latest.message_id)
    return ThreadSummary(
        first=thread[0].date,
        last=thread[-1].date,
        subject=thread[0].subject,
        size=len(thread),
        category=p.category if p else "",
        urgency=p.urgency if p else "",
        answered=prioritize.is_answered(thread, shop, answered),
        message_id=latest.message_id,
    )


def as_record(result: ShowResult) -> dict[str, object]:
    """The result as JSON-ready data, every email-derived string made safe."""
    from . import sanitize

    def summary(s: ThreadSummary) -> dict[str, object]:
        return {
            "first": s.first.isoformat(),
            "last": s.last.isoformat(),
            "subject": sanitize.one_line(s.subject),
            "message_count": s.size,
            "category": s.category,
            "urgency": s.urgency,
            "answered": s.answered,
            "message_id": sanitize.one_line(s.message_id),
        }

    return {
        "rank": result.rank,
        "thread": {
            **summary(result.summary),
            "needs_review": bool(result.prediction and result.prediction.needs_review),
            "messages": [_message_record(m, result.shop_addresses) for m in result.thread],
        },
        "customer": {
            "address": sanitize.one_line(result.customer_addr),
            "name": sanitize.one_line(result.customer_name),
            "other_threads": [summary(s) for s in result.other_threads],
            "order_numbers": [sanitize.one_line(o) for o in result.order_numbers],
        },
    }


def _message_record(m: Message, shop: frozenset[str]) -> dict[str, object]:
    from . import sanitize

    return {
        "message_id": sanitize.one_line(m.message_id),
        "date": m.date.isoformat(),
        "from": sanitize.one_line(m.sender_addr),
        "from_name": sanitize.one_line(m.sender_name),
        "from_shop": m.sender_addr in shop,
        "subject": sanitize.one_line(m.subject),
        "text": sanitize.clean_text(m.text_new),
        "quoted": sanitize.clean_text(m.text_quoted),
        "signature": sanitize.clean_text(m.text_signature),
        "attachments": [
            {"filename": sanitize.one_line(a.filename),
             "content_type": sanitize.one_line(a.content_type),
             "size": a.size}
            for a in m.attachments
        ],
        "order_numbers": [sanitize.one_line(o) for o in m.order_numbers],
    }
