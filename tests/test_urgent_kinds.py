"""The kinds of urgent mail a shop must not miss, and the false alarms it must not raise, each
as a real .eml run through `supportcli classify --json`: the urgency shown and the words that
decided it (issue #9)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from supportcli.cli import main

MAIL = Path(__file__).parent / "mail" / "urgency"


def classify(capsys: pytest.CaptureFixture[str], name: str) -> dict[str, object]:
    assert main(["classify", str(MAIL / name), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize(
    ("name", "urgency", "reason"),
    [
        # a deadline within a day, written calmly, resolved against the Date header
        ("calm_deadline.eml", "urgent",
         "deadline within a day cue: 'ends at midnight' = Thu 23:59, 6 h after it was sent"),
        ("safety_heater.eml", "urgent", "switched itself on at night'"),
        ("legal_nl.eml", "urgent", "legal threat cue: '"),
        # automated, but money is at stake: the cues stay on
        ("marketplace_dispute.eml", "urgent", "chargeback or payment dispute cue"),
    ],
)
def test_urgent_kinds_are_raised_with_the_words_that_decided(
    capsys: pytest.CaptureFixture[str], name: str, urgency: str, reason: str
) -> None:
    record = classify(capsys, name)
    assert record["urgency"] == urgency, record
    assert any(reason in why for why in record["reasons"]), record["reasons"]  # type: ignore


def test_a_payout_hold_is_at_least_high_whatever_the_text_model_says(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from supportcli import prioritize
    from supportcli.records import CueHit, Prediction

    record = classify(capsys, "payout_hold.eml")
    assert record["urgency"] in ("urgent", "high"), record
    hit = next(c for c in record["cues"] if c["cue"] == "money or account at risk")  # type: ignore
    assert "payouts have been paused" in hit["text"]
    calm = Prediction("other", 0.9, "low", 0.9, False, "m",
                      cues=(CueHit("money or account at risk", hit["text"]),))
    from factories import message

    urgency, why = prioritize.effective_urgency(calm, 0, message(automated="Auto-Submitted: x"))
    assert urgency == "high" and "payouts have been paused" in why


def test_a_customer_blocked_from_paying_is_at_least_high(
    capsys: pytest.CaptureFixture[str],
) -> None:
    record = classify(capsys, "blocked_card.eml")
    assert record["urgency"] in ("urgent", "high"), record
    assert any(c["cue"] == "customer blocked" for c in record["cues"]), record  # type: ignore


def test_a_contact_form_relay_is_ranked_as_the_customers_mail(
    capsys: pytest.CaptureFixture[str],
) -> None:
    record = classify(capsys, "../contact_form_relay.eml")
    assert record["sender"] == "grainne.walsh84@gmail.com"
    assert record["automated"] == ""
    assert record["urgency"] == "urgent"
    assert any("safety problem cue: '" in why for why in record["reasons"])  # type: ignore


@pytest.mark.parametrize(
    "name",
    ["promise_quoted_back.eml", "waited_until_tonight.eml", "post_on_the_19th.eml",
     "nickel_question.eml"],
)
def test_false_alarms_are_not_urgent(capsys: pytest.CaptureFixture[str], name: str) -> None:
    record = classify(capsys, name)
    assert record["urgency"] != "urgent", record
    assert not [c for c in record["cues"] if c["cue"] in (  # type: ignore
        "deadline within a day", "public review threat", "safety problem")], record["cues"]


def test_a_cancel_request_before_the_dispatch_cut_off_is_urgent(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    config = Path(os.environ["SUPPORTCLI_CONFIG"])
    config.write_text('[shop]\ndispatch_cutoff = "14:00"\ntimezone = "Europe/Lisbon"\n')
    config.chmod(0o600)
    record = classify(capsys, "cancel_before_dispatch.eml")
    assert record["urgency"] == "urgent", record
    assert any("before the 14:00 dispatch" in why for why in record["reasons"])  # type: ignore
    config.write_text("")  # without a cut-off the same request is not forced urgent
    record = classify(capsys, "cancel_before_dispatch.eml")
    assert not any("dispatch" in why for why in record["reasons"])  # type: ignore
