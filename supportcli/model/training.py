"""Training: fit both targets with out-of-fold metrics and review thresholds, rebuild the
default model from the bundled samples, train on the shop's own labels with a not-worse guard,
and keep model versions for rollback. Nothing here prints."""

from __future__ import annotations

import contextlib
import logging
import os
from collections import Counter
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from .. import resources
from ..config import DEFAULT_TARGET_ACCURACY, Settings
from ..errors import ModelError, UsageError
from ..store import Store
from . import artifacts, dataset, evaluation, registry
from .classifier import TARGETS, OutOfFold, SupportModel, TrainedModel, folds, temperature
from .features import fingerprint
from .text import ModelInput, as_input, message_input, short_views

log = logging.getLogger(__name__)
MIN_PER_CLASS = 5
FOLDS = 5
LARGE = 5000  # above this many messages, 2 folds: each still scored by a model without it
HOLDOUT_SHARE = 0.2
DEFAULT_OWN_WEIGHT = 3.0


@dataclass
class TrainResult:
    meta: dict[str, Any]
    directory: Path
    installed: bool = True
    comparison: dict[str, Any] = field(default_factory=dict)  # held-out scores, new vs current


def check_class_sizes(labels: Iterable[str], known: Sequence[str] = (),
                      minimum: int = MIN_PER_CLASS) -> None:
    """Refuse to train a class with too few examples, saying how many more it needs."""
    counts = Counter(labels)
    small = {k: counts.get(k, 0) for k in set(counts) | set(known) if counts.get(k, 0) < minimum}
    if small:
        need = ", ".join(f"{k} has {v}, needs {minimum - v} more" for k, v in sorted(small.items()))
        raise UsageError(f"too few labelled examples to train: {need}",
                         hint="label more messages with `supportcli label`")


def fit(inputs: Sequence[ModelInput | str], categories: Sequence[str], urgencies: Sequence[str],
        *, target_accuracy: float = DEFAULT_TARGET_ACCURACY,
        sample_weight: Sequence[float] | None = None, views: Sequence[Sequence[str]] | None = None,
        validate: bool = True, n_jobs: int | None = None) -> TrainedModel:
    """Fit both targets and calibrate them on out-of-fold scores: ``cross_val_predict`` fits a
    whole ``SupportModel`` per ``StratifiedKFold`` fold (5, or 2 above ``LARGE`` messages),
    features included, so neither a validation message nor its short views (``views``: per
    message, texts its category holds for) are in what scores it; the folds run beside the
    final fit. Their scores set the temperatures and, calibrated fold by fold on the other
    folds, give the metrics, the review thresholds (the lowest confidence whose messages reach
    ``target_accuracy``) and ``out_of_fold``. Without ``validate``, in-sample scores set the
    temperatures (overconfident) and nothing needs review: for a quick comparison only."""
    x = [as_input(i) for i in inputs]
    y = np.column_stack([np.asarray(categories, dtype=object), np.asarray(urgencies, dtype=object)])
    w = None if sample_weight is None else np.asarray(sample_weight, np.float64)
    params: dict[str, Any] = {} if w is None else {"sample_weight": w}
    if views is not None:
        params["views"] = np.empty(len(x), dtype=object)
        params["views"][:] = [tuple(v) for v in views]
    splits = folds(y, FOLDS if len(x) <= LARGE else 2)
    with ThreadPoolExecutor(1) as pool:  # the folds' processes work while this one fits
        scores = pool.submit(_out_of_fold_scores, x, y, splits, params, validate, n_jobs)
        estimator = SupportModel().fit(x, y, **params)
    model = TrainedModel(estimator, dict.fromkeys(TARGETS, 0.0),
                         {"target_accuracy": target_accuracy, "n_samples": len(x)})
    oof = scores.result()
    estimator.calibrate(estimator.decision_function(x) if oof is None else oof, y, w)
    if oof is not None:
        model.metrics["validation"] = f"{len(splits)}-fold cross-validation"
        _score(model, oof, y, splits, w)
    return model


def _out_of_fold_scores(x: list[ModelInput], y: np.ndarray, splits: list[Any],
                        params: dict[str, Any], validate: bool, n_jobs: int | None) -> Any:
    from sklearn.model_selection import cross_val_predict

    if not validate:
        return None
    jobs = n_jobs or (2 if len(x) > 500 and os.cpu_count() != 1 else 1)
    return cross_val_predict(SupportModel(), x, y, cv=splits, method="decision_function",
                             params=params, n_jobs=jobs)


