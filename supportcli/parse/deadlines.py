"""Time expressions in what a customer wrote, resolved against when they sent it.

"by 4pm tomorrow", "the party is tomorrow evening", "we fly on Friday morning", "bis morgen
12 Uhr", "avant 14h", "uiterlijk morgen", "até amanhã às 16h": each becomes a ``TimeMention``
with the moment it names, in the writer's own local time (the offset of the Date header).
English, German, French, Spanish, Italian, Dutch and Portuguese. Pure Python; no I/O.

A mention is a *deadline* when it is phrased as one (a preposition such as "by", "bis",
"avant", "entro", "uiterlijk", "até"; an event such as a party, a flight or a delivery; "needs
it"; a discount or a case that ends or must be answered "within 48 hours"). A past-tense
mention ("I waited until tonight", "ist heute angekommen") is dropped, and so is the shop's own
promise quoted back ("you reply within 24 hours").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

_F = re.IGNORECASE

# Day words: (regex, days ahead, hour the period starts). Longest first.
_DAYS: tuple[tuple[str, int, int], ...] = (
    # the day after tomorrow is two days on
    (r"(?:the )?day after tomorrow|übermorgen|après-demain|pasado mañana|dopodomani|overmorgen"
     r"|depois de amanhã", 2, 0),
    (r"tomorrow (?:morning|am)|morgen ?(?:früh|vormittag|ochtend)|demain matin"
     r"|mañana por la mañana|domani mattina|amanhã (?:de|pela) manhã", 1, 8),
    (r"tomorrow (?:afternoon|lunchtime)|morgen ?(?:nachmittag|middag|mittag)"
     r"|demain après-midi|mañana por la tarde|domani pomeriggio|amanhã à tarde", 1, 12),
    (r"tomorrow (?:evening|night)|morgen ?(?:abend|avond|nacht)|demain soir"
     r"|mañana por la noche|domani sera|amanhã à noite", 1, 18),
    (r"tomorrow|tmrw|morgen|demain|mañana|manana|domani|amanhã|amanha", 1, 0),
    (r"tonight|this evening|heute ?(?:abend|nacht)|ce soir|cette nuit|esta noche|stasera"
     r"|stanotte|vanavond|vannacht|hoje à noite|esta noite", 0, 18),
    (r"this afternoon|heute nachmittag|cet après-midi|esta tarde|oggi pomeriggio|vanmiddag"
     r"|hoje à tarde|esta tarde", 0, 12),
    (r"today|heute|aujourd['’]hui|hoy|oggi|in giornata|vandaag|hoje", 0, 0),
    (r"end of (?:the )?(?:business )?day|close of business|\beod\b|\bcob\b|feierabend"
     r"|fin de journée", 0, 17),
    (r"midnight|mitternacht|minuit|medianoche|mezzanotte|middernacht|meia-noite", 0, 24),
    (r"same[- ]day|am selben tag|le jour même|el mismo día|in giornata|dezelfde dag"
     r"|no mesmo dia", 0, 0),
    (r"this weekend|dieses wochenende|am wochenende|ce week-end|este fin de semana"
     r"|questo weekend|dit weekend|este fim de semana", -6, 0),  # -6: the coming Saturday
)
_TOMORROW, _TODAY = 4, 7  # the indexes of the bare "tomorrow" and "today" words in _DAYS
# Weekdays, Monday first; Portuguese needs "-feira" or a preposition ("segunda" is "second").
_WEEKDAYS = (
    r"monday|montag|lundi|lunes|luned[iì]|maandag|segunda-feira|(?:na|até|para a) segunda",
    r"tuesday|dienstag|mardi|martes|marted[iì]|dinsdag|ter[çc]a-feira|(?:na|até|para a) ter[çc]a",
    r"wednesday|mittwoch|mercredi|mi[ée]rcoles|mercoled[iì]|woensdag|quarta-feira"
    r"|(?:na|até|para a) quarta",
    r"thursday|donnerstag|jeudi|jueves|gioved[iì]|donderdag|quinta-feira|(?:na|até|para a) quinta",
    r"friday|freitag|vendredi|viernes|venerd[iì]|vrijdag|sexta-feira|(?:na|até|para a) sexta",
    r"saturday|samstag|sonnabend|samedi|s[áa]bado|sabato|zaterdag",
    r"sunday|sonntag|dimanche|domingo|domenica|zondag",
)
_PARTS = (  # a part of the day after a weekday: its start hour
    (r"\s*(?:morning|früh|morgen|vormittag|matin|por la mañana|mattina|ochtend|de manhã)", 8),
    (r"\s*(?:afternoon|nachmittag|après-midi|por la tarde|pomeriggio|middag|à tarde)", 12),
    (r"\s*(?:evening|night|abend|soir|por la noche|sera|avond|à noite)", 18),
)
_MONTHS = (
    "jan(?:uary|uar|vier|uari)?|ene(?:ro)?|genn(?:aio)?|jan(?:eiro)?|jän(?:ner)?",
    "feb(?:ruary|ruar|rero|braio|ruari)?|févr(?:ier)?|fev(?:ereiro)?",
    "march|mars|marzo|março|marco|märz|maart",
    "apr(?:il|ile)?|avr(?:il)?|abr(?:il)?",
    "may|mai|mayo|maggio|mei|maio",
    "june?|juni?|juin|junio|giugno|junho",
    "july?|juli?|juillet|julio|luglio|julho",
    "aug(?:ust|usti)?|août|agosto",
    "sep(?:t|tember|tiembre|tembre|tembro)?|settembre|setembro",
    "oct(?:ober|obre|ubre)?|okt(?:ober)?|ott(?:obre)?|outubro",
    "nov(?:ember|embre|iembre|embro)?",
    "dec(?:ember|embre)?|dez(?:ember|embro)?|déc(?:embre)?|dic(?:iembre|embre)?",
)
_MONTH_RE = "|".join(_MONTHS)
_MONTH_OF = [re.compile(f"(?:{m})$", re.IGNORECASE) for m in _MONTHS]
_ORDINAL = r"(?P<day>[0-3]?\d)(?:st|nd|rd|th|\.|º|er)?"

_ATOMS = re.compile(
    "|".join([
        *(f"(?P<d{i}>\\b(?:{rx})\\b)" for i, (rx, _, _) in enumerate(_DAYS)),
        *(f"(?P<w{i}>\\b(?:{rx})(?:{'|'.join(p for p, _ in _PARTS)})?\\b)"
          for i, rx in enumerate(_WEEKDAYS)),
        # clock times: 5pm, 5:30 pm, 17:00, 17h, 17h30, 17 Uhr, 13.00 uur, alle 14, a las 13
        r"(?P<clock>\b(?:(?P<h1>[01]?\d)(?:[:.](?P<m1>[0-5]\d))?\s*(?P<ampm>[ap]\.?m\b\.?)"
        r"|(?<![£$€\d.,])(?P<h2>[012]?\d)(?::(?P<m2>[0-5]\d)|\.(?P<m5>[0-5]\d)\s*(?:uhr|uur|h)\b)"
        r"|(?P<h3>[012]?\d)\s*(?:h(?P<m3>[0-5]\d)?|uhr|uur)\b"
        r"|(?:alle|le ore|entro le|a las|las|às)\s+(?P<h4>[012]?\d)\b(?![.,:/]\d)))",
        # dates: 19 March, March 19th, 19. März, 19 de marzo, the 19th, 19.03.
        rf"(?P<date>\b(?:{_ORDINAL}\s*(?:de\s+)?(?P<month>{_MONTH_RE})\b"
        rf"|(?P<month2>{_MONTH_RE})\.?\s+(?P<day2>[0-3]?\d)(?:st|nd|rd|th)?\b"
        r"|the (?P<day3>[0-3]?\d)(?:st|nd|rd|th)\b"
        r"|(?P<day4>[0-3]?\d)\.(?P<mon4>[01]?\d)\.(?!\d)))",
        r"(?P<within>\b(?:within|in the next|binnen|innerhalb von|dans les|sous|en las próximas"
        r"|entro|nas próximas|dentro de)\s+(?P<n>\d{1,2})\s*(?:hours?|hrs?|h|stunden|uur|heures"
        r"|horas|ore)\b)",
    ]),
    _F,
)

# A preposition just before a mention that makes it a deadline.
_PREP = re.compile(
    r"(?:\b(?:by|before|until|till|no later than|latest|due|ends?|ending|expires?|closes?|for"
    r"|bis(?: spätestens)?|spätestens|vor|avant|d['’]ici|jusqu['’]à|au plus tard|pour"
    r"|antes de(?:l| las| la)?|para|hasta|a más tardar|entro|prima di|non oltre|per"
    r"|vóór|voor|uiterlijk|tot|até|antes|no máximo)"
    r"\s*(?:at\s+|on\s+|the\s+|de\s+|le\s+|la\s+|à\s+|am\s+)?)$",
    _F,
)
# Words in the same sentence that make a time an event or a need.
_EVENT = re.compile(
    r"\b(?:party|wedding|birthday|funeral|christening|ceremony|flight|fly|flying|trip|leave"
    r"|leaving|holiday|event|exam|interview|out for delivery|ship|ships|shipping|dispatch"
    r"|packed|need|needs|needed|must|deadline|expire|expires|respond|reply by|cut-?off"
    r"|feier|hochzeit|geburtstag|flug|fliegen|reise|abreise|termin|brauche|benötige|versand"
    r"|fête|mariage|anniversaire|vol|départ|pars|partons|voyage|besoin|expédi\w*"
    r"|fiesta|boda|cumpleaños|vuelo|viaje|viajo|viajamos|salimos|necesito|necesitamos|envío"
    r"|festa|matrimonio|compleanno|volo|viaggio|partenza|partiamo|parto|serve|servono|bisogno"
    r"|spedi\w*"
    r"|feest|bruiloft|verjaardag|vlucht|vertrek\w*|vlieg\w*|reis|nodig|verzend\w*"
    r"|casamento|aniversário|voo|viagem|viajo|viajamos|preciso|precisamos|envi\w*)\b",
    _F,
)
# Past tense near the mention ("I waited until tonight", "ist heute angekommen").
_PAST = re.compile(
    r"\b(?:waited|arrived|came|received|turned up|showed up|got here|delivered|ordered|placed"
    r"|bought|purchased|emailed|called|wrote|yesterday|last"
    r"|angekommen|gekommen|erhalten|bekommen|geliefert|bestellt|gewartet|kam|gestern"
    r"|arrivée?|reçue?|livrée?|commandée?|attendu"
    r"|llegó|recibí|recibido|entregado|pedí|esperé|ayer"
    r"|arrivat[oa]|ricevut[oa]|consegnat[oa]|ordinat[oa]|aspettato|ieri"
    r"|aangekomen|ontvangen|bezorgd|besteld|gewacht|kwam|gisteren"
    r"|chegou|recebi|entregue|pedi|esperei|encomendei|ontem)\b",
    _F,
)
_MODAL = re.compile(r"\b(?:to|be|will|must|should|needs?|please|can|could|muss|soll|wird"
                    r"|doit|debe|deve|moet|tem que|precisa)\b", _F)
# The shop's own promise quoted back: "you reply within 24 hours", "we ship same day".
_PROMISE = re.compile(r"\b(?:we|you|your|our|they|site|website|page|faq|says|promise[sd]?"
                      r"|usually|normally)\b[^.!?\n]{0,40}$", _F)
_NOT_TOMORROW = re.compile(r"(?:guten|heute|jeden|am|diesen|einen|den|esta|la|cada|'s)\s*$", _F)
_SENTENCE = re.compile(r"[.!?\n]")
_SO_FAR = re.compile(r"\s*(?:until|till|bis|jusqu['’]à|hasta|fino a|tot|até)\b", _F)


@dataclass(frozen=True)
class TimeMention:
    phrase: str
    at: datetime  # the moment it names, in the writer's local time
    hours: float  # hours from sending to ``at`` (0 when it is already that time)
    deadline: bool  # phrased as a deadline, an event or a need

    def describe(self, sent: datetime) -> str:
        when = self.at.strftime("%a %H:%M") if self.at.time() != _START else self.at.strftime(
            "%a %-d %b")
        if self.hours < 1:
            return f"'{self.phrase}' = {when}, the day it was sent"
        return f"'{self.phrase}' = {when}, {self.hours:.0f} h after it was sent"


_START = datetime.min.time()


def find(text: str, sent: datetime) -> list[TimeMention]:
    """Every time expression in ``text`` that names a moment from ``sent`` on, with the
    deadlines marked. ``sent`` is the writer's local time (aware or naive)."""
    out: list[TimeMention] = []
    for group in _groups(text):
        mention = _resolve(text, group, sent)
        if mention is not None:
            out.append(mention)
    return out


