"""Which model is active, where models live (the shipped default in ``models/default``, the
shop's versions in ``<state dir>/models/``, ``ACTIVE`` naming one), and whether a saved model
may be used: only for the inputs it was trained with, its fingerprint equal to the code's.
Else the shipped default gives way to a default rebuilt for this code (``RebuildNeeded`` when
there is none yet: the workflow rebuilds it) and a shop's model is refused with a hint.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import private, resources
from ..config import Settings
from ..errors import ModelError, UsageError
from . import artifacts

if TYPE_CHECKING:
    from .classifier import TrainedModel

log = logging.getLogger(__name__)
REBUILT_DEFAULT = "default-rebuilt"


class RebuildNeeded(ModelError):
    """The shipped default was built for other inputs; ``directory`` is where to rebuild it."""

    def __init__(self, reason: str, directory: Path) -> None:
        super().__init__(f"the shipped model was built for other inputs ({reason})",
                         hint="it is rebuilt from the bundled samples on first use")
        self.directory = directory


@dataclass(frozen=True)
class LoadedModel:
    model: TrainedModel
    meta: dict[str, Any]
    directory: Path

    @property
    def model_id(self) -> str:
        return f"{self.meta.get('name', self.directory.name)}-{str(self.meta['sha256'])[:10]}"

    @property
    def thresholds(self) -> dict[str, float]:
        """The model's own review thresholds: per target, and p(urgent) for ``urgent_review``."""
        return {"category": float(self.model.thresholds["category"]),
                "urgency": float(self.model.thresholds["urgency"]),
                "urgent_review": float(self.model.urgent_review())}


@dataclass(frozen=True)
class VerifiedModel:
    """What ranking needs of the active model, as remembered the last time it was loaded and
    verified here: its id (which the store's predictions carry) and its review thresholds."""

    model_id: str
    thresholds: dict[str, float]


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
    tmp = settings.models_dir / "ACTIVE.tmp"
    tmp.write_text(name + "\n", encoding="utf-8")
    os.replace(tmp, settings.models_dir / "ACTIVE")


def mismatch(meta: dict[str, Any]) -> str:
    """What differs between the inputs a model was trained for and the code's ('' if none)."""
    from .features import fingerprint

    saved = meta.get("fingerprint")
    if not isinstance(saved, dict):
        return "a model from before input fingerprints"
    current = fingerprint()
    return ", ".join(
        f"{key} {saved.get(key)} -> {value}" if key in ("scikit-learn", "numpy", "model", "text")
        else f"{key} changed" for key, value in current.items() if saved.get(key) != value)


def load_active(settings: Settings, model_dir: Path | None = None) -> LoadedModel:
    """The active model, verified; ``RebuildNeeded`` when the default must be rebuilt first."""
    directory = model_dir or active_dir(settings)
    loaded = _load_active(settings, directory)
    if model_dir is None:
        _remember(settings, directory, loaded)
    return loaded


def _load_active(settings: Settings, directory: Path) -> LoadedModel:
    meta = artifacts.read_meta(directory)
    problem = mismatch(meta)
    if not problem:
        return _load_verified(directory, settings, str(meta["sha256"]))
    if directory.resolve() != resources.default_model_dir().resolve():
        raise ModelError(
            f"the model in {directory} was trained for other inputs ({problem}): not using it",
            hint="retrain it with `supportcli train`, or `supportcli model use default`",
        )
    rebuilt = settings.models_dir / REBUILT_DEFAULT
    try:
        ours = artifacts.read_meta(rebuilt)
        if not mismatch(ours) and ours.get("samples_sha256") == meta.get("samples_sha256"):
            return _load_verified(rebuilt, settings, str(ours["sha256"]))
    except ModelError:
        pass  # missing or broken: rebuild it
    raise RebuildNeeded(problem, rebuilt)


