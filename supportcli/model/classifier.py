"""The classifier: one featurization shared by the two targets, a linear SVM per target whose
scores become probabilities by temperature scaling (scikit-learn's ``CalibratedClassifierCV``,
fitted on out-of-fold scores: the SVM trained on everything picks the class, calibration only
says how sure), predictions with the cues that fired, and explanations a person recognises.
"""

from __future__ import annotations

import re
import warnings
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.calibration import CalibratedClassifierCV
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS
from sklearn.frozen import FrozenEstimator
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.svm import LinearSVC

from ..records import Prediction
from . import cues
from .features import build_features
from .text import ModelInput, as_input

SEED = 0
TARGETS = ("category", "urgency")
VIEW_WEIGHT = 0.3  # a short view of a sample counts this much of its message's weight
BATCH = 4096  # inputs featurized at once when predicting
URGENT_REVIEW_SHARE = 0.5  # p(urgent) at half the urgent cut, not called urgent: review


def build_svm() -> LinearSVC:
    # balanced class weights keep rare classes such as "urgent" found
    return LinearSVC(C=0.7, class_weight="balanced", random_state=SEED)


def build_pipeline() -> Pipeline:
    """Features + calibrated SVM for one target (benchmarks and the label audit use it)."""
    cv = StratifiedKFold(3, shuffle=True, random_state=SEED)
    calibrated = CalibratedClassifierCV(build_svm(), method="temperature", cv=cv, ensemble=False)
    return Pipeline([("features", build_features()), ("classifier", calibrated)])


