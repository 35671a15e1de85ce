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
from datetime import UTC
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


DEADLINE_WINDOW_HOURS = 48  # deadlines reported up to this far ahead; triage decides


def _deadline(item: ModelInput) -> CueHit | None:
    """The nearest deadline or event the customer names within ``DEADLINE_WINDOW_HOURS`` of
    sending, resolved on their own clock ("by 4pm tomorrow" = Fri 16:00)."""
    if item.sent is None or item.automated:
        return None
    from ..parse.deadlines import within

    found = within(item.text, item.sent, DEADLINE_WINDOW_HOURS)
    if not found:
        return None
    first = min(found, key=lambda m: m.at)
    return CueHit("deadline within a day", first.phrase, first.at.astimezone(UTC))


_FOLLOWUPS = ("second", "third", "fourth", "3rd", "2nd")
_REVIEWS = ("bad", "negative", "terrible", "honest", "1-star", "1 star", "one-star", "one star")
_SITES = (r"(?:trustpilot|google|facebook|instagram|tiktok|twitter|reddit|youtube|yelp"
          r"|social media|every ?where|all over)")
_REACTIONS = (r" an? (?:allergic |bad |skin )?reaction",)
CUES: tuple[Cue, ...] = (
    Cue("chargeback or payment dispute", (
        r"charge ?back", r"\bdisput", r"paypal (?:claim|case|dispute)",
        r"bank (?:reversal|dispute)",
        r"reclamaci[óo]n (?:con|en) (?:el )?banco", r"rückbuchung", r"ruckbuchung",
        r"lastschrift.{0,20}zur[üu]ck", r"contracargo", r"rétrofacturation", r"retrofacturation",
        r"litige", r"opposition (?:bancaire|sur|à|a)", r"reported (?:it|this) to my bank",
        r"claim with (?:my|the) (?:bank|card)", r"storno", r"terugboeking", r"terugvordering",
        r"estorno", r"contestazione", r"disconoscimento", r"reclamo a-?z", r"a-to-z",
        r"a-bis-z", r"\bkäuferschutz", r"geschil", r"konflikt", r"controversia", r"disputa",
        r"case (?:opened|has been opened|was opened)", r"item not received",
        r"reclamação aberta", r"reclamacao aberta", r"mediação")),
    Cue("legal threat", (
        r"\blawyer", r"\bsolicitor", r"\battorney", r"legal action", r"sue you", r"will sue",
        r"going to sue", r"to court", r"in court", r"court action", r"court claim",
        r"small claims", r"trading standards", r"consumer (?:protection|rights)",
        r"data protection (?:authority|regulator)", r"better business bureau",
        r"report (?:you|this) to", r"\banwalt", r"rechtliche schritte", r"verbraucherzentrale",
        r"datenschutzbehörde", r"\bklage", r"\bavocat", r"poursuites", r"mise en demeure",
        r"dgccrf", r"\bcnil\b", r"\babogado", r"acciones legales", r"\bdenuncia", r"\baepd\b",
        r"\bocu\b", r"hoja de reclamaciones", r"\bavvocat", r"\bdiffida", r"azioni legali",
        r"garante (?:della |per la )?privacy", r"\bagcm\b", r"\badvocaat", r"juridische stappen",
        r"ingebrekestelling", r"autoriteit persoonsgegevens", r"geschillencommissie",
        r"\badvogad", r"procon", r"reclame aqui", r"\banpd\b", r"\bcnpd\b",
        r"livro de reclamações", r"ação judicial", r"acção judicial")),
    Cue("fraud or unauthorised charge", (
        r"unauthori[sz]ed", r"\bfraud", r"didn'?t (?:make|place|authori[sz]e) (?:this|these|that)",
        r"not my (?:order|purchase)", r"account (?:was|has been) (?:hacked|compromised)",
        r"\bhacked\b", r"betrug", r"nicht autorisierte (?:abbuchung|zahlung|belastung)",
        r"\bfraude", r"no autoricé", r"\bfrode", r"addebito non autorizzato",
        r"niet door mij", r"compra não autorizada", r"cobrança não autorizada")),
    Cue("safety problem", (
        r"allergic reaction", *(f"{w}{r}" for w in ("had", "having", "got", "caused")
                                for r in _REACTIONS),
        r"anaphyla", r"\bhospital\b", r"\binjur", r"caught fire", r"fire (?:risk|hazard)",
        r"overheat", r"over-heat", r"too hot to touch", r"\bmelt(?:ed|ing)\b", r"\bsparks?\b",
        r"burning smell", r"smell(?:s|ed)? (?:of )?burning", r"started smoking",
        r"switch(?:es|ed)? (?:itself )?on (?:by itself|on its own|at night)",
        r"turn(?:s|ed)? (?:itself )?on (?:by itself|on its own|at night)",
        r"\bsmok(?:e|ing) (?:came|coming)", r"electric shock", r"\bchok(?:e|ed|ing)\b",
        r"\brash\b", r"\bhives\b", r"swell(?:ing|ed|s) up", r"urgent care", r"a&e",
        r"emergency room", r"poison", r"\bvomit", r"threw up", r"sick after", r"krankenhaus",
        r"notaufnahme", r"überhitz", r"brandgefahr", r"brandgeruch", r"ausschlag",
        r"allergische reaktion", r"verbrannt", r"hôpital", r"urgences", r"surchauff",
        r"risque d'incendie", r"odeur de brûlé", r"brûlure", r"réaction allergique",
        r"se recalienta", r"sobrecalent", r"riesgo de incendio", r"olor a quemado", r"quemadura",
        r"reacción alérgica", r"sarpullido", r"surriscald", r"rischio (?:di )?incendio",
        r"odore di bruciato", r"ustion", r"pronto soccorso", r"reazione allergica",
        r"oververhit", r"brandgevaar", r"brandlucht", r"spoedeisende hulp", r"eerste hulp",
        r"allergische reactie", r"huiduitslag", r"superaquec", r"risco de incêndio",
        r"cheiro de queimado", r"queimadura", r"pronto-socorro", r"pronto socorro",
        r"reação alérgica", r"reacao alergica")),
    Cue("deadline within a day", function=_deadline, version=3),
    Cue("public review threat", (
        *(f"{w} review" for w in _REVIEWS), r"\breview (?:on|everywhere|site)", r"tell everyone",
        rf"post (?:about )?(?:this|it) (?:on|to) {_SITES}", rf"leave (?:a )?review on {_SITES}",
        r"schlechte bewertung", r"negative bewertung", r"\bavis\b.{0,20}n[ée]gatif",
        r"mala rese[ñn]a", r"rese[ñn]a negativa", r"recensione negativa", r"slechte review",
        r"slechte recensie", r"avaliação negativa", r"avaliacao negativa")),
    Cue("money or account at risk", (
        r"payout(?:s)? (?:is |are |has been |have been )?(?:on hold|paused|held|suspended"
        r"|delayed)", r"funds (?:are |have been )?(?:on hold|held|frozen)", r"rolling reserve",
        r"account (?:is |has been |will be )?(?:suspended|deactivated|restricted|at risk"
        r"|under review)", r"account suspension",
        r"listings? (?:are |is |may be )?(?:at risk|removed|suppressed|deactivated)",
        r"seller performance", r"order defect rate", r"policy violation",
        r"konto (?:wurde |ist )?(?:gesperrt|eingeschränkt)",
        r"auszahlung(?:en)? (?:wurde |wurden |ist |sind )?(?:angehalten|zurückgehalten)",
        r"compte (?:a été |est )?(?:suspendu|restreint)",
        r"versements? (?:sont |est )?(?:suspendus?|bloqués?)",
        r"cuenta (?:ha sido |está )?(?:suspendida|restringida)", r"pagos (?:retenidos|suspendidos)",
        r"account (?:è stato )?sospeso", r"pagamenti (?:sospesi|trattenuti)",
        r"account (?:is )?opgeschort", r"uitbetaling(?:en)? (?:zijn |is )?(?:gepauzeerd"
        r"|ingehouden|opgeschort)", r"conta (?:foi )?(?:suspensa|restrita|bloqueada)",
        r"repasses? (?:retidos?|bloqueados?)")),
    Cue("repeated follow-up", (
        r"still (?:waiting|no|not|haven'?t|nothing)",
        *(f"{w} (?:time|email|e-mail|message)" for w in _FOLLOWUPS),
        *(f"{w} (?:you )?(?:twice|three times|again|several times)"
          for w in ("asked", "written", "emailed", "wrote")),
        *(f"no {w} (?:has )?(?:replied|answered|got back)" for w in ("one", "body")),
        r"\bfollow(?:ing)?[- ]up", r"immer noch", r"schon (?:wieder|zweimal|dreimal)",
        r"toujours pas", r"toujours rien", r"relance", r"todav[íi]a no", r"sigo sin",
        r"sigo esperando", r"otra vez", r"ancora niente", r"ancora nessun", r"nog steeds",
        r"até agora nada", r"ainda não", r"ainda nao")),
    Cue("anger or exasperation", (
        r"unacceptable", r"disgust", r"ridiculous", r"worst", r"appalling", r"furious", r"!!",
        r"\bscam\b", r"losing (?:my )?patience", r"fed up", r"what a joke", r"inakzeptabel",
        r"unversch[äa]mt", r"geduld", r"frechheit", r"inadmissible", r"patience", r"inaceptable",
        r"paciencia", r"vergogn", r"pazienza", r"inaccettabil", r"belachelijk", r"schandalig",
        r"paciência", r"absurdo", r"ridicul")),
    Cue("customer blocked", (
        r"declined (?:again|twice|three times|3 times|every time)",
        r"keeps? (?:failing|declining|getting declined|crashing)",
        r"still (?:expired|broken|not working|doesn'?t work|won'?t work)", r"link (?:has )?expired",
        r"bricked", r"won'?t (?:turn|switch) on", r"stopped working",
        r"can'?t (?:pay|check ?out|log ?in|download|access|use)",
        r"wrong (?:item|size|colou?r|product)", r"arrived (?:broken|damaged|smashed|cracked)",
        r"missing (?:item|part|piece)", r"abgelehnt", r"funktioniert (?:nicht|immer noch nicht)",
        r"beschädigt", r"kaputt", r"ne fonctionne pas", r"endommagé", r"rechazad", r"no funciona",
        r"dañad", r"rifiutat", r"non funziona", r"danneggiat", r"geweigerd", r"mislukt",
        r"werkt niet", r"beschadigd", r"kapot", r"recusad", r"não funciona", r"danificad")),
    Cue("cancel or change an order", (
        r"cancel", r"change (?:the |my )?(?:delivery |shipping )?address", r"wrong address",
        r"stop (?:the|my) (?:order|parcel|shipment)", r"hold (?:the|my) (?:order|parcel)",
        r"stornier", r"adresse ändern", r"lieferadresse", r"annul", r"cancelar",
        r"cambiar la dirección", r"annullar", r"cambiare (?:l')?indirizzo", r"annuleren",
        r"adres (?:wijzigen|aanpassen)", r"alterar (?:a )?morada", r"alterar o endereço")),
    Cue("money already taken", (
        r"charged (?:me )?(?:twice|two times|double)", r"double charge", r"refund", r"money back",
        r"erstattung", r"rembourse", r"reembolso", r"paid (?:for|already)", r"rimborso",
        r"terugbetaling", r"reembolso")),
    Cue("mentions an order", (r"#\s?\d{4,}", r"\border\b", r"\bbestell", r"\bcommande",
                              r"\bpedido", r"\bordine", r"\bbestelling", r"\bencomenda")),
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
