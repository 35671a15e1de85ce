"""The classifiers: pipeline builders, fitting, calibrated prediction with abstention,
cross-validated metrics and explanations.

Two targets, category and urgency, each a scikit-learn ``Pipeline``: ``features.TextFeatures``
(word and character n-gram TF-IDF plus hand-made cues), a linear SVM, and calibrated
probabilities. Both pipelines share one fitted ``TextFeatures``, so a batch is featurized once
for both. A message whose confidence falls below the threshold that cross-validation says
reaches the target accuracy is marked "needs review" instead of being trusted.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from itertools import repeat
from typing import Any

import numpy as np
from sklearn.metrics import accuracy_score, f1_score, precision_recall_fscore_support
from sklearn.pipeline import Pipeline
from sklearn.svm import LinearSVC
from sklearn.utils.parallel import Parallel, delayed
from threadpoolctl import threadpool_limits

from . import classifier
from .classifier import (
    SEED,
    CalibratedSVC,
    build_svm,
    decision_values,
    fit_temperature,
    n_columns,
    softmax_probabilities,
    stratified_folds,
)
from .config import DEFAULT_TARGET_ACCURACY
from .cues import urgent_cues, urgent_cues_from
from .features import FEATURE_SCHEMA_VERSION, TextFeatures
from .records import Prediction

# Models saved before the SVM moved to classifier.py look its classes up here.
_Calibrated = classifier._Calibrated
BATCH = 4096  # texts featurized at once when predicting
# Short views of a sample (features.short_views) teach its category only: its urgency often
# hangs on a detail further down. They count this much of their message's weight.
VIEW_TARGETS = frozenset({"category"})
VIEW_WEIGHT = 0.3
HOLDOUT_FROM = 5000  # larger training sets validate on a 20% hold-out, in two processes
# A cue may only force "urgent" on mail that is about an order or the shop's service.
_NO_FORCED_URGENCY = frozenset({"feedback", "spam_vendor", "other", "wholesale_partnership"})


def build_features() -> TextFeatures:
    return TextFeatures(word_weight=1.0, char_weight=1.0, cue_weight=0.5, pair_weight=0.6)


def build_pipeline(seed: int = SEED) -> Pipeline:
    """Features + calibrated SVM for one target (``fit`` builds both targets more cheaply)."""
    return Pipeline([("features", build_features()), ("classifier", CalibratedSVC(seed=seed))])


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

    def probabilities(
        self, texts: list[str]
    ) -> tuple[np.ndarray, np.ndarray, list[tuple[str, ...]]]:
        """Category and urgency probabilities and each text's urgent cues, featurizing once
        when both pipelines share their features step (models built by ``fit``)."""
        features = self.category.steps[0][1]
        if features is self.urgency.steps[0][1] and isinstance(features, TextFeatures):
            x, cues = features.transform_with_cues(texts)
            cat, urg = self.category[-1], self.urgency[-1]
            if isinstance(cat, CalibratedSVC) and isinstance(urg, CalibratedSVC):
                return (*_joint_probabilities(x, cat, urg), urgent_cues_from(cues))
            return cat.predict_proba(x), urg.predict_proba(x), urgent_cues_from(cues)
        return (self.category.predict_proba(texts), self.urgency.predict_proba(texts),
                [urgent_cues(t) for t in texts])

    def predict(self, texts: Sequence[str], model_id: str) -> list[Prediction]:
        texts = list(texts)
        out: list[Prediction] = []
        for start in range(0, len(texts), BATCH):
            out.extend(self._predict(texts[start : start + BATCH], model_id))
        return out

    def _predict(self, texts: list[str], model_id: str) -> Iterator[Prediction]:
        cat_probs, urg_probs, all_cues = self.probabilities(texts)
        cats, urgs = self.categories, self.urgencies
        urgent_at = urgs.index("urgent") if "urgent" in urgs else -1
        for cp, up, ci, ui, text_cues in zip(
            cat_probs.tolist(), urg_probs.tolist(), cat_probs.argmax(axis=1).tolist(),
            urg_probs.argmax(axis=1).tolist(), all_cues, strict=True,
        ):
            category = cats[ci]
            cues = text_cues if category not in _NO_FORCED_URGENCY else ()
            shown = urgent_at if cues and urgent_at >= 0 else ui
            yield Prediction(
                category=category,
                category_confidence=cp[ci],
                urgency=urgs[shown],
                urgency_confidence=up[shown],
                needs_review=cp[ci] < self.category_threshold
                or (not cues and up[ui] < self.urgency_threshold),
                model_id=model_id,
                category_probs=dict(zip(cats, map(round, cp, repeat(4)), strict=True)),
                urgency_probs=dict(zip(urgs, map(round, up, repeat(4)), strict=True)),
                cues=cues,
            )


def _joint_probabilities(
    x: Any, cat: CalibratedSVC, urg: CalibratedSVC
) -> tuple[np.ndarray, np.ndarray]:
    """Both targets' probabilities from one pass over ``x`` (one sparse × dense product with
    the two SVMs' weights side by side: the same sums as two ``decision_function`` calls)."""
    svms = [c.calibrated_classifiers_[0].estimator for c in (cat, urg)]
    weights = np.ascontiguousarray(np.vstack([s.coef_ for s in svms]).T)
    scores = x @ weights + np.concatenate([s.intercept_ for s in svms])
    split = len(svms[0].coef_)
    return (cat.probabilities_from(scores[:, :split]), urg.probabilities_from(scores[:, split:]))


