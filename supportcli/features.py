"""What the model sees: the one definition of the input text and of the hand-made cues.

``to_text`` turns a message into the model's input string; ``CueFeatures`` turns that string
into a few dense features (deadline, chargeback, legal threat, …) that sit beside the word and
character n-grams; ``urgent_cues`` names the cues that make a message urgent whatever the text
model says. Change any of them and bump ``FEATURE_SCHEMA_VERSION``: saved models record it.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

import numpy as np
from scipy import sparse
from sklearn.base import BaseEstimator, TransformerMixin

FEATURE_SCHEMA_VERSION = 1
MAX_TEXT_CHARS = 3000
AUTOMATED_MARK = "zzautomatedmail"  # a token the vectorizers see for automated mail


def to_text(subject: str, text_new: str, text_quoted: str = "", automated: str = "") -> str:
    """Subject + the customer's new text (the quoted history only when nothing new was written)."""
    body = text_new.strip() or text_quoted.strip()[:1000]
    text = f"{subject.strip()}\n{body}"[:MAX_TEXT_CHARS]
    return f"{text}\n{AUTOMATED_MARK}" if automated else text


def message_text(message: Any) -> str:
    return to_text(message.subject, message.text_new, message.text_quoted, message.automated)


def _words(*alternatives: str) -> re.Pattern[str]:
    return re.compile("|".join(alternatives), re.IGNORECASE)


# Each cue: a name, a pattern over the model text, and whether it alone makes a message urgent.
CUES: tuple[tuple[str, re.Pattern[str], bool], ...] = (
    (
        "chargeback or payment dispute",
        _words(
            r"charge ?back", r"\bdisput", r"paypal (?:claim|case)", r"bank (?:reversal|dispute)",
            r"reclamaci[óo]n (?:con|en) (?:el )?banco", r"rückbuchung", r"ruckbuchung", r"lastschrift.{0,20}zur[üu]ck",
            r"contracargo", r"rétrofacturation", r"retrofacturation", r"litige", r"opposition (?:bancaire|sur)",
            r"reported (?:it|this) to my bank", r"claim with (?:my|the) (?:bank|card)",
        ),
        True,
    ),
    (
        "legal threat",
        _words(
            r"\blawyer", r"\bsolicitor", r"\battorney", r"legal action", r"\bsue\b", r"\bcourt\b",
            r"small claims", r"trading standards", r"consumer (?:protection|rights)",
            r"\banwalt", r"rechtliche schritte", r"verbraucherzentrale", r"\bavocat",
            r"poursuites", r"\babogado", r"acciones legales", r"\bdenuncia",
        ),
        True,
    ),
    (
        "fraud or unauthorised charge",
        _words(
            r"unauthori[sz]ed", r"\bfraud", r"didn'?t (?:make|place|authori[sz]e) (?:this|these|that)",
            r"not my (?:order|purchase)", r"account (?:was|has been) (?:hacked|compromised)",
            r"\bhacked\b", r"betrug", r"nicht autorisiert", r"\bfraude", r"no autoricé",
        ),
        True,
    ),
    (
        "safety problem",
        _words(
            r"allergic", r"allergy", r"anaphyla", r"\bhospital", r"\binjur", r"caught fire",
            r"\bsmok(?:e|ing) (?:came|coming)", r"electric shock", r"\bchok(?:e|ed|ing)\b",
            r"\brash\b", r"allergi", r"krankenhaus", r"alerg", r"hôpital", r"urgences",
        ),
        True,
    ),
    (
        "deadline within a day",
        _words(
            r"\b(?:by|before|until) (?:tomorrow|tonight|today|end of (?:the )?day)",
            r"\b(?:ships?|dispatch(?:ed|es)?|goes out|leaves?) today",
            r"\b(?:is|it'?s|event|party|wedding|birthday|flight|trip) tomorrow",
            r"\bneed (?:it|this|them) (?:by )?(?:tomorrow|today)", r"within 24 ?h",
            r"\bbis morgen", r"\bmorgen (?:ist|brauche)", r"\bheute noch", r"\bdemain\b",
            r"\bmañana\b", r"\bmanana\b", r"\bhoy mismo",
        ),
        True,
    ),
    (
        "public review threat",
        _words(
            r"(?:bad|negative|terrible|honest|1[- ]star|one[- ]star) review",
            r"review (?:on|everywhere|site)", r"tell everyone", r"post (?:about )?(?:this|it) on",
            r"schlechte bewertung", r"\bavis\b.{0,20}n[ée]gatif", r"(?:mala|negativa) rese[ñn]a",
            r"rese[ñn]a negativa",
        ),
        True,
    ),
    (
        "repeated follow-up",
        _words(
            r"still (?:waiting|no|not|haven'?t)", r"(?:second|third|fourth|3rd|2nd) (?:time|email|e-mail|message)",
            r"(?:asked|written|emailed|wrote) (?:you )?(?:twice|three times|again|several times)",
            r"no (?:one|body) (?:has )?(?:replied|answered|got back)", r"\bfollow(?:ing)?[- ]up",
            r"immer noch", r"schon (?:wieder|zweimal|dreimal)", r"toujours pas", r"relance",
            r"todav[íi]a no", r"otra vez",
        ),
        False,
    ),
    (
        "anger",
        _words(
            r"unacceptable", r"disgust", r"ridiculous", r"worst", r"appalling", r"furious",
            r"!!", r"\bscam\b", r"inakzeptabel", r"unversch[äa]mt", r"inadmissible",
            r"inaceptable", r"vergogn",
        ),
        False,
    ),
    (
        "money already taken",
        _words(
            r"charged (?:me )?(?:twice|two times|double)", r"double charge", r"refund",
            r"money back", r"erstattung", r"rembourse", r"reembolso", r"paid (?:for|already)",
        ),
        False,
    ),
)
CUE_NAMES = tuple(name for name, _, _ in CUES)
URGENT_CUES = frozenset(name for name, _, urgent in CUES if urgent)
_ORDER = re.compile(r"#\s?\d{4,}|\border\b|\bbestell|\bcommande|\bpedido", re.IGNORECASE)


