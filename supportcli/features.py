"""What the model sees: the one definition of the input text, the hand-made cues and the features.

``to_text`` turns a message into the model's input string. ``TextFeatures`` turns such strings
into one sparse matrix: word 1-2-grams, character 3-5-grams inside word boundaries (spelling
variants, compounds, other languages) and the cues below (deadline, chargeback, legal threat,
…). ``urgent_cues`` names the cues that make a message urgent whatever the text model says.
Change any of them and bump ``FEATURE_SCHEMA_VERSION``: saved models record it.

Speed comes from mail repeating the same words: each distinct word's features (its hashed
unigram, its character n-grams, which cue patterns it could start) are computed once and kept in
a bounded table; a batch of documents is then a sparse (documents × words) count matrix times
the (words × features) table, plus word bigrams hashed from neighbouring words with numpy.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache, lru_cache
from itertools import chain, count, repeat
from typing import Any

import numpy as np
from scipy import sparse
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils import murmurhash3_32

FEATURE_SCHEMA_VERSION = 2
MAX_TEXT_CHARS = 3000
AUTOMATED_MARK = "zzautomatedmail"  # a token the vectorizers see for automated mail


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


# Each cue: a name, whether it alone makes a message urgent, and its alternatives (lower-case
# regexes over the lower-cased text, each starting with a literal so it can be found quickly).
_CUE_SPECS: tuple[tuple[str, bool, tuple[str, ...]], ...] = (
    ("chargeback or payment dispute", True, (
        r"charge ?back", r"\bdisput", r"paypal (?:claim|case)", r"bank (?:reversal|dispute)",
        r"reclamaci[óo]n (?:con|en) (?:el )?banco", r"rückbuchung", r"ruckbuchung",
        r"lastschrift.{0,20}zur[üu]ck", r"contracargo", r"rétrofacturation",
        r"retrofacturation", r"litige", r"opposition (?:bancaire|sur)",
        r"reported (?:it|this) to my bank", r"claim with (?:my|the) (?:bank|card)")),
    ("legal threat", True, (
        r"\blawyer", r"\bsolicitor", r"\battorney", r"legal action", r"\bsue\b", r"\bcourt\b",
        r"small claims", r"trading standards", r"consumer (?:protection|rights)", r"\banwalt",
        r"rechtliche schritte", r"verbraucherzentrale", r"\bavocat", r"poursuites",
        r"\babogado", r"acciones legales", r"\bdenuncia")),
    ("fraud or unauthorised charge", True, (
        r"unauthori[sz]ed", r"\bfraud", r"didn'?t (?:make|place|authori[sz]e) (?:this|these|that)",
        r"not my (?:order|purchase)", r"account (?:was|has been) (?:hacked|compromised)",
        r"\bhacked\b", r"betrug", r"nicht autorisiert", r"\bfraude", r"no autoricé")),
    ("safety problem", True, (
        r"allergic", r"allergy", r"anaphyla", r"\bhospital", r"\binjur", r"caught fire",
        r"\bsmok(?:e|ing) (?:came|coming)", r"electric shock", r"\bchok(?:e|ed|ing)\b",
        r"\brash\b", r"allergi", r"krankenhaus", r"alerg", r"hôpital", r"urgences")),
    ("deadline within a day", True, (
        *(rf"\b{w} (?:tomorrow|tonight|today|end of (?:the )?day)"
          for w in ("by", "before", "until")),
        *(rf"\b{w} today" for w in ("ships?", "dispatch(?:ed|es)?", "goes out", "leaves?")),
        *(rf"\b{w} tomorrow" for w in ("is", "it's", "its", "event", "party", "wedding", "birthday",
                                       "flight", "trip")),
        r"\bneed (?:it|this|them) (?:by )?(?:tomorrow|today)", r"within 24 ?h",
        r"\bbis morgen", r"\bmorgen (?:ist|brauche)", r"\bheute noch", r"\bdemain\b",
        r"\bmañana\b", r"\bmanana\b", r"\bhoy mismo")),
    ("public review threat", True, (
        *(f"{w} review" for w in ("bad", "negative", "terrible", "honest", "1-star", "1 star",
                                  "one-star", "one star")),
        r"review (?:on|everywhere|site)", r"tell everyone", r"post (?:about )?(?:this|it) on",
        r"schlechte bewertung", r"\bavis\b.{0,20}n[ée]gatif", r"mala rese[ñn]a",
        r"negativa rese[ñn]a", r"rese[ñn]a negativa")),
    ("repeated follow-up", False, (
        r"still (?:waiting|no|not|haven'?t)",
        *(f"{w} (?:time|email|e-mail|message)"
          for w in ("second", "third", "fourth", "3rd", "2nd")),
        *(f"{w} (?:you )?(?:twice|three times|again|several times)"
          for w in ("asked", "written", "emailed", "wrote")),
        *(f"no {w} (?:has )?(?:replied|answered|got back)" for w in ("one", "body")),
        r"\bfollow(?:ing)?[- ]up",
        r"immer noch", r"schon (?:wieder|zweimal|dreimal)", r"toujours pas", r"relance",
        r"todav[íi]a no", r"otra vez")),
    ("anger", False, (
        r"unacceptable", r"disgust", r"ridiculous", r"worst", r"appalling", r"furious", r"!!",
        r"\bscam\b", r"inakzeptabel", r"unversch[äa]mt", r"inadmissible", r"inaceptable",
        r"vergogn")),
    ("money already taken", False, (
        r"charged (?:me )?(?:twice|two times|double)", r"double charge", r"refund", r"money back",
        r"erstattung", r"rembourse", r"reembolso", r"paid (?:for|already)")),
)
_ORDER_SPEC = (r"#\s?\d{4,}", r"\border\b", r"\bbestell", r"\bcommande", r"\bpedido")
CUES: tuple[tuple[str, re.Pattern[str], bool], ...] = tuple(
    (name, re.compile("|".join(alts), re.IGNORECASE), urgent) for name, urgent, alts in _CUE_SPECS
)
CUE_NAMES = tuple(name for name, _, _ in _CUE_SPECS)
URGENT_CUES = frozenset(name for name, urgent, _ in _CUE_SPECS if urgent)
# Columns of the cue block: the cues, then "mentions an order", "automated", "shouting".
CUE_FEATURE_NAMES = (*(f"cue: {n}" for n in CUE_NAMES), "cue: mentions an order",
                     "cue: automated mail", "cue: shouting (capitals)")
_N_PATTERNS = len(CUE_NAMES) + 1  # the cues and the order pattern
_AUTOMATED_COL, _CAPS_COL = _N_PATTERNS, _N_PATTERNS + 1
_URGENT_COLS = np.array([i for i, n in enumerate(CUE_NAMES) if n in URGENT_CUES])
_WORD = re.compile(r"\w+(?:['-]\w+)*")
_LITERAL = re.compile(r"(?:\\b)?((?:[^\\.^$*+?{}\[\]|()](?![?*{]))+)")


@dataclass(frozen=True)
class _Alternative:
    pattern: int  # index into the cue columns
    prefix: str  # the literal every match starts with
    regex: re.Pattern[str]


def _prefix(alternative: str) -> str:
    match = _LITERAL.match(alternative)
    if not match:
        raise ValueError(f"cue alternative {alternative!r} does not start with a literal")
    return match.group(1)


@cache
def _alternatives() -> tuple[tuple[_Alternative, ...], tuple[tuple[str, int], ...], int]:
    """The compiled alternatives, the word triggers (trigger, bitmask of alternatives) and the
    bitmask of alternatives without a word in their prefix (checked in every text)."""
    specs = [*(alts for _, _, alts in _CUE_SPECS), _ORDER_SPEC]
    alternatives = tuple(
        _Alternative(i, _prefix(a), re.compile(a)) for i, alts in enumerate(specs) for a in alts
    )
    triggers: dict[str, int] = {}
    always = 0
    for bit, alt in enumerate(alternatives):
        # Any run of word characters of the prefix lies inside one token of the text.
        runs = re.findall(r"\w+", alt.prefix)
        if runs:
            trigger = max(runs, key=len)
            triggers[trigger] = triggers.get(trigger, 0) | 1 << bit
        else:
            always |= 1 << bit
    return alternatives, tuple(triggers.items()), always


@cache
def _trigger_index() -> dict[str, tuple[tuple[str, int], ...]]:
    """The word triggers by their first two characters."""
    index: dict[str, list[tuple[str, int]]] = {}
    for trigger, bits in _alternatives()[1]:
        index.setdefault(trigger[:2], []).append((trigger, bits))
    return {start: tuple(found) for start, found in index.items()}


def _token_mask_uncached(token: str) -> int:
    """Bitmask of the cue alternatives whose trigger word occurs in ``token``."""
    index = _trigger_index()
    mask = 0
    for i in range(len(token) - 1):
        for trigger, bits in index.get(token[i : i + 2], ()):
            if token.startswith(trigger, i):
                mask |= bits
    return mask


_token_mask = lru_cache(maxsize=1 << 16)(_token_mask_uncached)


def _confirm(lowered: str, mask: int) -> int:
    """Bitmask of the patterns that match, checking only the alternatives in ``mask``."""
    alternatives, _, always = _alternatives()
    mask |= always
    found = 0
    while mask:
        low = mask & -mask
        mask ^= low
        alt = alternatives[low.bit_length() - 1]
        if found >> alt.pattern & 1:
            continue
        pos = lowered.find(alt.prefix)
        while pos >= 0:
            if alt.regex.match(lowered, pos):
                found |= 1 << alt.pattern
                break
            pos = lowered.find(alt.prefix, pos + 1)
    return found


@cache
def _case_table() -> np.ndarray:
    """Per BMP code point: 1 for a letter, 1 + 2**16 for an upper-case letter."""
    return np.fromiter((_case_weight(chr(i)) for i in range(0x10000)), np.int32, 0x10000)


def _case_weight(char: str) -> int:
    return (1 + (1 << 16) if char.isupper() else 1) if char.isalpha() else 0


def _shouting(texts: Sequence[str]) -> np.ndarray:
    """Whether more than 60% of the letters (in the first 1500 characters) are capitals."""
    heads = [t[:1500] for t in texts]
    lengths = np.fromiter(map(len, heads), np.int64, len(heads))
    points = np.frombuffer("".join(heads).encode("utf-32-le", "surrogatepass"), np.uint32)
    weights = np.append(_case_table()[np.minimum(points, 0xFFFF)], 0)
    astral = np.flatnonzero(points > 0xFFFF)
    if len(astral):
        weights[astral] = [_case_weight(chr(p)) for p in points[astral].tolist()]
    sums = np.add.reduceat(weights, np.cumsum(lengths) - lengths)
    sums[lengths == 0] = 0
    letters, capitals = sums & 0xFFFF, sums >> 16
    ratio = np.divide(capitals, letters, out=np.zeros(len(heads)), where=letters > 20)
    return ratio > 0.6


def _cue_columns(texts: Sequence[str], lowered: Sequence[str], masks: Iterable[int]) -> np.ndarray:
    """The cue block (documents × CUE_FEATURE_NAMES) as booleans, given each text's trigger mask."""
    out = np.zeros((len(texts), len(CUE_FEATURE_NAMES)), dtype=bool)
    for i, (low, mask) in enumerate(zip(lowered, masks, strict=True)):
        found = _confirm(low, mask)
        while found:
            low_bit = found & -found
            found ^= low_bit
            out[i, low_bit.bit_length() - 1] = True
    out[:, _AUTOMATED_COL] = [AUTOMATED_MARK in t for t in texts]
    if len(texts):
        out[:, _CAPS_COL] = _shouting(texts)
    return out


