"""End to end through the real command line: the demo, every local source kind, exports,
classify, and clean one-line errors with the documented exit codes."""

from __future__ import annotations

import csv
import io
import json
import mailbox
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from supportcli import resources
from supportcli.cli import main

DEMO = resources.demo_dir()


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def demo_files() -> list[Path]:
    return sorted(DEMO.glob("*.eml"))


def test_demo_triage_ranks_urgent_threads_first(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "triage", "--demo", "--format", "json")
    assert code == 0, err
    items = json.loads(out)
    assert len(items) >= 30
    assert [i["rank"] for i in items] == list(range(1, len(items) + 1))
    assert [i["score"] for i in items] == sorted((i["score"] for i in items), reverse=True)
    top = items[:5]
    assert all(i["urgency"] == "urgent" for i in top), [(i["subject"], i["urgency"]) for i in top]
    assert all(i["reasons"] for i in items)
    # ranked "as of" the newest demo message: ages are hours or days, not a year
    assert max(i["age_hours"] for i in items) < 24 * 7
    # automated mail sinks to the bottom
    automated = [i["rank"] for i in items if i["automated"]]
    assert automated and min(automated) > len(items) // 2


def test_demo_thread_of_three_is_one_urgent_row(capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run(capsys, "triage", "--demo", "--format", "json")
    items = json.loads(out)
    kettle = [i for i in items if "kettle" in i["subject"].lower()]
    assert len(kettle) == 1
    assert kettle[0]["thread_size"] == 3
    assert kettle[0]["followups"] == 2
    assert kettle[0]["urgency"] == "urgent"


def test_demo_table_is_plain_text_without_a_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "triage", "--demo", "--limit", "5")
    assert code == 0
    assert "\x1b[" not in out
    assert "awaiting a reply" in out
    assert out.count("\n") > 5


@pytest.mark.parametrize("kind", ["eml-folder", "mbox", "maildir", "single", "stdin"])
def test_every_local_source_kind(
    kind: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    files = demo_files()[:6]
    if kind == "eml-folder":
        target = tmp_path / "eml"
        target.mkdir()
        for f in files:
            shutil.copy(f, target / f.name)
        expected = 6
    elif kind == "mbox":
        target = tmp_path / "support.mbox"
        mbox = mailbox.mbox(target)
        for f in files:
            mbox.add(f.read_bytes())
        mbox.close()
        expected = 6
    elif kind == "maildir":
        target = tmp_path / "Maildir"
        maildir = mailbox.Maildir(target)
        for f in files:
            maildir.add(f.read_bytes())
        maildir.close()
        expected = 6
    elif kind == "single":
        target = files[0]
        expected = 1
    else:
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(files[0].read_bytes())))
        target = Path("-")
        expected = 1
    code, out, err = run(capsys, "triage", str(target), "--format", "jsonl", "--all")
    assert code == 0, err
    rows = [json.loads(line) for line in out.splitlines()]
    assert 1 <= len(rows) <= expected
    assert all(r["category"] and r["urgency"] for r in rows)


def test_importing_the_same_source_twice_adds_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], isolated_state: Path
) -> None:
    from supportcli.store import Store

    for _ in range(2):
        code, _, err = run(capsys, "triage", str(DEMO), "--format", "json")
        assert code == 0, err
    with Store(isolated_state / "supportcli.db") as store:
        assert store.count_messages() == len(demo_files())


def test_broken_message_is_reported_and_the_rest_go_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "inbox"
    folder.mkdir()
    for f in demo_files()[:3]:
        shutil.copy(f, folder / f.name)
    (folder / "zz-empty.eml").write_bytes(b"")
    (folder / "zz-garbage.eml").write_bytes(b"\x00\x01\x02 not a mail at all")
    code, out, err = run(capsys, "triage", str(folder), "--format", "json", "--all")
    assert code == 0
    assert len(json.loads(out)) >= 1
    assert "skipped 2 message(s)" in err
    assert "Traceback" not in err
    assert err.count("zz-empty.eml") == 1 and err.count("zz-garbage.eml") == 1  # once each


