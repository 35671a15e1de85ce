"""doctor without an account checks what local use needs; every command without an account
gives a hint that applies to it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from supportcli import resources
from supportcli.cli import main


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_doctor_without_an_account_checks_local_use(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "doctor")
    assert code == 0, out + err
    for name in ("config", "store", "model"):
        assert f"✓ {name}: " in out
    assert "no IMAP account: add one with `supportcli init" in out
    assert "supportcli report --demo" in out


def test_doctor_exit_code_says_whether_local_use_works(
    tmp_path: Path, isolated_state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "config.toml"
    broken.write_text("[triage]\nshop_adresses = []\n", encoding="utf-8")
    code, out, _ = run(capsys, "--config", str(broken), "doctor")
    assert code == 3
    assert "✗ config: " in out and "did you mean shop_addresses?" in out
    assert "✓ model" in out  # the rest is still checked
    models = isolated_state / "models"
    shutil.copytree(resources.default_model_dir(), models / "mine")
    (models / "ACTIVE").write_text("mine\n")
    with (models / "mine" / "model.joblib").open("ab") as handle:
        handle.write(b"tampered")
    code, out, _ = run(capsys, "doctor")
    assert code == 5
    assert "✗ model: " in out and "model use default" in out


@pytest.mark.parametrize(
    ("args", "applies", "not_there"),
    [
        (["sync"], "supportcli init", "PATH"),
        (["report"], "`supportcli report PATH` (or `--demo`)", "triage PATH"),
        (["triage"], "`supportcli triage PATH` (or `--demo`)", "report PATH"),
    ],
)
def test_no_account_hints_fit_the_command(
    args: list[str], applies: str, not_there: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, *args)
    assert code == 3, err
    assert "no IMAP account" in err
    hint = err.split("hint:", 1)[1]
    assert applies in hint and not_there not in hint
