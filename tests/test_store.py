"""The SQLite store: migrations, dedupe, round trips, cursors, concurrency."""

from __future__ import annotations

import logging
import os
import signal
import sqlite3
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from factories import CHARGEBACK, message, prediction

from supportcli.errors import StoreError
from supportcli.records import ParseFailure, SyncCursor
from supportcli.store import MIGRATIONS, Store


def test_new_store_is_migrated_to_the_latest_schema_in_wal_mode(tmp_path: Path) -> None:
    with Store(tmp_path / "s.db") as store:
        assert store.schema_version == len(MIGRATIONS)
        mode = store.db.execute("PRAGMA journal_mode").fetchone()[0]
        assert mode == "wal"
        assert store.integrity_ok()


def test_reopening_keeps_data_and_does_not_migrate_twice(tmp_path: Path) -> None:
    with Store(tmp_path / "s.db") as store:
        store.add_messages([message("a@x")])
    with Store(tmp_path / "s.db") as store:
        assert store.count_messages() == 1
        assert store.schema_version == len(MIGRATIONS)


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    Store(path).close()
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 5}")
    db.commit()
    db.close()
    with pytest.raises(StoreError, match="newer supportcli"):
        Store(path)


def test_corrupt_file_is_a_store_error(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match="cannot open the store"):
        Store(path)


def test_messages_dedupe_by_message_id_and_round_trip(tmp_path: Path) -> None:
    original = message("a@x", subject="Réclamation [bold]", text="Bonjour\nligne 2")
    with Store(tmp_path / "s.db") as store:
        assert store.add_messages([original, message("b@x")]) == (2, 0)
        assert store.add_messages([original]) == (0, 1)
        assert store.count_messages() == 2
        assert store.get_message("a@x") == original


def test_messages_query_by_ids_and_since(tmp_path: Path) -> None:
    old = message("old@x", date=datetime(2026, 1, 1, tzinfo=UTC))
    new = message("new@x", date=datetime(2026, 11, 1, tzinfo=UTC))
    with Store(tmp_path / "s.db") as store:
        store.add_messages([old, new])
        assert [m.message_id for m in store.messages(since=datetime(2026, 6, 1, tzinfo=UTC))] == [
            "new@x"
        ]
        assert [m.message_id for m in store.messages(message_ids=["old@x"])] == ["old@x"]
        assert [m.message_id for m in store.messages()] == ["old@x", "new@x"]


def test_light_reads_keep_what_ranking_needs_and_share_repeated_values(tmp_path: Path) -> None:
    """A big triage reads light rows: same fields, minus texts and per-category
    probabilities, with values repeated across rows held once."""
    originals = [message(f"m{i}@x", flags=("\\Seen",)) for i in range(3)]
    with Store(tmp_path / "s.db") as store:
        store.add_messages(originals)
        light = store.messages(light=True)
        for full, lean in zip(originals, light, strict=True):
            blank = {"text_new": "", "text_quoted": "", "text_signature": "", "content_hash": ""}
            assert lean == replace(full, **blank)
        assert light[0].flags is light[2].flags and light[0].to is light[1].to
        p = prediction("billing_payment", "urgent", cues=(CHARGEBACK,))
        store.save_predictions([(f"m{i}@x", p) for i in range(3)])
        lean_p = store.predictions("test", light=True)
        assert lean_p["m0@x"] == replace(p, category_probs={})
        assert lean_p["m0@x"].cues is lean_p["m2@x"].cues
        assert store.predictions("test")["m1@x"] == p


