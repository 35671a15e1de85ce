"""Use cases, composed from the one-way pipeline. Nothing here prints: each returns a result
record that ``cli`` hands to ``render`` or ``export``."""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from . import prioritize, resources
from .config import Settings
from .errors import SourceError, UsageError
from .model import registry
from .model.text import message_input
from .parse import parse, release_language_model
from .records import Message, ParseFailure, Prediction, RawMessage, TriageItem
from .sources import MessageSource
from .sources.files import SingleFileSource, StdinSource, open_path
from .store import Store, light_prediction

if TYPE_CHECKING:
    from .model.evaluation import EvaluationResult

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
    source: MessageSource,
    store: Store,
    progress: Callable[[int], None] | None = None,
    order_pattern: re.Pattern[str] | None = None,
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
            parsed = parse(raw, digest, order_pattern)
            if isinstance(parsed, ParseFailure):
                result.failures.append(parsed)  # the command reports them, once
                log.debug("skipped %s %s: %s", parsed.source, parsed.key, parsed.reason)
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


def load_model(settings: Settings) -> registry.LoadedModel:
    """The active model; when the shipped default was built for other inputs, it is rebuilt
    from the bundled samples into the state dir first (once)."""
    try:
        return registry.load_active(settings)
    except registry.RebuildNeeded as need:
        from .model import training

        log.warning("%s: rebuilding it from the bundled samples into %s (once)",
                    need.message, need.directory)
        training.train_default(need.directory, settings=settings,
                               caught=prioritize.cues_force_urgent)
        return registry.load_active(settings)


def classify_messages(
    store: Store, loaded: registry.LoadedModel, messages: list[Message], timezone: str = "UTC"
) -> dict[str, Prediction]:
    """Predictions for messages, reusing the ones stored for this model."""
    known = store.predictions(loaded.model_id)
    todo = [m for m in messages if m.message_id not in known]
    for start in range(0, len(todo), CLASSIFY_BATCH):
        _predict(store, loaded, todo[start : start + CLASSIFY_BATCH], known, timezone)
    return {m.message_id: known[m.message_id] for m in messages}


