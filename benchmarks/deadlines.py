"""Deadline recognition: supportcli's own grammar against dateparser's ``search_dates``.

Each case is a sentence a customer might write, the time it was sent and what a support lead
reads in it: the moment of a deadline or event within 36 hours (day offset, hour), or none.
Printed per method: hits (found, and on the right day), wrong day, missed, false hits (a
deadline found where there is none) and the time per sentence.

    pip install dateparser==1.5.0   # only for the comparison
    python benchmarks/deadlines.py
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

from supportcli.parse import deadlines

TZ = timezone(timedelta(hours=1))
MON = datetime(2026, 3, 2, 9, 40, tzinfo=TZ)
THU = datetime(2026, 3, 5, 16, 5, tzinfo=TZ)
FRI = datetime(2026, 3, 6, 11, 20, tzinfo=TZ)
# (language, sent, text, expected (days after sending, hour or None) or None)
CASES: list[tuple[str, datetime, str, tuple[int, int | None] | None]] = [
    ("en", THU, "Any chance it can go out today? The christening is on Saturday.", (2, None)),
    ("en", FRI, "Our flight leaves Saturday 7am so it has to reach us before then", (1, 7)),
    ("en", MON, "Could you hold the parcel until Wednesday please, I'm away", None),
    ("en", THU, "code SPRING20 expires at midnight and checkout won't take it", (0, 23)),
    ("en", MON, "please cancel before it ships at 2pm, I ordered the wrong colour", (0, 14)),
    ("en", MON, "I need the invoice by close of business for our accountant", (0, 17)),
    ("en", THU, "It was meant to arrive today and it didn't.", None),
    ("en", MON, "Thanks, it arrived this morning and looks great", None),
    ("en", FRI, "No rush at all, next week is fine", None),
    ("en", MON, "We ordered it for our anniversary in May", None),
    ("en", THU, "I'm only in until 3 tomorrow afternoon, can the courier come before?", (1, 15)),
    ("en", MON, "You say you answer within 24 hours, it's been three days", None),
    ("de", THU, "Die Feier ist morgen Abend, kommt das Paket noch rechtzeitig?", (1, 18)),
    ("de", MON, "Bitte bis heute 14 Uhr stornieren, bevor es verschickt wird", (0, 14)),
    ("de", FRI, "Ich brauche die Rechnung spätestens Montag früh", None),
    ("de", MON, "Guten Morgen, wo bleibt meine Bestellung?", None),
    ("de", THU, "Das Paket ist gestern angekommen, danke!", None),
    ("de", MON, "Wir fliegen am Dienstag um 6:30, geht Expressversand?", (1, 6)),
    ("fr", THU, "Le mariage est samedi, il me faut la robe avant vendredi soir", (1, 18)),
    ("fr", MON, "Pouvez-vous annuler avant 13h ? Merci", (0, 13)),
    ("fr", MON, "Je l'ai reçu aujourd'hui, tout est parfait", None),
    ("fr", FRI, "J'ai besoin de la facture d'ici demain midi", (1, None)),
    ("fr", MON, "Bonjour, quand recevrai-je ma commande ?", None),
    ("es", THU, "Necesito el regalo para mañana por la tarde, es su cumpleaños", (1, 12)),
    ("es", MON, "Esta mañana recibí el pedido, gracias", None),
    ("es", MON, "Por favor cancelad el pedido antes de las 14:00", (0, 14)),
    ("es", FRI, "La fiesta es el sábado a las 20h", (1, 20)),
    ("es", MON, "¿Cuándo vuelve a estar disponible la talla M?", None),
    ("it", THU, "La festa è domani sera, arriverà in tempo?", (1, 18)),
    ("it", MON, "Mi serve la fattura entro le 17 di oggi", (0, 17)),
    ("it", MON, "Il pacco è arrivato oggi ma è rotto", None),
    ("it", FRI, "Partiamo domenica mattina, potete spedire con corriere espresso?", None),
    ("it", THU, "Partiamo sabato mattina, potete spedire con corriere espresso?", (2, 8)),
    ("nl", THU, "Ik heb het uiterlijk morgen om 12.00 uur nodig", (1, 12)),
    ("nl", MON, "Het feest is vanavond, komt het pakket nog?", (0, 18)),
    ("nl", MON, "Gisteren besteld, wanneer wordt het verzonden?", None),
    ("nl", FRI, "We vertrekken zaterdagochtend op vakantie", (1, 8)),
    ("pt", THU, "Preciso da encomenda até amanhã às 16h, é para um presente", (1, 16)),
    ("pt", MON, "O casamento é amanhã e o vestido ainda não chegou", (1, None)),
    ("pt", MON, "Recebi hoje, muito obrigada", None),
    ("pt", FRI, "Viajo no sábado de manhã, dá para enviar hoje?", (1, 8)),
    ("pt", MON, "Qual é o prazo de entrega para Lisboa?", None),
]


def _ours(text: str, sent: datetime) -> list[datetime]:
    return [m.at for m in deadlines.within(text, sent)]


def _dateparser(text: str, sent: datetime, lang: str) -> list[datetime]:
    from dateparser.search import search_dates

    found = search_dates(text, languages=[lang], settings={
        "RELATIVE_BASE": sent.replace(tzinfo=None), "PREFER_DATES_FROM": "future"})
    times = [at.replace(tzinfo=sent.tzinfo) for _, at in found or []]
    return [at for at in times if timedelta(hours=-12) <= at - sent <= timedelta(hours=36)]


def _score(name: str, method) -> None:  # type: ignore[no-untyped-def]
    hits = wrong = missed = false = 0
    start = time.perf_counter()
    for lang, sent, text, expected in CASES:
        got = method(text, sent, lang)
        if expected is None:
            false += bool(got)
        elif not got:
            missed += 1
        elif any((at.date() - sent.date()).days == expected[0] and expected[1] in (None, at.hour)
                 for at in got):
            hits += 1
        else:
            wrong += 1
    per = (time.perf_counter() - start) / len(CASES) * 1000
    print(f"{name:<12} {hits:>4} {wrong:>6} {missed:>7} {false:>6} {per:>9.2f}")


def main() -> None:
    positives = sum(1 for *_, e in CASES if e is not None)
    print(f"{len(CASES)} sentences in 7 languages, {positives} with a deadline within 36 h")
    print(f"{'method':<12} {'hits':>4} {'wrong':>6} {'missed':>7} {'false':>6} {'ms/text':>9}")
    _score("supportcli", lambda t, s, _lang: _ours(t, s))
    try:
        import dateparser  # noqa: F401
    except ImportError:
        print("dateparser   not installed (pip install dateparser==1.5.0 to compare)")
        return
    _dateparser("warm up", MON, "en")
    _score("dateparser", _dateparser)


if __name__ == "__main__":
    main()
