"""The classifiers: pipeline builders, fitting, calibrated prediction with abstention,
cross-validated metrics and explanations.

Two targets, category and urgency, each a scikit-learn ``Pipeline``: word and character
n-gram TF-IDF plus hand-made cues (``features.py``), a linear SVM, and calibrated
probabilities. A message whose confidence falls below the threshold that cross-validation
says reaches the target accuracy is marked "needs review" instead of being trusted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.calibration import CalibratedClassifierCV
from sklearn.metrics import accuracy_score, f1_score, precision_recall_fscore_support
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.svm import LinearSVC
from sklearn.feature_extraction.text import TfidfVectorizer

from .features import FEATURE_SCHEMA_VERSION, CueFeatures, subword_ngrams, urgent_cues
from .records import Prediction

SEED = 0
DEFAULT_TARGET_ACCURACY = 0.85
# A cue may only force "urgent" on mail that is about an order or the shop's service.
_NO_FORCED_URGENCY = frozenset({"feedback", "spam_vendor", "other", "wholesale_partnership"})


def build_pipeline(seed: int = SEED) -> Pipeline:
    features = FeatureUnion(
        [
            (
                "words",
                TfidfVectorizer(
                    ngram_range=(1, 2), sublinear_tf=True, min_df=1, max_df=0.9,
                    token_pattern=r"(?u)\b\w[\w'-]*\b", dtype=np.float32,
                ),
            ),
            (
                "chars",
                TfidfVectorizer(
                    analyzer=subword_ngrams, sublinear_tf=True, min_df=2,
                    max_features=150_000, dtype=np.float32,
                ),
            ),
            ("cues", CueFeatures(weight=0.5)),
        ]
    )
    svm = LinearSVC(C=0.5, class_weight="balanced", random_state=seed)
    classifier = CalibratedClassifierCV(svm, method="sigmoid", cv=3, ensemble=False)
    return Pipeline([("features", features), ("classifier", classifier)])


@dataclass
class Metrics:
    accuracy: float
    macro_f1: float
    per_class: dict[str, dict[str, float]]
    threshold: float
    coverage: float  # share of messages above the threshold
    covered_accuracy: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "accuracy": round(self.accuracy, 4),
            "macro_f1": round(self.macro_f1, 4),
            "threshold": round(self.threshold, 4),
            "coverage": round(self.coverage, 4),
            "covered_accuracy": round(self.covered_accuracy, 4),
            "per_class": self.per_class,
        }


@dataclass
class TrainedModel:
    category: Pipeline
    urgency: Pipeline
    category_threshold: float
    urgency_threshold: float
    feature_schema: int = FEATURE_SCHEMA_VERSION
    metrics: dict[str, Any] = field(default_factory=dict)

    @property
    def categories(self) -> list[str]:
        return [str(c) for c in self.category.classes_]

    @property
    def urgencies(self) -> list[str]:
        return [str(c) for c in self.urgency.classes_]

    def predict(self, texts: Sequence[str], model_id: str) -> list[Prediction]:
        if not texts:
            return []
        cat_probs = self.category.predict_proba(list(texts))
        urg_probs = self.urgency.predict_proba(list(texts))
        cats, urgs = self.categories, self.urgencies
        out = []
        for text, cp, up in zip(texts, cat_probs, urg_probs, strict=True):
            ci, ui = int(np.argmax(cp)), int(np.argmax(up))
            category, urgency = cats[ci], urgs[ui]
            cues = urgent_cues(text) if category not in _NO_FORCED_URGENCY else ()
            if cues and urgency != "urgent" and "urgent" in urgs:
                urgency = "urgent"
            out.append(
                Prediction(
                    category=category,
                    category_confidence=float(cp[ci]),
                    urgency=urgency,
                    urgency_confidence=float(up[urgs.index(urgency)]),
                    needs_review=bool(cp[ci] < self.category_threshold)
                    or (not cues and bool(up[ui] < self.urgency_threshold)),
                    model_id=model_id,
                    category_probs={c: round(float(p), 4) for c, p in zip(cats, cp, strict=True)},
                    urgency_probs={u: round(float(p), 4) for u, p in zip(urgs, up, strict=True)},
                    cues=cues,
                )
            )
        return out


def fit(
    texts: Sequence[str],
    categories: Sequence[str],
    urgencies: Sequence[str],
    *,
    target_accuracy: float = DEFAULT_TARGET_ACCURACY,
    sample_weight: Sequence[float] | None = None,
    with_metrics: bool = True,
) -> TrainedModel:
    """Fit both targets; cross-validation gives the metrics and the review thresholds."""
    texts = list(texts)
    metrics: dict[str, Any] = {}
    thresholds = {}
    for name, labels in (("category", categories), ("urgency", urgencies)):
        if with_metrics:
            m = cross_validate(texts, list(labels), target_accuracy=target_accuracy)
            metrics[name] = m.as_dict()
            thresholds[name] = m.threshold
        else:
            thresholds[name] = 0.0
    cat = _fit_one(texts, categories, sample_weight)
    urg = _fit_one(texts, urgencies, sample_weight)
    metrics["target_accuracy"] = target_accuracy
    metrics["n_samples"] = len(texts)
    return TrainedModel(cat, urg, thresholds["category"], thresholds["urgency"], metrics=metrics)


def _fit_one(texts: list[str], labels: Sequence[str], weights: Sequence[float] | None) -> Pipeline:
    pipeline = build_pipeline()
    if weights is None:
        return pipeline.fit(texts, list(labels))
    return pipeline.fit(texts, list(labels), classifier__sample_weight=np.asarray(weights))


def cross_validate(
    texts: Sequence[str], labels: Sequence[str], *, target_accuracy: float, folds: int = 5
) -> Metrics:
    y = np.asarray(labels)
    smallest = min(np.unique(y, return_counts=True)[1])
    cv = StratifiedKFold(n_splits=max(2, min(folds, int(smallest))), shuffle=True, random_state=SEED)
    probs = cross_val_predict(build_pipeline(), list(texts), y, cv=cv, method="predict_proba")
    classes = np.unique(y)
    predicted = classes[np.argmax(probs, axis=1)]
    confidence = np.max(probs, axis=1)
    threshold = threshold_for_accuracy(confidence, predicted == y, target_accuracy)
    covered = confidence >= threshold
    precision, recall, f1, support = precision_recall_fscore_support(
        y, predicted, labels=classes, zero_division=0
    )
    per_class = {
        str(c): {"precision": round(float(p), 4), "recall": round(float(r), 4),
                 "f1": round(float(f), 4), "support": int(s)}
        for c, p, r, f, s in zip(classes, precision, recall, f1, support, strict=True)
    }
    return Metrics(
        accuracy=float(accuracy_score(y, predicted)),
        macro_f1=float(f1_score(y, predicted, average="macro")),
        per_class=per_class,
        threshold=threshold,
        coverage=float(covered.mean()),
        covered_accuracy=float((predicted == y)[covered].mean()) if covered.any() else 0.0,
    )


def threshold_for_accuracy(confidence: np.ndarray, correct: np.ndarray, target: float) -> float:
    """The lowest confidence threshold whose covered part reaches ``target`` accuracy.

    Sort by confidence, descending; the accuracy of the top-k is a running mean. Pick the
    largest k whose running accuracy is still >= target; its confidence is the threshold.
    """
    if len(confidence) == 0:
        return 0.0
    order = np.argsort(-confidence, kind="stable")
    running = np.cumsum(correct[order]) / np.arange(1, len(order) + 1)
    ok = np.nonzero(running >= target)[0]
    if len(ok) == 0:
        return float(confidence.max()) + 1e-9  # nothing reaches the target: review everything
    return float(confidence[order][ok[-1]])


def top_features(pipeline: Pipeline, text: str, label: str, k: int = 8) -> list[tuple[str, float]]:
    """The features of ``text`` that pushed hardest towards (+) or away from (−) ``label``."""
    union: FeatureUnion = pipeline.named_steps["features"]
    calibrated: CalibratedClassifierCV = pipeline.named_steps["classifier"]
    svm = calibrated.calibrated_classifiers_[0].estimator
    classes = [str(c) for c in svm.classes_]
    row = union.transform([text]).tocsr()
    coef = svm.coef_[classes.index(label)] if len(classes) > 2 else svm.coef_[0] * (
        1 if classes.index(label) == 1 else -1
    )
    names = union.get_feature_names_out()
    contributions = [(str(names[j]), float(v * coef[j])) for j, v in zip(row.indices, row.data, strict=True)]
    contributions.sort(key=lambda item: abs(item[1]), reverse=True)
    return [(_pretty_feature(n), round(v, 3)) for n, v in contributions[:k]]


def _pretty_feature(name: str) -> str:
    kind, _, value = name.partition("__")
    if kind == "chars":
        return f"chars '{value}'"
    if kind == "words":
        return f"word '{value}'"
    return value
