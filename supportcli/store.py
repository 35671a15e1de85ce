"""The local store: one SQLite file in the state dir.

Only this module talks to sqlite3. Migrations are an ordered list of small functions; the
schema version lives in ``PRAGMA user_version``. WAL mode and a busy timeout let a report read
while a sync writes; every write is its own short transaction, so a killed process loses at
most the message it was writing. Two commands may create or migrate a new store at once:
switching it to WAL is retried for as long as the busy timeout, and migrations re-read the
version under the write lock. The store holds customer mail: its directory is 0700 and its
files 0600 (``private``).

A run (``start_run``) holds an advisory lock file until it finishes; a run still marked
``running`` whose lock nobody holds was killed, and the next store opened marks it
``interrupted`` and says so.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import secrets
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import private
from .errors import StoreError
from .records import Attachment, CueHit, Message, ParseFailure, Prediction, SyncCursor
from .sanitize import escape_surrogates

log = logging.getLogger(__name__)
BUSY_TIMEOUT_MS = 10_000
RUN_LOCKS = "runs"  # beside the store: one lock file per run in progress


def _script(db: sqlite3.Connection, sql: str) -> None:
    """Run DDL statements one by one (executescript would commit the open transaction)."""
    for statement in sql.split(";"):
        if statement.strip():
            db.execute(statement)


def _m001_messages(db: sqlite3.Connection) -> None:
    _script(
        db,
        """
        CREATE TABLE messages (
            id INTEGER PRIMARY KEY,
            message_id TEXT NOT NULL UNIQUE,
            source TEXT NOT NULL,
            source_key TEXT NOT NULL,
            date TEXT NOT NULL,
            date_is_fallback INTEGER NOT NULL,
            sender_name TEXT NOT NULL,
            sender_addr TEXT NOT NULL,
            recipients TEXT NOT NULL,
            subject TEXT NOT NULL,
            norm_subject TEXT NOT NULL,
            in_reply_to TEXT NOT NULL,
            refs TEXT NOT NULL,
            text_new TEXT NOT NULL,
            text_quoted TEXT NOT NULL,
            text_signature TEXT NOT NULL,
            is_html INTEGER NOT NULL,
            attachments TEXT NOT NULL,
            order_numbers TEXT NOT NULL,
            automated TEXT NOT NULL,
            language TEXT NOT NULL,
            content_hash TEXT NOT NULL,
            flags TEXT NOT NULL,
            warnings TEXT NOT NULL,
            imported_at TEXT NOT NULL
        );
        CREATE INDEX messages_date ON messages(date);
        CREATE INDEX messages_sender ON messages(sender_addr);
        CREATE INDEX messages_source ON messages(source);
        CREATE TABLE parse_failures (
            id INTEGER PRIMARY KEY,
            source TEXT NOT NULL,
            source_key TEXT NOT NULL,
            reason TEXT NOT NULL,
            seen_at TEXT NOT NULL,
            UNIQUE(source, source_key)
        );
        """,
    )


def _m002_predictions_labels(db: sqlite3.Connection) -> None:
    _script(
        db,
        """
        CREATE TABLE predictions (
            message_id TEXT NOT NULL REFERENCES messages(message_id) ON DELETE CASCADE,
            model_id TEXT NOT NULL,
            category TEXT NOT NULL,
            category_confidence REAL NOT NULL,
            urgency TEXT NOT NULL,
            urgency_confidence REAL NOT NULL,
            needs_review INTEGER NOT NULL,
            detail TEXT NOT NULL,
            created_at TEXT NOT NULL,
            PRIMARY KEY (message_id, model_id)
        );
        CREATE TABLE labels (
            message_id TEXT PRIMARY KEY REFERENCES messages(message_id) ON DELETE CASCADE,
            category TEXT NOT NULL,
            urgency TEXT NOT NULL,
            labelled_by TEXT NOT NULL,
            labelled_at TEXT NOT NULL
        );
        """,
    )


def _m003_sync_runs(db: sqlite3.Connection) -> None:
    _script(
        db,
        """
        CREATE TABLE cursors (
            account TEXT NOT NULL,
            folder TEXT NOT NULL,
            uidvalidity INTEGER NOT NULL,
            last_uid INTEGER NOT NULL,
            updated_at TEXT NOT NULL,
            PRIMARY KEY (account, folder)
        );
        CREATE TABLE runs (
            id INTEGER PRIMARY KEY,
            command TEXT NOT NULL,
            started_at TEXT NOT NULL,
            finished_at TEXT,
            status TEXT NOT NULL,
            summary TEXT NOT NULL DEFAULT '{}'
        );
        """,
    )


def _m004_answered(db: sqlite3.Connection) -> None:
    _script(
        db,
        """
        CREATE TABLE answered (
            message_id TEXT PRIMARY KEY,
            via TEXT NOT NULL,
            seen_at TEXT NOT NULL
        );
        """,
    )


def _m005_tag_journal(db: sqlite3.Connection) -> None:
    _script(
        db,
        """
        CREATE TABLE tag_journal (
            id INTEGER PRIMARY KEY,
            run_id INTEGER NOT NULL REFERENCES runs(id),
            account TEXT NOT NULL,
            folder TEXT NOT NULL,
            uidvalidity INTEGER NOT NULL,
            uid INTEGER NOT NULL,
            tag TEXT NOT NULL,
            kind TEXT NOT NULL,
            added_at TEXT NOT NULL,
            removed_at TEXT
        );
        CREATE INDEX tag_journal_run ON tag_journal(run_id);
        """,
    )


def _m006_content_hash_index(db: sqlite3.Connection) -> None:
    db.execute("CREATE INDEX messages_content_hash ON messages(content_hash)")


def _m007_label_skips(db: sqlite3.Connection) -> None:
    _script(
        db,
        """
        CREATE TABLE label_skips (
            message_id TEXT PRIMARY KEY,
            skipped_at TEXT NOT NULL
        );
        """,
    )


def _m008_journal_intent_and_run_locks(db: sqlite3.Connection) -> None:
    """Tags are journaled before they are sent (``stored_at`` is set once the server took
    them; earlier rows were written after it had); a run names the lock file it holds."""
    _script(
        db,
        """
        ALTER TABLE tag_journal ADD COLUMN stored_at TEXT;
        UPDATE tag_journal SET stored_at = added_at;
        ALTER TABLE runs ADD COLUMN lock TEXT
        """,
    )


def _m009_writer_clock_and_relay(db: sqlite3.Connection) -> None:
    db.execute("ALTER TABLE messages ADD COLUMN utc_offset INTEGER NOT NULL DEFAULT 0")
    db.execute("ALTER TABLE messages ADD COLUMN relayed_by TEXT NOT NULL DEFAULT ''")


MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [
    _m001_messages,
    _m002_predictions_labels,
    _m003_sync_runs,
    _m004_answered,
    _m005_tag_journal,
    _m006_content_hash_index,
    _m007_label_skips,
    _m008_journal_intent_and_run_locks,
    _m009_writer_clock_and_relay,
]


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class Store:
    """A handle on the SQLite store. Use as a context manager, or call :meth:`close`."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path) if str(path) != ":memory:" else Path(":memory:")
        self.in_memory = str(path) == ":memory:"
        self._run_locks: dict[int, tuple[int, Path]] = {}
        self.interrupted: list[tuple[int, str]] = []  # runs a killed process left running
        try:
            if not self.in_memory:
                self._create_private()
            # autocommit mode: transactions are explicit (BEGIN IMMEDIATE), see transaction()
            self.db = sqlite3.connect(
                str(path), timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None
            )
            self.db.row_factory = sqlite3.Row
            self.db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            if not self.in_memory:  # an in-memory store has no journal file
                _wal_mode(self.db)
            self.db.execute("PRAGMA synchronous = NORMAL")
            self.db.execute("PRAGMA foreign_keys = ON")
            self._migrate()
            if not self.in_memory:
                self.interrupted = self._notice_interrupted_runs()
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot open the store {path}: {exc}") from None
        except OSError as exc:
            raise StoreError(f"cannot create the store {path}: {exc.strerror}") from None

    def _create_private(self) -> None:
        """The state dir 0700 and a new store file 0600 before SQLite creates it (its -wal
        and -shm files take the store file's mode); older ones are tightened."""
        private.make_dir(self.path.parent)
        if not self.path.exists():
            os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT, private.FILE_MODE))
        private.tighten_state(self.path.parent, self.path.name)

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        for fd, _ in self._run_locks.values():  # runs not finished: left marked running
            os.close(fd)
        self._run_locks.clear()
        self.db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction. BEGIN IMMEDIATE takes the write lock up front (waiting up to
        the busy timeout), so two writers queue instead of failing on a lock upgrade."""
        try:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                yield self.db
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            self.db.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) or "busy" in str(exc):
                raise StoreError(
                    "the store is busy: another supportcli command is writing to it",
                    hint="wait for it to finish and try again",
                ) from None
            raise

    def _migrate(self) -> None:
        if self.schema_version == len(MIGRATIONS):
            return
        with self.transaction() as db:  # re-read under the write lock: another process may
            version = self.schema_version  # have migrated while we waited
            if version > len(MIGRATIONS):
                raise StoreError(
                    f"the store {self.path} was written by a newer supportcli (schema {version})"
                )
            for number, migration in enumerate(MIGRATIONS[version:], start=version + 1):
                migration(db)
                db.execute(f"PRAGMA user_version = {number}")

    @property
    def schema_version(self) -> int:
        return int(self.db.execute("PRAGMA user_version").fetchone()[0])

    # --- messages --------------------------------------------------------------------------

    def add_messages(self, messages: Iterable[Message]) -> tuple[int, int]:
        """Insert messages, skipping ones already stored (by Message-ID). Returns (added, dupes)."""
        return self.add_batch(list(messages), [], None)

    def add_batch(
        self,
        messages: Sequence[Message],
        failures: Sequence[ParseFailure],
        cursor: SyncCursor | None,
    ) -> tuple[int, int]:
        """Messages, failures and the sync cursor after them in one transaction: a sync killed
        at any point resumes exactly after the last batch that was stored."""
        added = dupes = 0
        kept_apart: list[str] = []
        with self.transaction() as db:
            for msg in messages:
                row = _message_row(msg)
                if db.execute(_INSERT_MESSAGE, row).rowcount:
                    added += 1
                elif (other := _kept_apart(db, msg, row)) is not None:
                    added += 1
                    kept_apart.append(other)
                else:
                    dupes += 1
            _insert_failures(db, failures)
            if cursor is not None:
                db.execute(
                    "INSERT OR REPLACE INTO cursors VALUES (?, ?, ?, ?, ?)",
                    (cursor.account, cursor.folder, cursor.uidvalidity, cursor.last_uid, _now()),
                )
        if kept_apart:
            log.info(
                "kept %d message(s) whose Message-ID a different stored message already has, "
                "under an id of their own (first: %s)",
                len(kept_apart),
                kept_apart[0],
            )
        return added, dupes

    def mark_answered(self, message_ids: Iterable[str], via: str) -> int:
        with self.transaction() as db:
            before = db.total_changes
            db.executemany(
                "INSERT OR IGNORE INTO answered VALUES (?, ?, ?)",
                [(m, via, _now()) for m in message_ids],
            )
            return db.total_changes - before

    def answered_ids(self) -> set[str]:
        return {row[0] for row in self.db.execute("SELECT message_id FROM answered")}

    def ids_by_content_hash(self, hashes: Sequence[str]) -> dict[str, str]:
        """Message-IDs of stored messages with these raw-bytes hashes (already imported)."""
        rows = self.db.execute(
            "SELECT content_hash, message_id FROM messages WHERE content_hash IN "
            "(SELECT value FROM json_each(?))",
            (json.dumps(list(hashes)),),
        )
        return {row[0]: row[1] for row in rows}

    def has_message(self, message_id: str) -> bool:
        row = self.db.execute("SELECT 1 FROM messages WHERE message_id = ?", (message_id,))
        return row.fetchone() is not None

    def get_message(self, message_id: str) -> Message | None:
        row = self.db.execute("SELECT * FROM messages WHERE message_id = ?", (message_id,))
        found = row.fetchone()
        return _row_message(found) if found else None

    def messages(
        self,
        *,
        since: datetime | None = None,
        source: str | None = None,
        message_ids: Sequence[str] | None = None,
        sender: str | None = None,
        light: bool = False,
    ) -> list[Message]:
        """Messages, oldest first. ``light`` leaves the texts out (ranking and exports never
        read them), which halves the memory of a big triage."""
        columns = _LIGHT_COLUMNS if light else "*"
        sql, args = f"SELECT {columns} FROM messages WHERE 1=1", []  # noqa: S608
        if since is not None:
            sql += " AND date >= ?"
            args.append(since.astimezone(UTC).isoformat())
        if source is not None:
            sql += " AND source = ?"
            args.append(source)
        if sender is not None:
            sql += " AND sender_addr = ?"
            args.append(sender)
        if message_ids is not None:
            ids = list(message_ids)
            sql += " AND message_id IN (SELECT value FROM json_each(?))"
            args.append(json.dumps(ids))
        sql += " ORDER BY date, id"
        memo: dict[object, object] | None = {} if light else None
        return [_row_message(row, memo) for row in self.db.execute(sql, args)]

    def count_messages(self) -> int:
        return int(self.db.execute("SELECT count(*) FROM messages").fetchone()[0])

    def add_failures(self, failures: Iterable[ParseFailure]) -> None:
        with self.transaction() as db:
            _insert_failures(db, list(failures))

    def count_before(self, when: datetime) -> int:
        """Stored messages dated before ``when`` (what a store window leaves out)."""
        row = self.db.execute(
            "SELECT count(*) FROM messages WHERE date < ?", (when.astimezone(UTC).isoformat(),)
        ).fetchone()
        return int(row[0])

    # --- predictions and labels ------------------------------------------------------------

    def save_predictions(self, pairs: Iterable[tuple[str, Prediction]]) -> None:
        rows = [
            (
                message_id,
                p.model_id,
                p.category,
                p.category_confidence,
                p.urgency,
                p.urgency_confidence,
                int(p.needs_review),
                json.dumps({"cat": p.category_probs, "urg": p.urgency_probs,
                            "cues": [_cue_row(h) for h in p.cues]}),
                _now(),
            )
            for message_id, p in pairs
        ]
        with self.transaction() as db:
            db.executemany(
                "INSERT OR REPLACE INTO predictions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows
            )

    def predictions(self, model_id: str, *, light: bool = False) -> dict[str, Prediction]:
        """Stored predictions of one model. ``light`` leaves out the per-category
        probabilities (ranking needs only the urgency ones)."""
        rows = self.db.execute("SELECT * FROM predictions WHERE model_id = ?", (model_id,))
        memo: dict[Any, Any] | None = {} if light else None
        return {row["message_id"]: _row_prediction(row, memo) for row in rows}

    def set_label(self, message_id: str, category: str, urgency: str, by: str = "cli") -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO labels VALUES (?, ?, ?, ?, ?)",
                (message_id, category, urgency, by, _now()),
            )

    def set_skipped(self, message_id: str, skipped: bool = True) -> None:
        """Remember (or forget) that a labelling session skipped a message."""
        with self.transaction() as db:
            if skipped:
                db.execute(
                    "INSERT OR REPLACE INTO label_skips VALUES (?, ?)", (message_id, _now())
                )
            else:
                db.execute("DELETE FROM label_skips WHERE message_id = ?", (message_id,))

    def is_skipped(self, message_id: str) -> bool:
        row = self.db.execute("SELECT 1 FROM label_skips WHERE message_id = ?", (message_id,))
        return row.fetchone() is not None

    def skipped(self) -> set[str]:
        """Messages skipped in a labelling session and not labelled since."""
        rows = self.db.execute(
            "SELECT message_id FROM label_skips "
            "WHERE message_id NOT IN (SELECT message_id FROM labels)"
        )
        return {row[0] for row in rows}

    def labels(self) -> dict[str, tuple[str, str]]:
        rows = self.db.execute("SELECT message_id, category, urgency FROM labels")
        return {row[0]: (row[1], row[2]) for row in rows}

    # --- sync cursors and runs -------------------------------------------------------------

    def cursor(self, account: str, folder: str) -> SyncCursor | None:
        row = self.db.execute(
            "SELECT * FROM cursors WHERE account = ? AND folder = ?", (account, folder)
        ).fetchone()
        if row is None:
            return None
        return SyncCursor(account, folder, row["uidvalidity"], row["last_uid"])

    def save_cursor(self, cursor: SyncCursor) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO cursors VALUES (?, ?, ?, ?, ?)",
                (cursor.account, cursor.folder, cursor.uidvalidity, cursor.last_uid, _now()),
            )

    def start_run(self, command: str) -> int:
        """A run marked ``running``, holding its lock file until ``finish_run`` (or until the
        process dies: the kernel then releases the lock, and the next store opened notices)."""
        lock: tuple[int, Path] | None = None
        if not self.in_memory:
            lock = _hold_lock(self.path.parent / RUN_LOCKS / f"{secrets.token_hex(8)}.lock")
        try:
            with self.transaction() as db:
                cur = db.execute(
                    "INSERT INTO runs (command, started_at, status, lock) "
                    "VALUES (?, ?, 'running', ?)",
                    (command, _now(), lock[1].name if lock else None),
                )
                run_id = int(cur.lastrowid or 0)
        except BaseException:
            if lock:
                _release_lock(*lock)
            raise
        if lock:
            self._run_locks[run_id] = lock
        return run_id

    def finish_run(self, run_id: int, status: str, summary: dict[str, object]) -> None:
        with self.transaction() as db:
            db.execute(
                "UPDATE runs SET finished_at = ?, status = ?, summary = ? WHERE id = ?",
                (_now(), status, json.dumps(summary), run_id),
            )
        if run_id in self._run_locks:
            _release_lock(*self._run_locks.pop(run_id))

    def run_status(self, run_id: int) -> str | None:
        row = self.db.execute("SELECT status FROM runs WHERE id = ?", (run_id,)).fetchone()
        return None if row is None else str(row[0])

    def set_run_status(self, run_id: int, status: str) -> None:
        with self.transaction() as db:
            db.execute("UPDATE runs SET status = ? WHERE id = ?", (status, run_id))

    def _notice_interrupted_runs(self) -> list[tuple[int, str]]:
        """Runs left ``running`` by a process that died: marked ``interrupted``, each with one
        line saying how to finish or undo it. Returns (id, command) of each."""
        rows = self.db.execute("SELECT id, command, lock FROM runs WHERE status = 'running'")
        found = []
        for run_id, command, lock in rows.fetchall():
            path = self.path.parent / RUN_LOCKS / lock if lock else None
            held = _try_lock(path) if path is not None else None
            if held is False:
                continue  # still running in another process
            with self.transaction() as db:
                marked = db.execute(
                    "UPDATE runs SET status = 'interrupted', finished_at = ? "
                    "WHERE id = ? AND status = 'running'",
                    (_now(), run_id),
                ).rowcount
            if isinstance(held, tuple):
                _release_lock(*held)
            if marked:
                found.append((int(run_id), str(command)))
                _say_interrupted(int(run_id), str(command))
        return found

    def journal_tags(
        self, run_id: int, rows: Iterable[tuple[str, str, int, int, str, str]]
    ) -> list[int]:
        """Record tags a run is about to add, before they are sent: (account, folder,
        uidvalidity, uid, tag, kind). Returns the journal ids, for ``mark_stored``."""
        ids = []
        with self.transaction() as db:
            for row in rows:
                cur = db.execute(
                    "INSERT INTO tag_journal (run_id, account, folder, uidvalidity, uid, tag, "
                    "kind, added_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (run_id, *row, _now()),
                )
                ids.append(int(cur.lastrowid or 0))
        return ids

    def mark_stored(self, journal_ids: Iterable[int]) -> None:
        """The server took these journaled tags."""
        with self.transaction() as db:
            db.executemany(
                "UPDATE tag_journal SET stored_at = ? WHERE id = ?",
                [(_now(), i) for i in journal_ids],
            )

    def journaled_tags(self, run_id: int) -> list[sqlite3.Row]:
        """Tags run ``run_id`` added or may have added, not removed since. A tag it meant to
        add but the server was never seen to take is left out when a later run added and
        still holds it: then this run did not add it (the later one found it missing)."""
        return list(
            self.db.execute(
                "SELECT * FROM tag_journal AS j WHERE run_id = ? AND removed_at IS NULL "
                "AND NOT (stored_at IS NULL AND EXISTS (SELECT 1 FROM tag_journal AS o "
                "WHERE o.id > j.id AND o.run_id != j.run_id AND o.account = j.account "
                "AND o.folder = j.folder AND o.uidvalidity = j.uidvalidity AND o.uid = j.uid "
                "AND o.tag = j.tag AND o.stored_at IS NOT NULL AND o.removed_at IS NULL)) "
                "ORDER BY id",
                (run_id,),
            )
        )

    def mark_untagged(self, journal_ids: Iterable[int]) -> None:
        with self.transaction() as db:
            db.executemany(
                "UPDATE tag_journal SET removed_at = ? WHERE id = ?",
                [(_now(), i) for i in journal_ids],
            )

    def run_exists(self, run_id: int, command: str) -> bool:
        row = self.db.execute(
            "SELECT 1 FROM runs WHERE id = ? AND command = ?", (run_id, command)
        ).fetchone()
        return row is not None

    def integrity_ok(self) -> bool:
        return self.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def _wal_mode(db: sqlite3.Connection) -> None:
    """Switch to WAL, retrying for as long as the busy timeout: SQLite answers "database is
    locked" at once, without waiting, while another connection is creating the same new
    store (two commands started together on a fresh state dir)."""
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    delay = 0.005
    while True:
        try:
            mode = db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
            mode = None
        if str(mode).lower() == "wal":
            return
        if time.monotonic() > deadline:
            raise StoreError(
                "the store is busy: another supportcli command is creating it",
                hint="wait for it to finish and try again",
            )
        time.sleep(delay)
        delay = min(delay * 2, 0.1)


def _hold_lock(path: Path) -> tuple[int, Path]:
    """Create ``path`` and hold an exclusive flock on it (released when the fd closes, or by
    the kernel when the process dies)."""
    private.make_dir(path.parent)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, private.FILE_MODE)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BaseException:
        os.close(fd)
        raise
    return fd, path


def _try_lock(path: Path) -> tuple[int, Path] | bool:
    """The lock of a run: taken (its holder is gone), False while another process holds it,
    True when the file is missing (nobody can hold it)."""
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return False
    return fd, path


def _release_lock(fd: int, path: Path) -> None:
    path.unlink(missing_ok=True)
    os.close(fd)


def _say_interrupted(run_id: int, command: str) -> None:
    if command == "tag":
        log.warning(
            "tag run %d was interrupted before it finished and may have added some of its "
            "tags: `supportcli untag --run %d` removes all it may have added, `supportcli tag "
            "--apply` adds what it did not",
            run_id,
            run_id,
        )
    else:
        log.info("%s run %d was interrupted before it finished", command, run_id)


def _insert_failures(db: sqlite3.Connection, failures: Sequence[ParseFailure]) -> None:
    rows = [
        (escape_surrogates(f.source), escape_surrogates(f.key), escape_surrogates(f.reason))
        for f in failures
    ]
    db.executemany(
        "INSERT OR REPLACE INTO parse_failures (source, source_key, reason, seen_at) "
        "VALUES (?, ?, ?, ?)",
        [(*row, _now()) for row in rows],
    )


# What makes two messages with one Message-ID the same message (a copy in another folder,
# one delivered twice with other Received headers), rather than two messages.
_CONTENT_COLUMNS = ("sender_addr", "subject", "text_new", "text_quoted", "text_signature",
                    "attachments")  # fmt: skip


def _kept_apart(db: sqlite3.Connection, msg: Message, row: tuple[object, ...]) -> str | None:
    """A message whose Message-ID is stored already: None when a stored message with that id
    (or one kept apart before) has the same content, a duplicate; else it is stored under an
    id of its own, ``<id>#<first 12 of its content hash>``, which is returned."""
    mine = dict(zip(_MESSAGE_COLUMNS, row, strict=True))
    columns = ", ".join(("date", "date_is_fallback", *_CONTENT_COLUMNS))
    stored = db.execute(
        f"SELECT {columns} FROM messages WHERE message_id = ? "  # noqa: S608
        "OR (message_id > ? AND message_id < ?)",  # "<id>#…": between "<id>#" and "<id>$"
        (msg.message_id, msg.message_id + "#", msg.message_id + "$"),
    )
    for other in stored:
        fallback = other["date_is_fallback"] or msg.date_is_fallback
        same_date = fallback or other["date"] == mine["date"]
        if same_date and all(other[c] == mine[c] for c in _CONTENT_COLUMNS):
            return None
    own_id = f"{msg.message_id}#{msg.content_hash[:12]}"
    inserted = db.execute(_INSERT_MESSAGE, (own_id, *row[1:])).rowcount
    return own_id if inserted else None


