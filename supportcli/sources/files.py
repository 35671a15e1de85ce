"""Local mail sources: mbox, Maildir, a folder of .eml files, one file, or stdin.

These are a feature (offline use, the demo, the samples) and the test double for IMAP.
"""

from __future__ import annotations

import mailbox
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from ..errors import SourceError
from ..records import RawMessage

MAX_MESSAGE_BYTES = 64 * 1024 * 1024
EML_SUFFIXES = {".eml", ".msg", ".txt", ""}


def _mtime(path: Path) -> datetime | None:
    try:
        return datetime.fromtimestamp(path.stat().st_mtime, tz=UTC)
    except OSError:
        return None


def _read_file(path: Path) -> bytes:
    with path.open("rb") as handle:
        return handle.read(MAX_MESSAGE_BYTES + 1)


@dataclass
class EmlFolderSource:
    """Every ``.eml`` file below a folder (sorted, so runs are repeatable)."""

    path: Path

    @property
    def name(self) -> str:
        return f"eml:{self.path}"

    def iter_messages(self) -> Iterator[RawMessage]:
        files = sorted(
            p for p in self.path.rglob("*") if p.suffix.lower() == ".eml" and p.is_file()
        )
        for file in files:
            try:
                data = _read_file(file)
            except OSError as exc:
                yield RawMessage(self.name, str(file), b"", (f"error:{exc.strerror}",))
                continue
            yield RawMessage(self.name, str(file.relative_to(self.path)), data, (), _mtime(file))


@dataclass
class SingleFileSource:
    path: Path

    @property
    def name(self) -> str:
        return f"file:{self.path}"

    def iter_messages(self) -> Iterator[RawMessage]:
        try:
            data = _read_file(self.path)
        except OSError as exc:
            raise SourceError(f"cannot read {self.path}: {exc.strerror}") from None
        yield RawMessage(self.name, self.path.name, data, (), _mtime(self.path))


@dataclass
class StdinSource:
    stream: BinaryIO | None = None

    name: str = "stdin"

    def iter_messages(self) -> Iterator[RawMessage]:
        stream = self.stream or sys.stdin.buffer
        yield RawMessage(self.name, "-", stream.read(MAX_MESSAGE_BYTES + 1), (), None)


@dataclass
class MboxSource:
    path: Path

    @property
    def name(self) -> str:
        return f"mbox:{self.path}"

    def iter_messages(self) -> Iterator[RawMessage]:
        box = mailbox.mbox(self.path, factory=None, create=False)
        try:
            for index, key in enumerate(box.iterkeys()):
                try:
                    data = box.get_bytes(key)
                except Exception as exc:  # one broken entry never stops the run
                    yield RawMessage(self.name, str(index), b"", (f"error:{exc}",))
                    continue
                yield RawMessage(self.name, str(index), data, ())
        finally:
            box.close()


@dataclass
class MaildirSource:
    """A Maildir folder (``new/`` and ``cur/``); flags are read from the file names."""

    path: Path

    @property
    def name(self) -> str:
        return f"maildir:{self.path}"

    def iter_messages(self) -> Iterator[RawMessage]:
        files = sorted(
            f for sub in ("new", "cur") for f in (self.path / sub).iterdir() if f.is_file()
        )
        for file in files:
            key, _, info = file.name.partition(":2,")
            try:
                data = _read_file(file)
            except OSError as exc:
                yield RawMessage(self.name, key, b"", (f"error:{exc.strerror}",))
                continue
            yield RawMessage(self.name, key, data, tuple(_maildir_flags(info)), _mtime(file))


def _maildir_flags(info: str) -> Iterator[str]:
    names = {"S": "\\Seen", "R": "\\Answered", "F": "\\Flagged", "T": "\\Deleted"}
    yield from (names[ch] for ch in info if ch in names)


def open_path(spec: str) -> EmlFolderSource | SingleFileSource | StdinSource | MboxSource | MaildirSource:
    """Pick the source for a path given on the command line."""
    if spec == "-":
        return StdinSource()
    path = Path(spec).expanduser()
    if not path.exists():
        raise SourceError(f"no such file or folder: {spec}")
    if not os.access(path, os.R_OK):
        raise SourceError(f"cannot read {spec}: permission denied")
    if path.is_dir():
        if all((path / sub).is_dir() for sub in ("cur", "new", "tmp")):
            return MaildirSource(path)
        return EmlFolderSource(path)
    if _is_mbox(path):
        return MboxSource(path)
    return SingleFileSource(path)


def _is_mbox(path: Path) -> bool:
    try:
        with path.open("rb") as handle:
            head = handle.read(5)
    except OSError as exc:
        raise SourceError(f"cannot read {path}: {exc.strerror}") from None
    return head == b"From " or path.suffix.lower() == ".mbox"
