"""Which model loads: trusted directories only, hash checked before unpickling, and a
scikit-learn version change rebuilds the default model instead of unpickling across versions."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest

from supportcli import artifacts, registry, resources
from supportcli.config import load_settings
from supportcli.errors import ModelError


def test_default_model_loads_and_predicts() -> None:
    loaded = registry.load_active(load_settings())
    assert loaded.model_id.startswith("default-")
    [p] = loaded.model.predict(["Where is my parcel? It never arrived"], loaded.model_id)
    assert p.category in loaded.model.categories


def test_model_outside_trusted_directories_is_refused_before_unpickling(tmp_path: Path) -> None:
    elsewhere = tmp_path / "downloaded-model"
    shutil.copytree(resources.default_model_dir(), elsewhere)
    (elsewhere / "model.joblib").write_bytes(b"not even a pickle")
    with pytest.raises(ModelError, match="only supportcli's own model directories"):
        artifacts.load(elsewhere, registry.trusted_roots(load_settings()))


def test_missing_active_version_falls_back_to_default(
    isolated_state: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (isolated_state / "models").mkdir()
    (isolated_state / "models" / "ACTIVE").write_text("v-gone\n")
    with caplog.at_level(logging.WARNING):
        directory = registry.active_dir(load_settings())
    assert directory == resources.default_model_dir()
    assert "missing" in caplog.text


def test_version_mismatch_rebuilds_default_into_state_dir_once(
    tmp_path: Path,
    isolated_state: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    old = tmp_path / "shipped" / "default"
    shutil.copytree(resources.default_model_dir(), old)
    meta = json.loads((old / "meta.json").read_text())
    meta["versions"]["scikit-learn"] = "0.99"
    (old / "meta.json").write_text(json.dumps(meta))
    monkeypatch.setattr(resources, "default_model_dir", lambda: old)

    with caplog.at_level(logging.WARNING):
        loaded = registry.load_active(load_settings())
    assert "rebuilding" in caplog.text
    assert loaded.directory == isolated_state / "models" / registry.REBUILT_DEFAULT
    rebuilt = loaded.directory / "model.joblib"
    stamp = rebuilt.stat().st_mtime_ns
    caplog.clear()
    again = registry.load_active(load_settings())
    assert again.directory == loaded.directory
    assert rebuilt.stat().st_mtime_ns == stamp
    assert "rebuilding" not in caplog.text


def test_models_of_the_schema_before_the_word_pairs_still_load() -> None:
    import sklearn

    versions = {"scikit-learn": sklearn.__version__}
    assert not registry._version_mismatch({"versions": versions, "feature_schema": 3})
    assert not registry._version_mismatch({"versions": versions, "feature_schema": 2})
    assert registry._version_mismatch({"versions": versions, "feature_schema": 1})
    assert registry._version_mismatch({"versions": versions, "feature_schema": 4})