def test_predictions_labels_cursors_failures(tmp_path: Path) -> None:
    with Store(tmp_path / "s.db") as store:
        store.add_messages([message("a@x")])
        p = prediction("billing_payment", "urgent", cues=(CHARGEBACK,))
        store.save_predictions([("a@x", p)])
        assert store.predictions("test")["a@x"] == p
        assert store.predictions("other-model") == {}
        store.set_label("a@x", "billing_payment", "urgent")
        assert store.labels() == {"a@x": ("billing_payment", "urgent")}
        assert store.cursor("shop", "INBOX") is None
        store.save_cursor(SyncCursor("shop", "INBOX", 7, 42))
        assert store.cursor("shop", "INBOX") == SyncCursor("shop", "INBOX", 7, 42)
        store.add_failures([ParseFailure("src", "k1", "bad"), ParseFailure("src", "k1", "bad")])
        assert store.db.execute("SELECT count(*) FROM parse_failures").fetchone()[0] == 1


def test_two_writers_at_once_do_not_corrupt_the_store(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    Store(path).close()
    errors: list[BaseException] = []

    def writer(prefix: str) -> None:
        try:
            with Store(path) as store:
                for i in range(50):
                    store.add_messages([message(f"{prefix}{i}@x")])
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(p,)) for p in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors
    with Store(path) as store:
        assert store.count_messages() == 100
        assert store.integrity_ok()


def test_a_new_store_waits_while_another_connection_is_creating_it(tmp_path: Path) -> None:
    """SQLite answers "database is locked" at once, with no busy wait, when the WAL switch
    meets another connection writing a new store in rollback mode (a second command
    started at the same moment): the store retries instead of failing."""
    path = tmp_path / "s.db"
    holding, release = threading.Event(), threading.Event()

    def creator() -> None:
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        other.execute("CREATE TABLE scratch (x)")
        holding.set()
        release.wait(5)
        other.execute("ROLLBACK")
        other.close()

    thread = threading.Thread(target=creator)
    thread.start()
    assert holding.wait(5)
    threading.Timer(0.5, release.set).start()
    try:
        with Store(path) as store:
            assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
            assert store.schema_version == len(MIGRATIONS)
    finally:
        release.set()
        thread.join(5)