def within(text: str, sent: datetime, horizon_hours: float = 36.0) -> list[TimeMention]:
    """The deadlines in ``text`` that fall within ``horizon_hours`` of ``sent``."""
    return [m for m in find(text, sent) if m.deadline and m.hours <= horizon_hours]


# Where an atom may start: a digit or the stem of a time word. The atoms are looked for only
# around these (a full case-folded scan of every text took ten times as long).
_HINT = re.compile(
    r"\d|to(?:day|night|morrow)|tmrw|midnight|morgen|heute|demain|soir|nuit|aujourd|ma[ñn]ana"
    r"|hoy|noche|domani|oggi|stase|stano|van(?:daag|avond|nacht|middag)|hoje|amanh|noite"
    r"|esta tarde|evening|afternoon|same.day|day after|selben tag|jour m|mismo d|mesmo d"
    r"|dezelfde|giornata|weekend|wochenende|week-end|fin de semana|fim de semana|end of|eod\b|cob\b"
    r"|close of|feierabend|fin de journ|mitternacht|minuit|medianoche|mezzanotte|middernacht"
    r"|meia-noite|within|in the next|binnen|innerhalb|dans les|sous|pr[óo]ximas|entro|dentro"
    r"|monday|tuesday|wednesday|thursday|friday|saturday|sunday|montag|dienstag|mittwoch"
    r"|donnerstag|freitag|samstag|sonnabend|sonntag|lundi|mardi|mercredi|jeudi|vendredi"
    r"|samedi|dimanche|lunes|martes|mi[ée]rcoles|jueves|viernes|s[áa]bado|domingo|luned"
    r"|marted|mercoled|gioved|venerd|sabato|domenica|maandag|dinsdag|woensdag|donderdag"
    r"|vrijdag|zaterdag|zondag|feira|segunda|ter[çc]a|quarta|quinta|sexta")