def fit(
    texts: Sequence[str],
    categories: Sequence[str],
    urgencies: Sequence[str],
    *,
    target_accuracy: float = DEFAULT_TARGET_ACCURACY,
    sample_weight: Sequence[float] | None = None,
    with_metrics: bool = True,
    n_jobs: int | None = None,
    views: Sequence[Sequence[str]] | None = None,
) -> TrainedModel:
    """Fit both targets on one shared featurization.

    Validation folds each fit their own features and one SVM per target; their out-of-fold
    decision values calibrate the final SVMs (fitted on everything) and, calibrated on other
    folds only, give the metrics and the review thresholds. No text of a validation fold is in
    the vocabulary, idf, SVM or calibration targets that score it. Up to ``HOLDOUT_FROM``
    texts: 5-fold cross-validation; above: one stratified 20% hold-out (its two halves
    calibrate each other), fitted in two processes beside the final model.

    ``views`` (per text, short texts with the same labels: ``features.short_views``) join
    the training rows of their text only, never a validation fold, with its weight."""
    texts = [str(t) for t in texts]
    targets = {"category": np.asarray(categories), "urgency": np.asarray(urgencies)}
    weights = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    data = _Data(texts, targets, weights, [list(v) for v in views] if views else None)
    folds, calibration, validation = _plan(list(targets.values()))
    if n_jobs is None:
        n_jobs = 2 if len(texts) > HOLDOUT_FROM and (os.cpu_count() or 1) >= 2 else 1
    jobs = [delayed(_final_job)(data)]
    jobs += [delayed(_fold_job)(data, train, test) for train, test in folds]
    (features, svms), *fold_results = Parallel(n_jobs=n_jobs)(jobs)
    scored = np.sort(np.concatenate([test for _, test in folds]))
    metrics: dict[str, Any] = {}
    thresholds = {}
    pipelines = {}
    for name, y in targets.items():
        decisions = np.zeros((len(texts), n_columns(np.unique(y))))
        for (_, test), result in zip(folds, fold_results, strict=True):
            decisions[test] = result[name]
        m = _cross_calibrated_metrics(decisions, y, calibration, weights, target_accuracy)
        thresholds[name] = m.threshold
        if with_metrics:
            metrics[name] = m.as_dict()
        w = None if weights is None else weights[scored]
        classifier = CalibratedSVC()._assemble(svms[name], decisions[scored], y[scored], w)
        pipelines[name] = Pipeline([("features", features), ("classifier", classifier)])
    metrics.update(target_accuracy=target_accuracy, n_samples=len(texts), validation=validation)
    return TrainedModel(pipelines["category"], pipelines["urgency"], thresholds["category"],
                        thresholds["urgency"], metrics=metrics)


Folds = list[tuple[np.ndarray, np.ndarray]]


def _plan(labels: list[np.ndarray]) -> tuple[Folds, Folds, str]:
    """The (train, test) folds to fit, the (calibrate-on, score) pairs over their test parts,
    and how to call the validation."""
    folds = list(stratified_folds(labels, 5))
    if len(labels[0]) <= HOLDOUT_FROM:
        return folds, folds, f"{len(folds)}-fold cross-validation"
    train, held = folds[0]
    halves = [(held[a], held[b]) for a, b in stratified_folds([y[held] for y in labels], 2)]
    return [(train, held)], halves, f"{len(held) / len(labels[0]):.0%} held out"


