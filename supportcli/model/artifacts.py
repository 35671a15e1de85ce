"""Model directories: ``model.joblib`` + ``meta.json``. A joblib file is a pickle, so a model
file is code: before unpickling, loading checks that the directory is one supportcli manages
(the shipped default or the state dir's ``models/``) and that the file's sha256 matches
``meta.json``. Saving writes a temp file, fsyncs and renames: never a half-written model.
A model holds words from the mail: its files are 0600 in a 0700 folder.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import platform
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .. import __version__, private
from ..errors import ModelError

MODEL_FILE = "model.joblib"
META_FILE = "meta.json"


def sha256_file(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def versions() -> dict[str, str]:
    import sklearn

    return {"supportcli": __version__, "scikit-learn": sklearn.__version__,
            "python": platform.python_version()}


def _atomic_write(path: Path, data: bytes, mode: int = private.FILE_MODE) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def write_private(path: Path, data: bytes) -> None:
    """Write a 0600 file atomically."""
    _atomic_write(path, data)


def save(
    model: Any, directory: Path, meta: dict[str, Any], *, shared: bool = False
) -> dict[str, Any]:
    """Write the model and its meta atomically; returns the full meta. Its files are 0600 in
    a 0700 folder, unless ``shared`` (the shipped default, from the bundled samples: 0644)."""
    import joblib

    if shared:
        directory.mkdir(parents=True, exist_ok=True)
    else:
        private.make_dir(directory)  # 0700, and so is a models/ folder made on the way
    mode = 0o644 if shared else private.FILE_MODE
    buffer = io.BytesIO()
    joblib.dump(model, buffer, compress=3)
    data = buffer.getvalue()
    full = {**meta, "versions": versions(), "sha256": hashlib.sha256(data).hexdigest()}
    # Each file is replaced atomically. A crash between the two leaves a hash mismatch that
    # load refuses cleanly; managed models go to a fresh version directory that is activated
    # only after both files are complete, so the active model is never touched.
    _atomic_write(directory / MODEL_FILE, data, mode)
    text = json.dumps(full, indent=2, sort_keys=True) + "\n"
    _atomic_write(directory / META_FILE, text.encode(), mode)
    return full


def read_meta(directory: Path) -> dict[str, Any]:
    path = directory / META_FILE
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelError(f"no model in {directory} (missing {META_FILE})") from None
    except (OSError, ValueError) as exc:
        raise ModelError(f"unreadable model metadata {path}: {exc}") from None
    if not isinstance(meta, dict) or "sha256" not in meta:
        raise ModelError(f"model metadata {path} has no sha256")
    return meta


def load(directory: Path, trusted_roots: Iterable[Path]) -> tuple[Any, dict[str, Any]]:
    """Verify and unpickle a model directory. Raises ModelError (exit 5) before unpickling
    anything that is not trusted or not intact; the bytes checked are the bytes unpickled."""
    directory = directory.resolve()
    if not any(directory == root or root in directory.parents
               for root in (Path(r).resolve() for r in trusted_roots)):
        raise ModelError(f"refusing to load a model from {directory}: model files are code, and "
                         "only supportcli's own model directories are trusted")
    meta, model_path = read_meta(directory), directory / MODEL_FILE
    try:
        data = model_path.read_bytes()
    except OSError:
        raise ModelError(f"no model file {model_path}") from None
    actual = hashlib.sha256(data).hexdigest()
    if actual != meta["sha256"]:
        raise ModelError(f"model file {model_path} does not match its meta.json (sha256 "
                         f"{actual[:12]}… expected {str(meta['sha256'])[:12]}…): "
                         "refusing to load it")
    import joblib

    try:
        return joblib.load(io.BytesIO(data)), meta
    except Exception as exc:
        raise ModelError(f"cannot load model {model_path}: {type(exc).__name__}") from None