def folds(labels: Any, k: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Seeded ``StratifiedKFold`` over rows of labels (texts × targets: stratified on their
    combinations, so that every target's classes spread over the folds), with ``k`` lowered
    to the smallest class of any target (at least 2)."""
    rows = np.asarray(labels, dtype=object).reshape(len(labels), -1)
    smallest = min(min(Counter(column.tolist()).values()) for column in rows.T)
    joint = ["\x1f".join(map(str, row)) for row in rows]
    with warnings.catch_warnings():  # a rare combination is spread as far as it goes
        warnings.filterwarnings("ignore", "The least populated class", UserWarning)
        splitter = StratifiedKFold(max(2, min(k, smallest)), shuffle=True, random_state=SEED)
        return list(splitter.split(joint, joint))


class Scores(ClassifierMixin, BaseEstimator):
    """Scores computed elsewhere, passed through (for calibration on out-of-fold scores)."""

    def fit(self, X: Any, y: Any) -> Scores:
        self.classes_ = np.unique(y)
        return self

    def decision_function(self, X: Any) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        return X.reshape(len(X), -1)[:, 0] if len(self.classes_) == 2 else X

    def predict(self, X: Any) -> np.ndarray:
        scores = self.decision_function(X)
        return self.classes_[(scores > 0).astype(int) if scores.ndim == 1 else scores.argmax(1)]


class Temperature(CalibratedClassifierCV):
    """Calibration of fixed scores: sample weights weigh the calibration, all there is to fit
    (scikit-learn warns that they cannot reach the frozen estimator: by design here)."""

    def fit(self, X: Any, y: Any, sample_weight: Any = None, **params: Any) -> Temperature:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Since FrozenEstimator does not appear to accept")
            # the frozen scores are the same in every fold: a rare class does not matter
            warnings.filterwarnings("ignore", "The least populated class", UserWarning)
            return super().fit(X, y, sample_weight, **params)


def temperature(classes: np.ndarray) -> Temperature:
    """Temperature scaling (``softmax(beta * scores)``) of the scores it is fitted on."""
    return Temperature(FrozenEstimator(Scores().fit(None, classes)), method="temperature")


class SupportModel(BaseEstimator):
    """Both targets (columns of ``y``: category, urgency) on one featurization (its word pairs
    chosen for both), a linear SVM each. ``views`` (per message, short texts its labels hold
    for) train the first target only, at ``view_weight``. ``calibrate`` sets the temperatures."""

    def __init__(self, view_weight: float = VIEW_WEIGHT) -> None:
        self.view_weight = view_weight

    def fit(self, X: Sequence[Any], y: Any, sample_weight: Any = None,
            views: Any = None) -> SupportModel:
        items, n = [as_input(x) for x in X], len(X)
        y, owners = np.asarray(y, dtype=object).reshape(n, -1), np.arange(n)
        if views is not None:
            extra = [(i, v) for i, texts in enumerate(views) for v in texts]
            items += [replace(items[i], text=v) for i, v in extra]
            owners = np.concatenate([owners, [i for i, _ in extra]]).astype(np.int64)
        given = np.ones(n) if sample_weight is None else np.asarray(sample_weight, np.float64)
        weights = given[owners] * np.where(np.arange(len(owners)) < n, 1.0, self.view_weight)
        self.features_ = build_features()
        x = self.features_.fit_transform(items, y[owners])
        self.svms_ = []
        for target in range(y.shape[1]):
            used = np.arange(len(owners) if target == 0 else n)
            labels = np.asarray(y[owners[used], target].tolist())  # str, or int in a CV fold
            self.svms_.append(build_svm().fit(x[used], labels, sample_weight=weights[used]))
        self.classes_ = [svm.classes_ for svm in self.svms_]
        return self

    def decision_function(self, X: Sequence[Any]) -> list[np.ndarray]:
        x = self.features_.transform([as_input(i) for i in X])
        return [svm.decision_function(x) for svm in self.svms_]

    def calibrate(self, scores: list[np.ndarray], y: Any, sample_weight: Any = None) -> None:
        """Each target's temperature, fitted on its out-of-fold ``scores``."""
        y = np.asarray(y, dtype=object).reshape(len(scores[0]), -1)
        self.calibrators_ = [temperature(c).fit(s, np.asarray(y[:, t].tolist()), sample_weight)
                             for t, (c, s) in enumerate(zip(self.classes_, scores, strict=True))]

    def predict_proba(self, X: Sequence[Any]) -> list[np.ndarray]:
        scores = self.decision_function(X)
        return [c.predict_proba(s) for c, s in zip(self.calibrators_, scores, strict=True)]

    def predict(self, X: Sequence[Any]) -> np.ndarray:
        """Each target's class (texts × targets): the SVM's, which calibration never changes."""
        x = self.features_.transform([as_input(i) for i in X])
        return np.column_stack([svm.predict(x) for svm in self.svms_])


@dataclass
class OutOfFold:
    """One target's probabilities, each message's from a model trained without it."""

    classes: np.ndarray
    labels: np.ndarray
    probabilities: np.ndarray


@dataclass
class TrainedModel:
    estimator: SupportModel
    thresholds: dict[str, float]  # per target: below this confidence, "needs review"
    metrics: dict[str, Any] = field(default_factory=dict)
    out_of_fold: dict[str, OutOfFold] = field(default_factory=dict)
    # recall first: p(urgent) and p(urgent) + p(high) from which urgent and high are called
    urgency_cuts: dict[str, float] = field(default_factory=dict)

    def decide_urgency(self, probs: dict[str, float]) -> str:
        """Urgent from ``urgency_cuts["urgent"]``, else high from the urgent-or-high cut, else
        the likelier of the rest: a missed urgent message costs more than a false alarm."""
        cuts, p_u = self.urgency_cuts, probs.get("urgent", 0.0)
        if cuts and p_u >= cuts["urgent"]:
            return "urgent"
        if cuts and p_u + probs.get("high", 0.0) >= cuts["high"]:
            return "high"
        rest = {k: v for k, v in probs.items() if not cuts or k not in ("urgent", "high")}
        return max(rest, key=lambda k: rest[k])

    def urgent_review(self) -> float:
        """From this p(urgent) on, a message not called urgent is marked for review."""
        return URGENT_REVIEW_SHARE * self.urgency_cuts.get("urgent", 2.0)

    @property
    def categories(self) -> list[str]:
        return [str(c) for c in self.estimator.classes_[0]]

    @property
    def urgencies(self) -> list[str]:
        return [str(c) for c in self.estimator.classes_[1]]

    def probabilities(self, items: Sequence[ModelInput | str]) -> list[np.ndarray]:
        """Calibrated probabilities (columns: ``categories``, then ``urgencies``)."""
        return self.estimator.predict_proba(items)

    def predict(self, items: Sequence[ModelInput | str], model_id: str) -> list[Prediction]:
        inputs = [as_input(i) for i in items]
        out: list[Prediction] = []
        for start in range(0, len(inputs), BATCH):
            out.extend(self._predict(inputs[start : start + BATCH], model_id))
        return out

    def _predict(self, batch: list[ModelInput], model_id: str) -> list[Prediction]:
        cat_probs, urg_probs = self.probabilities(batch)
        cats, urgs = self.categories, self.urgencies
        limit_c, limit_u = self.thresholds["category"], self.thresholds["urgency"]
        review, out = self.urgent_review(), []
        for cp, up, rounded_c, rounded_u, hits in zip(
            cat_probs.tolist(), urg_probs.tolist(), cat_probs.round(4).tolist(),
            urg_probs.round(4).tolist(), cues.find(batch), strict=True,
        ):
            ci, by_urgency = cp.index(max(cp)), dict(zip(urgs, up, strict=True))
            ui = urgs.index(self.decide_urgency(by_urgency))
            notable = urgs[ui] != "urgent" and by_urgency.get("urgent", 0.0) >= review
            out.append(Prediction(
                cats[ci], cp[ci], urgs[ui], up[ui],
                cp[ci] < limit_c or up[ui] < limit_u or notable,
                model_id, dict(zip(cats, rounded_c, strict=True)),
                dict(zip(urgs, rounded_u, strict=True)), hits))
        return out

    def explain(self, item: ModelInput | str, target: str, label: str,
                k: int = 8) -> list[tuple[str, float]]:
        """What in ``item`` pushed hardest towards (+) or away from (−) ``label``: words,
        phrases, word pairs and cues with the words they matched. Character n-grams count for
        the words holding them; function words and bare numbers are left out."""
        item = as_input(item)
        svm = self.estimator.svms_[TARGETS.index(target)]
        row = self.estimator.features_.transform([item]).tocsr()
        weights = row.data * _coef(svm, label)[row.indices]
        names = self.estimator.features_.get_feature_names_out()[row.indices]
        totals: dict[str, float] = defaultdict(float)
        chars = self.estimator.features_.named_transformers["chars"]
        for label_, value in _readable(item, names, weights, chars):
            totals[label_] += value
        best = sorted(totals.items(), key=lambda kv: -abs(kv[1]))[:k]
        return [(name, round(value, 3)) for name, value in best]


def _coef(svm: LinearSVC, label: str) -> np.ndarray:
    """The SVM's weights towards ``label``."""
    index = [str(c) for c in svm.classes_].index(label)
    return svm.coef_[index] if len(svm.coef_) > 1 else svm.coef_[0] * (1 if index else -1)


_OTHER_WORDS = ("der die das und oder ist ein eine ich sie wir nicht mit von den dem les une vous "
                "nous pas est des los las una por para que che per non hello dear thanks regards")
FUNCTION_WORDS = frozenset(ENGLISH_STOP_WORDS) | frozenset(_OTHER_WORDS.split())
_WORD = re.compile(r"\w+(?:['-]\w+)*")


def _meaningful(words: Sequence[str], every: bool = False) -> bool:
    """Not only (``every``: no) function words, numbers or fragments: a reader knows it."""
    known = [len(w) > 2 and not w.isdigit() and w not in FUNCTION_WORDS for w in words]
    return all(known) if every else any(known)


def _readable(item: ModelInput, names: np.ndarray, weights: np.ndarray,
              chars: Any) -> list[tuple[str, float]]:
    """(readable name, contribution) per column; n-grams shared out over their words."""
    found = {hit.cue: hit for hit in cues.hits(item)}
    out: list[tuple[str, float]] = []
    grams: dict[str, float] = {}
    for name, value in zip(names.tolist(), weights.tolist(), strict=True):
        block, _, feature = name.partition("__")
        words = feature.split(" + ") if block == "pairs" else feature.split()
        if block == "chars":
            grams[feature] = value
        elif block == "cues" and feature in found:
            out.append((f"{feature} cue: '{found[feature].text}'", value))
        elif block in ("words", "pairs") and _meaningful(words, every=block == "pairs"):
            kind = "words" if block == "pairs" else "word" if len(words) == 1 else "phrase"
            shown = " + ".join(f"'{w}'" for w in words) if block == "pairs" else f"'{feature}'"
            out.append((f"{kind} {shown}", value))
    return out + _char_words(item, grams, chars)


def _char_words(item: ModelInput, grams: dict[str, float], chars: Any) -> list[tuple[str, float]]:
    """Each character n-gram's contribution shared out over the words of the text holding it."""
    analyze = chars.grams_.build_analyzer()
    chunks = item.text.lower().split()
    held = [(chunk, [g for g in analyze(chunk) if g in grams]) for chunk in chunks]
    count = Counter(gram for _, found in held for gram in found)
    return [(f"word '{' '.join(words)}'", sum(grams[g] / count[g] for g in found))
            for chunk, found in held if found and _meaningful(words := _WORD.findall(chunk))]
