"""Typed settings. Precedence: defaults < TOML file < ``SUPPORTCLI_*`` env < command-line flags.

``SUPPORTCLI_HOME`` moves the whole state dir (store, models, locks); ``SUPPORTCLI_CONFIG``
names the config file.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .errors import ConfigError

CATEGORIES: tuple[str, ...] = (
    "order_status",
    "shipping_delivery",
    "returns_refunds",
    "cancellation",
    "billing_payment",
    "product_question",
    "account_access",
    "technical_issue",
    "complaint",
    "feedback",
    "wholesale_partnership",
    "spam_vendor",
    "other",
)
URGENCIES: tuple[str, ...] = ("urgent", "high", "normal", "low")

DEFAULT_CATEGORY_WEIGHTS: dict[str, float] = {
    "order_status": 1.0,
    "shipping_delivery": 1.1,
    "returns_refunds": 1.0,
    "cancellation": 1.1,
    "billing_payment": 1.15,
    "product_question": 0.9,
    "account_access": 1.0,
    "technical_issue": 1.05,
    "complaint": 1.15,
    "feedback": 0.5,
    "wholesale_partnership": 0.8,
    "spam_vendor": 0.15,
    "other": 0.4,
}
DEFAULT_SLA_HOURS: dict[str, float] = {"urgent": 2, "high": 8, "normal": 24, "low": 72}


def default_state_dir() -> Path:
    env = os.environ.get("SUPPORTCLI_HOME")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_data_dir

    return Path(user_data_dir("supportcli", appauthor=False))


def default_config_path() -> Path:
    env = os.environ.get("SUPPORTCLI_CONFIG")
    if env:
        return Path(env).expanduser()
    home = os.environ.get("SUPPORTCLI_HOME")
    if home:
        return Path(home).expanduser() / "config.toml"
    from platformdirs import user_config_dir

    return Path(user_config_dir("supportcli", appauthor=False)) / "config.toml"


DEFAULT_TARGET_ACCURACY = 0.85  # accuracy on what the model labels on its own
DEFAULT_STORE_WINDOW_DAYS = 60  # how far back a store-wide triage, report or tag looks


@dataclass(frozen=True)
class Settings:
    state_dir: Path
    config_path: Path
    categories: tuple[str, ...] = CATEGORIES
    urgencies: tuple[str, ...] = URGENCIES
    category_weights: dict[str, float] = field(
        default_factory=lambda: dict(DEFAULT_CATEGORY_WEIGHTS)
    )
    sla_hours: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_SLA_HOURS))
    review_threshold: float | None = None  # None: use the model's own threshold
    target_accuracy: float = DEFAULT_TARGET_ACCURACY  # `train` turns it into the threshold
    shop_addresses: tuple[str, ...] = ()
    store_window_days: int = DEFAULT_STORE_WINDOW_DAYS
    raw: dict[str, Any] = field(default_factory=dict)  # the whole TOML, for later sections

    @property
    def store_path(self) -> Path:
        return self.state_dir / "supportcli.db"

    @property
    def models_dir(self) -> Path:
        return self.state_dir / "models"

    def with_overrides(self, **changes: Any) -> Settings:
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


def load_settings(config_path: Path | None = None) -> Settings:
    path = config_path or default_config_path()
    data: dict[str, Any] = {}
    if config_path is not None and not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    if path.is_file():
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read config file {path}: {exc}") from None
    settings = Settings(state_dir=default_state_dir(), config_path=path, raw=data)
    return _apply_toml(settings, data)


def _apply_toml(settings: Settings, data: dict[str, Any]) -> Settings:
    triage = _table(data, "triage")
    custom = tuple(str(c) for c in _table(data, "labels").get("extra_categories", []))
    weights = dict(settings.category_weights)
    for name, value in _table(triage, "category_weights").items():
        weights[str(name)] = _number(value, f"triage.category_weights.{name}")
    sla = dict(settings.sla_hours)
    for name, value in _table(triage, "sla_hours").items():
        if name not in URGENCIES:
            raise ConfigError(f"triage.sla_hours: unknown urgency {name!r}")
        sla[name] = _number(value, f"triage.sla_hours.{name}")
    threshold = triage.get("review_threshold")
    target = _table(data, "model").get("target_accuracy", data.get("target_accuracy"))
    if target is not None and not 0 < _number(target, "target_accuracy") <= 1:
        raise ConfigError(f"config: target_accuracy must be between 0 and 1, got {target!r}")
    window = triage.get("store_window_days", DEFAULT_STORE_WINDOW_DAYS)
    if isinstance(window, bool) or not isinstance(window, int) or window < 1:
        raise ConfigError(
            f"config: triage.store_window_days must be a whole number of days, got {window!r}"
        )
    state = data.get("state_dir")
    return replace(
        settings,
        state_dir=Path(state).expanduser()
        if state and not os.environ.get("SUPPORTCLI_HOME")
        else settings.state_dir,
        categories=CATEGORIES + tuple(c for c in custom if c not in CATEGORIES),
        category_weights=weights,
        sla_hours=sla,
        review_threshold=None if threshold is None else _number(threshold, "review_threshold"),
        shop_addresses=tuple(str(a).lower() for a in triage.get("shop_addresses", [])),
        target_accuracy=settings.target_accuracy if target is None else float(target),
        store_window_days=window,
    )


def _table(data: dict[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise ConfigError(f"config: [{key}] must be a table")
    return value


def _number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"config: {name} must be a number, got {value!r}")
    return float(value)
