"""What the model sees: the one definition of the input text and its features.

``to_text`` turns a message into the model's input string. ``TextFeatures`` turns such strings
into one sparse matrix: word 1-2-grams, character 3-5-grams inside word boundaries (spelling
variants, compounds, other languages) and the cue block of ``cues`` (deadline, chargeback,
legal threat, …). Change any of them and bump ``FEATURE_SCHEMA_VERSION``: saved models record
it.

Speed comes from mail repeating the same words: each distinct word's features (its hashed
unigram, its character n-grams, which cue patterns it could start: ``hashing``) are computed
once and kept in a bounded table, which a fitted model seeds with its most frequent words. A
batch of documents is then a sparse (documents × words) count matrix times the (words ×
features) table, plus word bigrams hashed from neighbouring words with numpy and the word pairs
(``cooccur``) found from each token's word column, all in that one product.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from itertools import chain, count, repeat
from typing import Any

import numpy as np
from scipy import sparse
from sklearn.base import BaseEstimator, TransformerMixin

from . import cooccur
from .cues import AUTOMATED_MARK, CUE_FEATURE_NAMES, TOKEN, cue_columns, cue_matrix
from .hashing import (
    BIGRAM_TAG,
    CHAR_TAG,
    LOW32,
    STORE,
    U32,
    Ids,
    KeyIndex,
    bigram_keys,
    ngrams,
    positions,
)

FEATURE_SCHEMA_VERSION = 3  # 3: the word-pair block (``cooccur``)
# Schemas this code computes exactly as they were trained: a schema-2 model has no pairs.
READABLE_FEATURE_SCHEMAS = frozenset({2, 3})
MAX_TEXT_CHARS = 3000


def to_text(subject: str, text_new: str, text_quoted: str = "", automated: str = "") -> str:
    """Subject + the customer's new text (the quoted history only when nothing new was written)."""
    body = text_new.strip() or text_quoted.strip()[:1000]
    text = f"{subject.strip()}\n{body}"[:MAX_TEXT_CHARS]
    return f"{text}\n{AUTOMATED_MARK}" if automated else text


def message_text(message: Any) -> str:
    return to_text(message.subject, message.text_new, message.text_quoted, message.automated)


_GREETING = re.compile(  # a greeting line or clause: "Hi Anna," "Hello team!" "Dear Sir\n"
    r"^(?:hi|hello|hey|dear|hallo|guten (?:tag|morgen)|bonjour|salut|hola|buenos d[ií]as|"
    r"ciao|buongiorno|good (?:morning|afternoon|evening))(?:[ \t]+[\w'-]+){0,3}[ \t]*"
    r"(?:[,.!:]|\n|$)\s*",
    re.IGNORECASE,
)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")
VIEW_MIN_CHARS = 15


def short_views(message: Any) -> list[str]:
    """Short texts that a message's labels also hold for: the opening of the new text (its
    first two sentences, greeting dropped) and the subject alone. Training on them beside the
    whole message teaches the model what the same request looks like typed into a web form
    or a chat box. Views equal to the whole text are left out."""
    whole = message_text(message)
    body = _GREETING.sub("", message.text_new.strip())
    sentences = [s.strip() for s in _SENTENCE_END.split(body) if len(s.strip()) >= VIEW_MIN_CHARS]
    views = []
    if sentences:
        views.append(to_text("", " ".join(sentences[:2]), automated=message.automated))
    if len(message.subject.strip()) >= VIEW_MIN_CHARS:
        views.append(to_text(message.subject, "", automated=message.automated))
    return [v for v in dict.fromkeys(views) if v != whole]


_SEPARATOR = "\ua66e"  # a letter, so a token of its own, that mail hardly ever holds