_ATOMS_FOLDED = re.compile(_ATOMS.pattern)


def _atoms(text: str) -> list[re.Match[str]]:
    """The atoms of ``text``: looked for in windows around the hints of its lower-cased copy
    (same offsets), or in the whole text when lower-casing changes its length."""
    lowered = text.lower()
    if len(lowered) != len(text):
        return list(_ATOMS.finditer(text))
    windows: list[list[int]] = []
    for hint in _HINT.finditer(lowered):
        start, end = max(0, hint.start() - 30), hint.end() + 40
        if windows and start <= windows[-1][1]:
            windows[-1][1] = end
        else:
            windows.append([start, end])
    return [atom for start, end in windows
            for atom in _ATOMS_FOLDED.finditer(lowered, start, min(end, len(lowered)))]


def _groups(text: str) -> list[list[re.Match[str]]]:
    """Atoms close together in one sentence ("by 4pm tomorrow") form one mention."""
    groups: list[list[re.Match[str]]] = []
    for atom in _atoms(text):
        if atom.lastgroup == f"d{_TOMORROW}" and _NOT_TOMORROW.search(
                text[max(0, atom.start() - 12):atom.start()]):
            continue  # "guten Morgen", "esta mañana": a morning, not tomorrow
        if groups and not (_is_day(atom) and any(_is_day(a) for a in groups[-1])):
            gap = text[groups[-1][-1].end():atom.start()]
            if len(gap) <= 24 and not _SENTENCE.search(gap) and len(gap.split()) <= 3:
                groups[-1].append(atom)
                continue
        groups.append([atom])
    return groups


