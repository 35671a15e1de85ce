"""Order numbers end to end: the demo shop's NW- numbers link threads in the report, and the
config can add the shop's own pattern."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from supportcli.cli import main


def test_demo_report_lists_an_order_in_several_threads(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "--demo"]) == 0
    out = capsys.readouterr().out
    section = out[out.index("SAME ORDER NUMBER"):out.index("MODEL HEALTH")]
    assert "NW-48213 in 2 threads" in section


def test_demo_triage_finds_the_shops_numbers(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["triage", "--demo", "--format", "json"]) == 0
    orders = {o for i in json.loads(capsys.readouterr().out) for o in i["order_numbers"]}
    assert {"NW-48213", "NW-48034", "NW-48177", "NW-48262"} <= orders


def test_config_order_pattern(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    mail = tmp_path / "m.eml"
    mail.write_text("From: a@example.com\r\nSubject: parcel\r\nMessage-ID: <p@x>\r\n"
                    "Date: Mon, 16 Nov 2026 10:00:00 +0000\r\n\r\nMy reference is NWC123456.\r\n",
                    encoding="utf-8")
    config = tmp_path / "config.toml"
    config.write_text('[triage]\norder_pattern = "NWC\\\\d{6}"\n', encoding="utf-8")
    assert main(["--config", str(config), "classify", str(mail), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["order_numbers"] == ["NWC123456"]
    config.write_text('[triage]\norder_pattern = "NWC(\\\\d"\n', encoding="utf-8")
    assert main(["--config", str(config), "classify", str(mail), "--json"]) == 3
    assert "order_pattern" in capsys.readouterr().err