VERIFIED_FILE = "verified.json"  # in the models dir: what ``verified`` reads
# what decides a model's inputs and predictions: its own code and the deadline grammar its cue reads
_WATCHED = ("features.py", "cues.py", "text.py", "classifier.py", "../parse/deadlines.py")


def _environment() -> str:
    """A digest of what decides a model's fingerprint, computed without importing numpy or
    scikit-learn: the installed library versions and the sources of the model's inputs."""
    from importlib.metadata import version

    digest = hashlib.sha256()
    for library in ("scikit-learn", "numpy", "joblib"):
        digest.update(f"{library}={version(library)};".encode())
    for name in _WATCHED:
        digest.update((Path(__file__).parent / name).read_bytes())
    return digest.hexdigest()[:32]


def _remember(settings: Settings, active: Path, loaded: LoadedModel) -> None:
    entry = {"active_sha256": artifacts.read_meta(active)["sha256"],
             "directory": str(loaded.directory.resolve()), "sha256": loaded.meta["sha256"],
             "model_id": loaded.model_id, "thresholds": loaded.thresholds,
             "environment": _environment()}
    key = str(active.resolve())
    known = _remembered(settings)
    if known.get(key) == entry:
        return
    try:
        private.make_dir(settings.models_dir)
        artifacts.write_private(settings.models_dir / VERIFIED_FILE,
                                json.dumps({key: entry}, indent=2).encode())
    except OSError as exc:  # only a shortcut: ranking loads the model instead
        log.debug("cannot note the verified model: %s", exc)


def _remembered(settings: Settings) -> dict[str, Any]:
    try:
        found = json.loads((settings.models_dir / VERIFIED_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}


def verified(settings: Settings) -> VerifiedModel | None:
    """The active model as last verified by ``load_active``, without loading it (so without
    numpy or scikit-learn); None when the model files, the libraries or the model's input code
    changed since, or it was never loaded here. Enough to rank stored predictions."""
    active = active_dir(settings)
    entry = _remembered(settings).get(str(active.resolve()))
    if not isinstance(entry, dict):
        return None
    try:
        if (artifacts.read_meta(active)["sha256"] != entry.get("active_sha256")
                or artifacts.read_meta(Path(str(entry.get("directory"))))["sha256"]
                != entry.get("sha256") or entry.get("environment") != _environment()):
            return None
        return VerifiedModel(str(entry["model_id"]),
                             {str(k): float(v) for k, v in entry["thresholds"].items()})
    except (ModelError, KeyError, TypeError, ValueError, AttributeError):
        return None


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


@dataclass(frozen=True)
class ModelVersion:
    name: str
    created: str
    n_samples: int
    category_macro_f1: float | None
    urgency_macro_f1: float | None
    active: bool
    directory: Path


def list_versions(settings: Settings) -> list[ModelVersion]:
    active = active_dir(settings).resolve()
    dirs = [resources.default_model_dir()]
    if settings.models_dir.is_dir():
        dirs += sorted(p for p in settings.models_dir.iterdir() if (p / "meta.json").is_file())
    out = []
    for directory in dirs:
        try:
            meta = artifacts.read_meta(directory)
        except ModelError as exc:
            log.warning("%s", exc.message)
            continue
        metrics = meta.get("metrics", {})
        name = "default" if directory == resources.default_model_dir() else directory.name
        out.append(ModelVersion(
            name, str(meta.get("created", "")), int(meta.get("n_samples", 0)),
            metrics.get("category", {}).get("macro_f1"), metrics.get("urgency", {}).get("macro_f1"),
            directory.resolve() == active, directory))
    return out


def use_version(settings: Settings, name: str) -> ModelVersion:
    versions = {v.name: v for v in list_versions(settings)}
    if name not in versions:
        raise UsageError(f"no model version {name!r}", hint="see `supportcli model list`")
    set_active(settings, name)
    with contextlib.suppress(RebuildNeeded):  # the default: rebuilt on first use
        load_active(settings)  # verify it loads before saying so
    return next(v for v in list_versions(settings) if v.name == name)
