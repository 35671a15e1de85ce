"""Training: fit both targets with out-of-fold metrics and review thresholds, save a model with
its fingerprint, and build the default model from the bundled samples. Nothing here prints
(``retraining`` trains on the shop's own labels)."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.model_selection import cross_val_predict

from .. import resources
from ..config import DEFAULT_TARGET_ACCURACY, DEFAULT_URGENT_RECALL, Settings
from ..errors import UsageError
from . import artifacts, dataset, evaluation
from .classifier import TARGETS, OutOfFold, SupportModel, TrainedModel, folds, temperature
from .features import fingerprint
from .text import ModelInput, as_input, short_views

MIN_PER_CLASS = 5
FOLDS = 5
LARGE = 5000  # above this many messages, 2 folds: each still scored by a model without it


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


MIN_MODEL_RECALL = 0.5  # of the urgent messages no cue catches, the model catches at least this


def fit(inputs: Sequence[ModelInput | str], categories: Sequence[str], urgencies: Sequence[str],
        *, target_accuracy: float = DEFAULT_TARGET_ACCURACY,
        sample_weight: Sequence[float] | None = None, views: Sequence[Sequence[str]] | None = None,
        validate: bool = True, n_jobs: int | None = None,
        urgent_recall: float = DEFAULT_URGENT_RECALL,
        caught: Callable[[ModelInput], bool] | None = None) -> TrainedModel:
    """Fit both targets, calibrated on out-of-fold scores: ``cross_val_predict`` fits a whole
    ``SupportModel`` per ``StratifiedKFold`` fold (5; 2 above ``LARGE`` messages) beside the final
    fit, so neither a validation message nor its short views (``views``) are in what scores it.
    Those scores set the temperatures and, calibrated on the other folds, give ``out_of_fold``,
    the metrics and the review thresholds (the lowest confidence whose messages reach
    ``target_accuracy``). Without ``validate``: in-sample calibration, for a quick comparison."""
    x = [as_input(i) for i in inputs]
    y = np.column_stack([np.asarray(categories, dtype=object), np.asarray(urgencies, dtype=object)])
    w = None if sample_weight is None else np.asarray(sample_weight, np.float64)
    params: dict[str, Any] = {} if w is None else {"sample_weight": w}
    if views is not None:
        params["views"] = np.empty(len(x), dtype=object)
        params["views"][:] = [tuple(v) for v in views]
    splits = folds(y, FOLDS if len(x) <= LARGE else 2)
    jobs = (n_jobs or (2 if len(x) > 500 and os.cpu_count() != 1 else 1)) if validate else 0
    estimator, oof = _fit_beside_folds(x, y, splits, params, jobs)
    model = TrainedModel(estimator, dict.fromkeys(TARGETS, 0.0),
                         {"target_accuracy": target_accuracy, "n_samples": len(x),
                          "urgent_recall": urgent_recall})
    estimator.calibrate(estimator.decision_function(x) if oof is None else oof, y, w)
    if oof is not None:
        model.metrics["validation"] = f"{len(splits)}-fold cross-validation"
        by_cues = np.array([bool(caught(i)) for i in x]) if caught else np.zeros(len(x), bool)
        _score(model, oof, y, splits, w, by_cues)
    return model


def _fit_beside_folds(x: list[ModelInput], y: np.ndarray, splits: list[Any],
                      params: dict[str, Any], jobs: int) -> tuple[SupportModel, Any]:
    """The final model and the folds' out-of-fold scores (none for 0 ``jobs``). Folds in worker
    processes run while this process fits; never in a thread of it: liblinear's random
    generator is global to a process, and the results would vary."""
    def scores(n_jobs: int) -> list[np.ndarray]:
        return cross_val_predict(SupportModel(), x, y, cv=splits, method="decision_function",
                                 params=params, n_jobs=n_jobs)

    with ThreadPoolExecutor(1) as pool:
        background = pool.submit(scores, jobs) if jobs > 1 else None
        estimator = SupportModel().fit(x, y, **params)
    return estimator, background.result() if background else scores(1) if jobs else None


def _score(model: TrainedModel, scores: list[np.ndarray], y: np.ndarray, splits: list[Any],
           w: np.ndarray | None, caught: np.ndarray) -> None:
    """Per target: out-of-fold probabilities (each fold's scores calibrated on the others'),
    the review threshold and the metrics."""
    for i, name in enumerate(TARGETS):
        labels = y[:, i].astype(str)
        classes = np.unique(labels)
        probs = cross_val_predict(temperature(classes), scores[i], labels, cv=splits,
                                  method="predict_proba", params={"sample_weight": w})
        model.out_of_fold[name] = OutOfFold(classes, labels, probs)
        right = classes[probs.argmax(axis=1)] == labels
        threshold = evaluation.threshold_for_accuracy(probs.max(axis=1), right,
                                                      model.metrics["target_accuracy"])
        model.thresholds[name] = threshold
        model.metrics[name] = evaluation.score(name, labels.tolist(), classes, probs,
                                               threshold).summary()
    _urgency_cuts(model, model.out_of_fold["urgency"], caught)


def _urgency_cuts(model: TrainedModel, oof: OutOfFold, caught: np.ndarray) -> None:
    """Recall first: the probability of urgent (and of urgent-or-high) from which a message is
    called so, chosen on the out-of-fold probabilities to catch ``urgent_recall`` of them; the
    recall and precision of the whole decision are kept in the metrics."""
    classes = [str(c) for c in oof.classes]
    if not {"urgent", "high"} <= set(classes):
        return
    target = model.metrics["urgent_recall"]
    p_u = oof.probabilities[:, classes.index("urgent")]
    p_uh = p_u + oof.probabilities[:, classes.index("high")]
    urgent = oof.labels == "urgent"
    urgent_or_high = urgent | (oof.labels == "high")
    model.urgency_cuts = {
        "urgent": _cut(urgent, p_u, caught, target), "high": _cut(urgent_or_high, p_uh, caught,
                                                                   target)}
    called = np.array([model.decide_urgency(dict(zip(classes, row, strict=True)))
                       for row in oof.probabilities.tolist()])
    called[caught] = "urgent"
    model.metrics["urgency_decision"] = {
        name: _recall_precision(truth, np.isin(called, list(levels)))
        for name, truth, levels in (("urgent", urgent, ("urgent",)),
                                    ("urgent_or_high", np.isin(oof.labels, ["urgent", "high"]),
                                     ("urgent", "high")))}


def _cut(members: np.ndarray, scores: np.ndarray, caught: np.ndarray, target: float) -> float:
    """The score cut that, with the members the cues already catch (``caught``), reaches
    ``target`` recall; the model still catches at least half of the rest."""
    rest = members & ~caught
    need = (target * members.sum() - (members & caught).sum()) / max(1, rest.sum())
    return evaluation.threshold_for_recall(rest, scores, max(MIN_MODEL_RECALL, need))[0]


def _recall_precision(truth: np.ndarray, called: np.ndarray) -> dict[str, float]:
    hits = float((truth & called).sum())
    return {"recall": round(hits / max(1, truth.sum()), 3),
            "precision": round(hits / max(1, called.sum()), 3), "support": int(truth.sum())}


def save(name: str, trained: TrainedModel, directory: Path, categories: Sequence[str],
         *, shared: bool = False, **extra: Any) -> dict[str, Any]:
    """Write the model with its ``meta.json``, whose fingerprint decides where it may be used."""
    counts = dict(sorted(Counter(categories).items()))
    meta = {"name": name, "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "n_samples": len(categories), "categories": trained.categories,
            "urgencies": trained.urgencies, "metrics": trained.metrics, "category_counts": counts,
            "fingerprint": fingerprint(),
            "samples_sha256": dataset.folder_hash(resources.samples_dir()), **extra}
    return artifacts.save(trained, directory, meta, shared=shared)


def sample_views(data: dataset.LabelledSet) -> list[list[str]]:
    """Short views of each bundled sample (``text.short_views``): the samples are whole
    emails, and these teach the model the short form of the same requests. The shop's own
    mail needs none: it already comes in the shapes the shop receives."""
    return [short_views(m) if m is not None else [] for m in data.messages]


def train_default(output: Path | None = None, *, settings: Settings | None = None,
                  caught: Callable[[ModelInput], bool] | None = None) -> TrainResult:
    """Build the default model from the bundled samples (``samples/labels.csv``)."""
    data = dataset.load_folder(resources.samples_dir())
    check_class_sizes(data.categories)
    check_class_sizes(data.urgencies)
    accuracy = settings.target_accuracy if settings is not None else DEFAULT_TARGET_ACCURACY
    recall = settings.urgent_recall if settings is not None else DEFAULT_URGENT_RECALL
    trained = fit(data.inputs, data.categories, data.urgencies, target_accuracy=accuracy,
                  views=sample_views(data), urgent_recall=recall, caught=caught)
    directory = output or resources.default_model_dir()
    # the shipped default holds the bundled samples only: readable by all, like the package
    meta = save("default", trained, directory, data.categories, shared=output is None)
    return TrainResult(meta, directory)
