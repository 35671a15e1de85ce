"""The classifier: scikit-learn's calibration and folds, deterministic training, honest
out-of-fold scores (each fold refits the features; no view of a validation message in its
training), calibrated probabilities, predictions that report every cue with its words (the
ranking decides what they mean), and explanations a person recognises."""

from __future__ import annotations

import pickle
import random

import numpy as np
import pytest
from scipy import sparse
from sklearn.svm import LinearSVC

from supportcli.model import classifier, features, training
from supportcli.model.classifier import TrainedModel, build_svm, folds, temperature
from supportcli.model.evaluation import threshold_for_accuracy
from supportcli.model.text import ModelInput

TOPICS = {
    "shipping_delivery": ["parcel", "courier", "tracking", "delivery", "shipped", "Paket"],
    "returns_refunds": ["return", "refund", "broken", "label", "exchange", "Erstattung"],
    "account_access": ["password", "login", "reset", "account", "locked", "Konto"],
}
URGENCY = {"urgent": "I need it by tomorrow, please hurry", "normal": "no rush, whenever you can"}
FILLER = ["hello", "thanks", "regards", "team", "order", "please", "today", "week", "shop"]


def corpus(n_per_class: int = 12, seed: int = 0) -> tuple[list[str], list[str], list[str]]:
    rng = random.Random(seed)
    texts, cats, urgs = [], [], []
    for category, words in TOPICS.items():
        for i in range(n_per_class):
            urgency = "urgent" if i % 3 == 0 else "normal"
            body = [rng.choice(words) for _ in range(4)] + [rng.choice(FILLER) for _ in range(4)]
            rng.shuffle(body)
            texts.append(f"Question {i}\n{' '.join(body)}. {URGENCY[urgency]}")
            cats.append(category)
            urgs.append(urgency)
    return texts, cats, urgs


@pytest.fixture(scope="module")
def trained() -> TrainedModel:
    return training.fit(*corpus())


# -- thresholds -------------------------------------------------------------------------------


def test_threshold_for_accuracy_on_known_answers() -> None:
    confidence = np.array([0.9, 0.8, 0.7, 0.6, 0.5])
    correct = np.array([True, True, True, False, False])
    assert threshold_for_accuracy(confidence, correct, 1.0) == 0.7
    assert threshold_for_accuracy(confidence, correct, 0.75) == 0.6  # top 4: 3/4 right
    assert threshold_for_accuracy(confidence, correct, 0.6) == 0.5  # all: 3/5 right
    nothing = threshold_for_accuracy(confidence, ~correct, 0.9)
    assert nothing > confidence.max()  # the target is unreachable: review everything
    assert threshold_for_accuracy(np.array([]), np.array([], bool), 0.9) == 0.0


# -- calibration ------------------------------------------------------------------------------


