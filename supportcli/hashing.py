"""Feature keys of words, hashed in bulk: each token's word and character 3-5-gram keys (seeded
32-bit MurmurHash3, tagged by kind), computed for many new tokens at once with numpy and kept
in a bounded store shared by the process; and the index from feature keys to columns.

``token_info`` is the definition, one token at a time; ``new_infos`` computes the same values
for many tokens at once (tested against it), ``STORE`` keeps them.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from itertools import count, repeat

import numpy as np
from sklearn.utils import murmurhash3_32

from .cues import token_mask, token_masks

SEED = 0x5EED
# Feature keys: a 32-bit hash tagged by kind, so that words < character n-grams < word pairs.
WORD_TAG, CHAR_TAG = 1 << 32, 2 << 32
BIGRAM_TAG = np.uint64(3 << 32)
LOW32 = np.uint64(0xFFFFFFFF)
U32 = np.uint64(32)


def _hash(text: str) -> int:
    return int(murmurhash3_32(text.encode("utf-8", "surrogatepass"), seed=SEED, positive=True))


def bigram_keys(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Feature keys of word pairs from the two words' 32-bit hashes (splitmix64 finaliser)."""
    x = (left << U32) | right
    x ^= x >> np.uint64(30)
    x *= np.uint64(0xBF58476D1CE4E5B9)
    x ^= x >> np.uint64(27)
    x *= np.uint64(0x94D049BB133111EB)
    x ^= x >> np.uint64(31)
    return (x >> U32) | BIGRAM_TAG


def ngrams(word: str) -> list[str]:
    padded = f" {word} "
    return [padded[i : i + n] for n in (3, 4, 5) for i in range(len(padded) - n + 1)]


def token_info(token: str) -> tuple[int, int, np.ndarray]:
    """A token's word hash, cue-trigger mask and feature keys (its word, then its n-grams): the
    definition, one token at a time. ``new_infos`` computes the same for many tokens at once,
    and ``STORE`` keeps them."""
    word = token.rstrip("'-")
    word_hash = _hash(word)
    keys = [WORD_TAG | word_hash, *(CHAR_TAG | _hash(g) for g in ngrams(word))]
    return word_hash, token_mask(token), np.array(keys, np.uint64)


@dataclass
class Infos:
    """``token_info`` of tokens, as arrays: token i's keys are ``keys[starts[i]:][:lens[i]]``."""

    hashes: np.ndarray  # uint64
    masks: list[int]
    keys: np.ndarray  # uint64
    starts: np.ndarray
    lens: np.ndarray

    def take(self, ids: np.ndarray) -> Infos:
        """The infos of the tokens ``ids``, their keys laid out in that order."""
        lens = self.lens[ids]
        masks = self.masks
        return Infos(self.hashes[ids], [masks[i] for i in ids.tolist()],
                     self.keys[positions(self.starts, self.lens, ids)], np.cumsum(lens) - lens,
                     lens)