@pytest.fixture
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.usefixtures("umask_022")
def test_store_and_models_are_private_under_umask_022(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Customer mail: the state dir 0700, the store and its WAL files 0600, saved models
    (they hold words from the mail) 0600 in 0700 folders, and no notice when new."""
    from supportcli.model import artifacts

    home = tmp_path / "new" / "home"
    with Store(home / "supportcli.db") as store:
        store.add_messages([message("a@x")])
        assert _mode(home) == 0o700
        for name in ("supportcli.db", "supportcli.db-wal", "supportcli.db-shm"):
            assert _mode(home / name) == 0o600, name
    artifacts.save({"model": 1}, home / "models" / "v1", {"name": "v1"})
    assert _mode(home / "models") == 0o700 and _mode(home / "models" / "v1") == 0o700
    for file in (home / "models" / "v1").iterdir():
        assert _mode(file) == 0o600, file.name
    assert "private" not in caplog.text


@pytest.mark.usefixtures("umask_022")
def test_existing_state_is_tightened_with_one_notice(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    home = tmp_path / "home"
    (home / "models" / "v1").mkdir(parents=True)
    (home / "models" / "v1" / "model.joblib").write_bytes(b"x")
    Store(home / "supportcli.db").close()
    for path in (home, home / "models", home / "models" / "v1"):
        path.chmod(0o755)
    for path in (home / "supportcli.db", home / "models" / "v1" / "model.joblib"):
        path.chmod(0o644)
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        Store(home / "supportcli.db").close()
    notices = [r.getMessage() for r in caplog.records if "private" in r.getMessage()]
    assert len(notices) == 1 and str(home) in notices[0], caplog.text
    assert _mode(home) == _mode(home / "models") == _mode(home / "models" / "v1") == 0o700
    assert _mode(home / "supportcli.db") == _mode(home / "models/v1/model.joblib") == 0o600
    caplog.clear()
    Store(home / "supportcli.db").close()
    assert "private" not in caplog.text  # once


def test_one_message_id_two_different_messages_are_both_kept(tmp_path: Path) -> None:
    """Deduplication by Message-ID only when the content matches too: a copy (other raw
    bytes, same message) is a duplicate; a different message with a reused id is kept
    under an id of its own, and adding it again is a duplicate in turn."""
    first = message("same@x", text="Where is my order #10234?")
    copy = replace(first, content_hash="other-bytes", source_key="elsewhere")
    other = replace(first, text_new="Please cancel order #555.", content_hash="abcdef0123456789")
    with Store(tmp_path / "s.db") as store:
        assert store.add_messages([first]) == (1, 0)
        assert store.add_messages([copy]) == (0, 1)
        assert store.add_messages([other]) == (1, 0)
        assert store.add_messages([other, copy]) == (0, 2)
        kept = {m.message_id: m.text_new for m in store.messages()}
    assert kept == {
        "same@x": "Where is my order #10234?",
        "same@x#abcdef012345": "Please cancel order #555.",
    }


def test_file_names_that_are_not_utf8_are_stored_escaped(tmp_path: Path) -> None:
    failure = ParseFailure("eml:/in/bo\udcefte", "caf\udce9.eml", "error:cannot read caf\udce9")
    with Store(tmp_path / "s.db") as store:
        store.add_batch([replace(message("a@x"), source_key="d\udcffr/x.eml")], [failure], None)
        store.add_failures([failure])
        assert store.get_message("a@x").source_key == "d\\xffr/x.eml"  # type: ignore[union-attr]
        row = store.db.execute("SELECT source, source_key FROM parse_failures").fetchone()
    assert tuple(row) == ("eml:/in/bo\\xefte", "caf\\xe9.eml")


def test_a_run_left_running_by_a_killed_process_is_noticed_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A run still holding its lock is left alone; one whose process was SIGKILLed is
    marked interrupted by the next store opened, with a line saying how to undo it."""
    path = tmp_path / "s.db"
    killed = (
        "import os, signal, sys; from supportcli.store import Store; "
        "s = Store(sys.argv[1]); s.journal_tags(s.start_run('tag'), "
        "[('shop', 'INBOX', 7, 42, '$support_urgent', 'keyword')]); "
        "os.kill(os.getpid(), signal.SIGKILL)"
    )
    with Store(path) as live:
        running = live.start_run("report")
        done = subprocess.run([sys.executable, "-c", killed, str(path)], check=False)
        assert done.returncode == -signal.SIGKILL
        caplog.clear()
        with caplog.at_level(logging.INFO), Store(path) as store:
            assert store.interrupted == [(2, "tag")]
            assert store.run_status(2) == "interrupted"
            assert store.run_status(running) == "running"  # its process is alive
            assert [row["uid"] for row in store.journaled_tags(2)] == [42]
        assert "tag run 2 was interrupted" in caplog.text
        assert "`supportcli untag --run 2`" in caplog.text
        live.finish_run(running, "ok", {})
    with Store(path) as store:
        assert store.interrupted == []
        assert not list((tmp_path / "runs").iterdir())  # no lock file left behind


def test_untag_leaves_a_tag_a_later_run_added_after_a_killed_one_only_meant_to(
    tmp_path: Path,
) -> None:
    """A killed run journaled a tag it never got to send; a later run found it missing,
    added it and holds it: undoing the killed run leaves that tag to the later run."""
    row = ("shop", "INBOX", 7, 42, "$support_urgent", "keyword")
    with Store(tmp_path / "s.db") as store:
        killed = store.start_run("tag")
        store.journal_tags(killed, [row, (*row[:3], 43, *row[4:])])  # never marked stored
        later = store.start_run("tag")
        store.mark_stored(store.journal_tags(later, [row]))
        assert [r["uid"] for r in store.journaled_tags(killed)] == [43]
        assert [r["uid"] for r in store.journaled_tags(later)] == [42]
