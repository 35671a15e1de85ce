"""The wheel carries the default model and the demo inbox: a plain `pip install .` works
away from the checkout."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps", "-q", "-w", str(out)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return next(out.glob("supportcli-*.whl"))


def test_wheel_contains_model_samples_and_demo(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    modules = {p.relative_to(REPO).as_posix() for p in (REPO / "supportcli").rglob("*.py")}
    assert modules <= names  # every module, those of subpackages included
    assert "supportcli/_models/default/model.joblib" in names
    assert "supportcli/_models/default/meta.json" in names
    assert "supportcli/_samples/labels.csv" in names
    assert "supportcli/_samples/demo/labels.csv" in names
    assert (
        sum(n.startswith("supportcli/_samples/demo/") and n.endswith(".eml") for n in names) >= 35
    )
    assert (
        sum(n.startswith("supportcli/_samples/train/") and n.endswith(".eml") for n in names) >= 600
    )


def test_installed_wheel_triages_the_demo_outside_the_checkout(wheel: Path, tmp_path: Path) -> None:
    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "-q",
            "--target",
            str(target),
            str(wheel),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    env = {**os.environ, "PYTHONPATH": str(target), "SUPPORTCLI_HOME": str(tmp_path / "home")}
    result = subprocess.run(
        [sys.executable, "-m", "supportcli", "triage", "--demo", "--format", "json", "-n", "3"],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert len(json.loads(result.stdout)) == 3
    located = subprocess.run(
        [sys.executable, "-c", "import supportcli, sys; print(supportcli.__file__)"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        check=True,
    )
    assert located.stdout.startswith(str(target))
    shipped = target / "supportcli" / "_models" / "default" / "model.joblib"
    before = shipped.stat().st_mtime_ns
    refused = subprocess.run(
        [sys.executable, "-m", "supportcli", "train", "--default"],
        capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path,
    )  # fmt: skip
    assert refused.returncode == 2, refused.stderr
    assert "is installed" in refused.stderr and "--output" in refused.stderr
    assert shipped.stat().st_mtime_ns == before
