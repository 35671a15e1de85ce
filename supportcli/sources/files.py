"""Local mail sources: mbox, Maildir, a folder of .eml files, one file, or stdin.

These are a feature (offline use, the demo, the samples) and the test double for IMAP.
A file that cannot be read inside a folder or mailbox is yielded as a RawMessage with empty
data and an ``error:`` flag, so the run reports it and goes on; a path that cannot be read
at all is a SourceError with one clear line. File names are kept losslessly as text
(``sanitize.file_name``): a name that is not UTF-8 is stored and reported, never a crash.
"""

from __future__ import annotations

import mailbox
import os
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from ..errors import SourceError
from ..records import RawMessage
from ..sanitize import file_name

MAX_MESSAGE_BYTES = 64 * 1024 * 1024
_MBOXRD_ESCAPED = re.compile(rb"^>(>*From )", re.MULTILINE)
_MAILDIR_INFO = re.compile(r"[:;!]2,")
_MAILDIR_FLAGS = {
    "S": "\\Seen",
    "R": "\\Answered",
    "F": "\\Flagged",
    "T": "\\Deleted",
    "D": "\\Draft",
}


def _mtime(path: Path) -> datetime | None:
    try:
        return datetime.fromtimestamp(path.stat().st_mtime, tz=UTC)
    except (OSError, OverflowError, ValueError):
        return None


def _read_file(path: Path) -> bytes:
    with path.open("rb") as handle:
        return handle.read(MAX_MESSAGE_BYTES + 1)


def _why(exc: OSError, path: Path) -> str:
    reason = exc.strerror or type(exc).__name__
    if path.is_symlink() and not path.exists():
        reason = "broken symbolic link"
    return f"error:cannot read {file_name(path.name)}: {reason}"


def _unreadable(source: str, key: str, exc: OSError, path: Path) -> RawMessage:
    return RawMessage(source, key, b"", (_why(exc, path),))


@dataclass
class EmlFolderSource:
    """Every ``.eml`` file below a folder (sorted, so runs are repeatable)."""

    path: Path

    @property
    def name(self) -> str:
        return f"eml:{file_name(self.path)}"

    def iter_messages(self) -> Iterator[RawMessage]:
        files = sorted(
            p
            for p in self.path.rglob("*")
            if p.suffix.lower() == ".eml" and not p.name.startswith(".") and not p.is_dir()
        )
        for file in files:
            key = file_name(file.relative_to(self.path).as_posix())
            try:
                data = _read_file(file)
            except OSError as exc:
                yield _unreadable(self.name, key, exc, file)
                continue
            yield RawMessage(self.name, key, data, (), _mtime(file))


@dataclass
class SingleFileSource:
    path: Path

    @property
    def name(self) -> str:
        return f"file:{file_name(self.path)}"

    def iter_messages(self) -> Iterator[RawMessage]:
        try:
            data = _read_file(self.path)
        except OSError as exc:
            raise SourceError(
                f"cannot read {file_name(self.path)}: {exc.strerror or type(exc).__name__}"
            ) from None
        yield RawMessage(self.name, file_name(self.path.name), data, (), _mtime(self.path))


@dataclass
class StdinSource:
    """Standard input (``-``): one message, or a whole mbox when it starts with a ``From ``
    line (``cat inbox.mbox | supportcli triage -``)."""

    stream: BinaryIO | None = None

    name: str = "stdin"

    def iter_messages(self) -> Iterator[RawMessage]:
        stream = self.stream or sys.stdin.buffer
        try:
            data = stream.read(MAX_MESSAGE_BYTES + 1)
            if not data.startswith(b"From "):
                yield RawMessage(self.name, "-", data, (), None)
                return
            yield from self._mbox(data, stream)
        except OSError as exc:
            raise SourceError(f"cannot read standard input: {exc}") from None

    def _mbox(self, head: bytes, rest: BinaryIO) -> Iterator[RawMessage]:
        """The mbox is spooled to a private temporary file (mode 0600) that the mailbox
        library reads like any mbox file, then deleted."""
        import shutil
        import tempfile

        fd, name = tempfile.mkstemp(prefix="supportcli-stdin-", suffix=".mbox")
        try:
            with os.fdopen(fd, "wb") as spool:
                spool.write(head)
                shutil.copyfileobj(rest, spool)
            for raw in MboxSource(Path(name)).iter_messages():
                yield RawMessage(self.name, raw.key, raw.data, raw.flags, raw.received)
        finally:
            os.unlink(name)


