"""Customer mail on disk stays private: the state dir and the directories below it are 0700,
the store and the saved models (a model holds words from the mail) are 0600, whatever the
umask. State written by an older supportcli is tightened once, with a one-line notice."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

log = logging.getLogger(__name__)
DIR_MODE = 0o700
FILE_MODE = 0o600
STORE_SUFFIXES = ("", "-wal", "-shm", "-journal")  # SQLite's files beside the store
MODELS = "models"


def make_dir(path: Path) -> None:
    """Create ``path`` and any missing parent of it 0700 (``mkdir -p`` would give them the
    umask's mode, 0755 under the usual umask 022)."""
    missing = []
    current = path
    while not current.exists():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    for directory in reversed(missing):
        try:
            directory.mkdir(mode=DIR_MODE)
        except FileExistsError:  # another process made it meanwhile
            continue


def tighten_state(state_dir: Path, store_name: str) -> list[Path]:
    """Take group and other access away from the state dir, the store's files and the saved
    model versions; log one line when anything had to change. Returns what changed."""
    changed = [p for p in _private_paths(state_dir, store_name) if _tighten(p)]
    if changed:
        log.warning(
            "made %d file(s) and folder(s) in %s private (0600 files, 0700 folders): they "
            "hold customer mail",
            len(changed),
            state_dir,
        )
    return changed


def _private_paths(state_dir: Path, store_name: str) -> list[Path]:
    paths = [state_dir, *(state_dir / f"{store_name}{s}" for s in STORE_SUFFIXES)]
    models = state_dir / MODELS
    if models.is_dir() and not models.is_symlink():
        paths.append(models)
        for version in sorted(models.iterdir()):
            paths.append(version)
            if version.is_dir() and not version.is_symlink():
                paths.extend(sorted(version.iterdir()))
    return paths


def _tighten(path: Path) -> bool:
    """chmod one path to 0700 (directory) or 0600 (file) if others could read it; links
    are not followed and what cannot be changed is left as it is."""
    try:
        mode = path.lstat().st_mode
    except OSError:
        return False
    if stat.S_ISLNK(mode) or not mode & 0o077:
        return False
    wanted = DIR_MODE if stat.S_ISDIR(mode) else FILE_MODE
    try:
        os.chmod(path, stat.S_IMODE(mode) & wanted)
    except OSError as exc:
        log.warning("cannot make %s private: %s", path, exc.strerror)
        return False
    return True
