"""The train use case on the shop's own labels: the samples and the shop's labels trained
together, installed only if not worse than the active model on labels neither was trained on,
each version kept for rollback. Nothing here prints."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from . import prioritize, resources
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


def _fit_rows(samples: dataset.LabelledSet, own: dataset.LabelledSet, rows: Sequence[int],
              own_weight: float, **options: Any) -> TrainedModel:
    """The samples (with their short views) and the shop's labels at ``rows``."""
    return training.fit(
        samples.inputs + [own.inputs[i] for i in rows],
        samples.categories + [own.categories[i] for i in rows],
        samples.urgencies + [own.urgencies[i] for i in rows],
        sample_weight=[1.0] * len(samples.inputs) + [own_weight] * len(rows),
        views=training.sample_views(samples) + [[]] * len(rows), **options)


def train_shop(settings: Settings, store: Store, *, force: bool = False,
               own_weight: float = DEFAULT_OWN_WEIGHT) -> TrainResult:
    """Train on samples + the shop's labels; install only if not worse than the active model on
    labels neither was trained on (``compare_with_current``)."""
    loaded = load_model(settings)
    samples = dataset.load_folder(resources.samples_dir())
    own = own_labels(store, settings.timezone)
    custom = [c for c in settings.categories if c not in samples.categories]
    training.check_class_sizes(samples.categories + own.categories, known=custom)
    training.check_class_sizes(samples.urgencies + own.urgencies)
    n = len(own.inputs)
    comparison: dict[str, Any] = {"installed": True}
    if n:
        comparison = compare_with_current(samples, own, own_weight, loaded.model, loaded.meta)
        comparison["installed"] = "new" not in comparison or force or (
            comparison["new"]["mean_macro_f1"] + 1e-9 >= comparison["current"]["mean_macro_f1"])
    trained = _fit_rows(samples, own, range(n), own_weight,
                        target_accuracy=settings.target_accuracy,
                        urgent_recall=settings.urgent_recall,
                        caught=prioritize.cues_force_urgent)
    version = _new_version_name(settings)
    extra: dict[str, Any] = {"own_labels": n, "own_weight": own_weight,
                             "comparison": comparison,
                             "trained_on": sorted({label_key(i) for i in own.names})}
    directory = settings.models_dir / version
    meta = training.save(version, trained, directory, samples.categories + own.categories, **extra)
    if comparison["installed"]:
        registry.set_active(settings, version)
    return TrainResult(meta, directory, comparison["installed"], comparison)


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


def compare_with_current(samples: dataset.LabelledSet, own: dataset.LabelledSet,
                         own_weight: float, current: TrainedModel,
                         current_meta: dict[str, Any]) -> dict[str, Any]:
    """Scores of the new model and the current one on labels neither was trained on, and how
    they were got (``method``, and ``how``, a phrase for the output).

    The newest ``HOLDOUT_SHARE`` of the shop's labels are held out of the new model's
    training; when the current model has not seen any of them either, both are scored on that
    slice. Otherwise scoring the current model there would reward it for remembering them:
    both recipes (the samples plus the shop labels each was trained on, at its own weight) are
    cross-validated on the same folds of the shop's labels."""
    n = len(own.inputs)
    keys = [label_key(i) for i in own.names]
    seen = seen_labels(current_meta, keys)
    cut = n - max(1, round(n * HOLDOUT_SHARE))
    if not seen & set(keys[cut:]):
        candidate = _fit_rows(samples, own, range(cut), own_weight, validate=False)
        held = (own.inputs[cut:], own.categories[cut:], own.urgencies[cut:])
        return {"method": "holdout", "holdout": n - cut,
                "how": f"on your newest {n - cut} labels, which neither model was trained on",
                "new": holdout_scores(candidate, *held),
                "current": holdout_scores(current, *held)}
    if n < 2:
        return {"method": "none", "how": "not compared: one label, which the current model saw"}
    weight = float(current_meta.get("own_weight", own_weight))
    recipes = {"new": (list(range(n)), own_weight),
               "current": ([i for i in range(n) if keys[i] in seen], weight)}
    k = min(GUARD_FOLDS, n)
    return {"method": "cross-validation", "folds": k, "holdout": n,
            "how": f"by {k}-fold cross-validation of both on the same folds of your {n} labels "
            "(the current model was trained on some of the newest)",
            **_cross_validated(samples, own, recipes, k)}


def _cross_validated(samples: dataset.LabelledSet, own: dataset.LabelledSet,
                     recipes: dict[str, tuple[list[int], float]], k: int
                     ) -> dict[str, dict[str, float]]:
    """Each recipe scored by k-fold cross-validation over the shop's labels, on the same folds:
    each fold is predicted by the recipe fitted on its labels outside that fold. Recipes that
    come out the same in a fold are fitted once."""
    from sklearn.model_selection import KFold

    n = len(own.inputs)
    predicted: dict[str, list[Any]] = {name: [None] * n for name in recipes}
    for train, test in KFold(n_splits=k, shuffle=True, random_state=0).split(own.inputs):
        outside = set(train.tolist())
        fitted: dict[tuple[tuple[int, ...], float], TrainedModel] = {}
        inputs = [own.inputs[i] for i in test]
        for name, (rows, weight) in recipes.items():
            key = (tuple(i for i in rows if i in outside), weight)
            if key not in fitted:
                fitted[key] = _fit_rows(samples, own, key[0], weight, validate=False)
            for i, prediction in zip(test, fitted[key].predict(inputs, "guard"), strict=True):
                predicted[name][i] = prediction
    return {name: _scores(own.categories, own.urgencies, p) for name, p in predicted.items()}


def _new_version_name(settings: Settings) -> str:
    base = datetime.now(UTC).strftime("v%Y%m%d-%H%M%S")
    name, n = base, 1
    while (settings.models_dir / name).exists():
        n += 1
        name = f"{base}-{n}"
    return name


def holdout_scores(model: TrainedModel, inputs: list[ModelInput], categories: list[str],
                   urgencies: list[str]) -> dict[str, float]:
    return _scores(categories, urgencies, model.predict(inputs, "holdout"))


def _scores(categories: list[str], urgencies: list[str], predictions: list[Any]
            ) -> dict[str, float]:
    from sklearn.metrics import f1_score

    cat = f1_score(categories, [p.category for p in predictions], average="macro", zero_division=0)
    urg = f1_score(urgencies, [p.urgency for p in predictions], average="macro", zero_division=0)
    return {"category_macro_f1": round(float(cat), 4), "urgency_macro_f1": round(float(urg), 4),
            "mean_macro_f1": round(float(cat + urg) / 2, 4)}