def _score(model: TrainedModel, scores: list[np.ndarray], y: np.ndarray, splits: list[Any],
           w: np.ndarray | None) -> None:
    """Per target: out-of-fold probabilities (each fold's scores calibrated on the others'),
    the review threshold and the metrics."""
    from sklearn.model_selection import cross_val_predict

    for i, name in enumerate(TARGETS):
        labels = y[:, i].astype(str)
        classes = np.unique(labels)
        probs = cross_val_predict(temperature(classes), scores[i], labels, cv=splits,
                                  method="predict_proba", params={} if w is None else {
                                      "sample_weight": w})
        model.out_of_fold[name] = OutOfFold(classes, labels, probs)
        right = classes[probs.argmax(axis=1)] == labels
        threshold = evaluation.threshold_for_accuracy(probs.max(axis=1), right,
                                                      model.metrics["target_accuracy"])
        model.thresholds[name] = threshold
        model.metrics[name] = evaluation.score(name, labels.tolist(), classes, probs,
                                               threshold).summary()


def _meta(name: str, trained: TrainedModel, categories: Sequence[str],
          extra: dict[str, Any]) -> dict[str, Any]:
    """What ``meta.json`` says: the fingerprint decides whether the model may be used."""
    counts = dict(sorted(Counter(categories).items()))
    return {"name": name, "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "n_samples": len(categories), "categories": trained.categories,
            "urgencies": trained.urgencies, "metrics": trained.metrics, "category_counts": counts,
            "fingerprint": fingerprint(),
            "samples_sha256": dataset.folder_hash(resources.samples_dir()), **extra}


def sample_views(data: dataset.LabelledSet) -> list[list[str]]:
    """Short views of each bundled sample (``text.short_views``): the samples are whole
    emails, and these teach the model the short form of the same requests. The shop's own
    mail needs none: it already comes in the shapes the shop receives."""
    return [short_views(m) if m is not None else [] for m in data.messages]


def train_default(output: Path | None = None, *, settings: Settings | None = None) -> TrainResult:
    """Build the default model from the bundled samples (``samples/labels.csv``)."""
    data = dataset.load_folder(resources.samples_dir())
    check_class_sizes(data.categories)
    check_class_sizes(data.urgencies)
    accuracy = settings.target_accuracy if settings is not None else DEFAULT_TARGET_ACCURACY
    trained = fit(data.inputs, data.categories, data.urgencies, target_accuracy=accuracy,
                  views=sample_views(data))
    directory = output or resources.default_model_dir()
    meta = artifacts.save(trained, directory, _meta("default", trained, data.categories, {}))
    return TrainResult(meta, directory)


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
    return fit(samples.inputs + own.inputs[:n_own], samples.categories + own.categories[:n_own],
               samples.urgencies + own.urgencies[:n_own],
               sample_weight=[1.0] * len(samples.inputs) + [own_weight] * n_own,
               views=sample_views(samples) + [[]] * n_own, **options)


def train_shop(settings: Settings, store: Store, current: TrainedModel, *, force: bool = False,
               own_weight: float = DEFAULT_OWN_WEIGHT) -> TrainResult:
    """Train on samples + the shop's labels; install only if not worse than ``current`` on the
    newest 20% of the shop's labels (a model trained without them decides)."""
    samples = dataset.load_folder(resources.samples_dir())
    own = own_labels(store, settings.timezone)
    custom = [c for c in settings.categories if c not in samples.categories]
    check_class_sizes(samples.categories + own.categories, known=custom)
    check_class_sizes(samples.urgencies + own.urgencies)
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
    meta = artifacts.save(trained, directory,
                          _meta(version, trained, samples.categories + own.categories, extra))
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
        dirs += sorted(p for p in settings.models_dir.iterdir() if (p / "meta.json").is_file())
    out = []
    for directory in dirs:
        try:
            meta = artifacts.read_meta(directory)
        except ModelError as exc:
            log.warning("%s", exc.message)
            continue
        metrics = meta.get("metrics", {})
        name = "default" if directory == resources.default_model_dir() else directory.name
        out.append(ModelVersion(
            name, str(meta.get("created", "")), int(meta.get("n_samples", 0)),
            metrics.get("category", {}).get("macro_f1"), metrics.get("urgency", {}).get("macro_f1"),
            directory.resolve() == active, directory))
    return out


def use_version(settings: Settings, name: str) -> ModelVersion:
    versions = {v.name: v for v in list_versions(settings)}
    if name not in versions:
        raise UsageError(f"no model version {name!r}", hint="see `supportcli model list`")
    registry.set_active(settings, name)
    with contextlib.suppress(registry.RebuildNeeded):  # the default: rebuilt on first use
        registry.load_active(settings)  # verify it loads before saying so
    return next(v for v in list_versions(settings) if v.name == name)