def positions(starts: np.ndarray, lens: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Where the items of ``rows`` sit in a flat array whose row i holds the items
    ``[starts[i], starts[i] + lens[i])``: row after row, each in its order."""
    sizes = lens[rows]
    ends = np.cumsum(sizes)
    return np.repeat(starts[rows] - ends + sizes, sizes) + np.arange(int(ends[-1:].sum()))


class InfoStore:
    """The ``Infos`` of the tokens seen lately, shared by the process (and its threads: one
    lock): at most ``capacity`` tokens, then it starts again. Arrays grow by doubling, so
    adding a few tokens to a full store costs no copy of it."""

    def __init__(self, capacity: int = 1 << 16) -> None:
        self.capacity = capacity
        self._lock = threading.Lock()
        self.clear()

    def clear(self) -> None:
        self.ids: dict[str, int] = {}
        self._infos = Infos(np.zeros(0, np.uint64), [], np.zeros(0, np.uint64),
                             np.zeros(0, np.int64), np.zeros(0, np.int64))
        self._n_keys = 0

    def infos(self, tokens: list[str]) -> Infos:
        """The infos of tokens, in their order."""
        with self._lock:
            ids = np.fromiter(map(self.ids.get, tokens, repeat(-1)), np.int64, len(tokens))
            missing = np.flatnonzero(ids < 0)
            if not len(missing):
                return self._infos.take(ids)
            new = list(dict.fromkeys([tokens[i] for i in missing.tolist()]))
            if len(self.ids) + len(new) > self.capacity:  # start again with this batch's tokens
                known = list(dict.fromkeys([tokens[i] for i in np.flatnonzero(ids >= 0).tolist()]))
                if len(known) + len(new) > self.capacity:
                    return self._oversized(tokens)
                kept = self._infos.take(self._ids(known))
                self.clear()
                self._add(known, kept)
            self._add(new, new_infos(new))
            return self._infos.take(self._ids(tokens))

    def _ids(self, tokens: list[str]) -> np.ndarray:
        return np.fromiter(map(self.ids.__getitem__, tokens), np.int64, len(tokens))

    def _oversized(self, tokens: list[str]) -> Infos:
        """A batch with more distinct tokens than the store holds: all hashed, the first kept."""
        distinct = list(dict.fromkeys(tokens))
        fresh = new_infos(distinct)
        self.clear()
        self._add(distinct[: self.capacity], fresh.take(np.arange(self.capacity)))
        where = dict(zip(distinct, count()))
        return fresh.take(np.fromiter(map(where.__getitem__, tokens), np.int64, len(tokens)))

    def _add(self, tokens: list[str], fresh: Infos) -> None:
        """Keep the infos of new, distinct tokens."""
        store, first = self._infos, len(self.ids)
        n, n_keys = first + len(tokens), self._n_keys + len(fresh.keys)
        store.hashes = _room(store.hashes, first, n)
        store.starts, store.lens = _room(store.starts, first, n), _room(store.lens, first, n)
        store.keys = _room(store.keys, self._n_keys, n_keys)
        store.hashes[first:n], store.lens[first:n] = fresh.hashes, fresh.lens
        store.starts[first:n] = fresh.starts + self._n_keys
        store.keys[self._n_keys : n_keys] = fresh.keys
        store.masks.extend(fresh.masks)
        self._n_keys = n_keys
        self.ids.update(zip(tokens, count(first)))  # last: a token is found once it is whole


def _room(array: np.ndarray, used: int, needed: int) -> np.ndarray:
    """``array`` with room for ``needed`` items, its first ``used`` kept (doubling its size)."""
    if needed <= len(array):
        return array
    bigger = np.empty(max(needed, 2 * len(array), 1024), array.dtype)
    bigger[:used] = array[:used]
    return bigger


STORE = InfoStore()


def new_infos(tokens: list[str]) -> Infos:
    """``token_info`` of distinct tokens, all hashed together: every word and character
    n-gram is a slice of one UTF-8 buffer."""
    words = [t.rstrip("'-") for t in tokens]
    text = _Utf8(words, pad=1)
    # each token's keys: its word, then its n-grams in the order of ngrams (n, then position)
    c3 = np.maximum(text.lens - 2, 0)
    c4 = np.maximum(text.lens - 3, 0)
    sizes = 1 + c3 + c4 + np.maximum(text.lens - 4, 0)
    word_at = np.cumsum(sizes) - sizes
    owner = np.repeat(np.arange(len(words)), sizes)
    at = np.arange(len(owner)) - word_at[owner] - 1  # place among the token's n-grams
    gram = at >= 0
    owner, at = owner[gram], at[gram]
    n = 3 + (at >= c3[owner]) + (at >= c3[owner] + c4[owner])
    first = text.starts[owner] + at - np.where(n > 3, c3[owner], 0) - np.where(n > 4, c4[owner], 0)
    hashes = text.hash(text.starts + 1, text.starts + text.lens - 1, SEED)
    keys = np.empty(len(gram), np.uint64)
    keys[word_at] = hashes | np.uint64(WORD_TAG)
    keys[gram] = text.hash(first, first + n, SEED) | np.uint64(CHAR_TAG)
    return Infos(hashes, token_masks(tokens), keys, word_at, sizes)


class _Utf8:
    """Strings joined, each padded by ``pad`` spaces on both sides, as one UTF-8 buffer: the
    code point where each padded string starts and its length in code points, and the byte
    offset of every code point, so that any run of code points is a slice of the buffer."""

    def __init__(self, strings: list[str], pad: int = 0) -> None:
        space = " " * pad
        joined = f"{space}{(space + space).join(strings)}{space}" if strings else ""
        self.lens = np.fromiter(map(len, strings), np.int64, len(strings)) + 2 * pad
        self.starts = np.cumsum(self.lens) - self.lens
        if joined.isascii():
            self.buf = np.frombuffer(joined.encode("ascii"), np.uint8)
            self.offsets = np.arange(len(joined) + 1)
        else:  # surrogatepass: a lone surrogate from a broken email still hashes
            points = np.frombuffer(joined.encode("utf-32-le", "surrogatepass"), np.uint32)
            sizes = 1 + (points >= 0x80) + (points >= 0x800) + (points >= 0x10000)
            self.buf = np.frombuffer(joined.encode("utf-8", "surrogatepass"), np.uint8)
            self.offsets = np.concatenate(([0], np.cumsum(sizes)))

    def hash(self, first: np.ndarray, stop: np.ndarray, seed: int) -> np.ndarray:
        """``murmurhash3_32`` (unsigned) of the UTF-8 bytes of code points [first, stop)."""
        start = self.offsets[first]
        return murmur3_slices(self.buf, start, self.offsets[stop] - start, seed)


_LONG_ITEM = 256  # longer byte strings are hashed one by one
_C1, _C2 = np.uint32(0xCC9E2D51), np.uint32(0x1B873593)
_TAIL_MASKS = np.array([0, 0xFF, 0xFFFF, 0xFFFFFF], np.uint32)


def _rotl(x: np.ndarray, r: int) -> np.ndarray:
    return (x << np.uint32(r)) | (x >> np.uint32(32 - r))


def murmur3_slices(buf: np.ndarray, starts: np.ndarray, lens: np.ndarray, seed: int) -> np.ndarray:
    """MurmurHash3 (x86, 32-bit, unsigned) of the slices ``buf[s : s + n]`` for each start s and
    length n, all at once: ``sklearn.utils.murmurhash3_32(bytes(slice), seed, positive=True)``.
    Each 4-byte block is read from the little-endian word at every byte offset of ``buf``; a
    slice's tail is the word after its blocks, masked (an empty tail mixes in nothing)."""
    out = np.empty(len(starts), np.uint64)
    long = np.flatnonzero(lens > _LONG_ITEM)
    n = lens.copy()
    n[long] = 0
    padded = np.concatenate((buf, np.zeros(4, np.uint8))).astype(np.uint32)
    words = padded[:-3] | padded[1:-2] << 8 | padded[2:-1] << 16 | padded[3:] << 24
    blocks = n // 4
    h = np.full(len(starts), seed, np.uint32)
    for j in range(int(blocks.max(initial=0))):
        live = np.flatnonzero(blocks > j)
        k = _rotl(words[starts[live] + 4 * j] * _C1, 15) * _C2
        h[live] = _rotl(h[live] ^ k, 13) * np.uint32(5) + np.uint32(0xE6546B64)
    k = words[starts + 4 * blocks] & _TAIL_MASKS[n & 3]
    h ^= _rotl(k * _C1, 15) * _C2
    h ^= n.astype(np.uint32)
    h ^= h >> np.uint32(16)
    h *= np.uint32(0x85EBCA6B)
    h ^= h >> np.uint32(13)
    h *= np.uint32(0xC2B2AE35)
    h ^= h >> np.uint32(16)
    out[:] = h
    for i in long.tolist():
        item = buf[starts[i] : starts[i] + lens[i]].tobytes()
        out[i] = murmurhash3_32(item, seed=seed, positive=True)
    return out


class Ids:
    """Provisional columns for feature keys while fitting, assigned in order of appearance."""

    def __init__(self) -> None:
        self.sorted = np.zeros(0, np.uint64)
        self.ids = np.zeros(0, np.int64)

    def __len__(self) -> int:
        return len(self.sorted)

    def __call__(self, keys: np.ndarray) -> np.ndarray:
        unique, inverse = np.unique(keys, return_inverse=True)
        pos = np.searchsorted(self.sorted, unique)
        known = pos < len(self.sorted)
        known[known] = self.sorted[pos[known]] == unique[known]
        ids = np.empty(len(unique), np.int64)
        ids[known] = self.ids[pos[known]]
        new = np.flatnonzero(~known)
        ids[new] = len(self.sorted) + np.arange(len(new))
        if len(new):
            merged = np.concatenate((self.sorted, unique[new]))
            order = np.argsort(merged, kind="stable")
            self.sorted, self.ids = merged[order], np.concatenate((self.ids, ids[new]))[order]
        return ids[inverse]

    def keys(self) -> np.ndarray:
        """The key of each provisional column."""
        out = np.empty(len(self.sorted), np.uint64)
        out[self.ids] = self.sorted
        return out


class KeyIndex:
    """Feature keys to columns: the keys sorted, and a directory of buckets over them.

    A key's bucket is its tag (the high 32 bits, from a small range) and the top bits of its
    32-bit hash; bucket order is key order, so each bucket is one run of the sorted keys, found
    by a count per bucket. There are about as many buckets per tag as keys of the largest tag,
    so most buckets hold at most two keys. Building it needs no sort when the keys come sorted
    (a fitted vocabulary does), which keeps a freshly loaded model's first call cheap."""

    MAX_TAGS = 1 << 16

    def __init__(self, keys: np.ndarray) -> None:
        keys = np.asarray(keys, np.uint64)
        self.order: np.ndarray | None = None  # the columns of the sorted keys (None: in order)
        if len(keys) > 1 and not (keys[1:] > keys[:-1]).all():
            self.order = np.argsort(keys, kind="stable")
            keys = keys[self.order]
        self._padded = np.append(keys, np.zeros(2, np.uint64))  # reading pos + 1 needs no check
        self.keys = self._padded[:-2]
        high = (keys >> U32).astype(np.int64)
        self.first_tag = int(high[0]) if len(keys) else 0
        if len(keys) and int(high[-1]) - self.first_tag >= self.MAX_TAGS:  # before allocating
            raise ValueError("feature keys span too many tags (high 32 bits)")
        tags = np.bincount(high - self.first_tag) if len(keys) else np.zeros(1, np.int64)
        self.n_tags = len(tags)
        self.bits = min(32, int(tags.max()).bit_length())
        self.starts = np.zeros((len(tags) << self.bits) + 1, np.int64)
        np.cumsum(np.bincount(self._bucket(keys), minlength=len(self.starts) - 1),
                  out=self.starts[1:])

    def _bucket(self, keys: np.ndarray) -> np.ndarray:
        """Each key's bucket; a key of a tag outside the index falls into the first or last
        tag's buckets, where no key equals it."""
        tag = (keys >> U32).astype(np.int64) - self.first_tag
        np.clip(tag, 0, self.n_tags - 1, out=tag)
        return (tag << self.bits) | ((keys & LOW32) >> np.uint64(32 - self.bits)).astype(np.int64)

    def get(self, keys: np.ndarray) -> np.ndarray:
        """Each key's column, -1 when it is none. The first two keys of every bucket are read at
        once; a key greater than both reads on in its bucket (few buckets hold more)."""
        keys = np.asarray(keys, np.uint64)
        out = np.full(len(keys), -1, np.int64)
        if not len(self.keys):
            return out
        bucket = self._bucket(keys)
        pos, end = self.starts[bucket], self.starts[bucket + 1]
        for step in (0, 1):
            hit = (self._padded[pos + step] == keys) & (pos + step < end)
            out[hit] = pos[hit] + step
        todo = np.flatnonzero((self._padded[pos + 1] < keys) & (pos + 2 < end))
        want, pos, end = keys[todo], pos[todo] + 2, end[todo]
        while len(todo):
            found = self.keys[pos]
            hit = found == want
            out[todo[hit]] = pos[hit]
            pos += 1
            on = (found < want) & (pos < end)
            todo, want, pos, end = todo[on], want[on], pos[on], end[on]
        if self.order is not None:
            known = out >= 0
            out[known] = self.order[out[known]]
        return out