def _split_chunks(chunks: list[str]) -> tuple[list[str], np.ndarray]:
    """The tokens of whitespace-free chunks, in order, and the count per chunk: one regex pass
    over the chunks joined by a separator token (per chunk when a chunk holds that token)."""
    if chunks:
        found = TOKEN.findall(f" {_SEPARATOR} ".join(chunks))
        tokens = np.array(found, dtype=object)
        is_separator = tokens == _SEPARATOR
        at = np.flatnonzero(is_separator)
        if len(at) == len(chunks) - 1:
            lens = np.diff(np.concatenate(([-1], at, [len(found)]))) - 1
            return tokens[~is_separator].tolist(), lens
    per_chunk = [TOKEN.findall(c) for c in chunks]
    lens = np.fromiter(map(len, per_chunk), np.int64, len(per_chunk))
    return list(chain.from_iterable(per_chunk)), lens


class _Words:
    """Bounded table of distinct tokens: each one's feature columns, word column (-1: none; for
    the word pairs), word hash (for word bigrams) and cue-trigger mask, and the (tokens ×
    columns) matrix built from them."""

    def __init__(self, resolve: Any) -> None:
        self.resolve = resolve  # feature keys -> columns (-1: not a feature)
        self.index: dict[str, int] = {}
        self.masks: list[int] = []
        self.hashes: list[int] = []
        self.cols: list[np.ndarray] = []
        self.lens: list[np.ndarray] = []
        self.word_cols: list[np.ndarray] = []
        self.chunks: dict[str, int] = {}  # whitespace-separated chunk -> its tokens
        self._chunk_tids: list[np.ndarray] = []
        self._chunk_starts: list[np.ndarray] = []
        self._chunk_lens: list[np.ndarray] = []
        self._n_chunk_tids = 0
        self._matrix: sparse.csr_matrix | None = None
        self._vectors: tuple[np.ndarray, ...] | None = None

    def _add(self, tokens: list[str]) -> None:
        infos = STORE.infos(tokens)
        self.index.update(zip(tokens, count(len(self.hashes))))
        self.hashes.extend(infos.hashes.tolist())
        self.masks.extend(infos.masks)
        cols = self.resolve(infos.keys)
        self.word_cols.append(cols[infos.starts])  # a token's first key is its word's
        self._append_columns(cols, infos.lens)
        self._matrix = self._vectors = None

    def _append_columns(self, cols: np.ndarray, lens: np.ndarray) -> None:
        """Append tokens' columns (``lens[i]`` per token, -1: none) without the -1s."""
        owner = np.repeat(np.arange(len(lens)), lens)
        valid = cols >= 0
        self.cols.append(cols[valid])
        self.lens.append(np.bincount(owner[valid], minlength=len(lens)))

    def _add_chunks(self, chunks: list[str]) -> None:
        """Add new chunks (distinct, not yet in the table) and the new tokens they hold. A chunk
        of word characters only (``\\w`` is ``isalnum`` or ``_``) is one token, itself: only the
        others go through the regex, and they are numbered after the plain ones."""
        plain = [c for c in chunks if c.isalnum()]
        if plain:
            other = [c for c in chunks if not c.isalnum()]
            tokens, lens = _split_chunks(other)
            chunks, flat = plain + other, plain + tokens
            lens = np.concatenate((np.ones(len(plain), np.int64), lens))
        else:
            flat, lens = _split_chunks(chunks)
        index = self.index
        new = [t for t in dict.fromkeys(flat) if t not in index]
        if new:
            self._add(new)
        self.chunks.update(zip(chunks, count(len(self.chunks))))
        self._chunk_starts.append(np.cumsum(lens) - lens + self._n_chunk_tids)
        self._chunk_lens.append(lens)
        self._chunk_tids.append(np.fromiter(map(index.__getitem__, flat), np.int64, len(flat)))
        self._n_chunk_tids += len(flat)
        self._vectors = None

    def lookup(self, flat: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """The token ids of whitespace-separated chunks, in order, and the count per chunk.
        (No token of ``TOKEN`` spans whitespace, so this equals ``findall`` on the text.)"""
        chunks = self.chunks
        cids = missing = None
        if chunks:
            cids = np.fromiter(map(chunks.get, flat, repeat(-1)), np.int64, len(flat))
            missing = np.flatnonzero(cids < 0)
        if cids is None or missing is None or 2 * len(missing) > len(flat):
            # mostly new (a fresh table: the first call): one pass for the distinct new chunks,
            # one to look every chunk up
            self._add_chunks([c for c in dict.fromkeys(flat) if c not in chunks])
            cids = np.fromiter(map(chunks.__getitem__, flat), np.int64, len(flat))
        elif len(missing):
            new = [flat[i] for i in missing.tolist()]
            self._add_chunks(list(dict.fromkeys(new)))
            cids[missing] = np.fromiter(map(chunks.__getitem__, new), np.int64, len(new))
        starts, lens, tids = self.vectors()[2:5]
        return tids[positions(starts, lens, cids)], lens[cids]

    @classmethod
    def seeded(cls, resolve: Any, table: dict[str, Any] | None) -> _Words:
        """A table that already holds the tokens of a stored ``table`` (see ``frequent``)."""
        words = cls(resolve)
        if table:
            tokens = table["tokens"]
            words.index = dict(zip(tokens, count()))
            words.hashes = table["hashes"].tolist()
            words.masks = [0] * len(tokens)
            for i, mask in table["masks"].items():
                words.masks[i] = mask
            words.cols, words.lens = [table["cols"].astype(np.int64)], [table["lens"]]
            words.word_cols = [table["word_cols"].astype(np.int64)]
        return words

    def frequent(self, counts: np.ndarray, limit: int) -> dict[str, Any]:
        """The ``limit`` tokens of highest ``counts`` (texts holding them; at least 2, so that a
        name or a number from a single message is not kept; ties in table order) with their
        hashes, masks and columns: a table to store with a model, so that a fresh process need
        not hash the words it was trained on."""
        keep = np.flatnonzero(counts >= 2)
        if len(keep) > limit:
            keep = np.sort(keep[np.argsort(-counts[keep], kind="stable")[:limit]])
        cols, lens, first = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)], 0
        for part_cols, part_lens in zip(self.cols, self.lens, strict=True):  # one part per _add
            ids = keep[(keep >= first) & (keep < first + len(part_lens))] - first
            cols.append(part_cols[positions(np.cumsum(part_lens) - part_lens, part_lens, ids)])
            lens.append(part_lens[ids])
            first += len(part_lens)
        tokens, masks, kept = list(self.index), self.masks, keep.tolist()
        return {
            "tokens": [tokens[i] for i in kept],
            "hashes": np.array(self.hashes, np.uint64)[keep],
            "masks": {j: masks[i] for j, i in enumerate(kept) if masks[i]},
            "cols": np.concatenate(cols).astype(np.int32),
            "lens": np.concatenate(lens),
            "word_cols": np.concatenate([np.zeros(0, np.int64), *self.word_cols])[keep].astype(
                np.int32),
        }

    def remapped(self, remap: np.ndarray) -> _Words:
        """The same tokens with their columns renumbered (``remap[old]``, -1 drops one)."""
        other = _Words(None)
        other.index, other.masks, other.hashes = self.index, self.masks, self.hashes
        other.word_cols = [np.where(c >= 0, remap[c], -1) for c in self.word_cols]
        for cols, lens in zip(self.cols, self.lens, strict=True):
            other._append_columns(remap[cols], lens)
        return other

    def matrix(self, n_cols: int, extra: int) -> sparse.csr_matrix:
        """(tokens + ``extra``) × ``n_cols``: each token's columns, then ``extra`` rows that are
        the identity on the last ``extra`` columns."""
        if self._matrix is None or self._matrix.shape != (len(self.hashes) + extra, n_cols):
            lens = np.concatenate([*self.lens, np.ones(extra, np.int64)])
            indices = np.concatenate([*self.cols, np.arange(n_cols - extra, n_cols)])
            indptr = np.concatenate(([0], np.cumsum(lens)))
            self._matrix = sparse.csr_matrix(
                (np.ones(len(indices)), indices, indptr), shape=(len(lens), n_cols)
            )
        return self._matrix

    def vectors(self) -> tuple[np.ndarray, ...]:
        """Tokens' word hashes, whether each may start a cue; chunks' starts, lengths, tokens;
        tokens' word columns."""
        if self._vectors is None:
            self._vectors = (
                np.array(self.hashes, np.uint64), np.array(self.masks, bool),
                *(np.concatenate([np.zeros(0, np.int64), *parts]) for parts in
                  (self._chunk_starts, self._chunk_lens, self._chunk_tids, self.word_cols)),
            )
        return self._vectors


