"""Training workflows: rebuild the default model, train on the shop's own labels with a
not-worse guard, and keep model versions for rollback. Nothing here prints."""

from __future__ import annotations

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


def own_labels(store: Store) -> OwnLabels:
    """The shop's labelled messages, oldest first."""
    labels = store.labels()
    messages = sorted(store.messages(message_ids=list(labels)), key=lambda m: m.date)
    return OwnLabels(
        [message_text(m) for m in messages],
        [labels[m.message_id][0] for m in messages],
        [labels[m.message_id][1] for m in messages],
        [m.date for m in messages],
    )


def train_shop(
    settings: Settings, store: Store, *, force: bool = False, own_weight: float = DEFAULT_OWN_WEIGHT
) -> TrainResult:
    """Train on samples + the shop's labels; install only if not worse on the newest 20%."""
    from .model import fit

    samples = dataset.load_folder(resources.samples_dir())
    own = own_labels(store)
    custom = [c for c in settings.categories if c not in samples.categories]
    check_class_sizes(samples.categories + own.categories, known=custom)
    check_class_sizes(samples.urgencies + own.urgencies)
    cut = len(own.texts) - max(1, round(len(own.texts) * HOLDOUT_SHARE)) if own.texts else 0
    views = sample_views(samples)
    comparison: dict[str, Any] = {"holdout": len(own.texts) - cut}
    if own.texts:
        candidate = fit(
            samples.texts + own.texts[:cut],
            samples.categories + own.categories[:cut],
            samples.urgencies + own.urgencies[:cut],
            sample_weight=[1.0] * len(samples.texts) + [own_weight] * cut,
            with_metrics=False,
            views=views + [[]] * cut,
        )
        held = (own.texts[cut:], own.categories[cut:], own.urgencies[cut:])
        comparison["new"] = holdout_scores(candidate, *held)
        comparison["current"] = holdout_scores(registry.load_active(settings).model, *held)
    better = not own.texts or (
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
    from sklearn.metrics import f1_score

    predictions = model.predict(texts, "holdout")
    cat = f1_score(categories, [p.category for p in predictions], average="macro", zero_division=0)
    urg = f1_score(urgencies, [p.urgency for p in predictions], average="macro", zero_division=0)
    return {
        "category_macro_f1": round(float(cat), 4),
        "urgency_macro_f1": round(float(urg), 4),
        "mean_macro_f1": round(float(cat + urg) / 2, 4),
    }


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