def _blobs(n: int, classes: int, spread: float, seed: int) -> tuple[sparse.csr_matrix, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = np.arange(n) % classes
    centres = np.eye(classes, 5) * 3
    x = centres[y] + rng.normal(scale=spread, size=(n, 5))
    return sparse.csr_matrix(x), np.array([f"c{k}" for k in y])


def _ece(clf: object, x: sparse.csr_matrix, y: np.ndarray) -> tuple[float, float]:
    """Expected calibration error of the top class (10 bins) and accuracy."""
    from supportcli.model.evaluation import calibration

    probs = clf.predict_proba(x)  # type: ignore[attr-defined]
    correct = clf.classes_[probs.argmax(axis=1)] == y  # type: ignore[attr-defined]
    return calibration(probs.max(axis=1), correct)[0], float(correct.mean())


def _calibrated_svm(x: sparse.csr_matrix, y: np.ndarray) -> tuple[object, LinearSVC]:
    """The model's recipe: a temperature fitted on out-of-fold SVM scores, and the SVM."""
    from sklearn.model_selection import cross_val_predict

    scores = cross_val_predict(build_svm(), x, y, cv=folds(y, 3), method="decision_function")
    return temperature(np.unique(y)).fit(scores, y), build_svm().fit(x, y)


@pytest.mark.parametrize(("classes", "limit"), [(2, 0.03), (3, 0.05)])
def test_calibration_is_honest_on_unseen_data(classes: int, limit: float) -> None:
    """Temperature scaling on out-of-fold scores: among messages it is 70% sure about, about
    70% are right (expected calibration error on fresh data from the same source), as with
    scikit-learn's own CalibratedClassifierCV(ensemble=False) on the same folds."""
    from sklearn.calibration import CalibratedClassifierCV

    from supportcli.model.evaluation import calibration

    x, y = _blobs(3000, classes, 1.6, seed=7)  # overlapping classes
    test_x, test_y = _blobs(3000, classes, 1.6, seed=8)
    calibrator, svm = _calibrated_svm(x, y)
    probs = calibrator.predict_proba(svm.decision_function(test_x))  # type: ignore[attr-defined]
    correct = svm.classes_[probs.argmax(axis=1)] == test_y
    ece = calibration(probs.max(axis=1), correct)[0]
    assert ece < limit
    assert 0.6 < correct.mean() < 0.97  # neither trivial nor hopeless
    reference = CalibratedClassifierCV(build_svm(), method="temperature", cv=folds(y, 3),
                                       ensemble=False).fit(x, y)
    assert np.allclose(reference.predict_proba(test_x), probs)


def test_calibration_never_overrules_the_svm() -> None:
    """The predicted class is the SVM's (balanced class weights keep rare classes found);
    calibration only sets how sure."""
    x, y = _blobs(600, 4, 1.6, seed=3)
    y = np.where(np.arange(600) % 10 == 0, "rare", y)
    calibrator, svm = _calibrated_svm(x, y)
    probs = calibrator.predict_proba(svm.decision_function(x))  # type: ignore[attr-defined]
    assert (svm.classes_[probs.argmax(axis=1)] == svm.predict(x)).all()


def test_the_models_probabilities_are_honest_out_of_fold(trained: TrainedModel) -> None:
    from supportcli.model.evaluation import calibration

    for target in classifier.TARGETS:
        oof = trained.out_of_fold[target]
        right = oof.classes[oof.probabilities.argmax(axis=1)] == oof.labels
        assert calibration(oof.probabilities.max(axis=1), right)[0] < 0.15
        assert trained.metrics[target]["ece"] == pytest.approx(
            calibration(oof.probabilities.max(axis=1), right)[0], abs=1e-4)


# -- folds and training -----------------------------------------------------------------------


def test_folds_partition_stratify_and_repeat() -> None:
    _, cats, urgs = corpus()
    labels = np.column_stack([cats, urgs])
    first, again = folds(labels, 5), folds(labels, 5)
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(first, again, strict=True))
    assert sorted(np.concatenate([test for _, test in first]).tolist()) == list(range(len(cats)))
    for train, test in first:
        for column in labels.T:
            assert set(column[test]) == set(column) == set(column[train])
    assert len(folds(np.array(["a"] * 9 + ["b"] * 3), 5)) == 3  # at most the smallest class


@pytest.fixture
def fitted_on(monkeypatch: pytest.MonkeyPatch) -> list[set[str]]:
    """The texts every featurizer was fitted on, in order."""
    seen: list[set[str]] = []
    original = features.CharGrams.fit_transform

    def recording(self: features.CharGrams, items: list[ModelInput], y: object = None) -> object:
        seen.append({i.text for i in items})
        return original(self, items)

    monkeypatch.setattr(features.CharGrams, "fit_transform", recording)
    return seen


def test_each_fold_fits_its_own_features_without_its_validation_texts_or_their_views(
    fitted_on: list[set[str]],
) -> None:
    texts, cats, urgs = corpus()
    views = [[f"view of text {i}"] for i in range(len(texts))]
    trained = training.fit(texts, cats, urgs, views=views, n_jobs=1)
    splits = folds(np.column_stack([cats, urgs]), 5)
    every = set(texts) | {v[0] for v in views}
    expected = [every] + [{texts[i] for i in train} | {views[i][0] for i in train}
                          for train, _ in splits]  # the final model, then one per fold
    assert sorted(map(sorted, fitted_on)) == sorted(map(sorted, expected))
    assert trained.metrics["validation"] == "5-fold cross-validation"
    per_class = trained.metrics["category"]["per_class"]
    assert sum(c["support"] for c in per_class.values()) == len(texts)  # views are not scored


def test_views_teach_the_category_only(monkeypatch: pytest.MonkeyPatch) -> None:
    rows: list[int] = []

    class Recording(LinearSVC):
        def fit(self, x: object, y: object, sample_weight: object = None) -> Recording:
            rows.append(len(y))  # type: ignore[arg-type]
            return super().fit(x, y, sample_weight=sample_weight)  # type: ignore[return-value]

    monkeypatch.setattr(classifier, "build_svm", lambda: Recording(class_weight="balanced"))
    texts, cats, urgs = corpus()
    classifier.SupportModel().fit(texts, np.column_stack([cats, urgs]),
                                  views=[["short one", "short two"]] * len(texts))
    assert rows == [3 * len(texts), len(texts)]  # category: messages and views; urgency: not


def test_training_is_deterministic(trained: TrainedModel) -> None:
    """Also with the folds in two worker processes beside the final fit (as for big sets)."""
    again = training.fit(*corpus(), n_jobs=2)
    texts = corpus(seed=5)[0]
    assert again.metrics == trained.metrics and again.thresholds == trained.thresholds
    for a, b in zip(again.probabilities(texts), trained.probabilities(texts), strict=True):
        assert np.array_equal(a, b)
    assert again.predict(texts, "m") == trained.predict(texts, "m")


