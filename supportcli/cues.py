"""The hand-made cues: phrases that a text model may miss but a shop must not (chargeback,
legal threat, fraud, safety, a deadline within a day, a review threat …), found in any of the
languages the shop's mail comes in.

``cue_matrix`` gives one boolean column per cue for each text; ``urgent_cues`` names the cues
that make a message urgent whatever the text model says. Every alternative starts with a
literal, and the longest word of that literal is its trigger: a text is checked only for the
alternatives whose trigger words it holds (``token_mask`` per token, ``token_masks`` for many).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache, lru_cache

import numpy as np

AUTOMATED_MARK = "zzautomatedmail"  # a token the vectorizers see for automated mail
TOKEN = re.compile(r"\w[\w'-]*")  # a token of a text; its word is the token without trailing ' -


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


def token_mask(token: str) -> int:
    """Bitmask of the cue alternatives whose trigger word occurs in ``token``."""
    index = _trigger_index()
    mask = 0
    for i in range(len(token) - 1):
        for trigger, bits in index.get(token[i : i + 2], ()):
            if token.startswith(trigger, i):
                mask |= bits
    return mask


_token_mask = lru_cache(maxsize=1 << 16)(token_mask)


def _confirm(alternatives: tuple[_Alternative, ...], lowered: str, mask: int) -> int:
    """Bitmask of the patterns that match, checking only the alternatives in ``mask``."""
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


_CASE_TABLE_SIZE = 0x800  # Latin, Greek, Cyrillic, Hebrew, Arabic: a table; the rest: per text


@cache
def _case_table() -> np.ndarray:
    """Per code point below ``_CASE_TABLE_SIZE``: 1 for a letter, 1 + 2**16 for an upper-case
    letter (2,048 entries: built in a millisecond when a process first needs it)."""
    chars = [chr(i) for i in range(_CASE_TABLE_SIZE)]
    return np.fromiter(map(_case_weight, chars), np.int32, _CASE_TABLE_SIZE)


def _case_weight(char: str) -> int:
    return (1 + (1 << 16) if char.isupper() else 1) if char.isalpha() else 0


def _shouting(texts: Sequence[str]) -> np.ndarray:
    """Whether more than 60% of the letters (in the first 1500 characters) are capitals."""
    heads = [t[:1500] for t in texts]
    lengths = np.fromiter(map(len, heads), np.int64, len(heads))
    points = np.frombuffer("".join(heads).encode("utf-32-le", "surrogatepass"), np.uint32)
    table = _case_table()
    weights = np.append(table[np.minimum(points, len(table) - 1)], 0)
    rare = np.flatnonzero(points >= len(table))
    if len(rare):  # each distinct code point beyond the table once
        distinct, where = np.unique(points[rare], return_inverse=True)
        found = np.array([_case_weight(chr(p)) for p in distinct.tolist()], np.int32)
        weights[rare] = found[where]
    sums = np.add.reduceat(weights, np.cumsum(lengths) - lengths)
    sums[lengths == 0] = 0
    letters, capitals = sums & 0xFFFF, sums >> 16
    ratio = np.divide(capitals, letters, out=np.zeros(len(heads)), where=letters > 20)
    return ratio > 0.6


def cue_columns(texts: Sequence[str], lowered: Sequence[str], masks: Iterable[int]) -> np.ndarray:
    """The cue block (documents × CUE_FEATURE_NAMES) as booleans, given each text's trigger mask."""
    alternatives, _, always = _alternatives()
    prefixes = [alternatives[bit].prefix for bit in range(always.bit_length()) if always >> bit & 1]
    found = [
        # a text without trigger words can only match the alternatives without one
        _confirm(alternatives, low, mask | always)
        if mask or any(prefix in low for prefix in prefixes) else 0
        for low, mask in zip(lowered, masks, strict=True)
    ]
    bits = np.arange(_N_PATTERNS, dtype=np.uint64)
    out = np.zeros((len(texts), len(CUE_FEATURE_NAMES)), dtype=bool)
    out[:, :_N_PATTERNS] = (np.array(found, np.uint64)[:, None] >> bits) & np.uint64(1)
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
        for token in set(TOKEN.findall(low)):
            mask |= _token_mask(token)
        masks.append(mask)
    return cue_columns(texts, lowered, masks)


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


@cache
def _trigger_windows() -> tuple[tuple[int, np.ndarray], ...]:
    """Per window size (2 or 3 ASCII characters): a table over the windows' codes, True where a
    trigger word starts with that window (triggers of 3 or more characters give their first 3)."""
    tables: dict[int, np.ndarray] = {}
    for trigger, _ in _alternatives()[1]:
        head = trigger[:3]
        if head.isascii():  # a head beyond ASCII: every token beyond ASCII is checked anyway
            size = len(head)
            if size not in tables:
                tables[size] = np.zeros(1 << 7 * size, bool)
            tables[size][_window_codes(np.frombuffer(head.encode("ascii"), np.uint8), size)] = True
    return tuple(sorted(tables.items()))


def _window_codes(codes: np.ndarray, size: int) -> np.ndarray:
    """The code of each window of ``size`` consecutive 7-bit characters."""
    n = len(codes) - size + 1
    out = np.zeros(max(n, 0), np.int64)
    for at in range(size):
        out = (out << 7) | codes[at : at + n]
    return out


def token_masks(tokens: list[str]) -> list[int]:
    """``token_mask`` of each token. Numpy finds the few tokens that may hold a trigger word (a
    window of characters that starts one, or a character beyond ASCII); only those are checked.
    A trigger lies inside one token, and no token holds a newline."""
    joined = "\n".join(tokens)
    if joined.isascii():
        codes = np.frombuffer(joined.encode("ascii"), np.uint8).astype(np.int64)
        may = np.zeros(len(codes), bool)
    else:
        points = np.frombuffer(joined.encode("utf-32-le", "surrogatepass"), np.uint32)
        may = points >= 128
        codes = np.where(may, 0, points).astype(np.int64)  # 0: in no trigger
    for size, table in _trigger_windows():
        starts = table[_window_codes(codes, size)]
        may[: len(starts)] |= starts
    ends = np.cumsum(np.fromiter(map(len, tokens), np.int64, len(tokens)) + 1)
    masks = [0] * len(tokens)
    for i in set(np.searchsorted(ends, np.flatnonzero(may), "right").tolist()):
        masks[i] = _token_mask(tokens[i])
    return masks


