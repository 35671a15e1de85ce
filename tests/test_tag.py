"""Write-back is opt-in and reversible: a dry run changes nothing, --apply adds namespaced
keywords and journals them, untag removes exactly what that run added."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from supportcli import resources
from supportcli.cli import main

pytestmark = pytest.mark.imap
DEMO = sorted(resources.demo_dir().glob("*.eml"))


@pytest.fixture
def server(dovecot: object) -> object:
    return dovecot


def _setup(server: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    server.create_folder("Tag")  # type: ignore[attr-defined]
    for i, path in enumerate(DEMO[:8]):
        flags = ("$support_urgent", "\\Flagged") if i == 0 else ()
        server.append("Tag", path.read_bytes(), flags=flags)  # type: ignore[attr-defined]
    monkeypatch.setenv("PW", server.password)  # type: ignore[attr-defined]
    config = tmp_path / "config.toml"
    config.write_text(server.account_toml("Tag"))  # type: ignore[attr-defined]
    config.chmod(0o600)
    return str(config)


def _keywords(server: object) -> dict[int, set[str]]:
    flags = server.flags("Tag")  # type: ignore[attr-defined]
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
    original = _keywords(server)
    capsys.readouterr()

    assert main(["--config", config, "tag"]) == 0
    out, err = capsys.readouterr()
    assert "would add" in out and "dry run: nothing changed" in err
    assert _keywords(server) == original  # the dry run touched nothing
    planned = [line for line in out.splitlines() if line.startswith("would add")]
    assert len(planned) == 8

    assert main(["--config", config, "tag", "--apply"]) == 0
    out, err = capsys.readouterr()
    run_id = int(re.search(r"run (\d+)", err).group(1))  # type: ignore[union-attr]
    tagged = _keywords(server)
    for uid, flags in tagged.items():
        added = flags - original[uid]
        assert added and all(f.startswith("$support_") for f in added)
    # the message that already carried $support_urgent keeps it and it is not journaled twice
    first = min(original)
    assert {"$support_urgent", "\\Flagged"} <= tagged[first]

    assert main(["--config", config, "tag"]) == 0  # nothing left to add
    assert "would add" not in capsys.readouterr().out

    assert main(["--config", config, "untag", "--run", str(run_id), "--dry-run"]) == 0
    assert _keywords(server) == tagged
    assert main(["--config", config, "untag", "--run", str(run_id)]) == 0
    capsys.readouterr()
    assert _keywords(server) == original  # exactly what the run added is gone, nothing else

    assert main(["--config", config, "untag", "--run", "999"]) == 2
    assert "no tag run 999" in capsys.readouterr().err
