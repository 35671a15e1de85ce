"""Pairs of informative words that occur in the same message: the one feature block that a
linear model cannot build from single words.

"How long does a transfer take?" and "My transfer was declined" share their strongest word; a
linear model scores "transfer" once for both, so it leans the same way for both messages. A
column for the pair ("transfer" and "long" in one message) lets it tell them apart: a cheap,
sparse degree-2 term (Wang & Manning's and Joachims' word conjunctions, here over the words
that matter only).

The candidate words are the word columns whose presence says most about the labels (chi²,
the best of the targets when the model learns several), at most ``MAX_WORDS``. Each text
pairs up its ``PER_TEXT`` most informative candidates, so a long email costs at most 66 pairs.
A pair's key is its two words' ranks, which a fitted model never changes. The pairs
seen in training (the ``MAX_PAIRS`` most frequent) become columns, weighted like the other
text blocks: idf, each text's block l2-normalised, times the block's weight.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse
from sklearn.feature_selection import chi2

MAX_WORDS = 2000
PER_TEXT = 12
MIN_DF = 3  # a candidate word is in at least this many training texts
MAX_PAIRS = 100_000


def informative_words(
    presence: sparse.csr_matrix, targets: np.ndarray, max_words: int = MAX_WORDS
) -> tuple[np.ndarray, np.ndarray]:
    """The columns of ``presence`` (texts × word columns, nonzero where a text has the word)
    that say most about any column of ``targets`` (texts × targets of labels), best first
    (ties: the lower column), and their scores in (0, 1]: each target's chi² over its
    largest, the best target's."""
    binary = presence.astype(bool).astype(np.float64)
    df = np.asarray(binary.sum(axis=0)).ravel()
    score = np.zeros(binary.shape[1])
    for labels in np.asarray(targets).reshape(len(targets), -1).T:
        if len(np.unique(labels)) < 2:
            continue
        stat = np.nan_to_num(chi2(binary, labels)[0])
        if stat.max(initial=0.0) > 0:
            score = np.maximum(score, stat / stat.max())
    score[df < MIN_DF] = 0.0
    candidates = np.flatnonzero(score > 0)
    best = candidates[np.lexsort((candidates, -score[candidates]))[:max_words]]
    return best, score[best]


def first_of_runs(values: np.ndarray) -> np.ndarray:
    """Where each run of equal values in a sorted array starts (none in an empty one)."""
    first = np.ones(len(values), bool)
    first[1:] = values[1:] != values[:-1]
    return first


def pair_keys(rows: np.ndarray, ranks: np.ndarray, n_rows: int, n_words: int,
              per_text: int = PER_TEXT) -> tuple[np.ndarray, np.ndarray]:
    """The (row, key) of every pair of distinct candidate words within a row, from each row's
    ``per_text`` best candidates. ``rows`` and ``ranks`` are the row of each word occurrence
    and its candidate's rank (0 best; ``n_words`` or more: none), in any order, repeats
    allowed. A key is ``a * n_words + b`` for the ranks a < b. Sorted by row, then key."""
    found = ranks < n_words
    # each row's distinct candidates, by row, then rank
    order = np.sort(rows[found].astype(np.int64) * n_words + ranks[found])
    order = order[first_of_runs(order)]  # sorting beats np.unique
    rows, word = np.divmod(order, n_words)
    counts = np.bincount(rows, minlength=n_rows)
    starts = np.cumsum(counts) - counts
    if per_text and counts.max(initial=0) > per_text:
        keep = np.arange(len(rows)) - starts[rows] < per_text
        rows, word = rows[keep], word[keep]
        counts = np.minimum(counts, per_text)
        starts = np.cumsum(counts) - counts
    later = (starts + counts)[rows] - np.arange(len(rows)) - 1  # candidates after each one
    first = np.repeat(np.arange(len(rows)), later)
    second = first + np.arange(len(first)) - np.repeat(np.cumsum(later) - later, later) + 1
    return rows[first], word[first] * n_words + word[second]


def vocabulary(keys: np.ndarray, n_texts: int,
               max_pairs: int = MAX_PAIRS) -> tuple[np.ndarray, np.ndarray]:
    """The sorted pair keys to keep (the most frequent, ties by key) and their idf."""
    values, df = np.unique(keys, return_counts=True)
    if len(values) > max_pairs:
        chosen = np.sort(np.lexsort((values, -df))[:max_pairs])
        values, df = values[chosen], df[chosen]
    return values, smooth_idf(df, n_texts)


def smooth_idf(df: np.ndarray, n_texts: int) -> np.ndarray:
    """scikit-learn's smoothed idf, ``ln((1 + n) / (1 + df)) + 1``, for every text block."""
    return np.log((1 + n_texts) / (1 + df.astype(np.float64))) + 1


def columns(vocab: np.ndarray, n_words: int) -> np.ndarray:
    """A lookup table from every possible pair to its column (-1: not kept), over the upper
    triangle of ranks: ``table[triangle(keys, n_words)]``. At most 2M entries (8 MB) for
    2,000 words; built once per loaded model."""
    table = np.full(n_words * (n_words - 1) // 2, -1, np.int32)
    table[triangle(vocab, n_words)] = np.arange(len(vocab), dtype=np.int32)
    return table


def triangle(keys: np.ndarray, n_words: int) -> np.ndarray:
    """The place of pair keys ``a * n_words + b`` (a < b) in the upper triangle, row-major."""
    a, b = np.divmod(keys, n_words)
    return a * (2 * n_words - a - 1) // 2 + (b - a - 1)