def cue_matrix(texts: Sequence[str]) -> np.ndarray:
    """The cue block for texts: one boolean column per entry of ``CUE_FEATURE_NAMES``."""
    texts = [str(t) for t in texts]
    lowered = [t.lower() for t in texts]
    masks = []
    for low in lowered:
        mask = 0
        for token in set(_TOKEN.findall(low)):
            mask |= _token_mask(token)
        masks.append(mask)
    return _cue_columns(texts, lowered, masks)


def cue_hits(text: str) -> tuple[str, ...]:
    """Names of the cues present in a model text."""
    row = cue_matrix([text])[0]
    return tuple(name for i, name in enumerate(CUE_NAMES) if row[i])


def urgent_cues(text: str) -> tuple[str, ...]:
    if AUTOMATED_MARK in text:
        return ()
    return tuple(name for name in cue_hits(text) if name in URGENT_CUES)


def urgent_cues_from(cues: np.ndarray) -> list[tuple[str, ...]]:
    """``urgent_cues`` for each row of a ``cue_matrix``."""
    out: list[tuple[str, ...]] = [()] * len(cues)
    hits = cues[:, _URGENT_COLS] & ~cues[:, [_AUTOMATED_COL]]
    for i in np.flatnonzero(hits.any(axis=1)).tolist():
        out[i] = tuple(CUE_NAMES[j] for j in _URGENT_COLS[hits[i]].tolist())
    return out


