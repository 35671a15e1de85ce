"""The featurizer: a scikit-learn ``FeatureUnion`` over ``ModelInput`` records.

- words: word 1-2-gram TF-IDF (sublinear tf) of the text;
- chars: character 3-5-grams within words (``analyzer="char_wb"``), TF-IDF (``CharGrams``);
- cues: one column per hand-made cue (``CueFeatures``);
- pairs: pairs of informative words in one message (``WordPairs``): the one block a linear
  model cannot build from single words ("how long does a transfer take" vs "my transfer was
  declined" share their strongest word).

Each text block is l2-normalised on its own; the union weighs the blocks. Everything that
decides the columns is in ``FeatureSettings`` and goes into the model's ``fingerprint``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import sparse
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.feature_extraction.text import CountVectorizer, TfidfTransformer, TfidfVectorizer
from sklearn.feature_selection import chi2
from sklearn.pipeline import FeatureUnion

from . import cues
from .text import TEXT_VERSION, as_input

MODEL_SCHEMA = 4  # 4: scikit-learn's own vectorizers and calibration
WORD_PATTERN = r"(?u)\b\w+(?:['-]\w+)*\b"  # words, "don't" and "e-mail" included


@dataclass(frozen=True)
class FeatureSettings:
    word_ngrams: tuple[int, int] = (1, 2)
    word_max_df: float = 0.9
    char_ngrams: tuple[int, int] = (3, 5)
    char_min_df: int = 2
    char_max_features: int = 150_000
    pair_words: int = 2000  # candidate words, the most informative about the labels (chi²)
    pair_per_text: int = 12  # each text pairs its best candidates: at most 66 pairs
    pair_min_df: int = 3
    max_pairs: int = 100_000
    weights: tuple[tuple[str, float], ...] = (
        ("words", 1.0), ("chars", 1.0), ("cues", 0.5), ("pairs", 0.6))


def lowered_text(item: Any) -> str:
    """The vectorizers' preprocessor: the input's text, lower-cased."""
    return as_input(item).text.lower()


def build_features(settings: FeatureSettings = FeatureSettings()) -> FeatureUnion:
    s = settings
    words = TfidfVectorizer(preprocessor=lowered_text, token_pattern=WORD_PATTERN,
                            ngram_range=s.word_ngrams, max_df=s.word_max_df, sublinear_tf=True,
                            lowercase=False)
    chars = CharGrams(s.char_ngrams, s.char_min_df, s.char_max_features)
    pairs = WordPairs(s.pair_words, s.pair_per_text, s.pair_min_df, s.max_pairs)
    parts = [("words", words), ("chars", chars), ("cues", CueFeatures()), ("pairs", pairs)]
    return FeatureUnion(parts, transformer_weights=dict(s.weights))


def fingerprint() -> dict[str, Any]:
    """Everything that decides a model's inputs: a saved model is valid only for these."""
    import sklearn

    found = {"model": MODEL_SCHEMA, "text": TEXT_VERSION, "cues": cues.fingerprint(),
             "features": asdict(FeatureSettings()), "scikit-learn": sklearn.__version__,
             "numpy": np.__version__.split(".")[0]}
    return dict(json.loads(json.dumps(found)))  # as meta.json holds it (tuples are lists)


class CharGrams(TransformerMixin, BaseEstimator):
    """``TfidfVectorizer(analyzer="char_wb", sublinear_tf=True)``, computed per distinct word:
    a text's character n-grams are the sum of its whitespace-separated words', so a batch
    builds the n-grams of each distinct word once (5x faster on mail; the same matrix)."""

    def __init__(self, ngram_range: tuple[int, int] = (3, 5), min_df: int = 2,
                 max_features: int | None = None) -> None:
        self.ngram_range = ngram_range
        self.min_df = min_df
        self.max_features = max_features

    def fit(self, items: Any, y: Any = None) -> CharGrams:
        self.fit_transform(items)
        return self

    def fit_transform(self, items: Any, y: Any = None, **params: Any) -> Any:
        docs, words = _word_counts(items)
        grams = CountVectorizer(analyzer="char_wb", ngram_range=self.ngram_range, lowercase=False)
        counts = (docs @ grams.fit_transform(words)).tocsr()
        keep = _frequent(counts, self.min_df, self.max_features)
        kept = {gram: i for i, gram in enumerate(grams.get_feature_names_out()[keep])}
        self.grams_ = CountVectorizer(analyzer="char_wb", ngram_range=self.ngram_range,
                                      lowercase=False, vocabulary=kept)
        self.tfidf_ = TfidfTransformer(sublinear_tf=True)
        return self.tfidf_.fit_transform(counts[:, keep])

    def transform(self, items: Any) -> Any:
        docs, words = _word_counts(items)
        return self.tfidf_.transform(docs @ self.grams_.transform(words))

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        return self.grams_.get_feature_names_out()


def _word_counts(items: Any) -> tuple[Any, list[str]]:
    """Texts × distinct lower-cased words (whitespace-separated, as ``char_wb`` splits them)."""
    split = [lowered_text(item).split() for item in items]
    index: dict[str, int] = {}
    cols = [index.setdefault(word, len(index)) for words in split for word in words]
    indptr = np.cumsum([0, *map(len, split)])
    docs = sparse.csr_matrix((np.ones(len(cols)), cols, indptr), shape=(len(split), len(index)))
    docs.sum_duplicates()
    return docs, list(index)


