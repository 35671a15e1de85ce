"""Which model loads: trusted directories only, the hash checked before unpickling, and a
model used only for the inputs it was trained with (its fingerprint): the shipped default is
rebuilt once, a shop's own model is refused with a hint, never used silently."""

from __future__ import annotations

import json
import logging
import pickle
import shutil
from pathlib import Path

import pytest

from supportcli import resources, workflows
from supportcli.cli import main
from supportcli.config import load_settings
from supportcli.errors import ModelError
from supportcli.model import artifacts, cues, registry


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


class _Trap:
    """Unpickling this touches a file: proof that a model file was unpickled."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (Path.touch, (str(self.marker),))  # type: ignore[return-value]


def test_a_tampered_model_is_refused_before_unpickling(
    isolated_state: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    version = isolated_state / "models" / "v1"
    shutil.copytree(resources.default_model_dir(), version)
    marker = tmp_path / "unpickled"
    (version / "model.joblib").write_bytes(pickle.dumps(_Trap(marker)))
    registry.set_active(load_settings(), "v1")
    with pytest.raises(ModelError, match=r"does not match its meta\.json"):
        registry.load_active(load_settings())
    assert main(["classify", str(resources.demo_dir() / "demo-002.eml")]) == 5
    assert "refusing to load it" in capsys.readouterr().err
    assert not marker.exists()


def test_missing_active_version_falls_back_to_default(
    isolated_state: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (isolated_state / "models").mkdir()
    (isolated_state / "models" / "ACTIVE").write_text("v-gone\n")
    with caplog.at_level(logging.WARNING):
        directory = registry.active_dir(load_settings())
    assert directory == resources.default_model_dir()
    assert "missing" in caplog.text


def _shipped_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **fingerprint: str) -> Path:
    old = tmp_path / "shipped" / "default"
    shutil.copytree(resources.default_model_dir(), old)
    meta = json.loads((old / "meta.json").read_text())
    meta["fingerprint"].update(fingerprint)
    (old / "meta.json").write_text(json.dumps(meta))
    monkeypatch.setattr(resources, "default_model_dir", lambda: old)
    return old


def test_a_scikit_learn_version_change_rebuilds_the_default_once(
    tmp_path: Path,
    isolated_state: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    _shipped_copy(tmp_path, monkeypatch, **{"scikit-learn": "0.99"})
    with pytest.raises(registry.RebuildNeeded, match=r"scikit-learn 0\.99 -> "):
        registry.load_active(load_settings())  # loading never trains: it says so
    with caplog.at_level(logging.WARNING):
        loaded = workflows.load_model(load_settings())  # the workflow decides to rebuild
    assert "rebuilding" in caplog.text
    assert loaded.directory == isolated_state / "models" / registry.REBUILT_DEFAULT
    rebuilt = loaded.directory / "model.joblib"
    stamp = rebuilt.stat().st_mtime_ns
    caplog.clear()
    again = workflows.load_model(load_settings())
    assert again.directory == loaded.directory
    assert rebuilt.stat().st_mtime_ns == stamp
    assert "rebuilding" not in caplog.text


def test_editing_the_cue_list_rebuilds_the_default_and_refuses_a_shop_model(
    isolated_state: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """One alternative inserted at the head of the chargeback cue: a model saved before is
    never used silently."""
    shop = isolated_state / "models" / "v1"
    shutil.copytree(resources.default_model_dir(), shop)
    first = cues.CUES[0]
    edited = cues.Cue(first.name, (r"file a dispute", *first.patterns))
    monkeypatch.setattr(cues, "CUES", (edited, *cues.CUES[1:]))
    with pytest.raises(registry.RebuildNeeded, match=r"cues changed"):
        registry.load_active(load_settings())
    registry.set_active(load_settings(), "v1")
    assert main(["classify", str(resources.demo_dir() / "demo-020.eml")]) == 5
    err = capsys.readouterr().err.splitlines()
    assert err[0].endswith("was trained for other inputs (cues changed): not using it")
    assert "retrain it with `supportcli train`" in err[1]


def test_doctor_says_the_default_will_be_rebuilt_and_does_not_train(
    tmp_path: Path, isolated_state: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from supportcli.doctor import model_check

    _shipped_copy(tmp_path, monkeypatch, cues="from an older cue list")
    check = model_check(load_settings())
    assert check.ok and "cues changed" in check.detail
    assert "rebuilt from the bundled samples on first use" in check.detail
    assert not (isolated_state / "models" / registry.REBUILT_DEFAULT).exists()
