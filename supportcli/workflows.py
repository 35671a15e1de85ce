"""Use cases, composed from the one-way pipeline. Nothing here prints: each returns a result
record that ``cli`` hands to ``render`` or ``export``."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from . import prioritize, registry, resources
from .config import Settings
from .errors import SourceError, UsageError
from .features import message_text
from .parse import parse, release_language_model
from .records import Message, ParseFailure, Prediction, RawMessage, TriageItem
from .sources import MessageSource
from .sources.files import open_path
from .store import Store, light_prediction

log = logging.getLogger(__name__)
BATCH = 500
CLASSIFY_BATCH = 1000  # messages classified at once: bounds the feature matrices in memory


@dataclass
class IngestResult:
    added: int = 0
    duplicates: int = 0
    failures: list[ParseFailure] = field(default_factory=list)
    message_ids: list[str] = field(default_factory=list)


def ingest(
    source: MessageSource, store: Store, progress: Callable[[int], None] | None = None
) -> IngestResult:
    """Parse every message of a source into the store; broken ones are recorded, not fatal.

    Messages whose exact bytes are already stored are not parsed again."""
    result = IngestResult()
    pending: list[tuple[RawMessage, str]] = []

    def flush() -> None:
        known = store.ids_by_content_hash([digest for _, digest in pending])
        batch: list[Message] = []
        for raw, digest in pending:
            if digest in known:
                result.duplicates += 1
                result.message_ids.append(known[digest])
                continue
            parsed = parse(raw, digest)
            if isinstance(parsed, ParseFailure):
                result.failures.append(parsed)
                log.warning("skipped %s %s: %s", parsed.source, parsed.key, parsed.reason)
            else:
                batch.append(parsed)
        added, dupes = store.add_messages(batch)
        # a message sharing its Message-ID with a different one is stored under an id of its
        # own: the ids come back from the store, by the message's content hash
        stored = store.ids_by_content_hash([m.content_hash for m in batch])
        result.message_ids += [stored.get(m.content_hash, m.message_id) for m in batch]
        result.added += added
        result.duplicates += dupes
        pending.clear()

    for raw in source.iter_messages():
        pending.append((raw, hashlib.sha256(raw.data).hexdigest()))
        if len(pending) >= BATCH:
            flush()
        if progress:
            progress(1)
    flush()
    if result.failures:
        store.add_failures(result.failures)
    return result


def classify_messages(
    store: Store, loaded: registry.LoadedModel, messages: list[Message]
) -> dict[str, Prediction]:
    """Predictions for messages, reusing the ones stored for this model."""
    known = store.predictions(loaded.model_id)
    todo = [m for m in messages if m.message_id not in known]
    for start in range(0, len(todo), CLASSIFY_BATCH):
        _predict(store, loaded, todo[start : start + CLASSIFY_BATCH], known)
    return {m.message_id: known[m.message_id] for m in messages}


def classify_ids(
    store: Store, loaded: registry.LoadedModel, message_ids: list[str]
) -> dict[str, Prediction]:
    """Like classify_messages, reading the full messages from the store a batch at a time,
    so a big mailbox never sits in memory twice. The predictions returned are light (no
    per-category probabilities): enough to rank and export."""
    known = store.predictions(loaded.model_id, light=True)
    todo = [i for i in dict.fromkeys(message_ids) if i not in known]
    memo: dict[object, object] = {}
    for start in range(0, len(todo), CLASSIFY_BATCH):
        batch = store.messages(message_ids=todo[start : start + CLASSIFY_BATCH])
        fresh: dict[str, Prediction] = {}
        _predict(store, loaded, batch, fresh)
        known.update((i, light_prediction(p, memo)) for i, p in fresh.items())
    return {i: known[i] for i in message_ids if i in known}


def _predict(
    store: Store, loaded: registry.LoadedModel, batch: list[Message], known: dict[str, Prediction]
) -> None:
    predictions = loaded.model.predict([message_text(m) for m in batch], loaded.model_id)
    pairs = [(m.message_id, p) for m, p in zip(batch, predictions, strict=True)]
    store.save_predictions(pairs)
    known.update(pairs)


@dataclass
class TriageRequest:
    path: str | None = None
    demo: bool = False
    offline: bool = False  # rank what the store holds, without syncing first
    accounts: tuple[str, ...] = ()
    interactive: bool = False  # may prompt for a password
    as_of: datetime | None = None
    since: datetime | None = None
    include_answered: bool = False
    limit: int | None = None
    category: str | None = None
    min_urgency: str | None = None


@dataclass
class TriageResult:
    items: list[TriageItem]
    as_of: datetime
    total_threads: int
    ingest: IngestResult
    model_id: str
    source: str
    all_items: list[TriageItem] = field(default_factory=list)  # before filters
    predictions: dict[str, Prediction] = field(default_factory=dict)
    window: StoreWindow | None = None  # store-wide triage: what the store window left out


@dataclass(frozen=True)
class StoreWindow:
    """How far back a store-wide triage looked (``triage.store_window_days``, or further
    with ``--since``) and how many stored messages are older, so were left out."""

    since: datetime
    days: int
    left_out: int

    def describe(self) -> str:
        return (
            f"{self.left_out} stored message(s) from before {self.since:%Y-%m-%d} were left "
            f"out (the {self.days}-day store window: triage.store_window_days in the config, "
            "or --since)"
        )


def store_window(settings: Settings, store: Store, request: TriageRequest) -> StoreWindow:
    since = (request.as_of or datetime.now(UTC)) - timedelta(days=settings.store_window_days)
    if request.since is not None and request.since < since:
        since = request.since  # an earlier --since widens the window
    return StoreWindow(since, settings.store_window_days, store.count_before(since))


def triage(settings: Settings, request: TriageRequest, store: Store | None = None) -> TriageResult:
    """Rank a mailbox file/folder, the demo, or (no PATH) the store after an IMAP sync."""
    if request.demo:
        request.path = str(resources.demo_dir())
    own_store = store is None
    store = store or Store(":memory:" if request.demo else settings.store_path)
    window = None
    try:
        if request.path:
            source_name, result = _ingest_path(store, request.path)
            release_language_model()  # parsing is over: free its memory before classifying
            messages = store.messages(message_ids=result.message_ids, light=True)
        else:
            source_name, result = _sync_all(settings, store, request)
            release_language_model()
            window = store_window(settings, store, request)
            messages = store.messages(since=window.since, light=True)
        loaded = registry.load_active(settings)
        predictions = classify_ids(store, loaded, [m.message_id for m in messages])
        answered = store.answered_ids()
    finally:
        if own_store:
            store.close()
    as_of = request.as_of or (
        max((m.date for m in messages), default=datetime.now(UTC))
        if request.demo
        else datetime.now(UTC)
    )
    items = rank_messages(
        settings, messages, predictions, as_of, request.include_answered, answered
    )
    return TriageResult(
        _filter(items, request),
        as_of,
        len(items),
        result,
        loaded.model_id,
        source_name,
        items,
        predictions,
        window,
    )


def _rules(settings: Settings) -> prioritize.Rules:
    """The ranking rules, built from the settings in this one place."""
    return prioritize.Rules(
        settings.category_weights, settings.sla_hours, frozenset(settings.shop_addresses)
    )


def rank_messages(
    settings: Settings,
    messages: list[Message],
    predictions: dict[str, Prediction],
    as_of: datetime,
    include_answered: bool = False,
    answered: set[str] | frozenset[str] = frozenset(),
) -> list[TriageItem]:
    return prioritize.rank(
        prioritize.group_threads(messages),
        predictions,
        _rules(settings),
        as_of,
        include_answered=include_answered,
        answered=frozenset(answered),
    )


def _ingest_path(store: Store, path: str) -> tuple[str, IngestResult]:
    source = open_path(path)
    result = ingest(source, store)
    if not result.message_ids and not result.failures:
        raise SourceError(f"no messages found in {path}")
    return source.name, result


def _sync_all(settings: Settings, store: Store, request: TriageRequest) -> tuple[str, IngestResult]:
    from . import sync

    if request.offline:
        return "store", IngestResult()
    results = sync.sync(settings, store, request.accounts, interactive=request.interactive)
    return "imap", IngestResult(
        added=sum(r.added for r in results),
        failures=[f for r in results for f in r.failures],
    )


def _filter(items: list[TriageItem], request: TriageRequest) -> list[TriageItem]:
    if request.category:
        items = [i for i in items if i.prediction.category == request.category]
    if request.min_urgency:
        items = [i for i in items if prioritize.urgency_at_least(i.urgency, request.min_urgency)]
    if request.since:
        items = [i for i in items if i.message.date >= request.since]
    return items[: request.limit] if request.limit else items


@dataclass
class ClassifyResult:
    message: Message
    prediction: Prediction
    item: TriageItem
    explanation: dict[str, list[tuple[str, float]]]


def classify_file(settings: Settings, path: str, as_of: datetime | None = None) -> ClassifyResult:
    source = open_path(path)
    raws = list(source.iter_messages())
    if len(raws) != 1:
        raise UsageError(
            f"classify takes one message; {path} holds {len(raws)}",
            hint="use `supportcli triage` for a mailbox",
        )
    parsed = parse(raws[0])
    if isinstance(parsed, ParseFailure):
        raise SourceError(f"cannot parse {path}: {parsed.reason}")
    return classify_message(settings, parsed, as_of)


def explain(settings: Settings, ref: str, as_of: datetime | None = None) -> ClassifyResult:
    """Explain a stored message (by Message-ID) or a file."""
    if ref == "-" or Path(ref).exists():
        return classify_file(settings, ref, as_of)
    with Store(settings.store_path) as store:
        message = store.get_message(ref.strip().strip("<>"))
        if message is None:
            raise SourceError(
                f"no stored message with Message-ID {ref} and no such file",
                hint="see the message_id column of `supportcli triage --format csv`",
            )
        threads = prioritize.group_threads(store.messages(since=message.date - timedelta(days=90)))
    thread = next((t for t in threads if message in t), [message])
    followups = prioritize.followups_since_reply(thread, message, _rules(settings))
    return classify_message(settings, message, as_of, followups=followups)


def classify_message(
    settings: Settings, message: Message, as_of: datetime | None = None, followups: int = 0
) -> ClassifyResult:
    from .model import top_features

    loaded = registry.load_active(settings)
    text = message_text(message)
    prediction = loaded.model.predict([text], loaded.model_id)[0]
    item = prioritize.score(
        message, prediction, _rules(settings), as_of or datetime.now(UTC), followups
    )
    explanation = {
        "category": top_features(loaded.model.category, text, prediction.category),
        "urgency": top_features(loaded.model.urgency, text, prediction.urgency),
    }
    return ClassifyResult(message, prediction, item, explanation)