def _frequent(counts: Any, min_df: int, limit: int | None) -> np.ndarray:
    """The columns in ``min_df`` texts or more, and the ``limit`` most frequent of them, as
    ``CountVectorizer`` keeps them."""
    mask = np.bincount(counts.indices, minlength=counts.shape[1]) >= min_df
    if limit is not None and mask.sum() > limit:
        totals = np.asarray(counts.sum(axis=0)).ravel()
        chosen = np.flatnonzero(mask)[(-totals[mask]).argsort()[:limit]]
        mask = np.zeros_like(mask)
        mask[chosen] = True
    return np.flatnonzero(mask)


class CueFeatures(TransformerMixin, BaseEstimator):
    """One column per cue of ``cues.CUES``: 1 where it fired."""

    def fit(self, items: Any, y: Any = None) -> CueFeatures:
        return self

    def transform(self, items: Any) -> Any:
        index = {name: j for j, name in enumerate(cues.CUE_NAMES)}
        found = cues.find(items)
        cols = [index[hit.cue] for row in found for hit in row]
        rows = np.repeat(np.arange(len(found)), [len(row) for row in found])
        return sparse.csr_matrix((np.ones(len(cols)), (rows, cols)),
                                 shape=(len(found), len(cues.CUES)))

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        return np.array(cues.CUE_NAMES, dtype=object)


class WordPairs(TransformerMixin, BaseEstimator):
    """Pairs of the ``max_words`` words that say most about the labels (chi², each target's
    scores over its largest, the best target's) occurring in one text: each text pairs its
    ``per_text`` best. The ``max_pairs`` most frequent training pairs become TF-IDF columns.
    Fitted without labels, it has no columns."""

    def __init__(self, max_words: int = 2000, per_text: int = 12, min_df: int = 3,
                 max_pairs: int = 100_000) -> None:
        self.max_words = max_words
        self.per_text = per_text
        self.min_df = min_df
        self.max_pairs = max_pairs

    def fit(self, items: Any, y: Any = None) -> WordPairs:
        self.fit_transform(items, y)
        return self

    def fit_transform(self, items: Any, y: Any = None, **params: Any) -> Any:
        self.words_ = CountVectorizer(preprocessor=lowered_text, token_pattern=WORD_PATTERN,
                                      vocabulary=self._informative(items, y), binary=True,
                                      lowercase=False)
        keys = self._keys(items)
        values, df = np.unique(keys.indices, return_counts=True)
        self.pairs_ = values[np.sort(np.lexsort((values, -df))[: self.max_pairs])]
        columns = self._columns(keys)
        self.tfidf_ = TfidfTransformer(sublinear_tf=True).fit(columns) if len(self.pairs_) else None
        return self._weigh(columns)

    def _informative(self, items: Any, y: Any) -> list[str]:
        if y is None or len(items) < 2:
            return []
        vectorizer = CountVectorizer(preprocessor=lowered_text, token_pattern=WORD_PATTERN,
                                     binary=True, lowercase=False)
        presence = vectorizer.fit_transform(items)
        score = np.zeros(presence.shape[1])
        for labels in np.asarray(y, dtype=object).reshape(presence.shape[0], -1).T:
            if len(set(labels)) > 1:
                stat = np.nan_to_num(chi2(presence, labels.astype(str))[0])
                score = np.maximum(score, stat / max(stat.max(), 1e-300))
        score[np.bincount(presence.indices, minlength=len(score)) < self.min_df] = 0
        best = np.lexsort((np.arange(len(score)), -score))[: self.max_words]
        return list(vectorizer.get_feature_names_out()[best[score[best] > 0]])

    def transform(self, items: Any) -> Any:
        return self._weigh(self._columns(self._keys(items)))

    def _weigh(self, columns: Any) -> Any:
        return self.tfidf_.transform(columns) if self.tfidf_ is not None else columns

    def _keys(self, items: Any) -> Any:
        """Texts × pair keys ``a * n + b`` for the ranks a < b of their best candidates."""
        found = self.words_.transform(items) if self.words_.vocabulary else sparse.csr_matrix(
            (len(items), 0))
        found.sort_indices()  # columns are ranks: the best candidates come first
        n, k = max(found.shape[1], 1), self.per_text
        lens = np.minimum(np.diff(found.indptr), k)
        grid = np.full((found.shape[0], k), -1, np.int64)
        rows = np.repeat(np.arange(found.shape[0]), lens)
        at = np.arange(len(rows)) - np.repeat(np.cumsum(lens) - lens, lens)
        grid[rows, at] = found.indices[found.indptr[rows] + at]
        a, b = np.triu_indices(k, 1)
        ok = grid[:, b] >= 0  # b > a: the later one missing means the pair is
        keys = (grid[:, a] * n + grid[:, b])[ok]
        return sparse.csr_matrix((np.ones(len(keys)), keys, np.append(0, np.cumsum(ok.sum(1)))),
                                 shape=(found.shape[0], n * n))

    def _columns(self, keys: Any) -> Any:
        """Texts × kept pairs (known keys only)."""
        col = np.minimum(np.searchsorted(self.pairs_, keys.indices), max(len(self.pairs_) - 1, 0))
        known = self.pairs_[col] == keys.indices if len(self.pairs_) else col < 0
        rows = np.repeat(np.arange(keys.shape[0]), np.diff(keys.indptr))
        return sparse.csr_matrix((np.ones(known.sum()), (rows[known], col[known])),
                                 shape=(keys.shape[0], len(self.pairs_)))

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        words = self.words_.get_feature_names_out() if self.words_.vocabulary else []
        n = max(len(words), 1)
        return np.array([f"{words[a]} + {words[b]}" for a, b in zip(*divmod(self.pairs_, n),
                                                                   strict=True)], dtype=object)
