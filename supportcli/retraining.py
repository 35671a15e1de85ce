"""The train use case on the shop's own labels: the samples and the shop's labels trained
together, installed only if not worse than the active model on the shop's newest labels, each
version kept for rollback. Nothing here prints."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from . import resources
from .config import Settings
from .model import dataset, registry, training
from .model.classifier import TrainedModel
from .model.text import ModelInput, message_input
from .model.training import TrainResult
from .store import Store
from .workflows import load_model

HOLDOUT_SHARE = 0.2
DEFAULT_OWN_WEIGHT = 3.0


def own_labels(store: Store, timezone: str = "UTC") -> dataset.LabelledSet:
    """The shop's labelled messages, oldest first."""
    labels = store.labels()
    messages = sorted(store.messages(message_ids=list(labels)), key=lambda m: m.date)
    return dataset.LabelledSet(
        [message_input(m, timezone) for m in messages], [labels[m.message_id][0] for m in messages],
        [labels[m.message_id][1] for m in messages], list(messages),
        [m.message_id for m in messages])


def _fit_with(samples: dataset.LabelledSet, own: dataset.LabelledSet, n_own: int,
              own_weight: float, **options: Any) -> TrainedModel:
    """The samples (with their short views) and the shop's oldest ``n_own`` labels."""
    return training.fit(
        samples.inputs + own.inputs[:n_own], samples.categories + own.categories[:n_own],
        samples.urgencies + own.urgencies[:n_own],
        sample_weight=[1.0] * len(samples.inputs) + [own_weight] * n_own,
        views=training.sample_views(samples) + [[]] * n_own, **options)


def train_shop(settings: Settings, store: Store, *, force: bool = False,
               own_weight: float = DEFAULT_OWN_WEIGHT) -> TrainResult:
    """Train on samples + the shop's labels; install only if not worse than the active model on
    the newest 20% of the shop's labels (a model trained without them decides)."""
    current = load_model(settings).model
    samples = dataset.load_folder(resources.samples_dir())
    own = own_labels(store, settings.timezone)
    custom = [c for c in settings.categories if c not in samples.categories]
    training.check_class_sizes(samples.categories + own.categories, known=custom)
    training.check_class_sizes(samples.urgencies + own.urgencies)
    n = len(own.inputs)
    cut = n - max(1, round(n * HOLDOUT_SHARE)) if n else 0
    comparison: dict[str, Any] = {"holdout": n - cut, "installed": True}
    if n:
        held = (own.inputs[cut:], own.categories[cut:], own.urgencies[cut:])
        comparison["new"] = holdout_scores(_fit_with(samples, own, cut, own_weight,
                                                     validate=False), *held)
        comparison["current"] = holdout_scores(current, *held)
        comparison["installed"] = force or (comparison["new"]["mean_macro_f1"] + 1e-9
                                            >= comparison["current"]["mean_macro_f1"])
    trained = _fit_with(samples, own, n, own_weight, target_accuracy=settings.target_accuracy)
    version = _new_version_name(settings)
    extra = {"own_labels": n, "own_weight": own_weight, "comparison": comparison}
    directory = settings.models_dir / version
    meta = training.save(version, trained, directory, samples.categories + own.categories, **extra)
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


def holdout_scores(model: TrainedModel, inputs: list[ModelInput], categories: list[str],
                   urgencies: list[str]) -> dict[str, float]:
    from sklearn.metrics import f1_score

    predictions = model.predict(inputs, "holdout")
    cat = f1_score(categories, [p.category for p in predictions], average="macro", zero_division=0)
    urg = f1_score(urgencies, [p.urgency for p in predictions], average="macro", zero_division=0)
    return {"category_macro_f1": round(float(cat), 4), "urgency_macro_f1": round(float(urg), 4),
            "mean_macro_f1": round(float(cat + urg) / 2, 4)}