_MESSAGE_COLUMNS = [
    "message_id",
    "source",
    "source_key",
    "date",
    "date_is_fallback",
    "sender_name",
    "sender_addr",
    "recipients",
    "subject",
    "norm_subject",
    "in_reply_to",
    "refs",
    "text_new",
    "text_quoted",
    "text_signature",
    "is_html",
    "attachments",
    "order_numbers",
    "automated",
    "language",
    "content_hash",
    "flags",
    "warnings",
    "imported_at",
    "utc_offset",
    "relayed_by",
]
_INSERT_MESSAGE = (
    f"INSERT OR IGNORE INTO messages ({', '.join(_MESSAGE_COLUMNS)}) "  # noqa: S608
    f"VALUES ({', '.join('?' * len(_MESSAGE_COLUMNS))})"
)


def _message_row(m: Message) -> tuple[object, ...]:
    return (
        m.message_id,
        escape_surrogates(m.source),
        escape_surrogates(m.source_key),
        m.date.astimezone(UTC).isoformat(),
        int(m.date_is_fallback),
        m.sender_name,
        m.sender_addr,
        json.dumps(list(m.to)),
        m.subject,
        m.norm_subject,
        m.in_reply_to,
        json.dumps(list(m.references)),
        m.text_new,
        m.text_quoted,
        m.text_signature,
        int(m.is_html),
        json.dumps([asdict(a) for a in m.attachments]),
        json.dumps(list(m.order_numbers)),
        m.automated,
        m.language,
        m.content_hash,
        json.dumps(list(m.flags)),
        json.dumps(list(m.warnings)),
        _now(),
        m.utc_offset,
        m.relayed_by,
    )


