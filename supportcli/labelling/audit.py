"""The audit: labels the model, trained without them, confidently disagrees with."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

AUDIT_MIN_PER_CLASS = 5


@dataclass(frozen=True)
class AuditItem:
    message_id: str
    target: str  # "category" or "urgency"
    label: str  # what the label says
    predicted: str  # what the cross-validated model says
    confidence: float


@dataclass
class AuditResult:
    items: list[AuditItem]  # most confident disagreement first
    checked: int
    too_small: dict[str, dict[str, int]]  # target -> classes with too few labels to check


def audit(texts: Sequence[Any], categories: Sequence[str], urgencies: Sequence[str],
          ids: Sequence[str], *, min_confidence: float = 0.8, folds: int = 5) -> AuditResult:
    """Labels that a model trained without them (cross-validated) confidently contradicts."""
    items: list[AuditItem] = []
    too_small: dict[str, dict[str, int]] = {}
    for target, labels in (("category", categories), ("urgency", urgencies)):
        found, small = _disagreements(target, texts, labels, ids, min_confidence, folds)
        items += found
        if small:
            too_small[target] = small
    items.sort(key=lambda item: (-item.confidence, item.message_id, item.target))
    return AuditResult(items, len(texts), too_small)


def _disagreements(target: str, texts: Sequence[Any], labels: Sequence[str], ids: Sequence[str],
                   min_confidence: float, folds: int) -> tuple[list[AuditItem], dict[str, int]]:
    counts = Counter(labels)
    small = {c: n for c, n in sorted(counts.items()) if n < AUDIT_MIN_PER_CLASS}
    keep = [i for i, label in enumerate(labels) if label not in small]
    if len({labels[i] for i in keep}) < 2:
        return [], small
    import numpy as np
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    from ..model.classifier import SEED, build_pipeline

    y = np.asarray([labels[i] for i in keep])
    smallest = min(n for c, n in counts.items() if c not in small)
    cv = StratifiedKFold(n_splits=min(folds, smallest), shuffle=True, random_state=SEED)
    probs = cross_val_predict(build_pipeline(), [texts[i] for i in keep], y, cv=cv,
                              method="predict_proba")
    classes = np.unique(y)
    found = []
    for row, i in zip(probs, keep, strict=True):
        best = int(np.argmax(row))
        if str(classes[best]) != labels[i] and row[best] >= min_confidence:
            found.append(AuditItem(ids[i], target, labels[i], str(classes[best]), float(row[best])))
    return found, small