@dataclass
class _Tokens:
    """One chunk of documents as token ids, word-bigram keys and the cue block."""

    n: int
    tids: np.ndarray
    rows: np.ndarray  # document of each token
    bigram_rows: np.ndarray
    bigram_keys: np.ndarray
    cues: np.ndarray


def _tokens(words: _Words, texts: list[str]) -> _Tokens:
    lowered = [t.lower() for t in texts]
    docs = [t.split() for t in lowered]
    tids, counts = words.lookup(list(chain.from_iterable(docs)))
    hashes, may_cue = words.vectors()[:2]
    chunk_rows = np.repeat(np.arange(len(texts)), np.fromiter(map(len, docs), np.int64, len(docs)))
    rows = np.repeat(chunk_rows, counts)
    same = rows[:-1] == rows[1:]
    word_hashes = hashes[tids]
    keys = bigram_keys(word_hashes[:-1][same], word_hashes[1:][same])
    masks = [0] * len(texts)
    occurrences = np.flatnonzero(may_cue[tids])
    for row, tid in zip(rows[occurrences].tolist(), tids[occurrences].tolist(), strict=True):
        masks[row] |= words.masks[tid]
    cues = cue_columns(texts, lowered, masks)
    return _Tokens(len(texts), tids, rows, rows[:-1][same], keys, cues)


