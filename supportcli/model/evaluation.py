"""Scoring probabilities against labels: accuracy, macro-F1, per-class scores, the confusion
matrix, coverage at the review threshold and calibration (reliability table, expected
calibration error), for out-of-fold probabilities and for a saved model on a labelled set."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

BINS = 10


@dataclass
class TargetReport:
    name: str
    accuracy: float
    macro_f1: float
    per_class: dict[str, dict[str, float]]
    labels: list[str]
    confusion: list[list[int]]  # rows: true label, columns: predicted
    threshold: float
    coverage: float
    covered_accuracy: float
    ece: float
    reliability: list[dict[str, float]]  # per confidence bin: range, count, confidence, accuracy
    unknown_labels: list[str]

    def summary(self) -> dict[str, Any]:
        """What a model's meta.json keeps of it."""
        keys = ("accuracy", "macro_f1", "threshold", "coverage", "covered_accuracy", "ece")
        return {**{k: round(float(getattr(self, k)), 4) for k in keys}, "per_class": self.per_class}


@dataclass
class EvaluationResult:
    path: str
    size: int
    model_id: str
    targets: list[TargetReport]


def evaluate(model: Any, model_id: str, data: Any, path: str) -> EvaluationResult:
    """``model`` (a ``TrainedModel``) scored on ``data`` (a ``dataset.LabelledSet``)."""
    parts = zip(("category", "urgency"), (data.categories, data.urgencies),
                (model.categories, model.urgencies), model.probabilities(data.inputs), strict=True)
    targets = [score(name, truth, np.array(classes), probs, model.thresholds[name])
               for name, truth, classes, probs in parts]
    return EvaluationResult(path, len(data.inputs), model_id, targets)


def score(name: str, truth: list[str], classes: np.ndarray, probs: np.ndarray,
          threshold: float) -> TargetReport:
    """The report of one target from its probabilities (columns: ``classes``)."""
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score
    from sklearn.metrics import precision_recall_fscore_support as scores

    predicted = [str(c) for c in classes[np.argmax(probs, axis=1)]] if len(truth) else []
    confidence = probs.max(axis=1) if len(truth) else np.zeros(0)
    labels = sorted(set(truth) | set(predicted))
    precision, recall, f1, support = scores(truth, predicted, labels=labels, zero_division=0)
    per_class = {label: {"precision": round(float(p), 4), "recall": round(float(r), 4),
                         "f1": round(float(f), 4), "support": int(s)}
                 for label, p, r, f, s in zip(labels, precision, recall, f1, support, strict=True)}
    correct = np.array([t == p for t, p in zip(truth, predicted, strict=True)], dtype=bool)
    covered = confidence >= threshold
    ece, table = calibration(confidence, correct)
    return TargetReport(
        name=name,
        accuracy=float(accuracy_score(truth, predicted)),
        macro_f1=float(f1_score(truth, predicted, labels=labels, average="macro", zero_division=0)),
        per_class=per_class,
        labels=labels,
        confusion=confusion_matrix(truth, predicted, labels=labels).tolist(),
        threshold=float(threshold),
        coverage=float(covered.mean()),
        covered_accuracy=float(correct[covered].mean()) if covered.any() else 0.0,
        ece=ece,
        reliability=table,
        unknown_labels=sorted(set(truth) - {str(c) for c in classes}),
    )


def threshold_for_accuracy(confidence: np.ndarray, correct: np.ndarray, target: float) -> float:
    """The lowest confidence whose messages at or above it reach ``target`` accuracy (the
    largest k whose top-k running accuracy, by confidence, still reaches it)."""
    if len(confidence) == 0:
        return 0.0
    order = np.argsort(-confidence, kind="stable")
    running = np.cumsum(correct[order]) / np.arange(1, len(order) + 1)
    ok = np.nonzero(running >= target)[0]
    if len(ok) == 0:
        return float(confidence.max()) + 1e-9  # nothing reaches the target: review everything
    return float(confidence[order][ok[-1]])


def threshold_for_recall(is_member: Any, scores: Any, target: float) -> tuple[float, float, float]:
    """(threshold, recall, precision): the highest score threshold whose recall of the members
    is at least ``target``, i.e. the best precision that meets it (0.5 with no member)."""
    from sklearn.metrics import precision_recall_curve

    y, s = np.asarray(is_member, dtype=bool), np.asarray(scores, dtype=float)
    if not y.any():
        return 0.5, 0.0, 0.0
    precision, recall, cuts = precision_recall_curve(y, s)
    meets = np.flatnonzero(recall[:-1] >= target)  # recall falls as the cut rises
    i = int(meets[-1]) if meets.size else 0
    return float(cuts[i]), float(recall[i]), float(precision[i])


def calibration(confidence: np.ndarray, correct: np.ndarray,
                bins: int = BINS) -> tuple[float, list[dict[str, float]]]:
    """Expected calibration error and the reliability table over equal-width confidence bins
    (each holds (low, high], the first [0, high]): ECE = Σ_b (n_b / n) · |accuracy_b − mean
    confidence_b|, zero when, among messages the model is 70% sure about, 70% are right."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, bins - 1)
    table, ece = [], 0.0
    for b in np.unique(which).tolist():
        inside = which == b
        mean_conf, accuracy = float(confidence[inside].mean()), float(correct[inside].mean())
        ece += float(inside.mean()) * abs(accuracy - mean_conf)
        table.append({"low": round(float(edges[b]), 2), "high": round(float(edges[b + 1]), 2),
                      "count": int(inside.sum()), "confidence": round(mean_conf, 4),
                      "accuracy": round(accuracy, 4)})
    return round(ece, 4), table
