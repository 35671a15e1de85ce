"""The SQLite store: migrations, dedupe, round trips, cursors, concurrency."""

from __future__ import annotations

import sqlite3
import threading
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
