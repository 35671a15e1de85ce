"""Training workflows: rebuild the default model, train on the shop's own labels with a
not-worse guard, and keep model versions for rollback. Nothing here prints."""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import artifacts, dataset, registry, resources
from .config import DEFAULT_TARGET_ACCURACY, Settings
from .errors import ModelError, UsageError
from .features import message_text
from .store import Store

log = logging.getLogger(__name__)
MIN_PER_CLASS = 5
HOLDOUT_SHARE = 0.2
DEFAULT_OWN_WEIGHT = 3.0


@dataclass
class TrainResult:
    meta: dict[str, Any]
    directory: Path
    installed: bool = True
    comparison: dict[str, Any] = field(default_factory=dict)  # held-out scores, new vs current


def check_class_sizes(
    labels: Iterable[str], known: Sequence[str] = (), minimum: int = MIN_PER_CLASS
) -> None:
    """Refuse to train a class with too few examples, saying how many more it needs."""
    counts = Counter(labels)
    small = {k: counts.get(k, 0) for k in set(counts) | set(known) if counts.get(k, 0) < minimum}
    if small:
        need = ", ".join(f"{k} has {v}, needs {minimum - v} more" for k, v in sorted(small.items()))
        raise UsageError(
            f"too few labelled examples to train: {need}",
            hint="label more messages with `supportcli label`",
        )


def _meta(
    name: str, trained: Any, texts: int, extra: dict[str, Any], categories: Sequence[str] = ()
) -> dict[str, Any]:
    return {
        "name": name,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "n_samples": texts,
        "categories": trained.categories,
        "urgencies": trained.urgencies,
        "metrics": trained.metrics,
        "feature_schema": trained.feature_schema,
        "category_counts": dict(sorted(Counter(categories).items())),
        **extra,
    }


def target_accuracy(settings: Settings | None) -> float:
    """``target_accuracy`` from the config ([model] table or top level), else the default."""
    return settings.target_accuracy if settings is not None else DEFAULT_TARGET_ACCURACY


def sample_views(data: dataset.LabelledSet) -> list[list[str]]:
    """Short views of each bundled sample (``features.short_views``): the samples are whole
    emails, and these teach the model the short form of the same requests. The shop's own
    mail needs none: it already comes in the shapes the shop receives."""
    from .features import short_views

    return [short_views(m) if m is not None else [] for m in data.messages]


def train_default(
    output: Path | None = None, *, with_metrics: bool = True, settings: Settings | None = None
) -> TrainResult:
    """Build the default model from the bundled samples (``samples/labels.csv``)."""
    from .model import fit

    samples = resources.samples_dir()
    data = dataset.load_folder(samples)
    check_class_sizes(data.categories)
    check_class_sizes(data.urgencies)
    trained = fit(
        data.texts,
        data.categories,
        data.urgencies,
        with_metrics=with_metrics,
        target_accuracy=target_accuracy(settings),
        views=sample_views(data),
    )
    directory = output or resources.default_model_dir()
    meta = artifacts.save(
        trained,
        directory,
        _meta(
            "default", trained, len(data.texts), {"samples_sha256": dataset.folder_hash(samples)}
        ),
        shared=output is None,  # the shipped default: the bundled samples only
    )
    return TrainResult(meta, directory)


@dataclass
class OwnLabels:
    texts: list[str]
    categories: list[str]
    urgencies: list[str]
    dates: list[datetime]
    ids: list[str] = field(default_factory=list)  # Message-IDs, to know what a model saw


def own_labels(store: Store) -> OwnLabels:
    """The shop's labelled messages, oldest first."""
    labels = store.labels()
    messages = sorted(store.messages(message_ids=list(labels)), key=lambda m: m.date)
    return OwnLabels(
        [message_text(m) for m in messages],
        [labels[m.message_id][0] for m in messages],
        [labels[m.message_id][1] for m in messages],
        [m.date for m in messages],
        [m.message_id for m in messages],
    )