_SEED = 0x5EED
# Feature keys: a 32-bit hash tagged by kind, so that words < character n-grams < word pairs.
_WORD_TAG, _CHAR_TAG = 1 << 32, 2 << 32
_BIGRAM_TAG = np.uint64(3 << 32)
_LOW32 = np.uint64(0xFFFFFFFF)
_U32 = np.uint64(32)
_TOKEN = re.compile(r"\w[\w'-]*")  # a word is its token without trailing ' and -


def _hash(text: str) -> int:
    return int(murmurhash3_32(text, seed=_SEED, positive=True))


def _bigram_keys(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Feature keys of word pairs from the two words' 32-bit hashes (splitmix64 finaliser)."""
    x = (left << _U32) | right
    x ^= x >> np.uint64(30)
    x *= np.uint64(0xBF58476D1CE4E5B9)
    x ^= x >> np.uint64(27)
    x *= np.uint64(0x94D049BB133111EB)
    x ^= x >> np.uint64(31)
    return (x >> _U32) | _BIGRAM_TAG


def _ngrams(word: str) -> list[str]:
    padded = f" {word} "
    return [padded[i : i + n] for n in (3, 4, 5) for i in range(len(padded) - n + 1)]


def _token_info(token: str) -> tuple[int, int, np.ndarray]:
    """A token's word hash, cue-trigger mask and feature keys (its word, then its n-grams): the
    definition, one token at a time. ``_new_infos`` computes the same for many tokens at once,
    and ``_STORE`` keeps them."""
    word = token.rstrip("'-")
    word_hash = _hash(word)
    keys = [_WORD_TAG | word_hash, *(_CHAR_TAG | _hash(g) for g in _ngrams(word))]
    return word_hash, _token_mask_uncached(token), np.array(keys, np.uint64)


@dataclass
class _Infos:
    """``_token_info`` of tokens, as arrays: token i's keys are ``keys[starts[i]:][:lens[i]]``."""

    hashes: np.ndarray  # uint64
    masks: list[int]
    keys: np.ndarray  # uint64
    starts: np.ndarray
    lens: np.ndarray

    def take(self, ids: np.ndarray) -> _Infos:
        """The infos of the tokens ``ids``, their keys laid out in that order."""
        lens = self.lens[ids]
        ends = np.cumsum(lens)
        first = np.repeat(self.starts[ids] - ends + lens, lens) + np.arange(int(ends[-1:].sum()))
        masks = self.masks
        return _Infos(self.hashes[ids], [masks[i] for i in ids.tolist()], self.keys[first],
                      ends - lens, lens)


class _InfoStore:
    """The ``_Infos`` of the tokens seen lately, shared by the process: at most ``capacity``
    tokens, then it starts again. Arrays grow by doubling, so adding a few tokens to a full
    store costs no copy of it."""

    def __init__(self, capacity: int = 1 << 16) -> None:
        self.capacity = capacity
        self.clear()

    def clear(self) -> None:
        self.ids: dict[str, int] = {}
        self._infos = _Infos(np.zeros(0, np.uint64), [], np.zeros(0, np.uint64),
                             np.zeros(0, np.int64), np.zeros(0, np.int64))
        self._n_keys = 0

    def infos(self, tokens: list[str]) -> _Infos:
        """The infos of distinct tokens, in their order."""
        ids = np.fromiter(map(self.ids.get, tokens, repeat(-1)), np.int64, len(tokens))
        missing = np.flatnonzero(ids < 0)
        if len(missing):
            if len(self.ids) + len(missing) > self.capacity:
                self.clear()
                missing, ids = np.arange(len(tokens)), np.full(len(tokens), -1)
            if len(missing) > self.capacity:  # too many to keep
                return _new_infos(tokens)
            new = [tokens[i] for i in missing.tolist()]
            ids[missing] = self._add(new, _new_infos(new))
        return self._infos.take(ids)

    def _add(self, tokens: list[str], fresh: _Infos) -> np.ndarray:
        store, first = self._infos, len(self.ids)
        self.ids.update(zip(tokens, count(first)))
        n, n_keys = len(self.ids), self._n_keys + len(fresh.keys)
        store.hashes = _room(store.hashes, first, n)
        store.starts, store.lens = _room(store.starts, first, n), _room(store.lens, first, n)
        store.keys = _room(store.keys, self._n_keys, n_keys)
        store.hashes[first:n], store.lens[first:n] = fresh.hashes, fresh.lens
        store.starts[first:n] = fresh.starts + self._n_keys
        store.keys[self._n_keys : n_keys] = fresh.keys
        store.masks.extend(fresh.masks)
        self._n_keys = n_keys
        return np.arange(first, n)


def _room(array: np.ndarray, used: int, needed: int) -> np.ndarray:
    """``array`` with room for ``needed`` items, its first ``used`` kept (doubling its size)."""
    if needed <= len(array):
        return array
    bigger = np.empty(max(needed, 2 * len(array), 1024), array.dtype)
    bigger[:used] = array[:used]
    return bigger


_STORE = _InfoStore()


def _new_infos(tokens: list[str]) -> _Infos:
    """``_token_info`` of distinct tokens, all hashed together: every word and character
    n-gram is a slice of one UTF-8 buffer."""
    words = [t.rstrip("'-") for t in tokens]
    text = _Utf8(words, pad=1)
    # each token's keys: its word, then its n-grams in the order of _ngrams (n, then position)
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
    hashes = text.hash(text.starts + 1, text.starts + text.lens - 1, _SEED)
    keys = np.empty(len(gram), np.uint64)
    keys[word_at] = hashes | np.uint64(_WORD_TAG)
    keys[gram] = text.hash(first, first + n, _SEED) | np.uint64(_CHAR_TAG)
    return _Infos(hashes, _token_masks(tokens), keys, word_at, sizes)


class _Utf8:
    """Strings joined, each padded by ``pad`` spaces on both sides, as one UTF-8 buffer: the
    code point where each padded string starts and its length in code points, and the byte
    offset of every code point, so that any run of code points is a slice of the buffer."""

    def __init__(self, strings: list[str], pad: int = 0) -> None:
        space = " " * pad
        joined = "".join(f"{space}{s}{space}" for s in strings)
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
        return _murmur3_slices(self.buf, start, self.offsets[stop] - start, seed)


_LONG_ITEM = 256  # longer byte strings are hashed one by one
_C1, _C2 = np.uint32(0xCC9E2D51), np.uint32(0x1B873593)
_TAIL_MASKS = np.array([0, 0xFF, 0xFFFF, 0xFFFFFF], np.uint32)


def _rotl(x: np.ndarray, r: int) -> np.ndarray:
    return (x << np.uint32(r)) | (x >> np.uint32(32 - r))


def _murmur3_slices(buf: np.ndarray, starts: np.ndarray, lens: np.ndarray, seed: int) -> np.ndarray:
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


@cache
def _any_trigger() -> re.Pattern[str]:
    """A regex that finds any cue trigger word, its alternatives as a trie (so that the regex
    engine tries one branch per character instead of every trigger)."""
    trie: dict[str, Any] = {}
    for trigger, _ in _alternatives()[1]:
        node = trie
        for char in trigger:
            node = node.setdefault(char, {})
        node[""] = {}  # a trigger ends here: finding it is enough, longer ones need not be tried

    def pattern(node: dict[str, Any]) -> str:
        if "" in node:
            return ""
        branches = [re.escape(char) + pattern(child) for char, child in sorted(node.items())]
        return branches[0] if len(branches) == 1 else f"(?:{'|'.join(branches)})"

    return re.compile(pattern(trie))


def _token_masks(tokens: list[str]) -> list[int]:
    """``_token_mask`` of each token; one regex scan finds the few tokens that hold a trigger
    (a trigger lies inside one token, and no token holds a newline)."""
    joined = "\n".join(tokens)
    ends = np.cumsum(np.fromiter(map(len, tokens), np.int64, len(tokens)) + 1)
    hits = np.searchsorted(ends, [m.start() for m in _any_trigger().finditer(joined)], "right")
    masks = [0] * len(tokens)
    for i in set(hits.tolist()):
        masks[i] = _token_mask(tokens[i])
    return masks


class _Ids:
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


class _KeyIndex:
    """Linear-probing hash table from feature keys to columns, built and looked up with numpy.

    Keys are placed in the order of their home slot, each in the first free slot at or after
    it: slot i of that order is ``i + max(home[j] - j for j <= i)``, one running maximum. The
    table runs past its last home slot instead of wrapping, and ends in an empty slot."""

    def __init__(self, keys: np.ndarray) -> None:
        size = 1 << max(4, int(2 * len(keys)).bit_length())
        self.mask = size - 1
        home = (keys & np.uint64(self.mask)).astype(np.int64)
        order = np.argsort(home)  # any order within a home slot will do
        rank = np.arange(len(keys))
        slots = rank + np.maximum.accumulate(home[order] - rank) if len(keys) else rank
        length = max(size, int(slots[-1]) + 1 if len(keys) else 0) + 1
        self.keys = np.zeros(length, np.uint64)  # 0 = empty; every key has a non-zero tag
        self.values = np.full(length, -1, np.int64)
        self.keys[slots], self.values[slots] = keys[order], order

    def get(self, keys: np.ndarray) -> np.ndarray:
        out = np.full(len(keys), -1, np.int64)
        pos = (keys & np.uint64(self.mask)).astype(np.int64)
        todo = np.arange(len(keys))
        while len(todo):
            found = self.keys[pos[todo]]
            hit = found == keys[todo]
            out[todo[hit]] = self.values[pos[todo[hit]]]
            todo = todo[~hit & (found != 0)]
            pos[todo] += 1
        return out


_SEPARATOR = "\ua66e"  # a letter, so a token of its own, that mail hardly ever holds


def _split_chunks(chunks: list[str]) -> tuple[list[str], np.ndarray]:
    """The tokens of whitespace-free chunks, in order, and the count per chunk: one regex pass
    over the chunks joined by a separator token (per chunk when a chunk holds that token)."""
    if chunks:
        found = _TOKEN.findall(f" {_SEPARATOR} ".join(chunks))
        tokens = np.array(found, dtype=object)
        is_separator = tokens == _SEPARATOR
        at = np.flatnonzero(is_separator)
        if len(at) == len(chunks) - 1:
            lens = np.diff(np.concatenate(([-1], at, [len(found)]))) - 1
            return tokens[~is_separator].tolist(), lens
    per_chunk = [_TOKEN.findall(c) for c in chunks]
    lens = np.fromiter(map(len, per_chunk), np.int64, len(per_chunk))
    return list(chain.from_iterable(per_chunk)), lens


class _Words:
    """Bounded table of distinct tokens: each one's feature columns, word hash (for word pairs)
    and cue-trigger mask, and the (tokens × columns) matrix built from them."""

    def __init__(self, resolve: Any) -> None:
        self.resolve = resolve  # feature keys -> columns (-1: not a feature)
        self.index: dict[str, int] = {}
        self.masks: list[int] = []
        self.hashes: list[int] = []
        self.cols: list[np.ndarray] = []
        self.lens: list[np.ndarray] = []
        self.chunks: dict[str, int] = {}  # whitespace-separated chunk -> its tokens
        self._chunk_tids: list[np.ndarray] = []
        self._chunk_starts: list[np.ndarray] = []
        self._chunk_lens: list[np.ndarray] = []
        self._n_chunk_tids = 0
        self._matrix: sparse.csr_matrix | None = None
        self._vectors: tuple[np.ndarray, ...] | None = None

    def _add(self, tokens: list[str]) -> None:
        infos = _STORE.infos(tokens)
        self.index.update(zip(tokens, count(len(self.hashes))))
        self.hashes.extend(infos.hashes.tolist())
        self.masks.extend(infos.masks)
        cols = self.resolve(infos.keys)
        owner = np.repeat(np.arange(len(tokens)), infos.lens)
        valid = cols >= 0
        self.cols.append(cols[valid])
        self.lens.append(np.bincount(owner[valid], minlength=len(tokens)))
        self._matrix = self._vectors = None

    def _add_chunks(self, chunks: list[str]) -> None:
        """Add new chunks (distinct, not yet in the table) and the new tokens they hold."""
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
        (No token of ``_TOKEN`` spans whitespace, so this equals ``findall`` on the text.)"""
        cids = np.fromiter(map(self.chunks.get, flat, repeat(-1)), np.int64, len(flat))
        missing = np.flatnonzero(cids < 0)
        if len(missing):
            new = [flat[i] for i in missing.tolist()]
            self._add_chunks(list(dict.fromkeys(new)))
            cids[missing] = np.fromiter(map(self.chunks.__getitem__, new), np.int64, len(new))
        _, _, starts, lens, tids = self.vectors()
        counts = lens[cids]
        ends = np.cumsum(counts)
        first = np.repeat(starts[cids] - ends + counts, counts)
        return tids[np.arange(len(first)) + first], counts

    def remapped(self, remap: np.ndarray) -> _Words:
        """The same tokens with their columns renumbered (``remap[old]``, -1 drops one)."""
        other = _Words(None)
        other.index, other.masks, other.hashes = self.index, self.masks, self.hashes
        for cols, lens in zip(self.cols, self.lens, strict=True):
            new = remap[cols]
            owner = np.repeat(np.arange(len(lens)), lens)
            other.cols.append(new[new >= 0])
            other.lens.append(np.bincount(owner[new >= 0], minlength=len(lens)))
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
        """Tokens' word hashes, whether each may start a cue; chunks' starts, lengths, tokens."""
        if self._vectors is None:
            self._vectors = (
                np.array(self.hashes, np.uint64), np.array(self.masks, bool),
                *(np.concatenate([np.zeros(0, np.int64), *parts]) for parts in
                  (self._chunk_starts, self._chunk_lens, self._chunk_tids)),
            )
        return self._vectors


@dataclass
class _Tokens:
    """One chunk of documents as token ids, word-pair keys and the cue block."""

    n: int
    tids: np.ndarray
    rows: np.ndarray  # document of each token
    pair_rows: np.ndarray
    pair_keys: np.ndarray
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
    keys = _bigram_keys(word_hashes[:-1][same], word_hashes[1:][same])
    masks = [0] * len(texts)
    occurrences = np.flatnonzero(may_cue[tids])
    for row, tid in zip(rows[occurrences].tolist(), tids[occurrences].tolist(), strict=True):
        masks[row] |= words.masks[tid]
    cues = _cue_columns(texts, lowered, masks)
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
    l2-normalised on its own, then weighted) + the cue block.

    Features are 32-bit murmurhash keys (seeded, so deterministic); the fitted vocabulary is the
    sorted array of kept keys, so a model stores no strings and ``explain`` names a text's
    columns by hashing its own words again. The per-token table is a cache of at most
    ``max_cached_words`` whitespace-separated chunks (reset when full), rebuilt on demand and
    never pickled: results never depend on it."""

    CHUNK = 4096

    def __init__(
        self, word_weight: float = 1.0, char_weight: float = 1.0, cue_weight: float = 0.5,
        min_df_words: int = 1, max_df_words: float = 0.9, min_df_chars: int = 2,
        max_char_features: int = 150_000, max_cached_words: int = 100_000,
    ) -> None:
        self.word_weight = word_weight
        self.char_weight = char_weight
        self.cue_weight = cue_weight
        self.min_df_words = min_df_words
        self.max_df_words = max_df_words
        self.min_df_chars = min_df_chars
        self.max_char_features = max_char_features
        self.max_cached_words = max_cached_words

    def __getstate__(self) -> dict[str, Any]:
        state = dict(super().__getstate__())
        state.pop("_words", None)
        state.pop("_index", None)
        return state

    def fit(self, texts: Any, y: Any = None) -> TextFeatures:
        self._fit([str(t) for t in texts], keep=False)
        return self

    def fit_transform(self, texts: Any, y: Any = None, **fit_params: Any) -> sparse.csr_matrix:
        return self._fit([str(t) for t in texts], keep=True)

    def _fit(self, texts: list[str], keep: bool) -> sparse.csr_matrix | None:
        ids = _Ids()
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
        pair_rows = [t.pair_rows.astype(np.uint64) + np.uint64(s) for s, t in chunks]
        pair_keys = [t.pair_keys for _, t in chunks]
        pairs, _ = _counted((np.concatenate([np.zeros(0, np.uint64), *pair_rows]) << _U32)
                            | (np.concatenate([np.zeros(0, np.uint64), *pair_keys]) & _LOW32))
        bigrams, bigram_df = _counted((pairs & _LOW32) | _BIGRAM_TAG)
        self._select(len(texts), keys, df, totals, bigrams, bigram_df)
        self.__dict__.pop("_words", None)
        self.__dict__.pop("_index", None)
        if not keep:
            return None
        final = words.remapped(self._key_index().get(keys))
        return self._matrix(final, [tok for _, tok in chunks])

    def _select(self, n: int, keys: np.ndarray, df: np.ndarray, totals: np.ndarray,
                bigrams: np.ndarray, bigram_df: np.ndarray) -> None:
        is_char = keys >= _CHAR_TAG
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
        idf = np.log((1 + n) / (1 + all_df[order].astype(np.float64))) + 1
        self.idf_ = np.concatenate((idf, np.ones(len(CUE_FEATURE_NAMES))))
        block = np.zeros(n_vocab + len(CUE_FEATURE_NAMES), np.uint8)  # 0 words, 1 chars, 2 cues
        block[int(word_keep.sum()) : self.n_token_columns_] = 1
        block[n_vocab:] = 2
        self.block_ = block
        self.n_features_out_ = len(block)

    def _key_index(self) -> _KeyIndex:
        index: _KeyIndex | None = self.__dict__.get("_index")
        if index is None:
            index = self.__dict__["_index"] = _KeyIndex(self.vocabulary_keys_)
        return index

    def _table(self) -> _Words:
        words: _Words | None = self.__dict__.get("_words")
        if words is None or len(words.chunks) > self.max_cached_words:
            words = self.__dict__["_words"] = _Words(self._key_index().get)
        return words

    def _matrix(self, words: _Words, chunks: list[_Tokens]) -> sparse.csr_matrix:
        """The weighted matrix of tokenized chunks: one (documents × table rows) product with
        the table, whose last rows are the identity on the word-pair and cue columns."""
        n_vocab, n_tokens = len(self.vocabulary_keys_), self.n_token_columns_
        first = len(words.hashes)  # the identity rows of the word pairs and cues start here
        extra = self.n_features_out_ - n_tokens
        pair_row, cue_row = first - n_tokens, first + n_vocab - n_tokens  # table row of column 0
        docs = [sparse.csr_matrix((0, first + extra))]
        for tok in chunks:
            bigram_cols = self._key_index().get(tok.pair_keys)
            ok = bigram_cols >= 0
            cue_rows, cue_cols = np.nonzero(tok.cues)
            rows = [tok.rows, tok.pair_rows[ok], cue_rows]
            cols = [tok.tids, pair_row + bigram_cols[ok], cue_row + cue_cols]
            docs.append(_doc_matrix(tok.n, rows, cols, first + extra))
        stacked = docs[-1] if len(docs) == 2 else sparse.vstack(docs, format="csr")
        return self._weigh(stacked @ words.matrix(self.n_features_out_, extra))

    def _weigh(self, x: sparse.csr_matrix) -> sparse.csr_matrix:
        """In place: sublinear tf × idf, each text block l2-normalised and weighted; cues ×
        cue_weight. Row blocks at a time, to bound the temporaries."""
        weights = np.array([self.word_weight, self.char_weight, 1.0])
        for start in range(0, x.shape[0], self.CHUNK):
            stop = min(x.shape[0], start + self.CHUNK)
            lo, hi = x.indptr[start], x.indptr[stop]
            data, indices = x.data[lo:hi], x.indices[lo:hi]
            rows = np.diff(x.indptr[start : stop + 1])
            slot = np.repeat(np.arange(0, 3 * (stop - start), 3), rows) + self.block_[indices]
            np.log(data, out=data)
            data += 1.0
            data *= self.idf_[indices]
            norms = np.sqrt(np.bincount(slot, data * data, 3 * (stop - start))).reshape(-1, 3)
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
        return self._matrix(words, chunks), np.concatenate([empty, *(t.cues for t in chunks)])

    def explain(self, text: str) -> dict[int, str]:
        """Readable names of the columns that ``transform([text])`` sets."""
        names: dict[int, list[str]] = {}
        words = [t.rstrip("'-") for t in _TOKEN.findall(str(text).lower())]
        index = self._key_index()
        distinct = list(dict.fromkeys(words))
        infos = _STORE.infos(distinct)
        cols = index.get(infos.keys).tolist()
        for i, word in enumerate(distinct):
            labels = [f"word '{word}'", *(f"chars '{g}'" for g in _ngrams(word))]
            start = int(infos.starts[i])
            for col, label in zip(cols[start : start + int(infos.lens[i])], labels, strict=True):
                if 0 <= col < self.n_token_columns_:
                    names.setdefault(col, []).append(label)
        word_hash = dict(zip(distinct, infos.hashes.tolist(), strict=True))
        hashes = np.array([word_hash[w] for w in words], np.uint64)
        pairs = index.get(_bigram_keys(hashes[:-1], hashes[1:]))
        for i, col in enumerate(pairs.tolist()):
            if col >= 0:
                names.setdefault(col, []).append(f"words '{words[i]} {words[i + 1]}'")
        n_vocab = len(self.vocabulary_keys_)
        for j in np.flatnonzero(cue_matrix([text])[0]).tolist():
            names[n_vocab + j] = [CUE_FEATURE_NAMES[j]]
        return {col: " / ".join(dict.fromkeys(labels)) for col, labels in names.items()}

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        kinds = np.array(["word", "chars", "cue"], dtype=object)[self.block_]
        names = [f"{k}#{i}" for i, k in enumerate(kinds[: len(self.vocabulary_keys_)])]
        return np.array(names + list(CUE_FEATURE_NAMES), dtype=object)


def _counted(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted distinct values and their counts (a sort: faster than np.unique's hashing here)."""
    values = np.sort(values)
    starts = np.flatnonzero(np.concatenate(([True], values[1:] != values[:-1])))
    return values[starts], np.diff(np.append(starts, len(values)))


def _grow(array: np.ndarray, size: int) -> np.ndarray:
    return np.concatenate((array, np.zeros(size - len(array), array.dtype)))


# -- kept so that models pickled with FEATURE_SCHEMA_VERSION 1 still load ----------------------
@lru_cache(maxsize=200_000)
def _subwords(word: str) -> tuple[str, ...]:
    return tuple(_ngrams(word))


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
