"""Crash safety: SIGKILL a real `supportcli` process at several points during sync, train and
report, then check the store is intact, the next run completes, nothing is duplicated or lost,
and the active model is never a half-written file."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from supportcli import resources
from supportcli.config import load_settings
from supportcli.store import Store

REPO = Path(__file__).resolve().parents[1]
DEMO = sorted(resources.demo_dir().glob("*.eml"))
TRAIN = sorted((resources.samples_dir() / "train").glob("*.eml"))


def start(home: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "supportcli", *args],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={**os.environ, "SUPPORTCLI_HOME": str(home),
             "SUPPORTCLI_CONFIG": str(home / "config.toml"), **(env or {})},
    )  # fmt: skip


def kill_after(proc: subprocess.Popen[bytes], seconds: float) -> None:
    try:
        proc.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)


def complete(home: Path, *args: str, env: dict[str, str] | None = None) -> None:
    proc = start(home, *args, env=env)
    assert proc.wait(timeout=600) == 0, args


def store_counts(home: Path) -> tuple[int, int, bool]:
    with Store(home / "supportcli.db") as store:
        total = store.count_messages()
        distinct = store.db.execute("SELECT count(DISTINCT message_id) FROM messages").fetchone()
        return total, int(distinct[0]), store.integrity_ok()


@pytest.fixture(scope="module")
def server(dovecot: object) -> object:
    # 1,200 messages: the training samples re-sent with fresh Message-IDs, twice
    raws = []
    for n in range(2):
        for path in TRAIN:
            data = path.read_bytes()
            raws.append(data.replace(b"Message-ID: <", f"Message-ID: <r{n}-".encode(), 1))
    dovecot.create_folder("Crash")  # type: ignore[attr-defined]
    dovecot.append_many("Crash", raws)  # type: ignore[attr-defined]
    return dovecot


@pytest.mark.imap
@pytest.mark.slow
def test_sync_killed_at_random_points(server: object, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    config = home / "config.toml"
    config.write_text(server.account_toml("Crash"))  # type: ignore[attr-defined]
    env = {"PW": server.password}  # type: ignore[attr-defined]
    expected = len(server.uids("Crash"))  # type: ignore[attr-defined]
    rng = random.Random(7)
    for delay in sorted(rng.uniform(1.0, 6.0) for _ in range(4)):
        kill_after(start(home, "sync", env=env), delay)
        if (home / "supportcli.db").exists():
            total, distinct, ok = store_counts(home)
            assert ok and total == distinct <= expected
    complete(home, "sync", env=env)
    total, distinct, ok = store_counts(home)
    assert ok and total == distinct
    with Store(home / "supportcli.db") as store:
        assert store.cursor("shop", "Crash") is not None
    # every message with a distinct Message-ID is there (the samples hold no duplicates)
    assert total == expected


@pytest.mark.slow
def test_train_killed_never_leaves_a_broken_active_model(tmp_path: Path) -> None:
    home = tmp_path / "home"
    rng = random.Random(11)
    for delay in (0.5, *sorted(rng.uniform(2.0, 12.0) for _ in range(3))):
        kill_after(start(home, "train", "--force"), delay)
        os.environ["SUPPORTCLI_HOME"] = str(home)
        try:
            from supportcli import registry

            loaded = registry.load_active(load_settings())  # never half-written
            assert loaded.model.predict(["where is my parcel"], loaded.model_id)
        finally:
            del os.environ["SUPPORTCLI_HOME"]
        leftovers = (
            list((home / "models").glob("*/.model.joblib.*")) if (home / "models").exists() else []
        )
        for temp in leftovers:  # a killed write leaves only a hidden temp file, never the target
            assert not temp.name.startswith("model.joblib")


@pytest.mark.slow
def test_report_killed_releases_the_lock_and_does_not_advance(tmp_path: Path) -> None:
    home = tmp_path / "home"
    complete(home, "triage", str(resources.demo_dir()), "-n", "1")
    as_of = ["--as-of", "2026-11-20T10:00:00+00:00"]
    for delay in (0.3, 1.0, 2.0):
        kill_after(start(home, "report", "--offline", *as_of, "-o", str(tmp_path / "r.txt")), delay)
        with Store(home / "supportcli.db") as store:
            assert store.integrity_ok()
            ok_runs = store.db.execute(
                "SELECT count(*) FROM runs WHERE command='report' AND status='ok'"
            ).fetchone()[0]
        assert ok_runs <= 1
    complete(home, "report", "--offline", *as_of, "-o", str(tmp_path / "final.txt"))
    assert "Support report" in (tmp_path / "final.txt").read_text()
    total, distinct, ok = store_counts(home)
    assert ok and total == distinct == len(DEMO)


def test_two_commands_at_once_on_one_store(tmp_path: Path) -> None:
    home = tmp_path / "home"
    procs = [start(home, "triage", str(resources.demo_dir()), "-n", "1") for _ in range(3)]
    codes = [p.wait(timeout=300) for p in procs]
    assert codes == [0, 0, 0]
    total, distinct, ok = store_counts(home)
    assert ok and total == distinct == len(DEMO)
