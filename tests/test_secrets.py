"""Secrets never reach stdout, stderr, logs or the store, even in a crash traceback at -vv."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from supportcli import log, resources, workflows
from supportcli.cli import main

SECRET = "hunter2-S3cr3t-token-xyz"


def test_crash_traceback_at_debug_level_is_redacted(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], isolated_state: Path
) -> None:
    log.add_secret(SECRET)

    def boom(*_: object, **__: object) -> None:
        raise RuntimeError(f"connection to imap failed with password={SECRET}")

    monkeypatch.setattr(workflows, "triage", boom)
    code = main(["-vv", "triage", "--demo"])
    out, err = capsys.readouterr()
    assert code == 1
    assert "unexpected error" in err
    assert "Traceback" in err  # -vv shows the traceback on stderr …
    assert SECRET not in out + err  # … with the secret replaced
    assert "***" in err
    for path in isolated_state.rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path


def test_log_records_from_any_logger_are_redacted(caplog: pytest.LogCaptureFixture) -> None:
    log.add_secret(SECRET)
    record = logging.LogRecord("imapclient.imaplib", logging.DEBUG, __file__, 1,
                               "> b'LOGIN user %s'", (SECRET,), None)  # fmt: skip
    assert log.RedactingFilter().filter(record)
    assert SECRET not in record.getMessage() and "***" in record.getMessage()


def test_password_in_a_world_readable_config_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        f'[accounts.shop]\nhost = "imap.example.com"\nusername = "u"\npassword = "{SECRET}"\n'
    )
    config.chmod(0o644)
    code = main(["--config", str(config), "sync"])
    out, err = capsys.readouterr()
    assert code == 3
    assert "readable by others (mode 0644)" in err and "chmod 600" in err
    assert SECRET not in out + err
    assert resources.demo_dir().is_dir()
