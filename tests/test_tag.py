"""Write-back is opt-in and reversible: a dry run changes nothing, --apply adds namespaced
keywords and journals them, untag removes exactly what that run added."""

from __future__ import annotations

import os
import re
from collections import Counter
from pathlib import Path

import pytest

from supportcli import resources, tagging
from supportcli.cli import main
from supportcli.store import Store

pytestmark = pytest.mark.imap
DEMO = sorted(resources.demo_dir().glob("*.eml"))


@pytest.fixture
def server(dovecot: object) -> object:
    return dovecot


def _setup(
    server: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, count: int = 8
) -> str:
    """A fresh folder (named as the test's tmp dir) with demo messages; the config."""
    folder = tmp_path.name
    server.create_folder(folder)  # type: ignore[attr-defined]
    for i, path in enumerate(DEMO[:count]):
        flags = ("$support_urgent", "\\Flagged") if i == 0 else ()
        server.append(folder, path.read_bytes(), flags=flags)  # type: ignore[attr-defined]
    monkeypatch.setenv("PW", server.password)  # type: ignore[attr-defined]
    config = tmp_path / "config.toml"
    config.write_text(server.account_toml(folder))  # type: ignore[attr-defined]
    config.chmod(0o600)
    return str(config)


def _keywords(server: object, folder: str) -> dict[int, set[str]]:
    flags = server.flags(folder)  # type: ignore[attr-defined]
    return {
        uid: {f.decode() if isinstance(f, bytes) else f for f in fl} for uid, fl in flags.items()
    }


