"""The linear SVM of each target and its calibrated probabilities: ``CalibratedSVC`` (temperature
scaling fitted on out-of-fold decision values; models saved before it keep their per-class
Platt sigmoids) and the seeded stratified folds that the model's cross-validation uses too.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import expit, log_softmax, softmax
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.svm import LinearSVC

SEED = 0


def build_svm(seed: int = SEED) -> LinearSVC:
    return LinearSVC(C=0.7, class_weight="balanced", random_state=seed)


@dataclass
class _Calibrated:
    """Mirrors scikit-learn's calibrated pair: the fitted SVM and its calibration."""

    estimator: LinearSVC
    sigmoids: np.ndarray  # older models: one Platt sigmoid per column, (columns, 2)
    beta: float | None = None  # inverse temperature: p = softmax(beta * decision values)


class CalibratedSVC(ClassifierMixin, BaseEstimator):
    """A linear SVM whose decision values become probabilities by temperature scaling (Guo et
    al. 2017; scikit-learn's ``method="temperature"``): ``softmax(beta * decision)``, one
    ``beta`` fitted on out-of-fold decision values (like ``CalibratedClassifierCV(
    ensemble=False)``). One shared scale never reorders classes, so the predicted class is
    the SVM's own (trained with balanced class weights, which is what keeps rare classes such
    as "urgent" found) and calibration only says how sure it is. ``fit`` makes its own folds
    on fixed features; ``model.fit`` instead assembles it from folds that refit the features
    too."""

    def __init__(self, cv: int = 3, seed: int = SEED) -> None:
        self.cv = cv
        self.seed = seed

    def fit(self, x: Any, y: Any, sample_weight: Any = None) -> CalibratedSVC:
        y = np.asarray(y)
        classes = np.unique(y)
        decisions = np.zeros((len(y), n_columns(classes)))
        for train, test in stratified_folds([y], self.cv):
            w = None if sample_weight is None else np.asarray(sample_weight)[train]
            svm = build_svm(self.seed).fit(x[train], y[train], sample_weight=w)
            decisions[test] = decision_values(svm, x[test], classes)
        svm = build_svm(self.seed).fit(x, y, sample_weight=sample_weight)
        return self._assemble(svm, decisions, y, sample_weight)

    def _assemble(self, svm: LinearSVC, decisions: np.ndarray, y: np.ndarray,
                  weights: Any) -> CalibratedSVC:
        self.classes_ = svm.classes_
        self.n_features_in_ = svm.n_features_in_
        beta = fit_temperature(decisions, y, self.classes_, weights)
        self.calibrated_classifiers_ = [_Calibrated(svm, np.zeros((0, 2)), beta)]
        return self

    def decision_function(self, x: Any) -> np.ndarray:
        return self.calibrated_classifiers_[0].estimator.decision_function(x)

    def predict_proba(self, x: Any) -> np.ndarray:
        pair = self.calibrated_classifiers_[0]
        return self.probabilities_from(decision_values(pair.estimator, x, self.classes_))

    def probabilities_from(self, scores: np.ndarray) -> np.ndarray:
        """``predict_proba`` given the SVM's raw scores (samples × coef rows)."""
        pair = self.calibrated_classifiers_[0]
        beta = getattr(pair, "beta", None)
        if beta is None:
            return _sigmoid_probabilities(scores, pair.sigmoids)
        return softmax_probabilities(scores, beta)

    def predict(self, x: Any) -> np.ndarray:
        return self.classes_[np.argmax(self.predict_proba(x), axis=1)]


def n_columns(classes: np.ndarray) -> int:
    return 1 if len(classes) == 2 else len(classes)


def decision_values(svm: LinearSVC, x: Any, classes: np.ndarray) -> np.ndarray:
    """Decision values as (samples, columns) over ``classes``; a class the SVM never saw
    gets a value far below any other."""
    values = svm.decision_function(x)
    if len(classes) == 2:
        return values.reshape(-1, 1) if len(svm.classes_) == 2 else np.full((x.shape[0], 1), -10.0)
    out = np.full((x.shape[0], len(classes)), -10.0)
    out[:, np.searchsorted(classes, svm.classes_)] = values if values.ndim == 2 else values[:, None]
    return out


def _logits(decisions: np.ndarray) -> np.ndarray:
    """Per-class logits; a binary SVM's one column d becomes (-d, d), as in scikit-learn."""
    return np.hstack([-decisions, decisions]) if decisions.shape[1] == 1 else decisions


def fit_temperature(decisions: np.ndarray, y: np.ndarray, classes: np.ndarray,
                    weights: Any = None) -> float:
    """The inverse temperature ``beta`` that minimises the (weighted) log loss of
    ``softmax(beta * decisions)`` on out-of-fold decision values: a convex problem in one
    variable, solved over log(beta) in [-10, 10]. The targets are smoothed as Platt smooths
    his, (n + 1) / (n + 2) for the true class, so that classes the folds happen to separate
    perfectly do not drive beta to the bound and every confidence to 1. No signal (constant
    decisions, no weight): beta 1."""
    logits = _logits(decisions)
    truth = np.searchsorted(classes, y)
    w = np.ones(len(y)) if weights is None else np.asarray(weights, dtype=np.float64)
    if len(y) == 0 or w.sum() <= 0 or np.ptp(logits, axis=1).max(initial=0.0) == 0:
        return 1.0
    k = logits.shape[1]
    n = float(w.sum())
    targets = np.full(logits.shape, 1 / (n + 2) / (k - 1))
    targets[np.arange(len(y)), truth] = (n + 1) / (n + 2)

    def loss(log_beta: float) -> float:
        return float(-(w * (targets * log_softmax(np.exp(log_beta) * logits, axis=1)).sum(1)).sum())

    found = minimize_scalar(loss, bounds=(-10.0, 10.0), method="bounded",
                            options={"xatol": 1e-6})
    return float(np.exp(found.x))


def softmax_probabilities(decisions: np.ndarray, beta: float) -> np.ndarray:
    return softmax(beta * _logits(decisions), axis=1)


def _sigmoid_probabilities(decisions: np.ndarray, sigmoids: np.ndarray) -> np.ndarray:
    """Probabilities of an older model, calibrated by per-column Platt sigmoids."""
    p = expit(-(decisions * sigmoids[:, 0] + sigmoids[:, 1]))
    if p.shape[1] == 1:
        return np.hstack([1 - p, p])
    total = p.sum(axis=1, keepdims=True)
    out = np.divide(p, total, out=np.full_like(p, 1 / p.shape[1]), where=total != 0)
    out[(out > 1.0) & (out <= 1.0 + 1e-5)] = 1.0
    return out


def stratified_folds(
    labels: list[np.ndarray], folds: int
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Seeded folds stratified on the first label array (and, within it, on the next ones):
    shuffle, sort by the labels, deal the sorted samples round-robin."""
    n = len(labels[0])
    smallest = min(int(np.unique(y, return_counts=True)[1].min()) for y in labels)
    k = max(2, min(folds, smallest))
    perm = np.random.RandomState(SEED).permutation(n)
    keys = [np.unique(y, return_inverse=True)[1][perm] for y in reversed(labels)]
    fold = np.empty(n, np.int64)
    fold[perm[np.lexsort(keys)]] = np.arange(n) % k
    for i in range(k):
        yield np.flatnonzero(fold != i), np.flatnonzero(fold == i)
