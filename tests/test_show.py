"""``supportcli show ID|RANK``: the thread newest first, quoted history folded, attachments
listed, then the customer's other threads and order numbers; JSON too; ranks of the last
triage run."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from supportcli.cli import main

SHOP = "support@shop.example"


def eml(folder: Path, name: str, headers: dict[str, str], body: str) -> None:
    lines = [f"{k}: {v}" for k, v in headers.items()]
    (folder / name).write_text("\r\n".join([*lines, "", body]), encoding="utf-8")


@pytest.fixture
def inbox(tmp_path: Path) -> tuple[Path, Path]:
    """Ann has two threads (the older one answered by the shop), Bob one."""
    folder = tmp_path / "inbox"
    folder.mkdir()
    eml(folder, "1.eml", {
        "From": "Ann Lee <ann@example.com>", "To": SHOP, "Subject": "Where is order #1001?",
        "Message-ID": "<a1@example.com>", "Date": "Mon, 02 Nov 2026 09:00:00 +0000",
    }, "Hello, my order #1001 has not arrived yet. Can you check?\r\n")
    eml(folder, "2.eml", {
        "From": f"Shop <{SHOP}>", "To": "ann@example.com", "Subject": "Re: Where is order #1001?",
        "Message-ID": "<s1@shop.example>", "In-Reply-To": "<a1@example.com>",
        "References": "<a1@example.com>", "Date": "Mon, 02 Nov 2026 12:00:00 +0000",
    }, "It ships tomorrow.\r\n")
    (folder / "3.eml").write_bytes(
        b"From: Ann Lee <ann@example.com>\r\nTo: " + SHOP.encode() + b"\r\n"
        b"Subject: Broken grinder [bold red]x[/]\r\nMessage-ID: <a2@example.com>\r\n"
        b"Date: Wed, 18 Nov 2026 09:00:00 +0000\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
        b"--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        b"The grinder from order 48213 arrived broken. Photo attached.\x1b[31m\r\n\r\n--b\r\n"
        b'Content-Type: image/jpeg\r\nContent-Disposition: attachment; filename="photo.jpg"\r\n'
        b"Content-Transfer-Encoding: base64\r\n\r\n/9j/4AAQSkZJRgABAQ==\r\n--b--\r\n"
    )
    eml(folder, "4.eml", {
        "From": "Ann Lee <ann@example.com>", "To": SHOP, "Subject": "Re: Broken grinder",
        "Message-ID": "<a3@example.com>", "In-Reply-To": "<a2@example.com>",
        "References": "<a2@example.com>", "Date": "Thu, 19 Nov 2026 09:00:00 +0000",
    }, "Any news? I need a replacement.\r\n\r\nOn Wed, Ann Lee wrote:\r\n> The grinder from "
       "order 48213 arrived broken.\r\n> Photo attached.\r\n")
    eml(folder, "5.eml", {
        "From": "bob@example.net", "To": SHOP, "Subject": "Wholesale prices",
        "Message-ID": "<b1@example.net>", "Date": "Thu, 19 Nov 2026 10:00:00 +0000",
    }, "Do you sell wholesale? We run three cafes.\r\n")
    config = tmp_path / "config.toml"
    config.write_text(f'[triage]\nshop_addresses = ["{SHOP}"]\n', encoding="utf-8")
    return folder, config


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_show_by_rank_after_triage(
    inbox: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    folder, config = inbox
    code, out, err = run(capsys, "--config", str(config), "triage", str(folder), "--as-of",
                         "2026-11-19T12:00", "--format", "json")
    assert code == 0, err
    ranks = {i["message_id"]: i["rank"] for i in json.loads(out)}
    rank = ranks["a3@example.com"]
    code, out, err = run(capsys, "--config", str(config), "show", str(rank))
    assert code == 0, err
    # newest first: the follow-up before the first message
    assert out.index("Any news?") < out.index("arrived broken")
    assert "quoted history folded" in out and "> Photo attached" not in out
    assert "photo.jpg" in out and "image/jpeg" in out
    assert "[bold red]x[/]" in out and "\x1b" not in out
    # the customer's other thread, answered by the shop, and her order numbers
    history = out[out.index("customer Ann Lee"):]
    assert "Where is order #1001?" in history and "yes" in history
    assert "1001" in history and "48213" in history
    assert "Wholesale" not in out


def test_show_quoted_unfolds_the_history(
    inbox: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    folder, config = inbox
    run(capsys, "--config", str(config), "triage", str(folder), "--format", "json")
    code, out, err = run(capsys, "--config", str(config), "show", "<a3@example.com>", "--quoted")
    assert code == 0, err
    assert "> Photo attached" in out


def test_show_json(inbox: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    folder, config = inbox
    run(capsys, "--config", str(config), "triage", str(folder), "--format", "json")
    code, out, err = run(capsys, "--config", str(config), "show", "a2@example.com", "--json")
    assert code == 0, err
    record = json.loads(out)
    thread = record["thread"]
    assert [m["message_id"] for m in thread["messages"]] == ["a3@example.com", "a2@example.com"]
    assert thread["messages"][1]["attachments"][0]["filename"] == "photo.jpg"
    assert "\x1b" not in out
    assert thread["answered"] is False and thread["category"]
    customer = record["customer"]
    assert customer["address"] == "ann@example.com"
    assert [(t["subject"], t["answered"]) for t in customer["other_threads"]] == [
        ("Where is order #1001?", True)
    ]
    assert customer["other_threads"][0]["message_id"] == "a1@example.com"
    assert set(customer["order_numbers"]) >= {"1001"}


def test_rank_of_the_demo_run_shows_the_demo_thread(
    capsys: pytest.CaptureFixture[str], isolated_state: Path
) -> None:
    code, out, _ = run(capsys, "triage", "--demo", "--format", "json", "-n", "3")
    assert code == 0
    second = json.loads(out)[1]
    code, out, err = run(capsys, "show", "2", "--json")
    assert code == 0, err
    assert json.loads(out)["thread"]["messages"][0]["message_id"] == second["message_id"]
    assert os.stat(isolated_state / "last-triage.json").st_mode & 0o777 == 0o600


@pytest.mark.parametrize(
    ("args", "text"),
    [
        (["show", "7"], "no triage run"),
        (["show", "<nobody@example.com>"], "no stored message"),
    ],
)
def test_show_unknown_ref_is_a_usage_error(
    args: list[str], text: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, *args)
    assert code == 2, err
    assert text in err and "Traceback" not in err


def test_rank_beyond_the_last_table(capsys: pytest.CaptureFixture[str]) -> None:
    run(capsys, "triage", "--demo", "--format", "json", "-n", "3")
    code, _, err = run(capsys, "show", "4")
    assert code == 2
    assert "showed no rank 4" in err


def test_triage_path_says_it_keeps_the_mail_and_no_store_keeps_nothing(
    inbox: tuple[Path, Path], isolated_state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from supportcli.store import Store

    folder, config = inbox
    code, out, err = run(capsys, "--config", str(config), "triage", str(folder), "--no-store",
                         "--format", "json")
    assert code == 0, err
    assert "kept" not in err
    with Store(isolated_state / "supportcli.db") as store:
        assert store.count_messages() == 0
    rank = next(i["rank"] for i in json.loads(out) if i["message_id"] == "a3@example.com")
    code, out, err = run(capsys, "--config", str(config), "show", str(rank), "--json")
    assert code == 0, err  # the mailbox is read again
    assert json.loads(out)["thread"]["messages"][0]["message_id"] == "a3@example.com"
    code, _, err = run(capsys, "--config", str(config), "triage", str(folder), "--format", "json")
    assert code == 0
    assert f"kept 5 new message(s) from {folder} in the store" in err and "--no-store" in err
    _, _, err = run(capsys, "--config", str(config), "triage", str(folder), "--format", "json")
    assert "kept" not in err  # nothing new the second time
