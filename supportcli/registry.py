"""Which model is active, and where models live.

The shipped default lives in the package (``models/default``); models trained by the user live
in ``<state dir>/models/<version>/``, and ``<state dir>/models/ACTIVE`` names the active one.
When the installed scikit-learn differs from the one that built the default model, the
default is rebuilt from the bundled samples into the state dir (with a warning) instead of
unpickling a model across versions.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import artifacts, private, resources
from .config import Settings
from .errors import ModelError

log = logging.getLogger(__name__)
REBUILT_DEFAULT = "default-rebuilt"


@dataclass(frozen=True)
class LoadedModel:
    model: Any  # model.TrainedModel
    meta: dict[str, Any]
    directory: Path

    @property
    def model_id(self) -> str:
        return f"{self.meta.get('name', self.directory.name)}-{str(self.meta['sha256'])[:10]}"


def trusted_roots(settings: Settings) -> list[Path]:
    return [resources.default_model_dir(), settings.models_dir]


def active_dir(settings: Settings) -> Path:
    pointer = settings.models_dir / "ACTIVE"
    if pointer.is_file():
        name = pointer.read_text(encoding="utf-8").strip()
        if name == "default":
            return resources.default_model_dir()
        candidate = settings.models_dir / name
        if name and "/" not in name and candidate.is_dir():
            return candidate
        log.warning("the active model %r is missing; using the shipped default", name)
    return resources.default_model_dir()


def set_active(settings: Settings, name: str) -> None:
    private.make_dir(settings.models_dir)
    pointer = settings.models_dir / "ACTIVE"
    tmp = pointer.with_suffix(".tmp")
    tmp.write_text(name + "\n", encoding="utf-8")
    os.replace(tmp, pointer)


def load_active(settings: Settings, model_dir: Path | None = None) -> LoadedModel:
    directory = model_dir or active_dir(settings)
    meta = artifacts.read_meta(directory)
    if _version_mismatch(meta) and directory.resolve() == resources.default_model_dir().resolve():
        return _rebuilt_default(settings, meta)
    if _version_mismatch(meta):
        raise ModelError(
            f"the model in {directory} was built by another scikit-learn or supportcli version",
            hint="retrain it with `supportcli train`, or `supportcli model use default`",
        )
    return _load_verified(directory, settings, str(meta["sha256"]))


# Verified models already loaded in this process, by (directory, sha256 of the file).
_LOADED: dict[tuple[Path, str], LoadedModel] = {}


def _load_verified(directory: Path, settings: Settings, expected_sha: str) -> LoadedModel:
    key = (directory.resolve(), expected_sha)
    model_file = directory / artifacts.MODEL_FILE
    cached = _LOADED.get(key)
    if cached is not None and artifacts.sha256_file(model_file) == expected_sha:
        return cached
    model, meta = artifacts.load(directory, trusted_roots(settings))
    _LOADED.clear()  # keep one model in memory, not every version ever used
    _LOADED[key] = LoadedModel(model, meta, directory)
    return _LOADED[key]


def _version_mismatch(meta: dict[str, Any]) -> bool:
    """True when the model was built by another scikit-learn or another feature schema."""
    import sklearn

    from .features import READABLE_FEATURE_SCHEMAS

    return (
        str(meta.get("versions", {}).get("scikit-learn")) != sklearn.__version__
        or meta.get("feature_schema") not in READABLE_FEATURE_SCHEMAS
    )


def _rebuilt_default(settings: Settings, shipped_meta: dict[str, Any]) -> LoadedModel:
    import sklearn

    directory = settings.models_dir / REBUILT_DEFAULT
    if directory.is_dir():
        try:
            model, meta = artifacts.load(directory, trusted_roots(settings))
            if not _version_mismatch(meta) and meta.get("samples_sha256") == shipped_meta.get(
                "samples_sha256"
            ):
                return LoadedModel(model, meta, directory)
        except ModelError:
            pass
    log.warning(
        "the shipped model was built with scikit-learn %s, this is %s: rebuilding it from the "
        "bundled samples into %s (once)",
        shipped_meta.get("versions", {}).get("scikit-learn"),
        sklearn.__version__,
        directory,
    )
    from .training import train_default

    train_default(directory, with_metrics=False)
    model, meta = artifacts.load(directory, trusted_roots(settings))
    return LoadedModel(model, meta, directory)
