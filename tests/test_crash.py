"""Crash safety: SIGKILL a real `supportcli` process at several points during sync, train,
report and `tag --apply`, then check the store is intact, the next run completes, nothing is
duplicated or lost, the active model is never a half-written file and `untag` removes every
keyword a killed run may have added. And commands started together on a brand-new store all
succeed."""

from __future__ import annotations

import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import time
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


def run(home: Path, *args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    """Run a command to the end: (exit code, stderr)."""
    done = subprocess.run(
        [sys.executable, "-m", "supportcli", *args],
        cwd=REPO, capture_output=True, text=True, timeout=600,
        env={**os.environ, "SUPPORTCLI_HOME": str(home),
             "SUPPORTCLI_CONFIG": str(home / "config.toml"), **(env or {})},
    )  # fmt: skip
    return done.returncode, done.stderr


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
            # a fresh Message-ID, however the header is written (some clients fold it)
            raws.append(re.sub(rb"(?im)^(message-id:\s*<)", rb"\g<1>r%d-" % n, data, count=1))
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
            from supportcli import workflows

            loaded = workflows.load_model(load_settings())  # never half-written
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
    finished = 0  # runs that ended before their kill (a report that needs no model can)
    for started, delay in enumerate((0.1, 0.3, 1.0, 2.0), start=1):
        proc = start(home, "report", "--offline", *as_of, "-o", str(tmp_path / "r.txt"))
        kill_after(proc, delay)
        finished += proc.returncode == 0
        with Store(home / "supportcli.db") as store:
            assert store.integrity_ok()
            ok_runs = store.db.execute(
                "SELECT count(*) FROM runs WHERE command='report' AND status='ok'"
            ).fetchone()[0]
        # every finished run is recorded; a killed one at most when it was killed after
        # recording itself (the lock is released either way: the next run goes ahead)
        assert finished <= ok_runs <= started
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


def _support_keywords(server: object, folder: str) -> dict[int, set[str]]:
    flags = server.flags(folder)  # type: ignore[attr-defined]
    return {
        uid: {f.decode() if isinstance(f, bytes) else f for f in found}
        for uid, found in flags.items()
    }


def _wait_for(check: object, seconds: float, every: float = 0.002) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return True
        time.sleep(every)
    return False


@pytest.mark.imap
@pytest.mark.slow
def test_tag_apply_killed_leaves_nothing_untag_cannot_remove(
    dovecot: object, tmp_path: Path
) -> None:
    """`tag --apply` SIGKILLed (a) while its first journal write waits on a busy store, (b)
    while a later one does, (c) at random moments: the next command says the run was
    interrupted and how to undo it, and `untag --run ID` then leaves every message's
    keywords exactly as they were before."""
    folder = "CrashTag"
    dovecot.create_folder(folder)  # type: ignore[attr-defined]
    raws = [
        path.read_bytes().replace(b"Message-ID: <", f"Message-ID: <t{n}-".encode(), 1)
        for n in range(3)
        for path in DEMO
    ]
    dovecot.append_many(folder, raws)  # type: ignore[attr-defined]
    home = tmp_path / "home"
    home.mkdir()
    (home / "config.toml").write_text(dovecot.account_toml(folder))  # type: ignore[attr-defined]
    env = {"PW": dovecot.password}  # type: ignore[attr-defined]
    complete(home, "sync", env=env)
    original = _support_keywords(dovecot, folder)
    db = sqlite3.connect(home / "supportcli.db", isolation_level=None, timeout=30)

    def last_run() -> int:
        return int(db.execute("SELECT coalesce(max(id), 0) FROM runs").fetchone()[0])

    def journaled(run_id: int) -> int:
        row = db.execute("SELECT count(*) FROM tag_journal WHERE run_id = ?", (run_id,))
        return int(row.fetchone()[0])

    def tagged() -> bool:
        return _support_keywords(dovecot, folder) != original

    rng = random.Random(5)
    for trial in ("first write stalls", "later write stalls", *(f"random {n}" for n in (1, 2))):
        before = last_run()
        proc = start(home, "tag", "--apply", env=env)
        if trial.endswith("stalls"):
            assert _wait_for(lambda: last_run() > before, 120), trial  # noqa: B023
            run_id = last_run()
            if trial.startswith("later"):
                assert _wait_for(lambda: journaled(run_id) > 0, 60), trial  # noqa: B023
            db.execute("BEGIN IMMEDIATE")  # the store is busy: the run's next write waits
            try:
                _wait_for(tagged, 3, every=0.05)  # the server has tags, or never gets any
                time.sleep(0.3)
                proc.send_signal(signal.SIGKILL)
                proc.wait(timeout=30)
            finally:
                db.execute("ROLLBACK")
        else:
            kill_after(proc, rng.uniform(3.0, 9.0))
            run_id = last_run()
        if run_id > before:
            status = db.execute("SELECT status FROM runs WHERE id = ?", (run_id,)).fetchone()[0]
            code, err = run(home, "tag", env=env)  # any next command notices
            assert code == 0, err
            if status == "running":
                assert f"tag run {run_id} was interrupted" in err, (trial, err)
                assert f"untag --run {run_id}" in err, (trial, err)
            assert db.execute(
                "SELECT status FROM runs WHERE id = ?", (run_id,)
            ).fetchone()[0] in ("interrupted", "ok"), trial
            code, err = run(home, "untag", "--run", str(run_id), env=env)
            assert code == 0, (trial, err)
        assert _support_keywords(dovecot, folder) == original, trial
    db.close()
    with Store(home / "supportcli.db") as store:
        assert store.integrity_ok()
        assert not store.db.execute("SELECT 1 FROM runs WHERE status = 'running'").fetchall()


@pytest.mark.slow
def test_two_commands_on_a_brand_new_store_both_succeed(tmp_path: Path) -> None:
    """Two (then three) commands started together on a state dir that does not exist yet:
    each creates, switches to WAL and migrates the same new store, and none fails."""
    for trial in range(8):
        home = tmp_path / f"home{trial}"
        env = {**os.environ, "SUPPORTCLI_HOME": str(home)}
        command = [sys.executable, "-m", "supportcli", "label", "export", "-"]
        procs = [
            subprocess.Popen(
                command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
            )
            for _ in range(2 + trial % 2)
        ]
        errors = [p.communicate(timeout=120)[1] for p in procs]
        for proc, err in zip(procs, errors, strict=True):
            assert proc.returncode == 0, (trial, err.decode())
        total, distinct, ok = store_counts(home)
        assert ok and total == distinct == 0