@pytest.mark.parametrize(
    ("content", "why"),
    [(b"", "empty message"), (b"just some notes\nnot an email\n", "no mail headers"),
     (bytes(range(256)) * 4, "")],
)
def test_a_bad_single_file_fails_like_an_empty_mailbox(
    content: bytes, why: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.eml"
    bad.write_bytes(content)
    code, out, err = run(capsys, "triage", str(bad))
    assert code == 4, err
    assert out == ""
    assert err.startswith(f"supportcli: error: {bad} is not a mail message (") and why in err
    assert len(err.strip().splitlines()) == 1
    empty_mbox = tmp_path / "empty.mbox"
    empty_mbox.write_bytes(b"")
    assert run(capsys, "triage", str(empty_mbox))[0] == 4


def test_filters_and_limits(capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run(capsys, "triage", "--demo", "--format", "json", "--min-urgency", "high")
    assert {i["urgency"] for i in json.loads(out)} <= {"urgent", "high"}
    _, out, _ = run(capsys, "triage", "--demo", "--format", "json", "--category", "returns_refunds")
    assert {i["category"] for i in json.loads(out)} == {"returns_refunds"}
    _, out, _ = run(capsys, "triage", "--demo", "--format", "json", "-n", "3")
    assert len(json.loads(out)) == 3


def test_csv_export_to_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "out.csv"
    code, out, _ = run(capsys, "triage", "--demo", "--format", "csv", "--output", str(target))
    assert code == 0 and out == ""
    with target.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) >= 30
    assert rows[0]["rank"] == "1"


def test_markdown_export(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "triage", "--demo", "--format", "markdown", "-n", "4")
    assert code == 0
    lines = [line for line in out.strip().splitlines() if line.startswith("|")]
    assert lines[0].startswith("| # |") and len(lines) == 6


def test_hostile_subject_is_neutralised_in_every_export(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hostile = tmp_path / "evil.eml"
    hostile.write_bytes(
        b"From: =?utf-8?q?=1B]8;;http://evil/=07Eve=1B]8;;=07?= <eve@example.com>\r\n"
        b"To: support@shop.example\r\n"
        b'Subject: =HYPERLINK("http://evil") [bold red]hi[/] \x1b[31mred\r\n'
        b"Message-ID: <evil-1@example.com>\r\nDate: Mon, 16 Nov 2026 10:00:00 +0000\r\n\r\n"
        b"Where is my order #12345? | pipes | <script>alert(1)</script>\r\n"
    )
    for fmt in ("table", "csv", "json", "jsonl", "markdown"):
        code, out, _ = run(capsys, "triage", str(hostile), "--format", fmt, "--all")
        assert code == 0
        assert "\x1b" not in out and "\x07" not in out, fmt
    _, out, _ = run(capsys, "triage", str(hostile), "--format", "csv", "--all")
    row = next(csv.DictReader(io.StringIO(out)))
    assert row["subject"].startswith("'=HYPERLINK")
    _, out, _ = run(capsys, "triage", str(hostile), "--format", "table", "--all")
    assert "[bold red]hi[/]" in out  # shown literally, not interpreted


def test_classify_json(capsys: pytest.CaptureFixture[str]) -> None:
    dispute = next(f for f in demo_files() if b"dispute" in f.read_bytes().lower())
    code, out, err = run(capsys, "classify", str(dispute), "--json")
    assert code == 0, err
    record = json.loads(out)
    assert record["urgency"] == "urgent"
    assert "chargeback or payment dispute" in [c["cue"] for c in record["cues"]]
    assert abs(sum(record["category_probs"].values()) - 1) < 0.01
    assert record["explanation"]["category"]


def test_classify_table_from_stdin(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    data = demo_files()[0].read_bytes()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    code, out, err = run(capsys, "classify", "-")
    assert code == 0, err
    assert "category" in out and "urgency" in out and "priority score" in out


@pytest.mark.parametrize(
    ("args", "code", "text"),
    [
        (["triage", "/no/such/inbox"], 4, "no such file or folder"),
        (["classify", "/no/such.eml"], 4, "no such file or folder"),
        (["triage", "--demo", "--category", "nonsense"], 2, "unknown category"),
        (["triage", "--demo", "--as-of", "yesterday-ish"], 2, "--as-of"),
        (["triage", "--demo", "--format", "xml"], 2, "xml"),
        (["triage"], 3, "no IMAP account"),
        (["classify", str(DEMO)], 2, "classify takes one message"),
        (["init", "--host", "h", "--username", "u", "--password-env", "X", "--security",
          "bogus"], 2, "--security"),
        (["init", "--host", "h", "--username", "u", "--password-env", "X", "--port", "0"], 2,
         "--port"),
        (["explain", "<nobody@example.com>"], 2, "no stored message"),
        (["label", "set", "<nobody@example.com>", "--category", "other"], 2, "no message"),
        (["show", "<nobody@example.com>"], 2, "no stored message"),
    ],
)
def test_bad_input_gives_one_line_and_exit_code(
    args: list[str], code: int, text: str, capsys: pytest.CaptureFixture[str]
) -> None:
    got, _, err = run(capsys, *args)
    assert got == code, err
    assert text in err
    assert "Traceback" not in err
    assert len([line for line in err.splitlines() if not line.startswith("  hint:")]) == 1


def test_broken_config_exits_3(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "config.toml"
    config.write_text("[triage\nbroken = ", encoding="utf-8")
    code, _, err = run(capsys, "--config", str(config), "triage", "--demo")
    assert code == 3
    assert "not valid TOML" in err


def test_tampered_model_is_refused_with_exit_5(
    isolated_state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    models = isolated_state / "models"
    shutil.copytree(resources.default_model_dir(), models / "mine")
    (models / "ACTIVE").write_text("mine\n")
    with (models / "mine" / "model.joblib").open("ab") as handle:
        handle.write(b"tampered")
    code, _, err = run(capsys, "triage", "--demo")
    assert code == 5
    assert "does not match its meta.json" in err
    assert "hint: `supportcli model use default`" in err  # the way out
    code, out, _ = run(capsys, "model", "list")
    assert code == 0
    mine = next(line for line in out.splitlines() if " mine " in line)
    assert "*" not in mine and "!" in mine and "broken" in mine
    assert "model use default" in out
    (models / "ACTIVE").write_text("default\n")
    code, _, err = run(capsys, "model", "use", "mine")
    assert code == 5 and "cannot be used" in err
    assert (models / "ACTIVE").read_text().strip() == "default"  # not switched to a broken one


def test_help_lists_every_command_and_the_readme_documents_them() -> None:
    from typer.main import get_command

    from supportcli.cli import app

    group = get_command(app)
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    for name, command in group.commands.items():  # type: ignore[attr-defined]
        assert command.help, f"{name} has no help text"
        assert f"supportcli {name}" in readme, f"README does not mention `supportcli {name}`"


def test_console_script_runs_as_a_subprocess(tmp_path: Path) -> None:
    env_home = tmp_path / "home"
    result = subprocess.run(
        [sys.executable, "-m", "supportcli", "triage", "--demo", "--format", "json", "-n", "2"],
        capture_output=True,
        text=True,
        timeout=120,
        env={"SUPPORTCLI_HOME": str(env_home), "PATH": "/usr/bin:/bin", "NO_COLOR": "1"},
        cwd=Path(__file__).resolve().parents[1],
    )
    assert result.returncode == 0, result.stderr
    assert len(json.loads(result.stdout)) == 2


def test_file_names_that_are_not_utf8_are_kept_and_the_run_goes_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], isolated_state: Path
) -> None:
    """A name that is not UTF-8, in a folder, a Maildir and as a single file: the run goes
    on, and the name is stored losslessly (bytes that are not UTF-8 as \\xHH)."""
    from supportcli.store import Store

    files = demo_files()
    folder = tmp_path / "inbox"
    folder.mkdir()
    (folder / os.fsdecode(b"caf\xe9.eml")).write_bytes(files[0].read_bytes())
    (folder / os.fsdecode(b"bad\xff.eml")).write_bytes(b"\x00 not a mail")
    maildir = tmp_path / "Maildir"
    mailbox.Maildir(maildir).close()
    (maildir / "new" / os.fsdecode(b"1733.M1\xfe.host:2,S")).write_bytes(files[1].read_bytes())
    single = tmp_path / os.fsdecode(b"one\xe4.eml")
    single.write_bytes(files[2].read_bytes())
    for target in (folder, maildir, single):
        code, out, err = run(capsys, "triage", str(target), "--format", "json", "--all")
        assert code == 0, err
        assert json.loads(out)
        if target == folder:
            assert "bad\\xff.eml" in err  # reported as skipped, escaped
    with Store(isolated_state / "supportcli.db") as store:
        keys = {m.source_key for m in store.messages()}
        failed = {row[0] for row in store.db.execute("SELECT source_key FROM parse_failures")}
    assert keys == {"caf\\xe9.eml", "1733.M1\\xfe.host", "one\\xe4.eml"}
    assert failed == {"bad\\xff.eml"}


def _eml(message_id: str, sender: str, subject: str, body: str) -> bytes:
    return (
        f"From: {sender}\r\nTo: support@shop.example\r\nSubject: {subject}\r\n"
        f"Message-ID: <{message_id}>\r\nDate: Fri, 20 Nov 2026 09:00:00 +0000\r\n\r\n{body}\r\n"
    ).encode()


def test_two_different_messages_with_one_message_id_are_both_ranked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "inbox"
    folder.mkdir()
    (folder / "a.eml").write_bytes(
        _eml("reused@mailer.example", "ann@example.com", "Parcel lost", "My parcel is lost.")
    )
    (folder / "b.eml").write_bytes(
        _eml("reused@mailer.example", "bob@example.com", "Invoice", "Please send an invoice.")
    )
    copy = b"Received: from mx2.example\r\n" + (folder / "a.eml").read_bytes()
    (folder / "c.eml").write_bytes(copy)  # the same message delivered twice: one row
    code, out, err = run(capsys, "triage", str(folder), "--format", "json", "--all")
    assert code == 0, err
    assert sorted(r["subject"] for r in json.loads(out)) == ["Invoice", "Parcel lost"]


def test_store_window_is_a_setting_and_what_it_leaves_out_is_said(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "triage", str(DEMO), "-n", "1")  # into the store
    assert code == 0, err
    later = ["--as-of", "2027-03-01T09:00:00+00:00"]
    code, out, err = run(capsys, "triage", "--offline", "--format", "json", *later)
    assert code == 0, err
    assert json.loads(out) == []
    assert f"{len(demo_files())} stored message(s) from before 2026-12-31 were left out" in err
    assert "triage.store_window_days" in err
    code, out, err = run(capsys, "report", "--offline", *later)
    assert code == 0, err
    assert "Not shown: 40 stored message(s)" in out
    code, out, err = run(capsys, "triage", "--offline", "--format", "json", "--since",
                         "2026-11-01", *later)  # fmt: skip
    assert code == 0 and json.loads(out) and "left out" not in err  # --since widens it
    config = tmp_path / "config.toml"
    config.write_text("[triage]\nstore_window_days = 120\n")
    code, out, err = run(capsys, "--config", str(config), "triage", "--offline", "--format",
                         "json", *later)  # fmt: skip
    assert code == 0 and json.loads(out) and "left out" not in err
    config.write_text("[triage]\nstore_window_days = 0\n")
    code, _, err = run(capsys, "--config", str(config), "triage", "--offline", *later)
    assert code == 3 and "store_window_days" in err


def test_one_line_messages_are_not_wrapped_without_a_terminal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("COLUMNS")  # a pipe or a log file: rich would assume 80 columns
    config = tmp_path / ("a-rather-long-folder-name-for-the-config" * 2) / "config.toml"
    code, _, err = run(capsys, "--config", str(config), "init", "--host", "imap.example.com",
                       "--username", "me", "--password-env", "PW")  # fmt: skip
    assert code == 0, err
    assert err == f"wrote account shop to {config} (mode 0600); check it with `supportcli doctor`\n"


HEAVY = ("numpy", "scipy", "sklearn", "joblib")
RANK_AND_LIST_IMPORTS = (
    "import json, sys\n"
    "from supportcli.cli import main\n"
    "code = main(sys.argv[1:])\n"
    f"heavy = sorted(m for m in {HEAVY!r} if m in sys.modules)\n"
    "print(json.dumps(heavy), file=sys.stderr)\n"
    "sys.exit(code)\n"
)


def _triage_in_a_subprocess(*args: str) -> tuple[list[dict[str, object]], list[str]]:
    repo = Path(__file__).resolve().parents[1]
    env = {key: os.environ[key] for key in ("SUPPORTCLI_HOME", "SUPPORTCLI_CONFIG", "NO_COLOR")}
    result = subprocess.run(
        [sys.executable, "-c", RANK_AND_LIST_IMPORTS, "triage", *args, "--format", "json"],
        capture_output=True, text=True, timeout=120, cwd=repo,
        env={**env, "PATH": "/usr/bin:/bin", "PYTHONPATH": str(repo)},
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout), json.loads(result.stderr.strip().splitlines()[-1])


def test_ranking_a_classified_store_imports_no_model_libraries(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], isolated_state: Path
) -> None:
    as_of = ["--as-of", "2026-11-21T09:00:00+00:00"]
    code, _, err = run(capsys, "triage", str(DEMO), "-n", "1")  # classified into the store
    assert code == 0, err
    code, expected, err = run(capsys, "triage", "--offline", "--format", "json", *as_of)
    assert code == 0, err
    items, heavy = _triage_in_a_subprocess("--offline", *as_of)
    assert heavy == []
    assert items == json.loads(expected)  # the same ranking as with the model loaded
    # a message not classified yet: the model is loaded for it, and only then
    folder = tmp_path / "new"
    folder.mkdir()
    (folder / "n.eml").write_bytes(_eml("new-one@example.com", "ann@example.com",
                                        "Where is my order?", "Order 1234 has not arrived."))
    code, _, err = run(capsys, "triage", str(folder), "--no-store")
    assert code == 0, err
    items, heavy = _triage_in_a_subprocess(str(folder))
    assert [i["subject"] for i in items] == ["Where is my order?"]
    assert "sklearn" in heavy
    items, heavy = _triage_in_a_subprocess("--offline", *as_of)
    assert heavy == [] and len(items) == len(json.loads(expected)) + 1


def test_a_changed_model_is_loaded_again_before_stored_predictions_are_used(
    capsys: pytest.CaptureFixture[str], isolated_state: Path
) -> None:
    from supportcli.config import load_settings
    from supportcli.model import registry

    code, _, err = run(capsys, "triage", str(DEMO), "-n", "1")
    assert code == 0, err
    settings = load_settings()
    known = registry.verified(settings)
    assert known is not None and set(known.thresholds) == {"category", "urgency", "urgent_review"}
    noted = settings.models_dir / registry.VERIFIED_FILE
    assert noted.stat().st_mode & 0o777 == 0o600
    entry = json.loads(noted.read_text())
    for changed in ({"environment": "other libraries"}, {"sha256": "another model"}):
        noted.write_text(json.dumps({key: {**value, **changed} for key, value in entry.items()}))
        assert registry.verified(settings) is None
    noted.write_text("not json")
    assert registry.verified(settings) is None
    _, heavy = _triage_in_a_subprocess("--offline")
    assert "sklearn" in heavy  # nothing verified to rely on: the model is loaded (and noted)
    assert registry.verified(settings) == known
