"""--since counts back from --as-of; filters that leave nothing say so; answered threads are
flagged in every format and counted in the title."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from supportcli.cli import main

SHOP = "support@shop.example"


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def write(folder: Path, name: str, sender: str, subject: str, date: str, msgid: str,
          reply_to: str = "") -> None:
    headers = [f"From: {sender}", f"To: {SHOP}", f"Subject: {subject}", f"Date: {date}",
               f"Message-ID: <{msgid}>"]
    if reply_to:
        headers += [f"In-Reply-To: <{reply_to}>", f"References: <{reply_to}>"]
    (folder / name).write_text("\r\n".join([*headers, "", "Where is my parcel? Order #4411"]),
                               encoding="utf-8")


@pytest.fixture
def mailbox(tmp_path: Path) -> tuple[Path, Path]:
    """Three threads over three days; the oldest has the shop's reply."""
    folder = tmp_path / "box"
    folder.mkdir()
    write(folder, "1.eml", "ann@example.com", "Parcel missing", "Mon, 16 Nov 2026 09:00 +0000",
          "a@x")
    write(folder, "2.eml", SHOP, "Re: Parcel missing", "Mon, 16 Nov 2026 11:00 +0000", "s@x",
          reply_to="a@x")
    write(folder, "3.eml", "bob@example.com", "Refund", "Wed, 18 Nov 2026 09:00 +0000", "b@x")
    write(folder, "4.eml", "cy@example.com", "Damaged mug", "Thu, 19 Nov 2026 09:00 +0000", "c@x")
    config = tmp_path / "config.toml"
    config.write_text(f'[triage]\nshop_addresses = ["{SHOP}"]\n', encoding="utf-8")
    return folder, config


def test_since_counts_back_from_as_of(
    mailbox: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    folder, config = mailbox
    code, out, err = run(capsys, "--config", str(config), "triage", str(folder), "--as-of",
                         "2026-11-19T12:00", "--since", "24h", "--format", "json")
    assert code == 0, err
    assert [i["message_id"] for i in json.loads(out)] == ["c@x"]
    code, out, _ = run(capsys, "--config", str(config), "triage", str(folder), "--as-of",
                       "2026-11-19T12:00", "--since", "4d", "--format", "json")
    assert {i["message_id"] for i in json.loads(out)} == {"b@x", "c@x"}


def test_the_demo_counts_since_back_from_its_own_time(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "triage", "--demo", "--since", "24h", "--format", "json")
    assert code == 0
    assert 0 < len(json.loads(out)) < 38


def test_filters_that_leave_nothing_say_so(
    mailbox: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    folder, config = mailbox
    args = ["--config", str(config), "triage", str(folder), "--as-of", "2026-11-25T12:00",
            "--since", "24h"]
    code, out, _ = run(capsys, *args)
    assert code == 0
    assert out.strip() == "0 of 3 threads match --since 24h; 2 are awaiting a reply in all"
    code, out, err = run(capsys, *args, "--format", "json")
    assert json.loads(out) == []
    assert "0 of 3 threads match --since 24h" in err


def test_answered_threads_are_flagged_and_counted(
    mailbox: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    folder, config = mailbox
    base = ["--config", str(config), "triage", str(folder), "--as-of", "2026-11-20T12:00"]
    _, out, _ = run(capsys, *base)
    assert out.splitlines()[0].startswith(
        "2 of 2 threads awaiting a reply · 1 answered (--all shows them)")
    _, out, _ = run(capsys, *base, "--all")
    assert out.splitlines()[0].startswith("3 of 3 threads · 2 awaiting a reply, 1 answered")
    lines = out.splitlines()
    why = [n for n, line in enumerate(lines) if line.strip().startswith("answered ·")]
    assert len(why) == 1 and "Parcel missing" in lines[why[0] - 1]
    _, out, _ = run(capsys, *base, "--all", "--format", "json")
    flags = {i["message_id"]: i["answered"] for i in json.loads(out)}
    assert flags == {"a@x": True, "b@x": False, "c@x": False}
    _, out, _ = run(capsys, *base, "--all", "--format", "csv")
    rows = {r["message_id"]: r["answered"] for r in csv.DictReader(io.StringIO(out))}
    assert rows == {"a@x": "True", "b@x": "False", "c@x": "False"}
    _, out, _ = run(capsys, *base, "--all", "--format", "markdown")
    assert sum("answered ·" in line for line in out.splitlines()) == 1
    _, out, _ = run(capsys, *base, "--format", "json")
    assert [i["rank"] for i in json.loads(out)] == [1, 2]  # no gap where the answered one was