def classify_ids(
    store: Store, loaded: registry.LoadedModel, message_ids: list[str], timezone: str = "UTC"
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
        _predict(store, loaded, batch, fresh, timezone)
        known.update((i, light_prediction(p, memo)) for i, p in fresh.items())
    return {i: known[i] for i in message_ids if i in known}


def _predict(
    store: Store, loaded: registry.LoadedModel, batch: list[Message], known: dict[str, Prediction],
    timezone: str,
) -> None:
    inputs = [message_input(m, timezone) for m in batch]
    predictions = loaded.model.predict(inputs, loaded.model_id)
    pairs = [(m.message_id, p) for m, p in zip(batch, predictions, strict=True)]
    store.save_predictions(pairs)
    known.update(pairs)


@dataclass
class TriageRequest:
    path: str | None = None
    demo: bool = False
    no_store: bool = False  # rank PATH in a store of its own, keeping nothing
    offline: bool = False  # rank what the store holds, without syncing first
    accounts: tuple[str, ...] = ()
    interactive: bool = False  # may prompt for a password
    as_of: datetime | None = None
    since: datetime | timedelta | None = None  # a span counts back from the as-of time
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
    review_thresholds: dict[str, float] = field(default_factory=dict)
    answered_threads: int = 0  # threads the shop has replied to, shown or not

    @property
    def awaiting(self) -> int:
        """Threads awaiting a reply, before filters."""
        return sum(1 for i in self.all_items if not i.answered)


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
    as_of = request.as_of or datetime.now(UTC)
    since = as_of - timedelta(days=settings.store_window_days)
    asked = as_of - request.since if isinstance(request.since, timedelta) else request.since
    if asked is not None and asked < since:
        since = asked  # an earlier --since widens the window
    return StoreWindow(since, settings.store_window_days, store.count_before(since))


def triage(settings: Settings, request: TriageRequest, store: Store | None = None) -> TriageResult:
    """Rank a mailbox file/folder, the demo, or (no PATH) the store after an IMAP sync."""
    if request.demo:
        request.path = str(resources.demo_dir())
    own_store = store is None
    scratch = request.demo or (request.no_store and bool(request.path))
    store = store or Store(":memory:" if scratch else settings.store_path)
    window = None
    try:
        if request.path:
            source_name, result = _ingest_path(store, request.path, settings.order_pattern)
            release_language_model()  # parsing is over: free its memory before classifying
            messages = store.messages(message_ids=result.message_ids, light=True)
        else:
            source_name, result = _sync_all(settings, store, request)
            release_language_model()
            window = store_window(settings, store, request)
            messages = store.messages(since=window.since, light=True)
        model_id, predictions, model_thresholds = _predictions(
            settings, store, [m.message_id for m in messages])
        answered = store.answered_ids()
    finally:
        if own_store:
            store.close()
    as_of = request.as_of or (
        max((m.date for m in messages), default=datetime.now(UTC))
        if request.demo
        else datetime.now(UTC)
    )
    thresholds = review_thresholds(settings, model_thresholds)
    ranked = rank_messages(settings, messages, predictions, as_of, True, answered, thresholds)
    items = ranked if request.include_answered else _renumber(i for i in ranked if not i.answered)
    return TriageResult(
        _filter(items, request, as_of),
        as_of,
        len(items),
        result,
        model_id,
        source_name,
        items,
        predictions,
        window,
        thresholds,
        answered_threads=sum(1 for i in ranked if i.answered),
    )


def _predictions(
    settings: Settings, store: Store, ids: list[str]
) -> tuple[str, dict[str, Prediction], dict[str, float]]:
    """The model id, light predictions and the model's review thresholds for these messages.
    When the store already holds predictions of the verified active model for all of them,
    the model is not loaded (nor numpy or scikit-learn imported)."""
    known = registry.verified(settings)
    if known is not None:
        stored = store.predictions(known.model_id, light=True)
        if all(i in stored for i in ids):
            return known.model_id, {i: stored[i] for i in ids}, known.thresholds
    loaded = load_model(settings)
    return loaded.model_id, classify_ids(store, loaded, ids, settings.timezone), loaded.thresholds


def _renumber(items: Iterable[TriageItem]) -> list[TriageItem]:
    return [replace(item, rank=n) for n, item in enumerate(items, start=1)]


REVIEW_FLOOR = 0.5  # by default a label the model gives less than even odds is always marked


def review_thresholds(
    settings: Settings, model: registry.LoadedModel | dict[str, float]
) -> dict[str, float]:
    """The confidence below which each label needs review: ``[triage] review_threshold`` when
    set, else the model's own threshold (chosen by ``train`` from ``target_accuracy``), and
    never below ``REVIEW_FLOOR``. ``model`` is a loaded model or its ``thresholds``."""
    own = model.thresholds if isinstance(model, registry.LoadedModel) else model
    urgent = {"urgent_review": own["urgent_review"]}
    if settings.review_threshold is not None:
        return {**dict.fromkeys(("category", "urgency"), settings.review_threshold), **urgent}
    return {
        "category": max(own["category"], REVIEW_FLOOR),
        "urgency": max(own["urgency"], REVIEW_FLOOR),
        **urgent,
    }


def rank_messages(
    settings: Settings,
    messages: list[Message],
    predictions: dict[str, Prediction],
    as_of: datetime,
    include_answered: bool = False,
    answered: set[str] | frozenset[str] = frozenset(),
    thresholds: dict[str, float] | None = None,
) -> list[TriageItem]:
    return prioritize.rank(
        prioritize.group_threads(messages),
        predictions,
        prioritize.Rules.from_settings(settings, thresholds),
        as_of,
        include_answered=include_answered,
        answered=frozenset(answered),
    )


def _ingest_path(
    store: Store, path: str, order_pattern: re.Pattern[str] | None = None
) -> tuple[str, IngestResult]:
    source = open_path(path)
    result = ingest(source, store, order_pattern=order_pattern)
    if result.message_ids:
        return source.name, result
    if not result.failures:
        raise SourceError(f"no messages found in {path}")
    why = result.failures[0].reason
    if isinstance(source, SingleFileSource | StdinSource):
        raise SourceError(f"{'standard input' if path == '-' else path} is not a mail message "
                          f"({why})")  # fmt: skip
    raise SourceError(
        f"no readable message in {path}: {len(result.failures)} could not be read (first: {why})"
    )


def _sync_all(settings: Settings, store: Store, request: TriageRequest) -> tuple[str, IngestResult]:
    from . import sync

    if request.offline:
        return "store", IngestResult()
    results = sync.sync(settings, store, request.accounts, interactive=request.interactive)
    return "imap", IngestResult(
        added=sum(r.added for r in results),
        failures=[f for r in results for f in r.failures],
    )


def _filter(items: list[TriageItem], request: TriageRequest, as_of: datetime) -> list[TriageItem]:
    if request.category:
        items = [i for i in items if i.prediction.category == request.category]
    if request.min_urgency:
        items = [i for i in items if prioritize.urgency_at_least(i.urgency, request.min_urgency)]
    if request.since is not None:
        since = as_of - request.since if isinstance(request.since, timedelta) else request.since
        items = [i for i in items if i.message.date >= since]
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
    parsed = parse(raws[0], order_pattern=settings.order_pattern)
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
            raise UsageError(
                f"no stored message with Message-ID {ref} and no such file",
                hint="see the message_id column of `supportcli triage --format csv`",
            )
        threads = prioritize.group_threads(store.messages(since=message.date - timedelta(days=90)))
    thread = next((t for t in threads if message in t), [message])
    followups = prioritize.followups_since_reply(
        thread, message, prioritize.Rules.from_settings(settings)
    )
    return classify_message(settings, message, as_of, followups=followups)


def classify_message(
    settings: Settings, message: Message, as_of: datetime | None = None, followups: int = 0
) -> ClassifyResult:
    loaded = load_model(settings)
    item_input = message_input(message, settings.timezone)
    prediction = loaded.model.predict([item_input], loaded.model_id)[0]
    rules = prioritize.Rules.from_settings(settings, review_thresholds(settings, loaded))
    item = prioritize.score(message, prediction, rules, as_of or datetime.now(UTC), followups)
    explanation = {
        "category": loaded.model.explain(item_input, "category", prediction.category),
        "urgency": loaded.model.explain(item_input, "urgency", prediction.urgency),
    }
    return ClassifyResult(message, prediction, item, explanation)


def evaluate(settings: Settings, path: Path) -> EvaluationResult:
    """The active model scored on a labelled set."""
    from .model import dataset, evaluation

    data = dataset.load(path)
    if not data.inputs:
        raise UsageError(f"{path} holds no labelled messages")
    loaded = load_model(settings)
    return evaluation.evaluate(loaded.model, loaded.model_id, data, str(path))
