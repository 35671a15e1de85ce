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
    n_words = 20
    ranks = np.arange(n_words)[::-1]  # word 19 is the best, word 0 the worst
    none = n_words  # a word that is no candidate
    texts = [
        [*range(20), 3, 3, none],  # 20 candidates (one repeated): pairs of the 12 best
        [5, none, none],  # one candidate: no pair
        [none] * 4,  # no candidate at all
        [7, none, 3, 7],  # words 7 and 3, 7 twice
    ]
    rows = np.repeat(np.arange(len(texts)), [len(t) for t in texts])
    word = np.concatenate(texts)
    rank = np.append(ranks, none)[word]
    shuffled = np.random.default_rng(0).permutation(len(rows))  # occurrences in any order
    for order in (np.arange(len(rows)), shuffled):
        found_rows, keys = cooccur.pair_keys(rows[order], rank[order], len(texts), n_words)
        expected = [a * n_words + b for a, b in combinations(range(12), 2)]
        assert keys[found_rows == 0].tolist() == expected  # 66 pairs of ranks a < b, sorted
        assert not (found_rows == 1).any() and not (found_rows == 2).any()
        assert keys[found_rows == 3].tolist() == [12 * n_words + 16]  # words 7 and 3, once
        assert np.all(np.diff(found_rows) >= 0)
    nothing = cooccur.pair_keys(np.array([0, 0, 1]), np.full(3, n_words), 2, n_words)
    assert [len(a) for a in nothing] == [0, 0]  # a batch without any candidate word


def test_pair_vocabulary_keeps_the_most_frequent_and_drops_unknown_pairs() -> None:
    n_words = 10
    vocab, idf = cooccur.vocabulary(np.array([5, 7, 7, 19, 19, 19]), n_texts=6)
    assert vocab.tolist() == [5, 7, 19] and idf[0] > idf[1] > idf[2]
    table = cooccur.columns(vocab, n_words)
    assert len(table) == 45 and sorted(table.tolist())[-3:] == [0, 1, 2]
    keys = np.array([5, 19, 8, 7, 89])  # 8 and 89 (ranks 8, 9) were never seen in training
    cols = table[cooccur.triangle(keys, n_words)]
    assert cols.tolist() == [0, 2, -1, 1, -1]
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
    first = x[0, len(fitted.block_):]  # idf-weighted: proportional to each pair's idf
    idf = fitted.pair_idf_[first.indices]
    assert first.nnz > 1 and np.allclose(first.data, idf / np.linalg.norm(idf) * 0.6)
    both = TextFeatures(min_df_chars=1).fit_transform(texts, labels)  # training's own matrix
    assert both.shape == x.shape and np.allclose((both - x).toarray(), 0.0)
    assert np.array_equal(fitted.transform(texts[:1]).toarray(), x[:1].toarray())
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
