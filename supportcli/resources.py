"""Where the bundled data lives: the checkout's ``samples/`` and ``models/``, or their copies
inside the installed wheel (``supportcli/_samples``, ``supportcli/_models``)."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def _bundled(checkout_name: str, wheel_name: str) -> Path:
    checkout = _PACKAGE.parent / checkout_name
    if checkout.is_dir() and (_PACKAGE.parent / "pyproject.toml").is_file():
        return checkout
    return _PACKAGE / wheel_name


def samples_dir() -> Path:
    """Labelled training samples (``train/``) and the demo inbox (``demo/``)."""
    return _bundled("samples", "_samples")


def demo_dir() -> Path:
    return samples_dir() / "demo"


def default_model_dir() -> Path:
    return _bundled("models", "_models") / "default"
