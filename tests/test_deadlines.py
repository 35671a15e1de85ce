"""Deadlines in what a customer wrote, resolved against when it was sent, in seven languages."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from supportcli.parse import deadlines

CET = timezone(timedelta(hours=1))
THURSDAY = datetime(2026, 3, 5, 10, 15, tzinfo=CET)


def _one(text: str, sent: datetime = THURSDAY) -> deadlines.TimeMention:
    found = deadlines.within(text, sent)
    assert len(found) == 1, (text, found)
    return found[0]


@pytest.mark.parametrize(
    ("text", "phrase", "at"),
    [
        ("The broker needs the paperwork by 4pm tomorrow.", "by 4pm tomorrow", "Fri 16:00"),
        ("Die Feier ist morgen Abend, schafft ihr das?", "morgen Abend", "Fri 18:00"),
        ("Il me faut le colis avant 14h demain.", "avant 14h demain", "Fri 14:00"),
        ("Necesito el regalo mañana por la tarde, es su cumpleaños", "mañana por la tarde",
         "Fri 12:00"),
        ("Mi serve entro domani mattina, grazie", "entro domani mattina", "Fri 08:00"),
        ("Ik heb het uiterlijk morgen om 12.00 uur nodig", "uiterlijk morgen om 12.00 uur",
         "Fri 12:00"),
        ("Preciso da encomenda até amanhã às 16h", "até amanhã às 16h", "Fri 16:00"),
    ],
    ids=["en", "de", "fr", "es", "it", "nl", "pt"],
)
def test_a_deadline_is_resolved_in_each_language(text: str, phrase: str, at: str) -> None:
    mention = _one(text)
    assert mention.phrase == phrase
    assert mention.at.strftime("%a %H:%M") == at
    assert mention.hours == pytest.approx((mention.at - THURSDAY).total_seconds() / 3600)


@pytest.mark.parametrize(
    "text",
    [
        "the discount code ends at midnight",
        "I know you ship before 1pm, please stop it before it's packed",
        "tracking shows it's out for delivery today, to my old address",
        "we fly on Friday morning, can you upgrade the shipping?",
        "Respond within 24 hours or the claim will be decided in the buyer's favour.",
    ],
)
def test_calm_deadlines_without_trigger_words_are_found(text: str) -> None:
    assert deadlines.within(text, THURSDAY), text


@pytest.mark.parametrize(
    "text",
    [
        "I waited until tonight but it came, all good",
        "Your website says you reply within 24 hours, so I'll wait.",
        "It arrived today, thanks!",
        "Das Paket ist heute angekommen.",
        "Esta mañana recibí el paquete.",
        "Guten Morgen, wie lange dauert der Versand?",
        "The wedding is on Saturday",  # written Thursday morning: 38 h away
        "Can you send it next week? No rush.",
        "It cost £12.50 for 3 items, 1 set.",
        "Eine Versandbestätigung habe ich bis heute aber nicht erhalten.",  # so far
        "Until today nobody has answered me.",
    ],
)
def test_no_deadline_within_a_day(text: str) -> None:
    assert deadlines.within(text, THURSDAY) == [], text


def test_the_same_weekday_written_a_day_later_is_within_a_day() -> None:
    friday = THURSDAY + timedelta(days=1)
    assert _one("The wedding is on Saturday", friday).at.strftime("%a") == "Sat"


def test_a_clock_time_already_past_means_the_next_day() -> None:
    late = THURSDAY.replace(hour=15)
    assert _one("please cancel before 1pm", late).at.strftime("%a %H:%M") == "Fri 13:00"


def test_the_reason_names_the_phrase_and_its_time() -> None:
    mention = _one("The broker needs the paperwork by 4pm tomorrow.")
    assert mention.describe(THURSDAY) == "'by 4pm tomorrow' = Fri 16:00, 30 h after it was sent"


def test_the_windowed_scan_finds_what_a_full_scan_finds() -> None:
    """Atoms are looked for only around hints (digits, time-word stems): on every sample the
    same atoms as a case-insensitive scan of the whole text."""
    from supportcli import resources
    from supportcli.model import dataset

    for item in dataset.load_folder(resources.samples_dir()).inputs:
        windowed = [(m.start(), m.end()) for m in deadlines._atoms(item.text)]
        full = [(m.start(), m.end()) for m in deadlines._ATOMS.finditer(item.text)]
        assert windowed == full, item.text[:80]