def _resolve(text: str, atoms: list[re.Match[str]], sent: datetime) -> TimeMention | None:
    day, hour, minute, explicit_time, within_hours = 0, 0, 0, False, None
    for atom in atoms:
        kind = atom.lastgroup or ""
        if re.fullmatch(r"d\d+", kind):
            offset, hour = _DAYS[int(kind[1:])][1:]
            day = offset if offset >= 0 else (5 - sent.weekday()) % 7
        elif re.fullmatch(r"w\d+", kind):
            day = (int(kind[1:]) - sent.weekday()) % 7
            hour = next((h for p, h in _PARTS if re.search(p + r"$", atom.group(), _F)), 0)
        elif kind == "date":
            resolved = _date(atom, sent)
            if resolved is None:
                return None
            day = resolved
        elif kind == "within":
            within_hours = int(atom.group("n"))
    for atom in atoms:
        if atom.lastgroup == "clock":
            parsed = _clock(atom)
            if parsed is None:
                return None
            (hour, minute), explicit_time = parsed, True
    start, end = atoms[0].start(), atoms[-1].end()
    before = text[max(0, start - 40):start]
    prep = _PREP.search(before)
    phrase_start = start - len(prep.group()) if prep else start
    phrase = text[phrase_start:end].strip()
    sentence = _sentence(text, start, end)
    if _is_past(text, phrase_start, end):
        return None
    if within_hours is not None:
        if _PROMISE.search(text[max(0, start - 60):start]) and not re.search(
                r"\b(?:must|required|otherwise|or we|respond|please)\b", sentence, _F):
            return None
        at = sent + timedelta(hours=within_hours)
        return TimeMention(phrase, at, float(within_hours), deadline=True)
    base = sent.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=day)
    at = base + timedelta(hours=hour, minutes=minute) - timedelta(minutes=hour == 24)
    if explicit_time and day == 0 and at < sent and all(a.lastgroup == "clock" for a in atoms):
        at += timedelta(days=1)  # "before 1pm" sent at 3pm: tomorrow at 1
    hours = max(0.0, (at - sent).total_seconds() / 3600)
    if _PROMISE.search(before) and re.search(r"\b(?:same[- ]day|today)\b", phrase, _F) and \
            re.search(r"\b(?:we|you|your)\b", before, _F):
        return None  # "you ship same day": the shop's promise
    if all(a.lastgroup == f"d{_TODAY}" for a in atoms):
        if prep and _SO_FAR.match(prep.group()):
            return None  # "until today", "bis heute": so far ("bis heute nicht erhalten")
        # a bare "today" is said of the past as often as of a deadline ("it was delivered
        # today"): only a preposition or an event or need right before it makes it one
        deadline = bool(prep) or bool(_EVENT.search(" ".join(text[:phrase_start].split()[-4:])))
    else:
        deadline = bool(prep) or bool(_EVENT.search(sentence))
    return TimeMention(phrase, at, hours, deadline)


