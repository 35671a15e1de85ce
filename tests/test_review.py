"""The label the model is unsure of is marked, category or urgency or both, the same way in
every output; ``[triage] review_threshold`` sets where "unsure" begins."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from factories import message, prediction

from supportcli import prioritize
from supportcli.cli import main
from supportcli.config import DEFAULT_CATEGORY_WEIGHTS, DEFAULT_SLA_HOURS
from supportcli.records import CueHit

THRESHOLDS = {"category": 0.5, "urgency": 0.56}
RULES = prioritize.Rules(DEFAULT_CATEGORY_WEIGHTS, DEFAULT_SLA_HOURS, frozenset(),
                         review_thresholds=THRESHOLDS)
AS_OF = datetime(2026, 11, 20, 12, tzinfo=UTC)


def scored(category_conf: float, urgency_conf: float, **kwargs: object) -> tuple[str, ...]:
    p = replace(prediction(), category_confidence=category_conf, urgency_confidence=urgency_conf,
                **kwargs)  # type: ignore[arg-type]
    return prioritize.score(message(), p, RULES, AS_OF).review


def test_only_the_uncertain_label_is_marked() -> None:
    assert scored(0.9, 0.9) == ()
    assert scored(0.46, 0.9) == ("category",)  # a category at 44-48% is marked
    assert scored(0.9, 0.53) == ("urgency",)  # an unsure urgency is not put on the category
    assert scored(0.46, 0.53) == ("category", "urgency")


def test_an_urgency_decided_by_a_cue_or_follow_ups_is_not_the_models_guess() -> None:
    chargeback = CueHit("chargeback or payment dispute", "file a chargeback")
    assert scored(0.9, 0.3, urgency="urgent", cues=(chargeback,)) == ()
    p = replace(prediction(), urgency_confidence=0.3)
    item = prioritize.score(message(), p, RULES, AS_OF, followups=2)
    assert item.urgency == "urgent" and item.review == ()


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    assert code == 0, err
    return code, out


def demo_json(capsys: pytest.CaptureFixture[str], *config: str) -> list[dict[str, object]]:
    return json.loads(run(capsys, *config, "triage", "--demo", "--format", "json")[1])


def test_demo_marks_category_and_urgency_separately_in_every_format(
    capsys: pytest.CaptureFixture[str],
) -> None:
    items = demo_json(capsys)
    unsure_urgency = next(i for i in items if i["review"] == ["urgency"])
    unsure_category = next(i for i in items if i["review"] == ["category"])
    assert unsure_urgency["needs_review"] is True
    for item in items:  # a category below even odds is always marked
        assert (item["category_confidence"] < 0.5) <= ("category" in item["review"])
    _, out = run(capsys, "triage", "--demo", "--format", "csv")
    rows = {int(r["rank"]): r for r in csv.DictReader(io.StringIO(out))}
    assert rows[unsure_urgency["rank"]]["review"] == "urgency"
    assert rows[unsure_category["rank"]]["review"] == "category"
    _, out = run(capsys, "triage", "--demo", "--format", "markdown")
    lines = {int(line.split("|")[1]): line for line in out.splitlines()
             if line.startswith("| ") and line.split("|")[1].strip().isdigit()}
    assert f"| {unsure_urgency['urgency']}? |" in lines[unsure_urgency["rank"]]
    assert "?" not in lines[unsure_urgency["rank"]].split("|")[5]
    assert "the model is unsure" in out
    _, out = run(capsys, "triage", "--demo")
    row = next(line for line in out.splitlines()
               if line.split()[:1] == [str(unsure_urgency["rank"])])
    assert f" {unsure_urgency['urgency']}? " in row


def test_report_marks_labels_the_same_way(capsys: pytest.CaptureFixture[str]) -> None:
    items = demo_json(capsys)
    top = [i for i in items if i["rank"] <= 10 and i["review"]]
    assert top, "the demo's top 10 has an unsure label"
    _, text = run(capsys, "report", "--demo")
    _, markdown = run(capsys, "report", "--demo", "-f", "markdown")
    for item in top:
        label = "category" if "category" in item["review"] else "urgency"
        value = f"{item[label]}?"
        assert value in text
        assert value.replace("_", "\\_") in markdown
    assert "the model is unsure" in text


def test_review_threshold_in_the_config_is_used(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    strict, lax = tmp_path / "strict.toml", tmp_path / "lax.toml"
    strict.write_text("[triage]\nreview_threshold = 0.99\n", encoding="utf-8")
    lax.write_text("[triage]\nreview_threshold = 0.1\n", encoding="utf-8")
    default = sum(bool(i["review"]) for i in demo_json(capsys))
    many = sum(bool(i["review"]) for i in demo_json(capsys, "--config", str(strict)))
    lax_items = demo_json(capsys, "--config", str(lax))
    none = sum(bool(i["review"]) for i in lax_items)
    assert many > default > none
    # what stays marked is a notable chance of urgent on a message not called urgent: the
    # recall-first safety net, which no review_threshold turns off
    assert all(i["review"] == ["urgency"] and i["urgency"] != "urgent"
               for i in lax_items if i["review"])