def _literal_prefix(alternative: str) -> str:
    """The plain text every match of a regex alternative starts with ("" if none is known)."""
    text = alternative.removeprefix(r"\b").lower()
    out = []
    for i, ch in enumerate(text):
        if not (ch.isalnum() or ch in " '"):
            break
        if text[i + 1 : i + 2] in ("?", "*", "{"):
            break
        out.append(ch)
    return "".join(out)


def _split_alternatives(pattern: str) -> list[str]:
    parts, depth, current = [], 0, []
    for ch in pattern:
        depth += (ch in "([") - (ch in ")]")
        if ch == "|" and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    return [*parts, "".join(current)]


# Words without which an alternative cannot match, where it does not start with a literal.
_EXTRA_TRIGGERS = {
    "deadline within a day": ("tomorrow", "tonight", "today", "end of"),
    "public review threat": ("review", "reseña", "resena"),
    "anger": ("!!",),
    "repeated follow-up": ("second", "third", "fourth", "3rd", "2nd", "twice", "three times",
                           "again", "several times"),
}


def _triggers(name: str, pattern: re.Pattern[str]) -> tuple[str, ...] | None:
    prefixes = [_literal_prefix(alt) for alt in _split_alternatives(pattern.pattern)]
    known = [p for p in prefixes if len(p) >= 2]
    extra = _EXTRA_TRIGGERS.get(name, ())
    if len(known) + (1 if extra else 0) < len(prefixes) and not extra:
        return None
    return tuple(dict.fromkeys(known + list(extra)))


# Cheap pre-check: a cue's regex runs only when one of its trigger words occurs in the text
# (substring search is done in C; nine regexes with ~150 alternatives are not).
_TRIGGERS = tuple(_triggers(name, pattern) for name, pattern, _ in CUES)


def _cue_indexes(text: str) -> set[int]:
    lowered = text.lower()
    found = set()
    for i, (_, pattern, _) in enumerate(CUES):
        triggers = _TRIGGERS[i]
        if triggers is not None and not any(t in lowered for t in triggers):
            continue
        if pattern.search(text):
            found.add(i)
    return found


def cue_hits(text: str) -> tuple[str, ...]:
    """Names of the cues present in a model text."""
    found = _cue_indexes(text)
    return tuple(name for i, name in enumerate(CUE_NAMES) if i in found)


def urgent_cues(text: str) -> tuple[str, ...]:
    if AUTOMATED_MARK in text:
        return ()
    return tuple(name for name in cue_hits(text) if name in URGENT_CUES)


_WORD = re.compile(r"\w+(?:['-]\w+)*")


@lru_cache(maxsize=200_000)
def _subwords(word: str) -> tuple[str, ...]:
    padded = f" {word} "
    return tuple(
        padded[i : i + n] for n in (3, 4, 5) for i in range(len(padded) - n + 1)
    )


def subword_ngrams(text: str) -> list[str]:
    """Character 3-5-grams inside word boundaries (like ``char_wb``), cached per word.

    Mail repeats the same words endlessly, so caching each word's n-grams makes this several
    times faster than scikit-learn's ``char_wb`` analyzer while giving the same features.
    """
    out: list[str] = []
    for word in _WORD.findall(text.lower()):
        out.extend(_subwords(word))
    return out


class CueFeatures(TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """Dense hand-made features: one column per cue, plus order number, automated, shouting."""

    def __init__(self, weight: float = 1.0) -> None:
        self.weight = weight

    def fit(self, texts: Any, y: Any = None) -> CueFeatures:
        return self

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        extra = ["cue: mentions an order", "cue: automated mail", "cue: shouting (capitals)"]
        return np.array([f"cue: {name}" for name in CUE_NAMES] + extra, dtype=object)

    def transform(self, texts: Any) -> sparse.csr_matrix:
        rows = [self._row(str(text)) for text in texts]
        return sparse.csr_matrix(np.asarray(rows, dtype=np.float64) * self.weight)

    @staticmethod
    def _row(text: str) -> list[float]:
        letters = [ch for ch in text[:1500] if ch.isalpha()]
        caps = sum(ch.isupper() for ch in letters) / len(letters) if len(letters) > 20 else 0.0
        found = _cue_indexes(text)
        row = [1.0 if i in found else 0.0 for i in range(len(CUES))]
        row.append(1.0 if _ORDER.search(text) else 0.0)
        row.append(1.0 if AUTOMATED_MARK in text else 0.0)
        row.append(1.0 if caps > 0.6 else 0.0)
        return row