_LIGHT_BLANK = ("text_new", "text_quoted", "text_signature", "content_hash")
_LIGHT_COLUMNS = ", ".join(
    c if c not in _LIGHT_BLANK else f"'' AS {c}" for c in ["id", *_MESSAGE_COLUMNS]
)


def _identity(value: Any) -> Any:
    return value


def _row_message(row: sqlite3.Row, memo: dict[Any, Any] | None = None) -> Message:
    """A stored message. With ``memo`` (light reads of many rows), values that repeat across
    messages (source, recipients, language, flags …) are shared instead of copied per row."""

    shared = _identity if memo is None else lambda value: memo.setdefault(value, value)

    return Message(
        message_id=row["message_id"],
        source=shared(row["source"]),
        source_key=row["source_key"],
        date=datetime.fromisoformat(row["date"]),
        date_is_fallback=bool(row["date_is_fallback"]),
        sender_name=row["sender_name"],
        sender_addr=row["sender_addr"],
        to=shared(tuple(json.loads(row["recipients"]))),
        subject=row["subject"],
        norm_subject=row["norm_subject"],
        in_reply_to=row["in_reply_to"],
        references=tuple(json.loads(row["refs"])),
        text_new=row["text_new"],
        text_quoted=row["text_quoted"],
        text_signature=row["text_signature"],
        is_html=bool(row["is_html"]),
        attachments=tuple(Attachment(**a) for a in json.loads(row["attachments"])),
        order_numbers=tuple(json.loads(row["order_numbers"])),
        automated=shared(row["automated"]),
        language=shared(row["language"]),
        content_hash=row["content_hash"],
        flags=shared(tuple(json.loads(row["flags"]))),
        warnings=shared(tuple(json.loads(row["warnings"]))),
        utc_offset=row["utc_offset"],
        relayed_by=shared(row["relayed_by"]),
    )


