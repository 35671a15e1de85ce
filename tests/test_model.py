"""The classifiers: thresholds and calibration where the answer is known, deterministic
training with one featurization per fold shared by both targets, honest folds, predictions
with cue-forced urgency, explanations and compatibility with the scikit-learn API."""

from __future__ import annotations

import pickle
import random

import numpy as np
import pytest
from scipy import sparse

from supportcli import classifier, model
from supportcli.cues import AUTOMATED_MARK
from supportcli.features import TextFeatures
from supportcli.model import CalibratedSVC, threshold_for_accuracy

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
def trained() -> model.TrainedModel:
    return model.fit(*corpus())


# -- thresholds -------------------------------------------------------------------------------


def test_threshold_for_accuracy_on_known_answers() -> None:
    confidence = np.array([0.9, 0.8, 0.7, 0.6, 0.5])
    correct = np.array([True, True, True, False, False])
    assert threshold_for_accuracy(confidence, correct, 1.0) == 0.7
    assert threshold_for_accuracy(confidence, correct, 0.75) == 0.6  # top 4: 3/4 right
    assert threshold_for_accuracy(confidence, correct, 0.6) == 0.5  # all: 3/5 right
    shuffled = np.array([2, 0, 4, 1, 3])
    assert threshold_for_accuracy(confidence[shuffled], correct[shuffled], 0.75) == 0.6
    nothing = threshold_for_accuracy(confidence, ~correct, 0.9)
    assert nothing > confidence.max()  # the target is unreachable: review everything
    assert threshold_for_accuracy(np.array([]), np.array([], bool), 0.9) == 0.0


def test_threshold_reaches_the_target_on_synthetic_calibrated_scores() -> None:
    rng = np.random.default_rng(0)
    confidence = rng.uniform(0.3, 1.0, 20_000)
    correct = rng.uniform(size=confidence.size) < confidence  # P(correct) == confidence
    threshold = threshold_for_accuracy(confidence, correct, 0.9)
    covered = confidence >= threshold
    assert correct[covered].mean() >= 0.9
    # the mean of U(t, 1) is 0.9 at t = 0.8: the threshold sits there, give or take noise
    assert 0.77 < threshold < 0.83


# -- calibration ------------------------------------------------------------------------------


@pytest.mark.parametrize(("columns", "beta"), [(1, 1.5), (4, 0.7), (4, 3.0)])
def test_temperature_recovers_a_known_scale(columns: int, beta: float) -> None:
    """Labels drawn from softmax(beta * decisions): the fitted beta is that beta."""
    rng = np.random.default_rng(1)
    d = rng.normal(scale=2.0, size=(40_000, columns))
    logits = np.hstack([-d, d]) if columns == 1 else d
    p = np.exp(beta * logits)
    p /= p.sum(axis=1, keepdims=True)
    y = (rng.uniform(size=(len(d), 1)) > p.cumsum(axis=1)).sum(axis=1)
    classes = np.arange(logits.shape[1])
    assert classifier.fit_temperature(d, y, classes) == pytest.approx(beta, rel=0.05)
    # weights count like repeated rows
    twice = classifier.fit_temperature(
        np.vstack([d, d[:100]]), np.concatenate([y, y[:100]]), classes
    )
    weights = np.ones(len(y))
    weights[:100] = 2
    assert classifier.fit_temperature(d, y, classes, weights) == pytest.approx(twice, rel=1e-4)


def test_temperature_stays_finite_when_folds_separate_the_classes() -> None:
    rng = np.random.default_rng(0)
    d = rng.normal(size=(200, 3))
    y = d.argmax(axis=1)
    d[np.arange(200), y] += 3.0  # every out-of-fold decision right, by a wide margin
    beta = classifier.fit_temperature(d, y, np.arange(3))
    assert 0.1 < beta < 20
    near_the_boundary = classifier.softmax_probabilities(np.array([[0.1, -0.9, -1.0]]), beta)
    assert near_the_boundary.max() < 0.99
    assert classifier.fit_temperature(np.zeros((9, 3)), np.arange(9) % 3, np.arange(3)) == 1.0


def test_models_calibrated_by_sigmoids_before_still_give_their_probabilities() -> None:
    x, y = _blobs(300, 3, 1.0, seed=4)
    clf = CalibratedSVC().fit(x, y)
    old = clf.calibrated_classifiers_[0]
    sigmoids = np.array([[-2.0, 0.1], [-1.0, 0.0], [-3.0, -0.2]])
    clf.calibrated_classifiers_ = [model._Calibrated(old.estimator, sigmoids)]  # no beta
    d = old.estimator.decision_function(x)
    p = 1 / (1 + np.exp(d * sigmoids[:, 0] + sigmoids[:, 1]))
    assert np.allclose(clf.predict_proba(x), p / p.sum(axis=1, keepdims=True))