def train_shop(
    settings: Settings, store: Store, *, force: bool = False, own_weight: float = DEFAULT_OWN_WEIGHT
) -> TrainResult:
    """Train on samples + the shop's labels; install only if not worse than the current model
    on labels neither was trained on (``compare_with_current``)."""
    from .model import fit

    samples = dataset.load_folder(resources.samples_dir())
    own = own_labels(store)
    custom = [c for c in settings.categories if c not in samples.categories]
    check_class_sizes(samples.categories + own.categories, known=custom)
    check_class_sizes(samples.urgencies + own.urgencies)
    views = sample_views(samples)
    comparison: dict[str, Any] = {}
    if own.texts:
        current = registry.load_active(settings)
        comparison = compare_with_current(
            samples, views, own, own_weight, current.model, current.meta
        )
    better = "new" not in comparison or (
        comparison["new"]["mean_macro_f1"] + 1e-9 >= comparison["current"]["mean_macro_f1"]
    )
    comparison["installed"] = better or force
    texts = samples.texts + own.texts
    trained = fit(
        texts,
        samples.categories + own.categories,
        samples.urgencies + own.urgencies,
        sample_weight=[1.0] * len(samples.texts) + [own_weight] * len(own.texts),
        target_accuracy=target_accuracy(settings),
        views=views + [[]] * len(own.texts),
    )
    version = _new_version_name(settings)
    directory = settings.models_dir / version
    meta = artifacts.save(
        trained,
        directory,
        _meta(
            version,
            trained,
            len(texts),
            {
                "own_labels": len(own.texts),
                "own_weight": own_weight,
                "trained_on": sorted({label_key(i) for i in own.ids}),
                "comparison": comparison,
                "samples_sha256": dataset.folder_hash(resources.samples_dir()),
            },
        ),
    )
    if comparison["installed"]:
        registry.set_active(settings, version)
    return TrainResult(meta, directory, comparison["installed"], comparison)


def _new_version_name(settings: Settings) -> str:
    base = datetime.now(UTC).strftime("v%Y%m%d-%H%M%S")
    name, n = base, 1
    while (settings.models_dir / name).exists():
        n += 1
        name = f"{base}-{n}"
    return name


def holdout_scores(
    model: Any, texts: list[str], categories: list[str], urgencies: list[str]
) -> dict[str, float]:
    return _scores(categories, urgencies, model.predict(texts, "holdout"))


def _scores(
    categories: list[str], urgencies: list[str], predictions: list[Any]
) -> dict[str, float]:
    from sklearn.metrics import f1_score

    cat = f1_score(categories, [p.category for p in predictions], average="macro", zero_division=0)
    urg = f1_score(urgencies, [p.urgency for p in predictions], average="macro", zero_division=0)
    return {
        "category_macro_f1": round(float(cat), 4),
        "urgency_macro_f1": round(float(urg), 4),
        "mean_macro_f1": round(float(cat + urg) / 2, 4),
    }


# --- the not-worse guard: both models scored on labels neither was trained on --------------

GUARD_FOLDS = 3


