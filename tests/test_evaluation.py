"""evaluate and explain: scores on labelled sets, calibration on synthetic data where the
answer is known, and explanations for German, automated and cue-decided messages."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from supportcli import resources
from supportcli.cli import main
from supportcli.model.evaluation import calibration

DEMO = resources.demo_dir()


def test_calibration_error_is_zero_when_confidence_matches_accuracy() -> None:
    confidence = np.full(1000, 0.8)
    correct = np.arange(1000) < 800  # exactly 80% right at 80% confidence
    ece, table = calibration(confidence, correct)
    assert ece == pytest.approx(0.0, abs=1e-9)
    assert table == [{"low": 0.7, "high": 0.8, "count": 1000, "confidence": 0.8, "accuracy": 0.8}]


def test_calibration_error_measures_overconfidence() -> None:
    confidence = np.concatenate([np.full(500, 0.95), np.full(500, 0.55)])
    correct = np.concatenate([np.arange(500) < 250, np.arange(500) < 275])  # 50% and 55% right
    ece, table = calibration(confidence, correct)
    assert ece == pytest.approx(0.5 * 0.45 + 0.5 * 0.0, abs=1e-6)
    assert [row["count"] for row in table] == [500, 500]


def test_evaluate_demo_folder_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evaluate", str(DEMO), "--format", "json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["size"] == len(list(DEMO.glob("*.eml")))
    names = [t["name"] for t in result["targets"]]
    assert names == ["category", "urgency"]
    for target in result["targets"]:
        assert 0.3 <= target["accuracy"] <= 1.0
        assert sum(map(sum, target["confusion"])) == result["size"]
        assert 0 <= target["coverage"] <= 1
        assert 0 <= target["ece"] <= 1
        assert sum(row["count"] for row in target["reliability"]) == result["size"]
        assert set(target["per_class"]) == set(target["labels"])


def test_evaluate_csv_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "set.csv"
    rows = [
        ("Where is my parcel", "Due last week, never arrived", "shipping_delivery", "high"),
        ("Cancel my order", "Please cancel order 12345 before it ships", "cancellation", "normal"),
        ("Invoice please", "Please send a VAT invoice for 5555", "billing_payment", "normal"),
        ("Love the mugs", "Just wanted to say thank you, they are lovely", "feedback", "low"),
    ]
    with data.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["subject", "body", "category", "urgency"])
        writer.writerows(rows)
    assert main(["evaluate", str(data)]) == 0
    out = capsys.readouterr().out
    assert "4 labelled messages" in out
    assert "confusion" in out and "calibration" in out and "macro-F1" in out


def test_evaluate_rejects_a_csv_without_label_columns(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "bad.csv"
    data.write_text("subject,body\nhi,there\n", encoding="utf-8")
    assert main(["evaluate", str(data)]) == 4
    assert "lacks the column(s) category, urgency" in capsys.readouterr().err


def test_explain_german_message(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", str(DEMO / "demo-002.eml")]) == 0
    out = capsys.readouterr().out
    assert "language" in out and " de" in out
    assert "probabilities" in out and "what pushed the decision" in out
    assert "priority score" in out


def test_explain_automated_message_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", str(DEMO / "demo-037.eml"), "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["automated"]
    automated = [t for t in record["terms"] if t["name"] == "automated"]
    assert automated and automated[0]["points"] < 0
    assert record["explanation"]["category"]


def test_explain_says_when_a_cue_decided(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", str(DEMO / "demo-020.eml")]) == 0
    out = capsys.readouterr().out
    assert "urgency decided by a cue" in out


def test_a_message_of_unknown_words_is_triaged_and_explained(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Alone in its batch, a message holding none of the model's pair words (nor any known
    word) is classified like any other (this once crashed the word-pair block)."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "odd.eml").write_bytes(
        b"From: q@example.org\r\nTo: shop@example.com\r\nSubject: qxzv\r\n"
        b"Message-ID: <odd@example.org>\r\nDate: Mon, 23 Nov 2026 09:00:00 +0000\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\n\r\nqqxj vvqy jjxq\r\n")
    assert main(["triage", str(inbox), "--format", "json"]) == 0
    [row] = json.loads(capsys.readouterr().out)
    assert row["category"] and row["urgency"]
    assert main(["explain", str(inbox / "odd.eml"), "--json"]) == 0
    # nothing in it is known to the model, so nothing is named (no internal features either)
    assert json.loads(capsys.readouterr().out)["explanation"] == {"category": [], "urgency": []}


def test_explain_by_message_id_after_triage(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["triage", str(DEMO), "--format", "json"]) == 0
    first = json.loads(capsys.readouterr().out)[0]
    assert main(["explain", first["message_id"], "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["message_id"] == first["message_id"]
    assert main(["explain", "<nope@nowhere>"]) == 2  # as label set and show: a bad argument


def test_each_command_names_itself_on_its_panel(capsys: pytest.CaptureFixture[str]) -> None:
    message = str(DEMO / "demo-002.eml")
    assert main(["explain", message]) == 0
    assert "supportcli explain" in capsys.readouterr().out
    assert main(["classify", message]) == 0
    assert "supportcli classify" in capsys.readouterr().out


def test_evaluate_names_the_row_of_an_unknown_label(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "set.csv"
    data.write_text("subject,body,category,urgency\nhi,where is order 12345,order_status,normal\n"
                    "x,refund please,returns_refunds,urgentish\n", encoding="utf-8")
    assert main(["evaluate", str(data)]) == 2
    err = capsys.readouterr().err
    assert f"{data}, line 3: unknown urgency 'urgentish' (did you mean urgent?)" in err
    data.write_text("subject,body,category,urgency\nhi,where is order 12345,order_stat,normal\n",
                    encoding="utf-8")
    assert main(["evaluate", str(data)]) == 2
    assert "line 2: unknown category 'order_stat'" in capsys.readouterr().err


def test_scikit_learn_warnings_never_reach_the_user(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "one.csv"  # one class only: scikit-learn warns about the matrix shape
    data.write_text("subject,body,category,urgency\nhi,where is my order 12345,order_status,"
                    "normal\n", encoding="utf-8")
    assert main(["evaluate", str(data)]) == 0  # warnings are errors under pytest
    assert "Warning" not in capsys.readouterr().err


def test_evaluate_warns_when_the_set_overlaps_the_training_data(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    samples = resources.samples_dir()
    with (samples / "labels.csv").open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))[:4]
    folder = tmp_path / "set"
    folder.mkdir()
    for row in rows:
        (folder / Path(row["file"]).name).write_bytes((samples / row["file"]).read_bytes())
    with (folder / "labels.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file", "category", "urgency"])
        writer.writerows([Path(r["file"]).name, r["category"], r["urgency"]] for r in rows)
    assert main(["evaluate", str(folder), "--format", "json"]) == 0
    assert "4 of the 4 messages are in the active model's training data" in (
        capsys.readouterr().err)
    assert main(["evaluate", str(DEMO), "--format", "json"]) == 0
    assert "training data" not in capsys.readouterr().err