def test_calibration_never_overrules_the_svm() -> None:
    """The predicted class is the SVM's argmax (balanced class weights keep rare classes
    found); calibration only sets how sure."""
    x, y = _blobs(600, 4, 1.6, seed=3)
    clf = CalibratedSVC().fit(x, np.where(np.arange(600) % 10 == 0, "rare", y))
    svm = clf.calibrated_classifiers_[0].estimator
    assert (clf.predict(x) == svm.predict(x)).all()


def _blobs(n: int, classes: int, spread: float, seed: int) -> tuple[sparse.csr_matrix, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = np.arange(n) % classes
    centres = np.eye(classes, 5) * 3
    x = centres[y] + rng.normal(scale=spread, size=(n, 5))
    return sparse.csr_matrix(x), np.array([f"c{k}" for k in y])


@pytest.mark.parametrize("classes", [2, 3])
def test_calibrated_svc_on_separable_data(classes: int) -> None:
    x, y = _blobs(150, classes, 0.3, seed=classes)
    clf = CalibratedSVC().fit(x, y)
    probs = clf.predict_proba(x)
    assert probs.shape == (150, classes)
    assert np.allclose(probs.sum(axis=1), 1.0)
    assert (clf.predict(x) == y).all()
    assert (probs[np.arange(150), np.searchsorted(clf.classes_, y)] > 0.5).all()
    assert list(clf.classes_) == sorted(set(y))


def _ece(clf: object, x: sparse.csr_matrix, y: np.ndarray) -> tuple[float, float]:
    """Expected calibration error of the top class (10 bins) and accuracy."""
    probs = clf.predict_proba(x)  # type: ignore[attr-defined]
    confidence = probs.max(axis=1)
    correct = clf.classes_[probs.argmax(axis=1)] == y  # type: ignore[attr-defined]
    bins = np.minimum((confidence * 10).astype(int), 9)
    gaps = [abs(confidence[bins == b].mean() - correct[bins == b].mean()) * (bins == b).mean()
            for b in np.unique(bins)]  # fmt: skip
    return float(sum(gaps)), float(correct.mean())


@pytest.mark.parametrize(("classes", "limit"), [(2, 0.03), (3, 0.07)])
def test_calibrated_probabilities_match_observed_frequencies(classes: int, limit: float) -> None:
    from sklearn.calibration import CalibratedClassifierCV

    x, y = _blobs(3000, classes, 1.6, seed=7)  # overlapping classes
    test_x, test_y = _blobs(3000, classes, 1.6, seed=8)
    ece, accuracy = _ece(CalibratedSVC().fit(x, y), test_x, test_y)
    assert ece < limit
    assert 0.6 < accuracy < 0.97  # neither trivial nor hopeless
    reference = CalibratedClassifierCV(
        classifier.build_svm(), method="temperature", cv=3, ensemble=False
    ).fit(x, y)
    assert ece == pytest.approx(_ece(reference, test_x, test_y)[0], abs=0.01)


# -- folds ------------------------------------------------------------------------------------


def test_folds_partition_stratify_and_repeat() -> None:
    _, cats, urgs = corpus()
    labels = [np.asarray(cats), np.asarray(urgs)]
    folds = list(classifier.stratified_folds(labels, 5))
    again = list(classifier.stratified_folds(labels, 5))
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(folds, again, strict=True))
    tests = np.concatenate([test for _, test in folds])
    assert sorted(tests.tolist()) == list(range(len(cats)))
    for train, test in folds:
        assert not set(train) & set(test)
        for y in labels:
            assert set(y[test]) == set(y)  # every class in every test fold
            assert set(y[train]) == set(y)


@pytest.fixture
def fitted_on(monkeypatch: pytest.MonkeyPatch) -> list[set[str]]:
    """The texts of every ``TextFeatures.fit_transform`` call, in order."""
    seen: list[set[str]] = []
    original = TextFeatures.fit_transform

    def recording(self: TextFeatures, texts: list[str], y: object = None) -> object:
        seen.append(set(texts))
        return original(self, texts)

    monkeypatch.setattr(TextFeatures, "fit_transform", recording)
    return seen