@dataclass
class MboxSource:
    """An mbox file; ``>From `` lines (mboxrd escaping) are unescaped."""

    path: Path

    @property
    def name(self) -> str:
        return f"mbox:{file_name(self.path)}"

    def iter_messages(self) -> Iterator[RawMessage]:
        try:
            box = mailbox.mbox(self.path, factory=None, create=False)
            keys = list(box.iterkeys())
        except (OSError, mailbox.Error) as exc:
            raise SourceError(f"cannot read mbox {self.path}: {exc}") from None
        try:
            for index, key in enumerate(keys):
                try:
                    data = box.get_bytes(key, from_=True)
                except Exception as exc:  # one broken entry never stops the run
                    yield RawMessage(self.name, str(index), b"", (f"error:{exc}",))
                    continue
                from_line, _, data = data.partition(b"\n")
                data = _MBOXRD_ESCAPED.sub(rb"\1", data)
                yield RawMessage(self.name, str(index), data, (), _from_line_date(from_line))
        finally:
            box.close()


def _from_line_date(line: bytes) -> datetime | None:
    """The delivery time on an mbox ``From sender Tue Mar  4 09:12:00 2025`` line (UTC)."""
    parts = line.decode("ascii", "replace").split()
    if len(parts) < 7:
        return None
    try:
        stamp = datetime.strptime(" ".join(parts[2:7]), "%a %b %d %H:%M:%S %Y")
    except ValueError:
        return None
    return stamp.replace(tzinfo=UTC)


@dataclass
class MaildirSource:
    """A Maildir folder (``new/`` and ``cur/``); flags are read from the file names."""

    path: Path

    @property
    def name(self) -> str:
        return f"maildir:{file_name(self.path)}"

    def iter_messages(self) -> Iterator[RawMessage]:
        files: list[Path] = []
        for sub in ("new", "cur"):
            try:
                files.extend(f for f in (self.path / sub).iterdir() if not f.is_dir())
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise SourceError(f"cannot read {self.path / sub}: {exc.strerror}") from None
        for file in sorted(files):
            if file.name.startswith("."):
                continue
            key, info = [*_MAILDIR_INFO.split(file_name(file.name), maxsplit=1), ""][:2]
            try:
                data = _read_file(file)
            except OSError as exc:
                yield _unreadable(self.name, key, exc, file)
                continue
            flags = tuple(_MAILDIR_FLAGS[ch] for ch in sorted(set(info)) if ch in _MAILDIR_FLAGS)
            yield RawMessage(self.name, key, data, flags, _mtime(file))


FileSource = EmlFolderSource | SingleFileSource | StdinSource | MboxSource | MaildirSource


def open_path(spec: str) -> FileSource:
    """Pick the source for a path given on the command line (``-`` is stdin)."""
    if spec == "-":
        return StdinSource()
    path = Path(spec).expanduser()
    if not path.exists():
        broken = path.is_symlink()
        raise SourceError(f"{'broken link' if broken else 'no such file or folder'}: {spec}")
    if not os.access(path, os.R_OK):
        raise SourceError(f"cannot read {spec}: permission denied")
    if path.is_dir():
        if all((path / sub).is_dir() for sub in ("cur", "new")):
            return MaildirSource(path)
        return EmlFolderSource(path)
    if not path.is_file():
        raise SourceError(f"not a file or folder: {spec}")
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
