"""Shared fixtures. Every test runs with its own state dir (SUPPORTCLI_HOME) and its own, absent,
config file (SUPPORTCLI_CONFIG), so the machine's own config is never read."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(autouse=True)
def isolated_state(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("SUPPORTCLI_HOME", str(home))
    monkeypatch.setenv("SUPPORTCLI_CONFIG", str(tmp_path_factory.mktemp("config") / "config.toml"))
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "200")
    return home


@pytest.fixture(scope="session")
def dovecot() -> Iterator[object]:
    """A real Dovecot on 127.0.0.1. Missing dovecot fails in CI and skips elsewhere."""
    from imapserver import DovecotServer, DovecotUnavailable

    try:
        # not under pytest's tmp dir: a second pytest run resets its modes and locks Dovecot out
        server = DovecotServer.start(Path(home := tempfile.mkdtemp(prefix="dv", dir="/tmp")))
    except DovecotUnavailable as exc:
        if os.environ.get("CI"):
            pytest.fail(f"dovecot is required in CI: {exc}")
        pytest.skip(f"dovecot not installed: {exc}")
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(home, ignore_errors=True)