def test_each_fold_fits_its_own_features_on_its_training_texts_only(
    fitted_on: list[set[str]],
) -> None:
    texts, cats, urgs = corpus()
    trained = model.fit(texts, cats, urgs, n_jobs=1)
    folds = list(classifier.stratified_folds([np.asarray(cats), np.asarray(urgs)], 5))
    assert len(fitted_on) == len(folds) + 1  # one per fold, shared by both targets, + final
    assert fitted_on[0] == set(texts)
    for seen, (_, test) in zip(fitted_on[1:], folds, strict=True):
        assert not seen & {texts[i] for i in test}
    assert trained.category.steps[0][1] is trained.urgency.steps[0][1]


def test_large_sets_validate_on_a_hold_out_whose_halves_calibrate_each_other(
    monkeypatch: pytest.MonkeyPatch, fitted_on: list[set[str]]
) -> None:
    monkeypatch.setattr(model, "HOLDOUT_FROM", 40)
    texts, cats, urgs = corpus(n_per_class=20)
    trained = model.fit(texts, cats, urgs, n_jobs=1)
    assert trained.metrics["validation"] == "20% held out"
    assert len(fitted_on) == 2  # the final model and the one validation fold
    held = set(texts) - fitted_on[1]
    assert len(held) == 12
    per_class = trained.metrics["category"]["per_class"]
    assert sum(c["support"] for c in per_class.values()) == 12  # scored on the hold-out only
    again = model.fit(texts, cats, urgs, n_jobs=1)
    assert again.predict(texts, "m") == trained.predict(texts, "m")


# -- training and prediction ------------------------------------------------------------------


def test_training_is_deterministic(trained: model.TrainedModel) -> None:
    again = model.fit(*corpus())
    texts = corpus(seed=5)[0]
    assert again.metrics == trained.metrics
    assert (again.category_threshold, again.urgency_threshold) == (
        trained.category_threshold, trained.urgency_threshold)  # fmt: skip
    for a, b in zip(again.probabilities(texts)[:2], trained.probabilities(texts)[:2], strict=True):
        assert np.array_equal(a, b)
    assert again.predict(texts, "m") == trained.predict(texts, "m")


def test_metrics_and_thresholds(trained: model.TrainedModel) -> None:
    for target in ("category", "urgency"):
        m = trained.metrics[target]
        assert 0.0 <= m["macro_f1"] <= 1.0 and 0.0 <= m["coverage"] <= 1.0
        assert m["per_class"] and m["threshold"] >= 0.0
    assert trained.metrics["validation"] == "5-fold cross-validation"
    assert trained.metrics["n_samples"] == 36
    assert trained.metrics["category"]["macro_f1"] > 0.8  # the topics are easy to tell apart


def test_predictions_force_urgency_on_cues_but_not_for_automated_mail(
    trained: model.TrainedModel,
) -> None:
    texts = [
        "Refund\nThe return label is broken. I will file a chargeback with my bank.",
        f"Refund\nThe return label is broken. I will file a chargeback.\n{AUTOMATED_MARK}",
        "Password\nPlease reset my login, no rush, whenever you can",
    ]
    first, automated, calm = trained.predict(texts, "model-1")
    assert first.category == "returns_refunds"
    assert first.urgency == "urgent" and first.cues == ("chargeback or payment dispute",)
    assert automated.cues == ()
    assert calm.category == "account_access" and calm.cues == ()
    for p in (first, automated, calm):
        assert p.model_id == "model-1"
        assert sum(p.category_probs.values()) == pytest.approx(1.0, abs=1e-3)
        assert p.category_confidence == pytest.approx(p.category_probs[p.category], abs=1e-4)
    assert trained.predict([], "m") == []


def test_shared_and_separate_featurization_agree(trained: model.TrainedModel) -> None:
    texts = corpus(seed=9)[0]
    joint = trained.probabilities(texts)
    assert np.array_equal(joint[0], trained.category.predict_proba(texts))
    assert np.array_equal(joint[1], trained.urgency.predict_proba(texts))


def test_pickled_model_predicts_the_same(trained: model.TrainedModel) -> None:
    loaded = pickle.loads(pickle.dumps(trained))
    assert loaded.category.steps[0][1] is loaded.urgency.steps[0][1]
    texts = corpus(seed=3)[0]
    assert loaded.predict(texts, "m") == trained.predict(texts, "m")


