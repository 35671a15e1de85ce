"""Ranking rules: pure functions, checked on hand-made threads: cue-forced urgency, the rules
built from the settings, and one lateness for triage and the report."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from factories import CHARGEBACK, message, prediction

from supportcli.config import DEFAULT_CATEGORY_WEIGHTS, DEFAULT_SLA_HOURS, Settings, load_settings
from supportcli.prioritize import FORCING_CUES, Rules, group_threads, rank, score
from supportcli.records import CueHit
from supportcli.report import overdue_by_urgency

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
RULES = Rules(DEFAULT_CATEGORY_WEIGHTS, DEFAULT_SLA_HOURS, frozenset({"support@shop.example"}))


def test_threads_by_references_and_by_sender_subject() -> None:
    a = message("a@x", subject="Refund?")
    b = message("b@x", subject="Re: Refund?", in_reply_to="a@x", references=("a@x",))
    c = message("c@x", subject="RE: refund?")  # no headers, same sender + subject
    d = message("d@x", sender="bob@example.com", subject="Refund?")
    groups = sorted(len(g) for g in group_threads([a, b, c, d]))
    assert groups == [1, 3]


def test_urgent_beats_normal_and_automated_sinks() -> None:
    urgent = message("u@x", sender="u@e.com", date=NOW - timedelta(hours=1))
    normal = message("n@x", sender="n@e.com", date=NOW - timedelta(hours=30))
    robot = message(
        "r@x", sender="noreply@e.com", automated="Precedence: bulk", date=NOW - timedelta(days=5)
    )
    preds = {
        "u@x": prediction("billing_payment", "urgent", cues=(CHARGEBACK,)),
        "n@x": prediction("product_question", "normal"),
        "r@x": prediction("other", "low"),
    }
    items = rank(group_threads([urgent, normal, robot]), preds, RULES, NOW)
    assert [i.message.message_id for i in items] == ["u@x", "n@x", "r@x"]
    assert [i.rank for i in items] == [1, 2, 3]
    assert "chargeback" in items[0].top_reason
    assert any("automated" in t.reason for t in items[2].terms)


def test_waiting_past_target_raises_the_score_and_says_so() -> None:
    fresh = score(message(date=NOW - timedelta(hours=1)), prediction(), RULES, NOW)
    stale = score(message(date=NOW - timedelta(hours=50)), prediction(), RULES, NOW)
    assert stale.score > fresh.score
    waiting = next(t for t in stale.terms if t.name == "waiting")
    assert "past the 24 h target" in waiting.reason
    assert stale.waiting == timedelta(hours=50)


def test_third_message_in_a_thread_is_urgent_second_is_high() -> None:
    first = message("1@x", date=NOW - timedelta(days=3))
    second = message(
        "2@x",
        subject="Re: Where is my order?",
        in_reply_to="1@x",
        references=("1@x",),
        date=NOW - timedelta(days=2),
    )
    third = message(
        "3@x",
        subject="Re: Where is my order?",
        in_reply_to="2@x",
        references=("1@x", "2@x"),
        date=NOW - timedelta(hours=2),
    )
    preds = {m: prediction("order_status", "normal") for m in ("1@x", "2@x", "3@x")}
    [two] = rank(group_threads([first, second]), preds, RULES, NOW)
    assert two.urgency == "high" and two.followups == 1
    [three] = rank(group_threads([first, second, third]), preds, RULES, NOW)
    assert three.urgency == "urgent" and three.thread_size == 3
    assert three.message.message_id == "3@x"
    assert "3rd message" in three.terms[0].reason


def test_answered_threads_are_hidden_unless_asked() -> None:
    ask = message("q@x", date=NOW - timedelta(hours=5))
    reply = message(
        "r@x",
        sender="support@shop.example",
        subject="Re: Where is my order?",
        in_reply_to="q@x",
        references=("q@x",),
        date=NOW - timedelta(hours=4),
    )
    flagged = message("f@x", sender="z@e.com", flags=("\\Answered",))
    preds = {"q@x": prediction(), "f@x": prediction()}
    threads = group_threads([ask, reply, flagged])
    assert rank(threads, preds, RULES, NOW) == []
    assert len(rank(threads, preds, RULES, NOW, include_answered=True)) == 2


def test_category_weight_and_sender_history_terms() -> None:
    base = score(message(), prediction("feedback", "normal"), RULES, NOW)
    weighted = score(message(), prediction("billing_payment", "normal"), RULES, NOW)
    assert weighted.score > base.score
    repeat = score(message(), prediction(), RULES, NOW, history=2)
    assert any(t.name == "sender history" and t.points > 0 for t in repeat.terms)


def test_gmail_thread_id_joins_messages_without_headers() -> None:
    a = message("a@x", subject="Parcel", flags=("X-GM-THRID:1234",))
    b = message("b@x", sender="ann2@example.com", subject="Other", flags=("X-GM-THRID:1234",))
    c = message("c@x", sender="zed@example.com", subject="Else", flags=("X-GM-THRID:999",))
    assert sorted(len(g) for g in group_threads([a, b, c])) == [1, 2]


def _thread(*specs: tuple[str, str, int]) -> list:
    """Messages (id, sender, hours ago) linked as one thread."""
    out = []
    for mid, sender, hours in specs:
        refs = tuple(m.message_id for m in out)
        out.append(message(mid, sender=sender, subject="Re: Broken lamp", date=NOW - timedelta(
            hours=hours), in_reply_to=refs[-1] if refs else "", references=refs))
    return out


def test_followups_count_only_since_the_shops_last_reply() -> None:
    thread = _thread(("1@x", "c@e.com", 90), ("2@x", "c@e.com", 80), ("3@x", "c@e.com", 70),
                     ("r@x", "support@shop.example", 60), ("4@x", "c@e.com", 2))
    preds = {m.message_id: prediction("returns_refunds", "normal") for m in thread}
    [item] = rank([thread], preds, RULES, NOW)
    assert item.followups == 0 and item.urgency == "normal"


def test_a_reply_from_the_sent_folder_also_resets_the_count() -> None:
    thread = _thread(("1@x", "c@e.com", 90), ("2@x", "c@e.com", 80), ("3@x", "c@e.com", 2))
    preds = {m.message_id: prediction("returns_refunds", "normal") for m in thread}
    [item] = rank([thread], preds, RULES, NOW, answered=frozenset({"2@x"}))
    assert item.followups == 0 and item.urgency == "normal"


def test_thanks_and_vendor_chasers_never_escalate() -> None:
    thread = _thread(("1@x", "c@e.com", 90), ("2@x", "c@e.com", 80), ("3@x", "c@e.com", 2))
    for category, urgency in (("feedback", "low"), ("spam_vendor", "low"), ("other", "normal")):
        preds = {m.message_id: prediction(category, urgency) for m in thread}
        [item] = rank([thread], preds, RULES, NOW)
        assert item.followups == 2
        assert item.urgency == urgency, category


# -- cue-forced urgency: the model reports the cues, ranking decides what they mean ---------


def test_a_forcing_cue_makes_a_message_urgent_and_quotes_the_words() -> None:
    calm = prediction("billing_payment", "normal", cues=(CHARGEBACK,))
    item = score(message(), calm, RULES, NOW)
    assert item.urgency == "urgent"
    assert item.terms[0].reason.startswith(
        "urgent: chargeback or payment dispute cue: 'file a chargeback with my bank'")


def test_on_automated_mail_and_other_only_money_taken_back_forces_urgency() -> None:
    robot = message(automated="Auto-Submitted: auto-generated")
    legal = CueHit("legal threat", "legal action")
    assert score(robot, prediction("billing_payment", "normal", cues=(legal,)),
                 RULES, NOW).urgency == "normal"
    # a marketplace claim or a payment processor's dispute notice stays urgent (LABELS.md)
    assert score(robot, prediction("other", "normal", cues=(CHARGEBACK,)),
                 RULES, NOW).urgency == "urgent"
    for category in ("feedback", "spam_vendor"):
        assert score(message(), prediction(category, "low", cues=(CHARGEBACK, legal)),
                     RULES, NOW).urgency == "low"
    assert score(message(), prediction("other", "low", cues=(legal,)), RULES, NOW).urgency == "low"
    order = CueHit("mentions an order", "where is my order")  # not a forcing cue
    assert score(message(), prediction("order_status", "normal", cues=(order,)),
                 RULES, NOW).urgency == "normal"


def test_a_deadline_past_the_horizon_does_not_force_urgency() -> None:
    sent = NOW - timedelta(hours=1)
    far = CueHit("deadline within a day", "by Saturday", sent + timedelta(hours=40))
    near = CueHit("deadline within a day", "by 4pm tomorrow", sent + timedelta(hours=30))
    assert score(message(date=sent), prediction(cues=(far,)), RULES, NOW).urgency == "normal"
    item = score(message(date=sent), prediction(cues=(near,)), RULES, NOW)
    assert item.urgency == "urgent"
    assert "'by 4pm tomorrow' = " in item.terms[0].reason
    assert "30 h after it was sent" in item.terms[0].reason
    wide = replace(RULES, deadline_hours=48)
    assert score(message(date=sent), prediction(cues=(far,)), wide, NOW).urgency == "urgent"


def test_forcing_cues_are_cues_the_model_knows() -> None:
    from supportcli.model.cues import CUE_NAMES

    assert set(FORCING_CUES) <= set(CUE_NAMES)


# -- the rules come from the settings in one place, lateness is computed one way ------------


def _settings(tmp_path: Path, hours: bool) -> Settings:
    config = tmp_path / "config.toml"
    extra = 'business_hours = "Mon-Fri 09:00-17:30"\n' if hours else ""
    config.write_text('[triage]\nshop_addresses = ["Support@Shop.Example"]\n'
                      f'[report]\ntimezone = "Europe/London"\n{extra}', encoding="utf-8")
    return load_settings(config)


def test_rules_from_settings_keep_shop_addresses_and_business_hours(tmp_path: Path) -> None:
    rules = Rules.from_settings(_settings(tmp_path, hours=True))
    assert rules.shop_addresses == frozenset({"support@shop.example"})
    assert rules.business_hours is not None and rules.business_hours.tz == "Europe/London"
    assert Rules.from_settings(_settings(tmp_path, hours=False)).business_hours is None


@pytest.mark.parametrize("hours", [True, False])
def test_triage_and_the_report_agree_on_lateness(tmp_path: Path, hours: bool) -> None:
    """Sent Saturday 10:00, seen Monday 08:00: 46 h of wall clock, no business hours."""
    settings = _settings(tmp_path, hours)
    sent, seen = datetime(2026, 11, 21, 10, tzinfo=UTC), datetime(2026, 11, 23, 8, tzinfo=UTC)
    item = score(message(date=sent), prediction("product_question", "normal"),
                 Rules.from_settings(settings), seen)
    waiting = next(t for t in item.terms if t.name == "waiting")
    overdue = overdue_by_urgency([item], settings.sla_hours, seen, settings.business_hours)
    assert ("past the 24 h target" in waiting.reason) == bool(overdue) == (not hours)
    assert waiting.reason.startswith("waiting 0 min of business hours" if hours else "waiting 46 h")
