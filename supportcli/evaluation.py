"""Scoring the active model on a labelled set: accuracy, macro-F1, per-class scores, the
confusion matrix, coverage at the review threshold, and calibration (reliability table and
expected calibration error). Nothing here prints."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np

from . import dataset, registry
from .config import Settings
from .errors import UsageError
from .records import Prediction

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

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class EvaluationResult:
    path: str
    size: int
    model_id: str
    targets: list[TargetReport]


def evaluate(settings: Settings, path: Path) -> EvaluationResult:
    data = dataset.load(path)
    if not data.texts:
        raise UsageError(f"{path} holds no labelled messages")
    loaded = registry.load_active(settings)
    predictions = loaded.model.predict(data.texts, loaded.model_id)
    model = loaded.model
    targets = [
        score_target("category", data.categories, predictions, model.category_threshold),
        score_target("urgency", data.urgencies, predictions, model.urgency_threshold),
    ]
    return EvaluationResult(str(path), len(data.texts), loaded.model_id, targets)


def score_target(
    name: str, truth: list[str], predictions: list[Prediction], threshold: float
) -> TargetReport:
    from sklearn.metrics import (
        accuracy_score,
        confusion_matrix,
        f1_score,
        precision_recall_fscore_support,
    )

    if name == "category":
        predicted = [p.category for p in predictions]
        confidence = np.array([p.category_confidence for p in predictions])
        known = set(predictions[0].category_probs) if predictions else set()
    else:
        predicted = [p.urgency for p in predictions]
        confidence = np.array([p.urgency_confidence for p in predictions])
        known = set(predictions[0].urgency_probs) if predictions else set()
    labels = sorted(set(truth) | set(predicted))
    precision, recall, f1, support = precision_recall_fscore_support(
        truth, predicted, labels=labels, zero_division=0
    )
    per_class = {
        label: {
            "precision": round(float(p), 4),
            "recall": round(float(r), 4),
            "f1": round(float(f), 4),
            "support": int(s),
        }
        for label, p, r, f, s in zip(labels, precision, recall, f1, support, strict=True)
    }
    correct = np.array([t == p for t, p in zip(truth, predicted, strict=True)])
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
        unknown_labels=sorted(set(truth) - known),
    )


def calibration(
    confidence: np.ndarray, correct: np.ndarray, bins: int = BINS
) -> tuple[float, list[dict[str, float]]]:
    """Expected calibration error and the reliability table over equal-width confidence bins.

    ECE = Σ_b (n_b / n) · |accuracy_b − mean confidence_b|: zero when, among messages the model
    is 70% sure about, 70% are right, and so on for every bin.
    """
    edges = np.linspace(0.0, 1.0, bins + 1)
    table: list[dict[str, float]] = []
    ece = 0.0
    n = len(confidence)
    for low, high in pairwise(edges):
        inside = (confidence > low) & (confidence <= high) if low > 0 else confidence <= high
        count = int(inside.sum())
        if not count:
            continue
        mean_conf = float(confidence[inside].mean())
        accuracy = float(correct[inside].mean())
        ece += count / n * abs(accuracy - mean_conf)
        table.append(
            {
                "low": round(float(low), 2),
                "high": round(float(high), 2),
                "count": count,
                "confidence": round(mean_conf, 4),
                "accuracy": round(accuracy, 4),
            }
        )
    return round(ece, 4), table