def _is_day(atom: re.Match[str]) -> bool:
    """A day (a day word, a weekday or a date): two of them are two mentions, not one."""
    return atom.lastgroup == "date" or bool(re.fullmatch(r"[dw]\d+", atom.lastgroup or ""))


def _clock(atom: re.Match[str]) -> tuple[int, int] | None:
    h, m = atom.group("h1"), atom.group("m1")
    if h is not None:
        hour = int(h) % 12 + (12 if atom.group("ampm").lower().startswith("p") else 0)
        return (hour, int(m or 0)) if int(h) <= 12 else None
    if atom.group("h2") is not None:
        hour, minute = int(atom.group("h2")), int(atom.group("m2") or atom.group("m5") or 0)
        return (hour, minute) if hour < 24 else (23, 59) if (hour, minute) == (24, 0) else None
    for hg, mg in (("h3", "m3"), ("h4", None)):
        if atom.group(hg) is not None:
            hour, minute = int(atom.group(hg)), int(atom.group(mg) or 0) if mg else 0
            if hour == 24 and minute == 0:
                return 23, 59
            return (hour, minute) if hour < 24 else None
    return None


def _date(atom: re.Match[str], sent: datetime) -> int | None:
    """Days from ``sent`` to the date named (the next one of that date), or None."""
    groups = atom.groupdict()
    day_text = groups["day"] or groups["day2"] or groups["day3"] or groups["day4"]
    name = (groups["month"] or groups["month2"] or "").lower()
    month = next((i + 1 for i, rx in enumerate(_MONTH_OF) if name and rx.match(name)), None)
    if groups["day4"]:
        month = int(groups["mon4"])
    if groups["day3"]:
        month = sent.month
    if not day_text or month is None or not 1 <= month <= 12:
        return None
    day = int(day_text)
    for year in (sent.year, sent.year + 1):
        try:
            target = sent.replace(year=year, month=month, day=day)
        except ValueError:
            return None
        if groups["day3"] and target.date() < sent.date():
            month_after = month % 12 + 1
            try:
                target = sent.replace(year=year + (month == 12), month=month_after, day=day)
            except ValueError:
                return None
        if target.date() >= sent.date():
            return (target.date() - sent.date()).days
    return None


def _sentence(text: str, start: int, end: int) -> str:
    left = max((m.end() for m in _SENTENCE.finditer(text, 0, start)), default=0)
    right = _SENTENCE.search(text, end)
    return text[left:right.start() if right else len(text)]


def _is_past(text: str, start: int, end: int) -> bool:
    """A past tense within three words before or after the mention, and no modal before."""
    before = " ".join(re.split(r"[.!?\n]", text[max(0, start - 60):start])[-1].split()[-3:])
    after = " ".join(re.split(r"[.!?,;\n]", text[end:end + 60])[0].split()[:2])
    if _MODAL.search(before):
        return False
    return bool(_PAST.search(before) or _PAST.search(after))