def _doc_matrix(n: int, rows: list[np.ndarray], cols: list[np.ndarray], n_cols: int) -> Any:
    """Documents × table rows, one entry per (row, col) pair: per row, the parts in the order
    given, each in its own order (every part is sorted by row, so each entry's place is its
    row's start, plus the row's entries in the parts before, plus its rank in its part)."""
    per_part = [np.bincount(r, minlength=n) for r in rows]
    indptr = np.concatenate(([0], np.cumsum(sum(per_part))))
    indices = np.empty(int(indptr[-1]), np.int64)
    before = np.zeros(n, np.int64)
    for part_rows, part_cols, counts in zip(rows, cols, per_part, strict=True):
        part_start = np.cumsum(counts) - counts
        rank = np.arange(len(part_rows)) - part_start[part_rows]
        indices[indptr[part_rows] + before[part_rows] + rank] = part_cols
        before += counts
    return sparse.csr_matrix((np.ones(len(indices)), indices, indptr), shape=(n, n_cols))


class TextFeatures(TransformerMixin, BaseEstimator):
    """Word 1-2-grams + character 3-5-grams within words (each block TF-IDF with sublinear tf,
    l2-normalised on its own, then weighted) + the cue block + pairs of informative words in
    one text (``cooccur``; learnt only when ``fit`` is given labels).

    Features are 32-bit murmurhash keys (seeded, so deterministic); the fitted vocabulary is the
    sorted array of kept keys, and ``explain`` names a text's columns by hashing its own words
    again. The per-token table is a cache of at most ``max_cached_words`` whitespace-separated
    chunks (reset when full), never pickled: results never depend on it. It starts from
    ``token_table_``: the training tokens found in the most texts (at most ``stored_words``, each
    in two texts at least) with their columns. Like the vocabulary of a plain TF-IDF model,
    these are words from the training mail. A freshly loaded model then hashes only the words it
    was not trained on."""

    CHUNK = 4096

    def __init__(
        self, word_weight: float = 1.0, char_weight: float = 1.0, cue_weight: float = 0.5,
        min_df_words: int = 1, max_df_words: float = 0.9, min_df_chars: int = 2,
        max_char_features: int = 150_000, max_cached_words: int = 100_000,
        pair_weight: float = 0.6, stored_words: int = 30_000,
    ) -> None:
        self.word_weight = word_weight
        self.char_weight = char_weight
        self.cue_weight = cue_weight
        self.min_df_words = min_df_words
        self.max_df_words = max_df_words
        self.min_df_chars = min_df_chars
        self.max_char_features = max_char_features
        self.max_cached_words = max_cached_words
        self.pair_weight = pair_weight
        self.stored_words = stored_words

    _CACHES = ("_words", "_index", "_ranks", "_pair_table", "_blocks")  # never pickled

    def __getstate__(self) -> dict[str, Any]:
        state = dict(super().__getstate__())
        for name in self._CACHES:
            state.pop(name, None)
        return state

    def _forget(self, names: tuple[str, ...] = _CACHES) -> None:
        """Drop what was derived from the fitted attributes (they just changed)."""
        for name in names:
            self.__dict__.pop(name, None)

    def __setstate__(self, state: dict[str, Any]) -> None:
        # models saved before the word-pair block have neither its setting nor its columns
        # nor the table of frequent tokens
        self.__dict__.update({"pair_weight": 0.0, "pair_keys_": None, "stored_words": 0,
                              "token_table_": None, **state})

    def fit(self, texts: Any, y: Any = None) -> TextFeatures:
        """``y``: labels per text, or texts × targets of them (the word pairs are chosen for
        all targets); none: no word-pair block."""
        self._fit([str(t) for t in texts], keep=False, y=y)
        return self

    def fit_transform(self, texts: Any, y: Any = None, **fit_params: Any) -> sparse.csr_matrix:
        return self._fit([str(t) for t in texts], keep=True, y=y)

    def _fit(self, texts: list[str], keep: bool, y: Any = None) -> sparse.csr_matrix | None:
        ids = Ids()
        words = _Words(ids)
        df, totals = np.zeros(0, np.int64), np.zeros(0)
        chunks = []
        for start in range(0, len(texts), self.CHUNK):
            tok = _tokens(words, texts[start : start + self.CHUNK])
            counts = _doc_matrix(tok.n, [tok.rows], [tok.tids], len(words.hashes))
            counts = counts @ words.matrix(len(ids), 0)
            df = _grow(df, len(ids)) + np.bincount(counts.indices, minlength=len(ids))
            totals = _grow(totals, len(ids)) + np.bincount(counts.indices, counts.data, len(ids))
            chunks.append((start, tok))
        keys = ids.keys()
        row_parts = [t.bigram_rows.astype(np.uint64) + np.uint64(s) for s, t in chunks]
        key_parts = [t.bigram_keys for _, t in chunks]
        in_rows, _ = _counted((np.concatenate([np.zeros(0, np.uint64), *row_parts]) << U32)
                              | (np.concatenate([np.zeros(0, np.uint64), *key_parts]) & LOW32))
        bigrams, bigram_df = _counted((in_rows & LOW32) | BIGRAM_TAG)
        self._select(len(texts), keys, df, totals, bigrams, bigram_df)
        self._forget()
        final = words.remapped(self._key_index().get(keys))
        n_tokens = len(words.hashes)
        in_texts = [_counted(tok.rows.astype(np.int64) * n_tokens + tok.tids)[0] % n_tokens
                    for _, tok in chunks]  # each token once per text
        texts_per_token = np.bincount(np.concatenate([np.zeros(0, np.int64), *in_texts]),
                                      minlength=n_tokens)
        self.token_table_: dict[str, Any] | None = final.frequent(
            texts_per_token, self.stored_words)
        learn_pairs = y is not None and self.pair_weight > 0 and len(texts) > 0
        if not keep and not learn_pairs:
            return None
        tokenized = [tok for _, tok in chunks]
        x = self._matrix(final, tokenized)
        if learn_pairs:
            self._fit_pairs(x, np.asarray(y), final, tokenized)
            if keep and self._has_pairs():
                x = self._matrix(final, tokenized)  # now with the pair block
        return x if keep else None

    def _fit_pairs(self, x: sparse.csr_matrix, y: np.ndarray, words: _Words,
                   chunks: list[_Tokens]) -> None:
        n_words = int(np.searchsorted(self.vocabulary_keys_, np.uint64(CHAR_TAG)))
        self.pair_words_, self.pair_scores_ = cooccur.informative_words(x[:, :n_words], y)
        self._forget(("_ranks", "_pair_table", "_blocks"))  # the pairs' (the rest stands)
        keys = [self._pair_keys(words, tok)[1] for tok in chunks]
        vocab, self.pair_idf_ = cooccur.vocabulary(np.concatenate(keys), x.shape[0])
        self.pair_keys_: np.ndarray | None = vocab
        self.n_features_out_ = len(self.block_) + len(vocab)

    def _has_pairs(self) -> bool:
        vocab = getattr(self, "pair_keys_", None)
        return vocab is not None and len(vocab) > 0

    def _pair_keys(self, words: _Words, tok: _Tokens) -> tuple[np.ndarray, np.ndarray]:
        """The (document, key) of each pair of pair words in one chunk of documents."""
        ranks: np.ndarray | None = self.__dict__.get("_ranks")
        if ranks is None:  # each column's rank among the pair words (0 best), else their number
            n = len(self.pair_words_)
            ranks = self.__dict__["_ranks"] = np.full(len(self.block_) + 1, n, np.int64)
            ranks[self.pair_words_] = np.arange(n)  # and the last entry: column -1, no word
        token_ranks = ranks[words.vectors()[5][tok.tids]]
        return cooccur.pair_keys(tok.rows, token_ranks, tok.n, len(self.pair_words_))

    def _pair_columns(self, words: _Words, tok: _Tokens) -> tuple[np.ndarray, np.ndarray]:
        """The (document, pair column) of each known pair in one chunk of documents."""
        rows, keys = self._pair_keys(words, tok)
        n_words = len(self.pair_words_)
        table: np.ndarray | None = self.__dict__.get("_pair_table")
        if table is None:
            assert self.pair_keys_ is not None  # the caller checked _has_pairs
            table = self.__dict__["_pair_table"] = cooccur.columns(self.pair_keys_, n_words)
        cols = table[cooccur.triangle(keys, n_words)]
        known = cols >= 0
        return rows[known], cols[known]

    def _columns(self) -> tuple[np.ndarray, np.ndarray]:
        """Every output column's block (0 words, 1 chars, 2 cues, 3 pairs) and idf."""
        columns: tuple[np.ndarray, np.ndarray] | None = self.__dict__.get("_blocks")
        if columns is None:
            block, idf = self.block_, self.idf_
            if self._has_pairs():
                block = np.concatenate((block, np.full(len(self.pair_idf_), 3, np.uint8)))
                idf = np.concatenate((idf, self.pair_idf_))
            columns = self.__dict__["_blocks"] = (block, idf)
        return columns

    def _select(self, n: int, keys: np.ndarray, df: np.ndarray, totals: np.ndarray,
                bigrams: np.ndarray, bigram_df: np.ndarray) -> None:
        is_char = keys >= CHAR_TAG
        max_df = self.max_df_words
        max_df = max_df * n if isinstance(max_df, float) else max_df
        word_keep = ~is_char & (df >= self.min_df_words) & (df <= max_df)
        bigram_keep = (bigram_df >= self.min_df_words) & (bigram_df <= max_df)
        chars = np.flatnonzero(is_char & (df >= self.min_df_chars))
        if len(chars) > self.max_char_features:  # the most frequent, ties by key
            chars = chars[np.lexsort((keys[chars], -totals[chars]))[: self.max_char_features]]
        chosen = np.concatenate((np.flatnonzero(word_keep), chars))
        all_keys = np.concatenate((keys[chosen], bigrams[bigram_keep]))
        all_df = np.concatenate((df[chosen], bigram_df[bigram_keep]))
        order = np.argsort(all_keys, kind="stable")
        self.vocabulary_keys_ = all_keys[order]
        self.n_token_columns_ = int(word_keep.sum()) + len(chars)
        n_vocab = len(all_keys)
        idf = cooccur.smooth_idf(all_df[order], n)
        self.idf_ = np.concatenate((idf, np.ones(len(CUE_FEATURE_NAMES))))
        block = np.zeros(n_vocab + len(CUE_FEATURE_NAMES), np.uint8)  # 0 words, 1 chars, 2 cues
        block[int(word_keep.sum()) : self.n_token_columns_] = 1
        block[n_vocab:] = 2
        self.block_ = block
        self.n_features_out_ = len(block)
        self.pair_keys_ = None  # set by _fit_pairs when given labels

    def _key_index(self) -> KeyIndex:
        index: KeyIndex | None = self.__dict__.get("_index")
        if index is None:
            index = self.__dict__["_index"] = KeyIndex(self.vocabulary_keys_)
        return index

    def _table(self) -> _Words:
        words: _Words | None = self.__dict__.get("_words")
        if words is None or len(words.chunks) > self.max_cached_words:
            table = getattr(self, "token_table_", None)
            words = self.__dict__["_words"] = _Words.seeded(self._key_index().get, table)
        return words

    def _matrix(self, words: _Words, chunks: list[_Tokens]) -> sparse.csr_matrix:
        """The weighted matrix of tokenized chunks: one (documents × table rows) product with
        the table, whose last rows are the identity on the word-bigram and cue columns."""
        n_vocab, n_tokens = len(self.vocabulary_keys_), self.n_token_columns_
        first = len(words.hashes)  # the identity rows of the other blocks start here
        n_base = len(self.block_)  # every column but the word pairs'
        n_out = len(self._columns()[0])
        extra = n_out - n_tokens
        # the table row of column 0 of the word bigrams, the cues and the pairs
        bigram_row, cue_row, pair_row = (first + start - n_tokens for start in (0, n_vocab, n_base))
        docs = [sparse.csr_matrix((0, first + extra))]
        for tok in chunks:
            bigram_cols = self._key_index().get(tok.bigram_keys)
            ok = bigram_cols >= 0
            cue_rows, cue_cols = np.nonzero(tok.cues)
            rows = [tok.rows, tok.bigram_rows[ok], cue_rows]
            cols = [tok.tids, bigram_row + bigram_cols[ok], cue_row + cue_cols]
            if n_out > n_base:
                pair_rows, pair_cols = self._pair_columns(words, tok)
                rows.append(pair_rows)
                cols.append(pair_row + pair_cols)
            docs.append(_doc_matrix(tok.n, rows, cols, first + extra))
        stacked = docs[-1] if len(docs) == 2 else sparse.vstack(docs, format="csr")
        return self._weigh(stacked @ words.matrix(n_out, extra))

    def _weigh(self, x: sparse.csr_matrix) -> sparse.csr_matrix:
        """In place: sublinear tf × idf, each text block l2-normalised and weighted; cues ×
        cue_weight. Row blocks at a time, to bound the temporaries."""
        weights = np.array([self.word_weight, self.char_weight, 1.0,
                            getattr(self, "pair_weight", 0.0)])
        block, idf = self._columns()
        for start in range(0, x.shape[0], self.CHUNK):
            stop = min(x.shape[0], start + self.CHUNK)
            lo, hi = x.indptr[start], x.indptr[stop]
            data, indices = x.data[lo:hi], x.indices[lo:hi]
            rows = np.diff(x.indptr[start : stop + 1])
            slot = np.repeat(np.arange(0, 4 * (stop - start), 4), rows) + block[indices]
            np.log(data, out=data)
            data += 1.0
            data *= idf[indices]
            norms = np.sqrt(np.bincount(slot, data * data, 4 * (stop - start))).reshape(-1, 4)
            scale = np.divide(weights, norms, out=np.zeros_like(norms), where=norms > 0)
            scale[:, 2] = self.cue_weight
            data *= scale.ravel()[slot]
        return x

    def transform(self, texts: Any) -> sparse.csr_matrix:
        return self.transform_with_cues(texts)[0]

    def transform_with_cues(self, texts: Any) -> tuple[sparse.csr_matrix, np.ndarray]:
        """The feature matrix and the boolean cue block (columns ``CUE_FEATURE_NAMES``)."""
        texts = [str(t) for t in texts]
        words = self._table()  # one table for the whole call: it may grow by this call only
        step = self.CHUNK
        chunks = [_tokens(words, texts[s : s + step]) for s in range(0, len(texts), step)]
        empty = np.zeros((0, len(CUE_FEATURE_NAMES)), bool)
        x = self._matrix(words, chunks)
        return x, np.concatenate([empty, *(t.cues for t in chunks)])

    def explain(self, text: str, columns: np.ndarray | None = None) -> dict[int, str]:
        """Readable names of the columns that ``transform([text])`` sets (``columns``: those
        columns, when the caller has them already)."""
        names: dict[int, list[str]] = {}
        words = [t.rstrip("'-") for t in TOKEN.findall(str(text).lower())]
        index = self._key_index()
        distinct = list(dict.fromkeys(words))
        infos = STORE.infos(distinct)
        cols = index.get(infos.keys).tolist()
        for i, word in enumerate(distinct):
            labels = [f"word '{word}'", *(f"chars '{g}'" for g in ngrams(word))]
            start = int(infos.starts[i])
            for col, label in zip(cols[start : start + int(infos.lens[i])], labels, strict=True):
                if 0 <= col < self.n_token_columns_:
                    names.setdefault(col, []).append(label)
        word_hash = dict(zip(distinct, infos.hashes.tolist(), strict=True))
        hashes = np.array([word_hash[w] for w in words], np.uint64)
        pairs = index.get(bigram_keys(hashes[:-1], hashes[1:]))
        for i, col in enumerate(pairs.tolist()):
            if col >= 0:
                names.setdefault(col, []).append(f"words '{words[i]} {words[i + 1]}'")
        n_vocab = len(self.vocabulary_keys_)
        for j in np.flatnonzero(cue_matrix([text])[0]).tolist():
            names[n_vocab + j] = [CUE_FEATURE_NAMES[j]]
        out = {col: " / ".join(dict.fromkeys(labels)) for col, labels in names.items()}
        n_base = len(self.block_)
        vocab = getattr(self, "pair_keys_", None)
        if vocab is not None:
            cols = self.transform([text]).indices if columns is None else np.asarray(columns)
            for col in cols[cols >= n_base].tolist():
                ranks = divmod(int(vocab[col - n_base]), len(self.pair_words_))
                first, second = (int(self.pair_words_[r]) for r in ranks)
                out[col] = f"pair {_word_of(out.get(first))} + {_word_of(out.get(second))}"
        return out

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        kinds = np.array(["word", "chars", "cue"], dtype=object)[self.block_]
        names = [f"{k}#{i}" for i, k in enumerate(kinds[: len(self.vocabulary_keys_)])]
        names += CUE_FEATURE_NAMES
        names += [f"pair#{i}" for i in range(self.n_features_out_ - len(self.block_))]
        return np.array(names, dtype=object)