def label_key(message_id: str) -> str:
    """What a model's meta records of each shop label it was trained on (``trained_on``):
    enough to tell whether it saw a message, without keeping its Message-ID."""
    return hashlib.sha256(message_id.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def seen_labels(meta: dict[str, Any], keys: Sequence[str]) -> set[str]:
    """Which of the shop labels ``keys`` the model with ``meta`` was trained on: those its
    ``trained_on`` lists; all of them for an older model trained on shop labels without
    saying which; none for a model built from the samples alone."""
    if "trained_on" in meta:
        return set(meta["trained_on"]) & set(keys)
    return set(keys) if meta.get("own_labels") else set()


def compare_with_current(
    samples: dataset.LabelledSet,
    views: list[list[str]],
    own: OwnLabels,
    own_weight: float,
    current: Any,
    current_meta: dict[str, Any],
) -> dict[str, Any]:
    """Scores of the new model and the current one on labels neither was trained on, and how
    they were got (``method``, and ``how``, a phrase for the output).

    The newest ``HOLDOUT_SHARE`` of the shop's labels are held out of the new model's
    training; when the current model has not seen any of them either, both are scored on
    that slice. Otherwise (a retrain on the same labels, or labels added to older mail)
    scoring the current model there would reward it for remembering them: both models'
    recipes (the samples plus the shop labels each was trained on, at its own weight) are
    then cross-validated on the same folds of the shop's labels, each fold scored by models
    that did not see it."""
    n = len(own.texts)
    keys = [label_key(i) for i in own.ids]
    seen = seen_labels(current_meta, keys)
    cut = n - max(1, round(n * HOLDOUT_SHARE))
    if not seen & set(keys[cut:]):
        candidate = _fit_rows(samples, views, own, list(range(cut)), own_weight)
        held = (own.texts[cut:], own.categories[cut:], own.urgencies[cut:])
        return {
            "method": "holdout",
            "holdout": n - cut,
            "how": f"on your newest {n - cut} labels, which neither model was trained on",
            "new": holdout_scores(candidate, *held),
            "current": holdout_scores(current, *held),
        }
    if n < 2:
        return {"method": "none", "how": "not compared: one label, which the current model saw"}
    weight = float(current_meta.get("own_weight", own_weight))
    current_rows = [i for i in range(n) if keys[i] in seen]
    k = min(GUARD_FOLDS, n)
    recipes = {"new": (list(range(n)), own_weight), "current": (current_rows, weight)}
    scores = _cross_validated(samples, views, own, recipes, k)
    return {
        "method": "cross-validation",
        "folds": k,
        "holdout": n,
        "how": f"by {k}-fold cross-validation of both on the same folds of your {n} labels "
        "(the current model was trained on some of the newest)",
        **scores,
    }


def _cross_validated(
    samples: dataset.LabelledSet,
    views: list[list[str]],
    own: OwnLabels,
    recipes: dict[str, tuple[list[int], float]],
    k: int,
) -> dict[str, dict[str, float]]:
    """Each recipe (the shop labels it trains on, their weight) scored by k-fold cross-
    validation over the shop's labels, on the same folds: each fold is predicted by the
    recipe fitted on its labels outside that fold. Recipes that come out the same in a
    fold are fitted once."""
    from sklearn.model_selection import KFold

    n = len(own.texts)
    predicted: dict[str, list[Any]] = {name: [None] * n for name in recipes}
    for train, test in KFold(n_splits=k, shuffle=True, random_state=0).split(own.texts):
        outside = set(train.tolist())
        fitted: dict[tuple[tuple[int, ...], float], Any] = {}
        texts = [own.texts[i] for i in test]
        for name, (rows, weight) in recipes.items():
            key = (tuple(i for i in rows if i in outside), weight)
            if key not in fitted:
                fitted[key] = _fit_rows(samples, views, own, list(key[0]), weight)
            for i, prediction in zip(test, fitted[key].predict(texts, "guard"), strict=True):
                predicted[name][i] = prediction
    return {name: _scores(own.categories, own.urgencies, p) for name, p in predicted.items()}


def _fit_rows(
    samples: dataset.LabelledSet,
    views: list[list[str]],
    own: OwnLabels,
    rows: list[int],
    weight: float,
) -> Any:
    """A model fitted, without metrics, on the samples plus the shop labels at ``rows``."""
    from .model import fit

    return fit(
        samples.texts + [own.texts[i] for i in rows],
        samples.categories + [own.categories[i] for i in rows],
        samples.urgencies + [own.urgencies[i] for i in rows],
        sample_weight=[1.0] * len(samples.texts) + [weight] * len(rows),
        with_metrics=False,
        views=views + [[]] * len(rows),
    )


@dataclass(frozen=True)
class ModelVersion:
    name: str
    created: str
    n_samples: int
    category_macro_f1: float | None
    urgency_macro_f1: float | None
    active: bool
    directory: Path


def list_versions(settings: Settings) -> list[ModelVersion]:
    active = registry.active_dir(settings).resolve()
    dirs = [resources.default_model_dir()]
    if settings.models_dir.is_dir():
        dirs += sorted(
            p for p in settings.models_dir.iterdir() if (p / artifacts.META_FILE).is_file()
        )
    out = []
    for directory in dirs:
        try:
            meta = artifacts.read_meta(directory)
        except ModelError as exc:
            log.warning("%s", exc.message)
            continue
        metrics = meta.get("metrics", {})
        name = "default" if directory == resources.default_model_dir() else directory.name
        out.append(
            ModelVersion(
                name,
                str(meta.get("created", "")),
                int(meta.get("n_samples", 0)),
                metrics.get("category", {}).get("macro_f1"),
                metrics.get("urgency", {}).get("macro_f1"),
                directory.resolve() == active,
                directory,
            )
        )
    return out


def use_version(settings: Settings, name: str) -> ModelVersion:
    versions = {v.name: v for v in list_versions(settings)}
    if name not in versions:
        raise UsageError(f"no model version {name!r}", hint="see `supportcli model list`")
    registry.set_active(settings, name)
    registry.load_active(settings)  # verify it loads before saying so
    return next(v for v in list_versions(settings) if v.name == name)
