"""The hand-made cues: each fires on its phrases in four languages and says which words it
matched; the trigger prefilter finds what the plain regexes find; function cues read the
whole input; and the cue list is part of every saved model's fingerprint."""

from __future__ import annotations

import random
import re
from datetime import UTC, datetime

import pytest

from supportcli.model import cues
from supportcli.model.cues import CUE_NAMES, CUES, Cue, find, quote
from supportcli.model.text import ModelInput

CUE_EXAMPLES = {
    "chargeback or payment dispute": [
        "I will file a chargeback with my bank today.",
        "Ich habe eine Rückbuchung bei meiner Bank veranlasst.",
        "J'ai fait une opposition bancaire sur ce paiement.",
        "Voy a pedir un contracargo a mi banco.",
    ],
    "legal threat": [
        "My lawyer will be in touch.",
        "Mein Anwalt wird sich bei Ihnen melden.",
        "Je vais contacter mon avocat.",
        "Mi abogado se pondrá en contacto.",
    ],
    "fraud or unauthorised charge": [
        "There is an unauthorized charge on my card.",
        "Das ist Betrug, ich habe nichts bestellt.",
        "C'est une fraude, je n'ai rien commandé.",
        "No autoricé este cargo.",
    ],
    "safety problem": [
        "My son had an allergic reaction to the cream.",
        "Mein Kind musste ins Krankenhaus.",
        "Ma fille est aux urgences.",
        "Mi hija tuvo una reacción alérgica al producto.",
    ],
    "deadline within a day": [
        "I need it by tomorrow for the party.",
        "Ich brauche das Paket bis morgen.",
        "C'est pour demain matin.",
        "Lo necesito para mañana.",
    ],
    "public review threat": [
        "I will leave a bad review everywhere.",
        "Sie bekommen eine schlechte Bewertung.",
        "Je vais laisser un avis très négatif.",
        "Voy a escribir una reseña negativa.",
    ],
    "repeated follow-up": [
        "This is my third email about this.",
        "Ich warte immer noch auf eine Antwort.",
        "Toujours pas de réponse de votre part.",
        "Todavía no he recibido nada.",
    ],
    "anger or exasperation": [
        "This is completely unacceptable.",
        "Das ist unverschämt.",
        "C'est inadmissible.",
        "Es inaceptable.",
    ],
    "money or account at risk": [
        "Your payouts are on hold while we review your account.",
        "Ihr Konto wurde gesperrt.",
        "Vos versements sont suspendus.",
        "Uw uitbetalingen zijn gepauzeerd.",
    ],
    "customer blocked": [
        "My card was declined three times at checkout.",
        "Die Zahlung wird immer wieder abgelehnt.",
        "Le lien ne fonctionne pas.",
        "O pagamento foi recusado outra vez.",
    ],
    "cancel or change an order": [
        "Please cancel my order before it ships.",
        "Bitte stornieren Sie die Bestellung.",
        "Pouvez-vous annuler ma commande ?",
        "Kunt u mijn bestelling annuleren?",
    ],
    "money already taken": [
        "I was charged twice for one order.",
        "Wann bekomme ich meine Erstattung?",
        "Merci de me rembourser la commande.",
        "Quiero un reembolso.",
    ],
}
NEUTRAL = "Hello, could you tell me which colours the linen shirt comes in? Thanks, Anna"


SENT = datetime(2026, 11, 19, 10, tzinfo=UTC)  # a Thursday: deadlines resolve against it


def _hit(text: str, cue: str) -> str | None:
    return next((h.text for h in find([ModelInput(text, SENT)])[0] if h.cue == cue), None)


@pytest.mark.parametrize(
    ("cue", "text"), [(cue, text) for cue, texts in CUE_EXAMPLES.items() for text in texts]
)
def test_each_cue_fires_on_its_phrases_and_quotes_them(cue: str, text: str) -> None:
    quoted = _hit(f"Subject\n{text}", cue)
    assert quoted is not None
    assert quoted in text  # the message's own words, as written


def test_the_quote_is_the_phrase_a_reader_recognises() -> None:
    text = "Hi.\nThis is unacceptable. I will file a chargeback with my bank today!"
    assert _hit(text, "chargeback or payment dispute") == "file a chargeback with my bank"
    assert _hit(text, "anger or exasperation") == "This is unacceptable"
    assert quote("a Pre-order x", 6, 11) == "a Pre-order x"  # whole words only


def test_neutral_text_has_no_cues() -> None:
    assert find([NEUTRAL]) == [()]


