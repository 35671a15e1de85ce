"""The hand-made cues: phrases a text model may miss but a shop must not (chargeback, legal
threat, fraud, safety, a deadline within a day, …) in the shop's languages, each found with
the words it matched. A cue is regex alternatives over the lower-cased text, or a function of
the whole ``ModelInput`` (it may read the sent time and time zone) returning the words it found
or a ``CueHit``. The model reports the hits; ``prioritize`` decides what they mean. Speed: an
alternative is tried only where its literal prefix occurs, in texts holding its trigger word
in a whitespace-free chunk, each chunk looked up once: 20x faster than each regex everywhere.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache, lru_cache, reduce
from itertools import filterfalse
from operator import or_

from ..records import CueHit
from .text import ModelInput, as_input

CueFunction = Callable[[ModelInput], str | CueHit | None]


@dataclass(frozen=True)
class Cue:
    """Regex ``patterns`` (lower case, each starting with a literal), or a ``function`` with
    the lower-case ``triggers`` one of which a text must hold for it to run (none: it runs on
    every text) and a ``version`` to bump whenever what it finds changes."""

    name: str
    patterns: tuple[str, ...] = ()
    function: CueFunction | None = None
    triggers: tuple[str, ...] = ()
    version: int = 1


def _automated(item: ModelInput) -> str | None:
    return item.automated or None


def _shouting(item: ModelInput) -> str | None:
    """The first capitalised words, when more than 60% of the cased letters (more than 20) of
    the first 1,500 characters are capitals."""
    head = item.text[:1500]
    upper = _count(head, str.isupper, bytes(range(65, 91)))
    lower = _count(head, str.islower, bytes(range(97, 123))) if upper > 12 else 0
    if upper + lower <= 20 or upper <= 0.6 * (upper + lower):
        return None
    return " ".join([w for w in head.split() if w.isupper()][:6])


def _count(text: str, test: Callable[[str], bool], ascii_letters: bytes) -> int:
    """How many characters of ``text`` pass ``test`` (bytes.translate for ASCII text: faster)."""
    if text.isascii():
        return len(text) - len(text.encode().translate(None, ascii_letters))
    return sum(map(test, text))


_FOLLOWUPS = ("second", "third", "fourth", "3rd", "2nd")
_REVIEWS = ("bad", "negative", "terrible", "honest", "1-star", "1 star", "one-star", "one star")
CUES: tuple[Cue, ...] = (
    Cue("chargeback or payment dispute", (
        r"charge ?back", r"\bdisput", r"paypal (?:claim|case)", r"bank (?:reversal|dispute)",
        r"reclamaci[óo]n (?:con|en) (?:el )?banco", r"rückbuchung", r"ruckbuchung",
        r"lastschrift.{0,20}zur[üu]ck", r"contracargo", r"rétrofacturation",
        r"retrofacturation", r"litige", r"opposition (?:bancaire|sur)",
        r"reported (?:it|this) to my bank", r"claim with (?:my|the) (?:bank|card)")),
    Cue("legal threat", (
        r"\blawyer", r"\bsolicitor", r"\battorney", r"legal action", r"\bsue\b", r"\bcourt\b",
        r"small claims", r"trading standards", r"consumer (?:protection|rights)", r"\banwalt",
        r"rechtliche schritte", r"verbraucherzentrale", r"\bavocat", r"poursuites",
        r"\babogado", r"acciones legales", r"\bdenuncia")),
    Cue("fraud or unauthorised charge", (
        r"unauthori[sz]ed", r"\bfraud", r"didn'?t (?:make|place|authori[sz]e) (?:this|these|that)",
        r"not my (?:order|purchase)", r"account (?:was|has been) (?:hacked|compromised)",
        r"\bhacked\b", r"betrug", r"nicht autorisiert", r"\bfraude", r"no autoricé")),
    Cue("safety problem", (
        r"allergic", r"allergy", r"anaphyla", r"\bhospital", r"\binjur", r"caught fire",
        r"\bsmok(?:e|ing) (?:came|coming)", r"electric shock", r"\bchok(?:e|ed|ing)\b",
        r"\brash\b", r"allergi", r"krankenhaus", r"alerg", r"hôpital", r"urgences")),
    Cue("deadline within a day", (
        *(rf"\b{w} (?:tomorrow|tonight|today|end of (?:the )?day)"
          for w in ("by", "before", "until")),
        *(rf"\b{w} today" for w in ("ships?", "dispatch(?:ed|es)?", "goes out", "leaves?")),
        *(rf"\b{w} tomorrow" for w in ("is", "it's", "its", "event", "party", "wedding", "birthday",
                                       "flight", "trip")),
        r"\bneed (?:it|this|them) (?:by )?(?:tomorrow|today)", r"within 24 ?h",
        r"\bbis morgen", r"\bmorgen (?:ist|brauche)", r"\bheute noch", r"\bdemain\b",
        r"\bmañana\b", r"\bmanana\b", r"\bhoy mismo")),
    Cue("public review threat", (
        *(f"{w} review" for w in _REVIEWS),
        r"review (?:on|everywhere|site)", r"tell everyone", r"post (?:about )?(?:this|it) on",
        r"schlechte bewertung", r"\bavis\b.{0,20}n[ée]gatif", r"mala rese[ñn]a",
        r"negativa rese[ñn]a", r"rese[ñn]a negativa")),
    Cue("repeated follow-up", (
        r"still (?:waiting|no|not|haven'?t)",
        *(f"{w} (?:time|email|e-mail|message)" for w in _FOLLOWUPS),
        *(f"{w} (?:you )?(?:twice|three times|again|several times)"
          for w in ("asked", "written", "emailed", "wrote")),
        *(f"no {w} (?:has )?(?:replied|answered|got back)" for w in ("one", "body")),
        r"\bfollow(?:ing)?[- ]up",
        r"immer noch", r"schon (?:wieder|zweimal|dreimal)", r"toujours pas", r"relance",
        r"todav[íi]a no", r"otra vez")),
    Cue("anger", (
        r"unacceptable", r"disgust", r"ridiculous", r"worst", r"appalling", r"furious", r"!!",
        r"\bscam\b", r"inakzeptabel", r"unversch[äa]mt", r"inadmissible", r"inaceptable",
        r"vergogn")),
    Cue("money already taken", (
        r"charged (?:me )?(?:twice|two times|double)", r"double charge", r"refund", r"money back",
        r"erstattung", r"rembourse", r"reembolso", r"paid (?:for|already)")),
    Cue("mentions an order", (r"#\s?\d{4,}", r"\border\b", r"\bbestell", r"\bcommande",
                              r"\bpedido")),
    Cue("automated mail", function=_automated),
    Cue("shouting (capitals)", function=_shouting),
)
CUE_NAMES = tuple(cue.name for cue in CUES)
_LITERAL = re.compile(r"(?:\\b)?((?:[^\\.^$*+?{}\[\]|()](?![?*{]))+)")
_SENTENCE_END = re.compile(r"[.!?](?:\s|$)|\n")


@dataclass(frozen=True)
class _Check:
    cue: int  # index into CUES
    prefix: str  # the literal every match starts with ("" for a function)
    regex: re.Pattern[str] | None  # None for a function


@dataclass
class _Index:
    checks: list[_Check]
    words: list[tuple[str, int]]  # trigger word -> bitmask of the checks it enables
    always: list[tuple[str, int]]  # prefixes without a word ('!!', '#'; '' for a function)
    masks: dict[str, int]  # whitespace-free chunk of a text -> its checks (bounded)
    any_word: re.Pattern[str] = re.compile("(?!)")  # finds a chunk holding some trigger word


@cache
def _index() -> _Index:
    """The checks: each regex alternative, triggered by the longest word of its literal prefix
    (else by the prefix itself), and each function, triggered by its words (else always)."""
    index = _Index([], [], [], {})
    for i, cue in enumerate(CUES):
        for pattern in cue.patterns:
            match = _LITERAL.match(pattern)
            if not match:
                raise ValueError(f"cue pattern {pattern!r} does not start with a literal")
            runs = re.findall(r"\w+", match.group(1))
            table = index.words if runs else index.always
            table.append((max(runs, key=len) if runs else match.group(1), 1 << len(index.checks)))
            index.checks.append(_Check(i, match.group(1), re.compile(pattern)))
        if cue.function is not None:
            bit = 1 << len(index.checks)
            index.checks.append(_Check(i, "", None))
            index.words += [(word, bit) for word in cue.triggers]
            index.always += [] if cue.triggers else [("", bit)]
    words = sorted({re.escape(word) for word, _ in index.words}, key=len, reverse=True)
    index.any_word = re.compile("|".join(words) or "(?!)")
    return index


@lru_cache(maxsize=1 << 13)
def hits(item: ModelInput) -> tuple[CueHit, ...]:
    """The cues that fire on ``item``, in ``CUES`` order, each with the words it matched."""
    index, lowered = _index(), item.text.lower()
    chunks = set(lowered.split())
    if len(index.masks) > 200_000:
        index.masks.clear()
    for chunk in list(filterfalse(index.masks.__contains__, chunks)):  # no trigger spans a space
        held = index.words if index.any_word.search(chunk) else []
        index.masks[chunk] = reduce(or_, (b for w, b in held if w in chunk), 0)
    mask = reduce(or_, map(index.masks.__getitem__, chunks), 0)
    mask = reduce(or_, (b for prefix, b in index.always if prefix in lowered), mask)
    found: dict[int, CueHit] = {}
    while mask:
        low = mask & -mask
        mask ^= low
        check = index.checks[low.bit_length() - 1]
        hit = None if check.cue in found else _run(check, item, lowered)
        if hit is not None:
            found[check.cue] = hit
    return tuple(found[i] for i in sorted(found))


def _run(check: _Check, item: ModelInput, lowered: str) -> CueHit | None:
    cue = CUES[check.cue]
    if cue.function is not None and check.regex is None:
        result = cue.function(item)
        return CueHit(cue.name, result) if isinstance(result, str) else result
    pos = lowered.find(check.prefix)
    while pos >= 0:
        match = check.regex.match(lowered, pos) if check.regex else None
        if match:
            source = item.text if len(item.text) == len(lowered) else lowered
            return CueHit(cue.name, quote(source, match.start(), match.end()))
        pos = lowered.find(check.prefix, pos + 1)
    return None


def quote(text: str, start: int, end: int, before: int = 2, after: int = 3) -> str:
    """The words of ``text[start:end]`` and up to ``before``/``after`` more words of the same
    sentence: what a reader recognises ("file a chargeback with my bank")."""
    while start > 0 and (text[start - 1].isalnum() or text[start - 1] in "'-"):
        start -= 1
    head = _SENTENCE_END.split(text[max(0, start - 80) : start])[-1]
    tail = _SENTENCE_END.split(text[end : end + 80])[0]
    left = re.search(rf"(?:\S+\s+){{0,{before}}}$", head)
    right = re.match(rf"\S*(?:\s+\S+){{0,{after}}}", tail)
    words = f"{head[left.start() if left else len(head):]}{text[start:end]}"
    return " ".join(f"{words}{right.group() if right else ''}".split())[:120]


def find(items: Iterable[ModelInput | str]) -> list[tuple[CueHit, ...]]:
    """Each message's cue hits."""
    return [hits(as_input(item)) for item in items]


def fingerprint() -> str:
    """A digest of every cue's definition: a model is valid only for the cues it learnt."""
    spec = [[c.name, c.patterns, getattr(c.function, "__qualname__", None), c.triggers, c.version]
            for c in CUES]
    return hashlib.sha256(json.dumps(spec, ensure_ascii=False).encode()).hexdigest()[:16]