@dataclass
class _Data:
    texts: list[str]
    targets: dict[str, np.ndarray]
    weights: np.ndarray | None
    views: list[list[str]] | None = None

    def rows(self, chosen: np.ndarray) -> tuple[list[str], list[_Rows], np.ndarray]:
        """Training texts for the texts ``chosen`` (each text, then the views of each); per
        target, which of those rows it learns from, their labels and weights; and every
        row's labels (rows × targets: a view has its text's), which choose the word pairs."""
        idx = chosen.tolist()
        texts = [self.texts[i] for i in idx]
        owners = chosen
        if self.views is not None:
            texts += [v for i in idx for v in self.views[i]]
            owners = np.concatenate([chosen, [i for i in idx for _ in self.views[i]]])
            owners = owners.astype(np.int64)
        out = []
        for name, y in self.targets.items():
            used = np.arange(len(owners) if name in VIEW_TARGETS else len(chosen))
            w = None if self.weights is None else self.weights[owners[used]]
            if w is not None or len(used) > len(chosen):
                w = np.ones(len(used)) if w is None else w
                w[len(chosen):] *= VIEW_WEIGHT
            out.append(_Rows(name, used, y[owners[used]], w))
        labels = np.column_stack([y[owners] for y in self.targets.values()])
        return texts, out, labels


@dataclass
class _Rows:
    target: str
    used: np.ndarray  # rows of the training matrix this target learns from
    y: np.ndarray
    weights: np.ndarray | None


def _final_job(data: _Data) -> tuple[TextFeatures, dict[str, LinearSVC]]:
    with threadpool_limits(1):
        texts, per_target, labels = data.rows(np.arange(len(data.texts)))
        features = build_features()
        x = features.fit_transform(texts, labels)
        svms = {r.target: build_svm().fit(x[r.used], r.y, sample_weight=r.weights)
                for r in per_target}
        return features, svms


def _fold_job(data: _Data, train: np.ndarray, test: np.ndarray) -> dict[str, np.ndarray]:
    """Out-of-fold decision values of every target, from features fitted on ``train`` only."""
    with threadpool_limits(1):
        texts, per_target, labels = data.rows(train)
        features = build_features()
        x_train = features.fit_transform(texts, labels)
        x_test = features.transform([data.texts[i] for i in test])
        out = {}
        for r in per_target:
            svm = build_svm().fit(x_train[r.used], r.y, sample_weight=r.weights)
            out[r.target] = decision_values(svm, x_test, np.unique(data.targets[r.target]))
        return out


def _cross_calibrated_metrics(
    decisions: np.ndarray, y: np.ndarray, pairs: Folds, weights: np.ndarray | None,
    target_accuracy: float,
) -> Metrics:
    """Metrics over the scored samples, each calibrated by a temperature fitted on others
    only."""
    classes = np.unique(y)
    scored = np.sort(np.concatenate([test for _, test in pairs]))
    probs = np.zeros((len(y), len(classes)))
    for fit_on, test in pairs:
        w = None if weights is None else weights[fit_on]
        beta = fit_temperature(decisions[fit_on], y[fit_on], classes, w)
        probs[test] = softmax_probabilities(decisions[test], beta)
    return _metrics(y[scored], classes, probs[scored], target_accuracy)


def cross_validate(
    texts: Sequence[str], labels: Sequence[str], *, target_accuracy: float, folds: int = 5
) -> Metrics:
    """Stratified k-fold metrics of one target, calibrated as ``fit`` calibrates."""
    texts, y = [str(t) for t in texts], np.asarray(labels)
    splits = list(stratified_folds([y], folds))
    decisions = np.zeros((len(texts), n_columns(np.unique(y))))
    data = _Data(texts, {"target": y}, None)
    for train, test in splits:
        decisions[test] = _fold_job(data, train, test)["target"]
    return _cross_calibrated_metrics(decisions, y, splits, None, target_accuracy)


def _metrics(
    y: np.ndarray, classes: np.ndarray, probs: np.ndarray, target_accuracy: float
) -> Metrics:
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
    features = pipeline.named_steps["features"]
    calibrated = pipeline.named_steps["classifier"]
    svm = calibrated.calibrated_classifiers_[0].estimator
    classes = [str(c) for c in svm.classes_]
    row = features.transform([text]).tocsr()
    coef = svm.coef_[classes.index(label)] if len(classes) > 2 else svm.coef_[0] * (
        1 if classes.index(label) == 1 else -1
    )
    if isinstance(features, TextFeatures):
        explained = features.explain(text, row.indices)
        names = [explained.get(j, f"feature #{j}") for j in row.indices]
    else:  # a FeatureUnion of schema-1 models
        all_names = features.get_feature_names_out()
        names = [_pretty_feature(str(all_names[j])) for j in row.indices]
    contributions = [(n, float(v * coef[j]))
                     for n, j, v in zip(names, row.indices, row.data, strict=True)]
    contributions.sort(key=lambda item: abs(item[1]), reverse=True)
    return [(n, round(v, 3)) for n, v in contributions[:k]]


def _pretty_feature(name: str) -> str:
    kind, _, value = name.partition("__")
    if kind == "chars":
        return f"chars '{value}'"
    if kind == "words":
        return f"word '{value}'"
    return value
