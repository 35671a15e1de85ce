"""Without --format, the format follows the -o file's extension; a mismatch is a warning."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from supportcli.cli import main


@pytest.mark.parametrize(
    ("name", "check"),
    [
        ("out.csv", lambda text: next(csv.reader([text.splitlines()[0]]))[0] == "rank"),
        ("out.json", lambda text: json.loads(text)[0]["rank"] == 1),
        ("out.jsonl", lambda text: json.loads(text.splitlines()[0])["rank"] == 1),
        ("out.md", lambda text: text.startswith("| # |")),
        ("out.txt", lambda text: "awaiting a reply" in text.splitlines()[0]),
    ],
)
def test_triage_format_follows_the_extension(
    name: str, check: object, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / name
    assert main(["triage", "--demo", "-n", "3", "-o", str(target)]) == 0
    assert capsys.readouterr().err == ""
    assert check(target.read_text(encoding="utf-8"))  # type: ignore[operator]


@pytest.mark.parametrize(
    ("name", "start"), [("r.html", "<!DOCTYPE html>"), ("r.md", "# Support report"),
                        ("r.txt", "Support report\n=")],
)
def test_report_format_follows_the_extension(
    name: str, start: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / name
    assert main(["report", "--demo", "-o", str(target)]) == 0
    assert target.read_text(encoding="utf-8").startswith(start)


def test_a_mismatch_is_a_warning(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "out.csv"
    assert main(["triage", "--demo", "-n", "2", "--format", "json", "-o", str(target)]) == 0
    assert json.loads(target.read_text(encoding="utf-8"))  # --format wins
    err = capsys.readouterr().err
    assert "writing json, though the file name says csv" in err
    html = tmp_path / "out.html"
    assert main(["triage", "--demo", "-n", "2", "-o", str(html)]) == 0
    assert "no html output; writing table" in capsys.readouterr().err


def test_the_command_line_choices_come_from_the_one_definition() -> None:
    from supportcli import config, export, prioritize, report
    from supportcli.cli import TriageFormat
    from supportcli.commands.common import Urgency
    from supportcli.records import URGENCIES

    assert [u.value for u in Urgency] == list(URGENCIES)
    assert [f.value for f in TriageFormat] == ["table", *export.FORMATS]
    assert config.URGENCIES is URGENCIES and report.URGENCIES is URGENCIES
    assert not hasattr(prioritize, "URGENCY_ORDER")
    assert prioritize.urgency_at_least("high", "normal")
    assert not prioritize.urgency_at_least("low", "normal")


@pytest.mark.parametrize("fmt", ["json", "jsonl", "csv", "markdown"])
def test_every_export_format_is_a_triage_choice(
    fmt: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["triage", "--demo", "-n", "2", "--format", fmt]) == 0
    assert capsys.readouterr().out.strip()