def test_order_automated_and_shouting() -> None:
    rows = find([
        "Status of #10234 please",
        ModelInput("Delivery report", automated="Auto-Submitted: auto-generated"),
        "WHERE IS MY PARCEL, I PAID THREE WEEKS AGO AND NOTHING HAPPENED",
        "WHERE IS IT",  # too few letters to call it shouting
        "Wo ist meine Bestellung?",
    ])
    names = [[h.cue for h in row] for row in rows]
    assert names == [["mentions an order"], ["automated mail"], ["shouting (capitals)"], [],
                     ["mentions an order"]]
    assert rows[1][0].text == "Auto-Submitted: auto-generated"
    assert rows[2][0].text == "WHERE IS MY PARCEL, I PAID"


@pytest.mark.parametrize(("text", "shouting"), [
    ("ΠΟΥ ΕΙΝΑΙ Η ΠΑΡΑΓΓΕΛΙΑ ΜΟΥ ΠΕΡΙΜΕΝΩ ΤΡΕΙΣ ΕΒΔΟΜΑΔΕΣ", True),
    ("ГДЕ МОЙ ЗАКАЗ Я ЖДУ УЖЕ ТРИ НЕДЕЛИ И НИЧЕГО", True),
    ("ＷＨＥＲＥ ＩＳ ＭＹ ＰＡＲＣＥＬ ＩＴ ＩＳ ＬＡＴＥ ＡＧＡＩＮ", True),
    ("𐐀𐐁𐐂𐐃𐐄𐐅𐐆𐐇𐐈𐐉𐐊𐐋𐐌𐐍𐐎𐐏𐐐𐐑𐐒𐐓𐐔𐐕", True),
    ("我的订单在哪里我已经等了三个星期了还没有收到任何消息", False),  # letters without case
    ("ＷＨＥＲＥ is my parcel it is late again and again", False),
])
def test_shouting_counts_capitals_of_every_script(text: str, shouting: bool) -> None:
    assert (_hit(text, "shouting (capitals)") is not None) == shouting


def _random_texts(n: int, seed: int = 1) -> list[str]:
    rng = random.Random(seed)
    phrases = [t for texts in CUE_EXAMPLES.values() for t in texts] + [
        NEUTRAL, "order", "Order #12345", "#9999", "it's tomorrow", "no one has replied",
        "follow-up", "charge back", "!!", "ÜBER", "ships today", "1-star review",
        "post this on", "didn't make this", "account has been hacked", "a", "tomorrow",
        "by", "no body got back", "within 24h", "lastschrift ging zurück", "chargebacks",
    ]  # fmt: skip
    return [" ".join(w.upper() if rng.random() < 0.2 else w
                     for w in (rng.choice(phrases) for _ in range(rng.randint(1, 6))))
            for _ in range(n)]


def test_the_trigger_prefilter_finds_what_the_plain_regexes_find() -> None:
    texts = _random_texts(400) + [t for ts in CUE_EXAMPLES.values() for t in ts] + [NEUTRAL, ""]
    regex_cues = {c.name: "|".join(c.patterns) for c in CUES if c.patterns}
    for text, row in zip(texts, find(texts), strict=True):
        plain = {name for name, pattern in regex_cues.items() if re.search(pattern, text.lower())}
        assert {h.cue for h in row if h.cue in regex_cues} == plain, text
    assert {h.cue for row in find(texts) for h in row} >= set(regex_cues)  # every cue occurs


def test_a_function_cue_reads_the_whole_input_and_runs_only_on_its_triggers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[ModelInput] = []

    def weekend(item: ModelInput) -> str | None:
        seen.append(item)
        return "Saturday" if item.sent is not None and item.sent.weekday() == 5 else None

    cue = Cue("weekend deadline", function=weekend, triggers=("saturday",))
    monkeypatch.setattr(cues, "CUES", (*CUES, cue))
    monkeypatch.setattr(cues, "CUE_NAMES", (*CUE_NAMES, cue.name))
    cues._index.cache_clear()
    cues.hits.cache_clear()
    try:
        friday = datetime(2026, 11, 20, 9, tzinfo=UTC)
        saturday = datetime(2026, 11, 21, 9, tzinfo=UTC)
        rows = find([ModelInput("Party on Saturday", saturday), ModelInput("Party on Saturday",
                     friday), ModelInput("No trigger word here", saturday)])
        names = [[h.cue for h in row if h.cue == "weekend deadline"] for row in rows]
        assert names == [["weekend deadline"], [], []]
        assert len(seen) == 2  # the text without the trigger word was not asked
    finally:
        cues._index.cache_clear()
        cues.hits.cache_clear()


def test_editing_the_cue_list_changes_the_fingerprint(monkeypatch: pytest.MonkeyPatch) -> None:
    before = cues.fingerprint()
    first = CUES[0]
    edited = Cue(first.name, ("file a claim", *first.patterns))  # one alternative at the head
    monkeypatch.setattr(cues, "CUES", (edited, *CUES[1:]))
    assert cues.fingerprint() != before
