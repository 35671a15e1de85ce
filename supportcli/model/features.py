"""The featurizer: a scikit-learn ``FeatureUnion`` over ``ModelInput`` records of word 1-2-gram
TF-IDF (sublinear tf), character 3-5-grams within words (``CharGrams``: ``char_wb`` TF-IDF),
one column per cue (``CueFeatures``) and pairs of informative words in one message
(``WordPairs``: the block a linear model cannot build from single words, as "how long does a
transfer take" and "my transfer was declined" share their strongest word). Each text block is
l2-normalised on its own; the union weighs the blocks. What decides the columns makes the
model's ``fingerprint``.
"""

from __future__ import annotations

import json
import re
from itertools import combinations
from typing import Any

import numpy as np
from scipy import sparse
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.feature_extraction.text import CountVectorizer, TfidfTransformer, TfidfVectorizer
from sklearn.pipeline import FeatureUnion

from . import cues
from .text import TEXT_VERSION, as_input

MODEL_SCHEMA = 4  # 4: scikit-learn's own vectorizers and calibration
WORD_PATTERN = r"(?u)\b\w+(?:['-]\w+)*\b"  # words, "don't" and "e-mail" included
_WORD = re.compile(WORD_PATTERN)


def lowered_text(item: Any) -> str:
    """The vectorizers' preprocessor: the input's text, lower-cased."""
    return as_input(item).text.lower()


def build_features() -> FeatureUnion:
    words = TfidfVectorizer(preprocessor=lowered_text, token_pattern=WORD_PATTERN, lowercase=False,
                            ngram_range=(1, 2), max_df=0.9, sublinear_tf=True)
    chars = CharGrams((3, 5), min_df=2, max_features=150_000)
    # 2,000 candidate words, the most informative about the labels; each text pairs its best 12
    pairs = WordPairs(max_words=2000, per_text=12, min_df=3, max_pairs=100_000)
    parts = [("words", words), ("chars", chars), ("cues", CueFeatures()), ("pairs", pairs)]
    return Union(parts, transformer_weights={"words": 1.0, "chars": 1.0, "cues": 0.5, "pairs": 0.6})


class Union(FeatureUnion):
    """``FeatureUnion`` joining its sparse blocks in CSR directly (not through COO: faster)."""

    def transform(self, X: Any, **params: Any) -> Any:
        weights = self.transformer_weights or {}
        return sparse.hstack([part.transform(X) * weights.get(name, 1.0)
                              for name, part in self.transformer_list], format="csr")


def fingerprint() -> dict[str, Any]:
    """What decides a model's inputs (featurizer, cues, text version, libraries)."""
    import sklearn

    params = {name: value for name, value in build_features().get_params(deep=True).items()
              if not isinstance(value, BaseEstimator | list)}
    found = {"model": MODEL_SCHEMA, "text": TEXT_VERSION, "cues": cues.fingerprint(),
             "features": params, "scikit-learn": sklearn.__version__,
             "numpy": np.__version__.split(".")[0]}
    # as meta.json holds it: tuples become lists, functions and types their names
    return dict(json.loads(json.dumps(found, default=lambda v: getattr(v, "__qualname__", "?"))))


class CharGrams(TransformerMixin, BaseEstimator):
    """``TfidfVectorizer(analyzer="char_wb", sublinear_tf=True)``, computed per distinct word:
    a text's character n-grams are the sum of its whitespace-separated words', so a batch
    builds the n-grams of each distinct word once (5x faster on mail; the same matrix)."""

    CACHED_WORDS = 200_000

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
        return self.tfidf_.transform(docs @ self._per_word(words))

    def _per_word(self, words: list[str]) -> Any:
        """Words × n-gram counts, each word's row built once per process, not once per batch (a
        bounded cache, never pickled: 3x faster on batches of 1,000 messages)."""
        rows: dict[str, tuple[np.ndarray, np.ndarray]] = self.__dict__.setdefault("_rows", {})
        new = [word for word in words if word not in rows]
        if len(rows) + len(new) > self.CACHED_WORDS:
            rows.clear()
            new = words
        if new:
            found = self.grams_.transform(new)
            for word, start, stop in zip(new, found.indptr, found.indptr[1:], strict=False):
                rows[word] = found.indices[start:stop], found.data[start:stop]
        parts = [rows[word] for word in words]
        indptr = np.cumsum([0, *(len(cols) for cols, _ in parts)])
        data = np.concatenate([np.zeros(0), *(counts for _, counts in parts)])
        cols = np.concatenate([np.zeros(0, np.int32), *(cols for cols, _ in parts)])
        shape = (len(words), len(self.grams_.vocabulary))
        return sparse.csr_matrix((data, cols, indptr), shape=shape)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(super().__getstate__())
        state.pop("_rows", None)
        return state

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
    """The columns in ``min_df`` texts or more, the ``limit`` most frequent (as scikit-learn)."""
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
        self.words_ = self._informative(items, y)
        self.ranks_ = {word: rank for rank, word in enumerate(self.words_)}
        self.tfidf_ = TfidfVectorizer(analyzer=self.pairs, max_features=self.max_pairs,
                                      sublinear_tf=True)
        try:
            return self.tfidf_.fit_transform(items)
        except ValueError:  # no text holds two candidate words
            self.tfidf_ = None
            return sparse.csr_matrix((len(items), 0))

    def _informative(self, items: Any, y: Any) -> list[str]:
        from sklearn.feature_selection import chi2  # training only: a slow import

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

    def pairs(self, item: Any) -> list[int]:
        """The analyzer: the text's best candidates paired, as keys a * n + b of ranks a < b."""
        ranks, n = self.ranks_, len(self.words_)
        best = sorted({ranks[w] for w in _WORD.findall(lowered_text(item)) if w in ranks})
        return [a * n + b for a, b in combinations(best[: self.per_text], 2)]

    def transform(self, items: Any) -> Any:
        if self.tfidf_ is None:
            return sparse.csr_matrix((len(items), 0))
        return self.tfidf_.transform(items)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        keys = self.tfidf_.get_feature_names_out() if self.tfidf_ is not None else []
        pairs = (divmod(int(key), len(self.words_)) for key in keys)
        return np.array([f"{self.words_[a]} + {self.words_[b]}" for a, b in pairs], dtype=object)