def test_top_features_name_words_of_the_message(trained: model.TrainedModel) -> None:
    text = "Tracking\nThe courier lost my parcel, tracking shows nothing."
    top = model.top_features(trained.category, text, "shipping_delivery", k=5)
    assert len(top) == 5
    assert top == sorted(top, key=lambda item: -abs(item[1]))
    assert any(name in ("word 'courier'", "word 'parcel'", "word 'tracking'")
               for name, _ in top)  # fmt: skip
    for name, _ in top:
        fragment = name.split(" / ")[0].split("'")[1].strip()
        assert fragment in text.lower() or name.startswith("cue:")


def test_sample_weights_are_used() -> None:
    texts, cats, urgs = corpus()
    weights = [3.0 if c == "account_access" else 1.0 for c in cats]
    weighted = model.fit(texts, cats, urgs, sample_weight=weights, with_metrics=False)
    plain = model.fit(texts, cats, urgs, with_metrics=False)
    probe = corpus(seed=11)[0]
    assert not np.array_equal(weighted.probabilities(probe)[0], plain.probabilities(probe)[0])
    assert "category" not in weighted.metrics and weighted.category_threshold >= 0.0


def test_build_pipeline_works_with_scikit_learn_cross_validation() -> None:
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    texts, cats, _ = corpus()
    probs = cross_val_predict(model.build_pipeline(), texts, np.asarray(cats),
                              cv=StratifiedKFold(3), method="predict_proba")  # fmt: skip
    assert probs.shape == (len(texts), 3)
    assert np.allclose(probs.sum(axis=1), 1.0)


def test_cross_validate_one_target() -> None:
    texts, cats, _ = corpus()
    metrics = model.cross_validate(texts, cats, target_accuracy=0.8, folds=4)
    assert metrics.macro_f1 > 0.8
    assert set(metrics.per_class) == set(TOPICS)


# -- short views ------------------------------------------------------------------------------


def test_views_train_the_category_of_their_own_text_only_never_a_validation_fold(
    fitted_on: list[set[str]],
) -> None:
    texts, cats, urgs = corpus()
    views = [[f"view of text {i}"] for i in range(len(texts))]
    model.fit(texts, cats, urgs, n_jobs=1, views=views)
    assert fitted_on[0] == set(texts) | {v[0] for v in views}
    folds = list(classifier.stratified_folds([np.asarray(cats), np.asarray(urgs)], 5))
    for seen, (train, test) in zip(fitted_on[1:], folds, strict=True):
        assert {views[i][0] for i in train} <= seen
        assert not seen & {views[i][0] for i in test}

    data = model._Data(texts[:3], {"category": np.array(cats[:3]), "urgency": np.array(urgs[:3])},
                       np.array([1.0, 2.0, 1.0]), [["a", "b"], [], ["c"]])
    rows, (category, urgency), labels = data.rows(np.array([0, 1, 2]))
    assert rows == [*texts[:3], "a", "b", "c"]
    owners = [0, 1, 2, 0, 0, 2]  # word pairs are chosen on every row; a view has its text's labels
    assert labels.tolist() == [[cats[i], urgs[i]] for i in owners]
    assert category.used.tolist() == [0, 1, 2, 3, 4, 5]
    assert category.y.tolist() == [*cats[:3], cats[0], cats[0], cats[2]]
    view = model.VIEW_WEIGHT
    assert category.weights.tolist() == [1.0, 2.0, 1.0, view, view, view]
    assert urgency.used.tolist() == [0, 1, 2] and urgency.weights.tolist() == [1.0, 2.0, 1.0]


def test_models_pickled_when_the_svm_lived_in_model_still_load() -> None:
    """Models trained before the SVM moved to classifier.py name supportcli.model.CalibratedSVC
    and supportcli.model._Calibrated; they still unpickle, as the same classes."""
    import pickle

    assert model.CalibratedSVC is classifier.CalibratedSVC
    assert model._Calibrated is classifier._Calibrated
    x = np.array([[0.0, 1.0], [1.0, 0.0], [0.1, 0.9], [0.9, 0.1]] * 3)
    fitted = classifier.CalibratedSVC(cv=2).fit(x, np.array(["a", "b", "a", "b"] * 3))
    old = pickle.dumps(fitted, protocol=0).replace(b"csupportcli.classifier\n",
                                                   b"csupportcli.model\n")
    assert b"csupportcli.model\nCalibratedSVC" in old and b"supportcli.classifier" not in old
    loaded = pickle.loads(old)
    assert isinstance(loaded, classifier.CalibratedSVC)
    assert isinstance(loaded.calibrated_classifiers_[0], classifier._Calibrated)
    assert np.allclose(loaded.predict_proba(x), fitted.predict_proba(x))
