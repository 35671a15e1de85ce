"""Help a new user can read: bare commands show their help, --version says what runs, shell
completion works, and every placeholder is a word, not a type name."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from supportcli import resources
from supportcli.cli import main

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("args", [[], ["model"]])
def test_a_bare_command_shows_its_help(args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(args) == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert out.startswith(f"Usage: supportcli {' '.join(args)}".rstrip())
    assert "\nCommands:\n" in out and len(out.splitlines()) > 5


def test_version_names_scikit_learn_and_the_active_model(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from importlib.metadata import version

    assert main(["--version"]) == 0
    out = capsys.readouterr().out
    meta = json.loads((resources.default_model_dir() / "meta.json").read_text(encoding="utf-8"))
    assert out.splitlines() == [
        f"supportcli {version('supportcli')}",
        f"scikit-learn {version('scikit-learn')}",
        f"model {meta['name']}-{meta['sha256'][:10]}",
    ]


def test_shell_completion_completes_commands(tmp_path: Path) -> None:
    env = {**os.environ, "_SUPPORTCLI_COMPLETE": "complete_bash", "COMP_WORDS": "supportcli tr",
           "COMP_CWORD": "1", "SUPPORTCLI_HOME": str(tmp_path)}
    result = subprocess.run([sys.executable, "-m", "supportcli"], env=env, cwd=REPO,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert set(result.stdout.split()) == {"triage", "train"}
    env.pop("_SUPPORTCLI_COMPLETE")
    script = subprocess.run([sys.executable, "-m", "supportcli", "--show-completion", "bash"],
                            env=env, cwd=REPO, capture_output=True, text=True, timeout=60)
    assert script.returncode == 0 and "complete" in script.stdout


def every_command() -> list[list[str]]:
    from typer.main import get_command

    from supportcli.cli import app

    found: list[list[str]] = [[]]

    def walk(command: object, path: list[str]) -> None:
        for name, sub in getattr(command, "commands", {}).items():
            found.append([*path, name])
            walk(sub, [*path, name])

    walk(get_command(app), [])
    return found


def test_help_shows_words_not_type_names(capsys: pytest.CaptureFixture[str]) -> None:
    commands = every_command()
    assert ["label", "audit"] in commands and ["model", "use"] in commands
    for args in commands:
        assert main([*args, "--help"]) == 0
        out = capsys.readouterr().out
        assert not re.search(r"<(str|int|float|path|list|bool)|range>|\[x[<>]=", out), (args, out)
    main(["report", "--help"])
    out = capsys.readouterr().out
    assert "--mail-to ADDRESS" in out and "--format text|markdown|html" in out
    assert "[PATH]" in out
    main(["label", "--help"])
    assert "[at least 1]" in capsys.readouterr().out