def _word_of(label: str | None) -> str:
    """The quoted word of a word column's name ("word 'refund'" -> "'refund'")."""
    for part in (label or "").split(" / "):
        if part.startswith("word "):
            return part[len("word "):]
    return "?"


def _counted(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted distinct values and their counts (a sort: faster than np.unique's hashing here)."""
    values = np.sort(values)
    starts = np.flatnonzero(cooccur.first_of_runs(values))
    return values[starts], np.diff(np.append(starts, len(values)))


def _grow(array: np.ndarray, size: int) -> np.ndarray:
    return np.concatenate((array, np.zeros(size - len(array), array.dtype)))


# -- kept so that models pickled with FEATURE_SCHEMA_VERSION 1 still load ----------------------
_WORD = re.compile(r"\w+(?:['-]\w+)*")


@lru_cache(maxsize=200_000)
def _subwords(word: str) -> tuple[str, ...]:
    return tuple(ngrams(word))


def subword_ngrams(text: str) -> list[str]:
    """Character 3-5-grams inside word boundaries (the analyzer of schema-1 models)."""
    return list(chain.from_iterable(_subwords(w) for w in _WORD.findall(text.lower())))


class CueFeatures(TransformerMixin, BaseEstimator):
    """The cue block alone as a dense-valued sparse matrix (used by schema-1 models)."""

    def __init__(self, weight: float = 1.0) -> None:
        self.weight = weight

    def fit(self, texts: Any, y: Any = None) -> CueFeatures:
        return self

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        return np.array(CUE_FEATURE_NAMES, dtype=object)

    def transform(self, texts: Any) -> sparse.csr_matrix:
        return sparse.csr_matrix(cue_matrix(list(texts)).astype(np.float64) * self.weight)