def _row_prediction(row: sqlite3.Row, memo: dict[Any, Any] | None = None) -> Prediction:
    """A stored prediction. With ``memo`` (light reads of many rows), the per-category
    probabilities are left out and repeating values are shared instead of copied per row."""
    detail = json.loads(row["detail"])
    prediction = Prediction(
        category=row["category"],
        category_confidence=row["category_confidence"],
        urgency=row["urgency"],
        urgency_confidence=row["urgency_confidence"],
        needs_review=bool(row["needs_review"]),
        model_id=row["model_id"],
        category_probs=detail.get("cat", {}) if memo is None else {},
        urgency_probs=detail.get("urg", {}),
        cues=tuple(map(_cue_hit, detail.get("cues", []))),
    )
    return prediction if memo is None else light_prediction(prediction, memo)


def _cue_row(hit: CueHit) -> list[str | None]:
    return [hit.cue, hit.text, hit.when.isoformat() if hit.when else None]


def _cue_hit(row: Any) -> CueHit:
    """A stored cue hit: [cue, text, when]; a bare name from before the matched text."""
    if isinstance(row, str):
        return CueHit(row, "")
    cue, text, when = [*row, None, None][:3]
    return CueHit(str(cue), str(text or ""), datetime.fromisoformat(when) if when else None)


def light_prediction(p: Prediction, memo: dict[Any, Any]) -> Prediction:
    """``p`` without per-category probabilities, its strings shared through ``memo`` with the
    other predictions of a big run: what ranking and exports need, at a fraction of the
    memory."""
    return Prediction(
        memo.setdefault(p.category, p.category),
        p.category_confidence,
        memo.setdefault(p.urgency, p.urgency),
        p.urgency_confidence,
        p.needs_review,
        memo.setdefault(p.model_id, p.model_id),
        {},
        {memo.setdefault(k, k): v for k, v in p.urgency_probs.items()},
        memo.setdefault(p.cues, p.cues),
    )