def test_metrics_thresholds_and_out_of_fold_probabilities(trained: TrainedModel) -> None:
    for target in classifier.TARGETS:
        m = trained.metrics[target]
        assert 0.0 <= m["macro_f1"] <= 1.0 and 0.0 <= m["coverage"] <= 1.0
        assert m["per_class"] and m["threshold"] == pytest.approx(trained.thresholds[target],
                                                                 abs=1e-4)
        oof = trained.out_of_fold[target]
        assert oof.probabilities.shape == (36, len(oof.classes))
        assert np.allclose(oof.probabilities.sum(axis=1), 1.0)
    assert trained.metrics["n_samples"] == 36
    assert trained.metrics["category"]["macro_f1"] > 0.8  # the topics are easy to tell apart
    assert list(trained.out_of_fold["urgency"].classes) == trained.urgencies


def test_sample_weights_are_used() -> None:
    texts, cats, urgs = corpus()
    weights = [3.0 if c == "account_access" else 1.0 for c in cats]
    weighted = training.fit(texts, cats, urgs, sample_weight=weights, validate=False)
    plain = training.fit(texts, cats, urgs, validate=False)
    probe = corpus(seed=11)[0]
    assert not np.array_equal(weighted.probabilities(probe)[0], plain.probabilities(probe)[0])
    assert "category" not in weighted.metrics and weighted.thresholds["category"] == 0.0


# -- predictions and explanations -------------------------------------------------------------


def test_predictions_report_every_cue_with_its_words_and_force_nothing(
    trained: TrainedModel,
) -> None:
    items = [
        "Refund\nThe return label is broken. I will file a chargeback with my bank.",
        ModelInput("Refund\nThe return label is broken. I will file a chargeback.",
                   automated="Auto-Submitted: auto-generated"),
        "Password\nPlease reset my login, no rush, whenever you can",
    ]
    first, automated, calm = trained.predict(items, "model-1")
    assert first.category == "returns_refunds"
    assert [str(h) for h in first.cues] == [
        "chargeback or payment dispute: 'file a chargeback with my bank'",
        "money already taken: 'Refund'"]
    probs = trained.probabilities(items[:1])[1][0]
    assert first.urgency == trained.urgencies[int(probs.argmax())]  # the model's own, unforced
    assert "automated mail" in [h.cue for h in automated.cues]
    assert calm.category == "account_access" and calm.cues == ()
    for p in (first, automated, calm):
        assert p.model_id == "model-1"
        assert sum(p.category_probs.values()) == pytest.approx(1.0, abs=1e-3)
        assert p.category_confidence == pytest.approx(p.category_probs[p.category], abs=1e-4)
    assert trained.predict([], "m") == []


def test_pickled_model_predicts_the_same(trained: TrainedModel) -> None:
    loaded = pickle.loads(pickle.dumps(trained))
    texts = corpus(seed=3)[0]
    assert loaded.predict(texts, "m") == trained.predict(texts, "m")


def test_explanations_name_words_phrases_and_cues_a_person_recognises(
    trained: TrainedModel,
) -> None:
    text = "Tracking\nThe courier lost my parcel and the tracking shows nothing. It is a disgrace!"
    top = trained.explain(text, "category", "shipping_delivery", k=8)
    assert top == sorted(top, key=lambda item: -abs(item[1]))
    assert any(name in ("word 'courier'", "word 'parcel'", "word 'tracking'") for name, _ in top)
    for name, _ in top:
        kind, quoted = name.split(" ", 1)
        assert kind in ("word", "phrase", "words") or " cue: '" in name, name
        for fragment in quoted.split("'")[1::2]:
            assert fragment.lower() in text.lower(), name
            assert fragment not in ("the", "and", "is", "it", "a"), name
    from datetime import UTC, datetime

    sent = datetime(2026, 11, 19, 10, tzinfo=UTC)
    urgent = trained.explain(ModelInput("I need it by tomorrow, please hurry", sent), "urgency",
                             "urgent", k=20)
    assert "deadline within a day cue: 'by tomorrow'" in [name for name, _ in urgent]
    assert all("zz" not in name and "chars" not in name for name, _ in urgent)


def test_build_pipeline_works_with_scikit_learn_cross_validation() -> None:
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    texts, cats, _ = corpus()
    probs = cross_val_predict(classifier.build_pipeline(), texts, np.asarray(cats),
                              cv=StratifiedKFold(3), method="predict_proba")  # fmt: skip
    assert probs.shape == (len(texts), 3)
    assert np.allclose(probs.sum(axis=1), 1.0)
