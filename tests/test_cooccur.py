"""Pairs of informative words in one text (``cooccur``): which words qualify, how many pairs a
text makes, and what the block buys: a decision that hangs on two words together, which a
model over single words cannot make."""

from __future__ import annotations

import pickle
from itertools import combinations

import numpy as np
from scipy import sparse

from supportcli import cooccur, model
from supportcli.features import TextFeatures

# The class hangs on the noun and the verb together: an exclusive or, which no linear model
# over single words, bigrams or character n-grams of these texts separates. Each word leans
# towards "other" on its own (the cells are uneven), so it is worth pairing.
XOR = {
    ("transfer", "late"): "other",
    ("transfer", "declined"): "billing_payment",
    ("parcel", "late"): "billing_payment",
    ("parcel", "declined"): "other",
}
UNEVEN = [("transfer", "late")] * 3 + [("transfer", "declined"), ("parcel", "late")] + [
    ("parcel", "declined")] * 2
FILLERS = ["hello", "please help", "thanks a lot", "regards", "any news", "quick question"]


def _xor_texts(seed: int, n: int, cells: list[tuple[str, str]] = UNEVEN,
               ) -> tuple[list[str], list[str]]:
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for i in range(n):
        noun, verb = cells[i % len(cells)]
        filler = FILLERS[(i // len(cells) + int(rng.integers(2))) % len(FILLERS)]
        texts.append(f"{filler} my {noun} is {verb} {filler}")
        labels.append(XOR[noun, verb])
    return texts, labels


def _accuracy(pair_weight: float) -> float:
    texts, labels = _xor_texts(0, 120)
    held_texts, held_labels = _xor_texts(1, 40, list(XOR))  # every cell as often
    pipeline = model.build_pipeline()
    pipeline.set_params(features__pair_weight=pair_weight, features__min_df_chars=1)
    pipeline.fit(texts, labels)
    return float(np.mean(pipeline.predict(held_texts) == np.array(held_labels)))


def test_word_pairs_learn_what_single_words_cannot() -> None:
    assert _accuracy(0.6) == 1.0
    assert _accuracy(0.0) < 0.9  # the same pipeline without the block: XOR is not linear


def test_informative_words_are_scored_per_target_and_need_three_texts() -> None:
    # columns: 0 decides target A, 1 decides target B, 2 is noise, 3 decides A but is rare
    presence = np.array([[1, 1, 1, 0], [1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0]] * 3)
    presence[:2, 3] = [1, 1]
    a = np.array(["x", "x", "y", "y"] * 3)
    b = np.array(["p", "q", "p", "q"] * 3)
    cols, scores = cooccur.informative_words(sparse.csr_matrix(presence), np.c_[a, b])
    assert cols.tolist() == [0, 1]
    assert np.allclose(scores, 1.0)
    cols, _ = cooccur.informative_words(sparse.csr_matrix(presence), a)  # one target
    assert cols.tolist() == [0]
    cols, _ = cooccur.informative_words(sparse.csr_matrix(presence), np.c_[a, b], max_words=1)
    assert len(cols) == 1


def test_a_text_pairs_only_its_best_words() -> None:
    n_cols, n_words = 100, 20
    ranks = np.full(n_cols, n_words)
    ranks[:n_words] = np.arange(n_words)[::-1]  # column 19 is the best word, column 0 the worst
    x = sparse.csr_matrix(np.array([
        [1.0] * 20 + [0.0] * 80,  # 20 candidates: pairs of the 12 best only
        [0.0] * 5 + [1.0] + [0.0] * 94,  # one candidate: no pair
        [0.0] * 30 + [1.0] * 70,  # no candidate at all
        [0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0] + [0.0] * 92,
    ]))
    for r in range(x.shape[0]):  # a row's columns may come in any order
        x.indices[x.indptr[r] : x.indptr[r + 1]] = x.indices[x.indptr[r] : x.indptr[r + 1]][::-1]
    rows, keys = cooccur.pair_keys(x, ranks, n_words)
    expected = [a * n_words + b for a, b in combinations(range(12), 2)]
    assert keys[rows == 0].tolist() == expected  # 66 pairs of ranks a < b, sorted
    assert not (rows == 1).any() and not (rows == 2).any()
    assert keys[rows == 3].tolist() == [12 * n_words + 16]  # columns 7 and 3
    assert np.all(np.diff(rows) >= 0)


def test_pair_block_is_idf_weighted_normalised_and_drops_unknown_pairs() -> None:
    n_words = 10
    vocab, idf = cooccur.vocabulary(np.array([5, 7, 7, 19, 19, 19]), n_texts=6)
    assert vocab.tolist() == [5, 7, 19] and idf[0] > idf[1] > idf[2]
    table = cooccur.columns(vocab, n_words)
    assert len(table) == 45 and sorted(table.tolist())[-3:] == [0, 1, 2]
    keys = np.array([5, 19, 8, 7, 89])  # 8 and 89 (ranks 8, 9) were never seen in training
    cols = table[cooccur.triangle(keys, n_words)]
    assert cols.tolist() == [0, 2, -1, 1, -1]
    m = cooccur.pair_matrix(np.array([0, 0, 1, 2, 3]), cols, 4, idf, 0.6)
    assert m.shape == (4, 3)
    assert np.isclose(np.linalg.norm(m[0].toarray()), 0.6)
    assert m[1].nnz == 0 and m[3].nnz == 0 and m[2].nnz == 1
    vocab, _ = cooccur.vocabulary(np.array([5, 7, 7, 9, 9, 9]), n_texts=6, max_pairs=2)
    assert vocab.tolist() == [7, 9]  # the most frequent


def test_features_fitted_with_labels_add_named_pairs_and_survive_pickling() -> None:
    texts, labels = _xor_texts(0, 40)
    fitted = TextFeatures(min_df_chars=1).fit(texts, labels)
    assert fitted.pair_keys_ is not None and len(fitted.pair_keys_) > 0
    x = fitted.transform(texts)
    assert x.shape[1] == fitted.n_features_out_ == len(fitted.block_) + len(fitted.pair_keys_)
    pair_cols = x[:, len(fitted.block_):].toarray()
    assert np.allclose(np.linalg.norm(pair_cols, axis=1), fitted.pair_weight)
    names = fitted.explain("my transfer is late")
    assert "pair 'transfer' + 'late'" in names.values()
    again = pickle.loads(pickle.dumps(fitted))
    assert (again.transform(texts) != x).nnz == 0
    assert fitted.get_feature_names_out()[-1].startswith("pair#")


def test_features_without_labels_or_from_older_models_have_no_pair_block() -> None:
    texts, labels = _xor_texts(0, 40)
    unlabelled = TextFeatures(min_df_chars=1).fit(texts)
    assert unlabelled.pair_keys_ is None
    assert unlabelled.transform(texts).shape[1] == len(unlabelled.block_)
    older = TextFeatures(min_df_chars=1).fit(texts, labels)
    for name in ("pair_keys_", "pair_idf_", "pair_words_", "pair_scores_", "pair_weight"):
        older.__dict__.pop(name, None)  # what a model saved before the block unpickles to
    older.n_features_out_ = len(older.block_)
    assert (older.transform(texts) != unlabelled.transform(texts)).nnz == 0


def test_training_chooses_pair_words_for_both_targets() -> None:
    texts, categories = _xor_texts(0, 80)
    # urgency hangs on a word that says nothing about the category
    urgencies = ["urgent" if i % 3 == 0 else "normal" for i in range(len(texts))]
    texts = [f"{t} asap" if u == "urgent" else t for t, u in zip(texts, urgencies, strict=True)]
    trained = model.fit(texts, categories, urgencies, with_metrics=False)
    features = trained.category.named_steps["features"]
    names = features.explain("asap my transfer is late")
    assert "pair 'transfer' + 'late'" in names.values()
    assert any("'asap'" in n for n in names.values() if n.startswith("pair "))