def test_dry_run_apply_and_untag_round_trip(
    server: object,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = _setup(server, tmp_path, monkeypatch)
    assert main(["--config", config, "sync"]) == 0
    original = _keywords(server, tmp_path.name)
    capsys.readouterr()

    assert main(["--config", config, "tag"]) == 0
    out, err = capsys.readouterr()
    assert "would add" in out
    assert "would tag 8 message(s) (dry run: nothing changed; add --apply)" in err
    assert _keywords(server, tmp_path.name) == original  # the dry run touched nothing
    planned = [line for line in out.splitlines() if line.startswith("would add")]
    assert len(planned) == 8

    assert main(["--config", config, "tag", "--apply"]) == 0
    out, err = capsys.readouterr()
    run_id = int(re.search(r"run (\d+): tagged 8 message\(s\)", err).group(1))  # type: ignore[union-attr]
    tagged = _keywords(server, tmp_path.name)
    for uid, flags in tagged.items():
        added = flags - original[uid]
        assert added and all(f.startswith("$support_") for f in added)
    # the message that already carried $support_urgent keeps it and it is not journaled twice
    first = min(original)
    assert {"$support_urgent", "\\Flagged"} <= tagged[first]

    assert main(["--config", config, "tag"]) == 0  # nothing left to add
    assert "would add" not in capsys.readouterr().out

    assert main(["--config", config, "untag", "--run", str(run_id), "--dry-run"]) == 0
    assert _keywords(server, tmp_path.name) == tagged
    assert main(["--config", config, "untag", "--run", str(run_id)]) == 0
    capsys.readouterr()
    assert _keywords(server, tmp_path.name) == original  # what the run added is gone, nothing else
    with Store(Path(os.environ["SUPPORTCLI_HOME"]) / "supportcli.db") as store:
        assert store.run_status(run_id) == "undone"
        assert not store.db.execute("SELECT 1 FROM tag_journal WHERE stored_at IS NULL").fetchall()

    assert main(["--config", config, "untag", "--run", "999"]) == 2
    assert "no tag run 999" in capsys.readouterr().err


def _count_calls(monkeypatch: pytest.MonkeyPatch, name: str) -> list[tuple[object, ...]]:
    """Record every call of IMAPClient.<name> (the real method still runs)."""
    import imapclient

    calls: list[tuple[object, ...]] = []
    real = getattr(imapclient.IMAPClient, name)

    def counted(self: object, *args: object, **kwargs: object) -> object:
        calls.append(args)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(imapclient.IMAPClient, name, counted)
    return calls


def test_apply_and_untag_send_one_command_per_tag_set(
    server: object,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = _setup(server, tmp_path, monkeypatch, count=len(DEMO))
    assert main(["--config", config, "sync"]) == 0
    original = _keywords(server, tmp_path.name)
    capsys.readouterr()
    assert main(["--config", config, "tag"]) == 0
    planned = [line for line in capsys.readouterr().out.splitlines() if "would add" in line]
    assert len(planned) > 30

    logins, added = _count_calls(monkeypatch, "login"), _count_calls(monkeypatch, "add_flags")
    assert main(["--config", config, "tag", "--apply"]) == 0
    run_id = int(re.search(r"run (\d+)", capsys.readouterr().err).group(1))  # type: ignore[union-attr]
    tag_sets = {tuple(sorted(tags)) for _, tags in added}
    assert len(added) == len(tag_sets) < len(planned)  # one command per tag set
    assert sum(len(uids) for uids, _ in added) == len(planned)  # type: ignore[arg-type]
    assert len(logins) == 2  # one connection to plan, one to apply: not one per message

    removed = _count_calls(monkeypatch, "remove_flags")
    monkeypatch.setattr(tagging, "UIDS_PER_COMMAND", 3)  # long lists go in several commands
    assert main(["--config", config, "untag", "--run", str(run_id)]) == 0
    per_tag = Counter(tag for uids, tags in added for tag in tags for _ in uids)  # type: ignore[attr-defined]
    assert len(removed) == sum(-(-n // 3) for n in per_tag.values())
    assert all(len(uids) <= 3 for uids, _ in removed)  # type: ignore[arg-type]
    assert _keywords(server, tmp_path.name) == original


def test_untag_says_in_one_line_when_the_folder_is_gone_or_changed(
    server: object,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = _setup(server, tmp_path, monkeypatch)
    assert main(["--config", config, "sync"]) == 0
    assert main(["--config", config, "tag", "--apply"]) == 0
    run_id = int(re.search(r"run (\d+)", capsys.readouterr().err).group(1))  # type: ignore[union-attr]

    server.reset_uidvalidity(tmp_path.name)  # type: ignore[attr-defined]
    assert main(["--config", config, "untag", "--run", str(run_id)]) == 4
    err = capsys.readouterr().err
    assert "changed (UIDVALIDITY)" in err and "Traceback" not in err

    with server.client() as imap:  # type: ignore[attr-defined]
        imap.delete_folder(tmp_path.name)
    assert main(["--config", config, "untag", "--run", str(run_id)]) == 4
    err = capsys.readouterr().err
    assert f"folder '{tmp_path.name}' not found" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) <= 2  # the error, and at most a hint


def test_tag_says_which_messages_it_left_alone_and_why(
    server: object,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = _setup(server, tmp_path, monkeypatch, count=3)
    assert main(["--config", config, "sync"]) == 0
    gone = min(server.uids(tmp_path.name))  # type: ignore[attr-defined]
    with server.client() as client:  # type: ignore[attr-defined]
        client.select_folder(tmp_path.name)
        client.delete_messages([gone])
        client.expunge()
    capsys.readouterr()

    assert main(["--config", config, "tag", "--apply"]) == 0
    out, err = capsys.readouterr()
    assert len([line for line in out.splitlines() if line.startswith("added")]) == 2
    assert "left 1 message(s) alone:" in err
    assert f"no longer in {tmp_path.name}" in err
    assert gone not in _keywords(server, tmp_path.name)

    Path(config).write_text(Path(config).read_text() + "\n[triage]\nstore_window_days = 1\n")
    assert main(["--config", config, "tag"]) == 0  # the demo mail is older than a day
    err = capsys.readouterr().err
    assert "would tag 0 message(s)" in err
    assert "3 stored message(s) from before" in err and "store_window_days" in err
