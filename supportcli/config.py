"""Typed settings. Precedence: defaults < TOML file < ``SUPPORTCLI_*`` env < command-line flags.

``SUPPORTCLI_HOME`` moves the whole state dir (store, models, locks); ``SUPPORTCLI_CONFIG``
names the config file. The two stay apart: moving the state never moves the config.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import ConfigError
from .hours import BusinessHours, from_config
from .records import URGENCIES

if TYPE_CHECKING:
    from .accounts import ImapAccount
    from .mailer import SmtpSettings

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
    from platformdirs import user_config_dir

    return Path(user_config_dir("supportcli", appauthor=False)) / "config.toml"


DEFAULT_TARGET_ACCURACY = 0.85  # accuracy on what the model labels on its own
DEFAULT_URGENT_RECALL = 0.9  # recall first: the share of urgent mail train aims to catch
DEFAULT_STORE_WINDOW_DAYS = 60  # how far back a store-wide triage, report or tag looks
DEFAULT_OWN_WEIGHT = 3.0  # [labels] own_weight: a shop's own label counts this many samples


@dataclass(frozen=True)
class SmtpCredential:
    """Where the SMTP password comes from (``[smtp]`` password_env, password_command,
    keyring); none of them: a relay that needs no login."""

    username: str | None = None
    password_env: str | None = None
    password_command: str | tuple[str, ...] | None = None  # a command line, or its arguments
    keyring: bool = False


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
    timezone: str = "UTC"  # the shop's IANA time zone ([report] timezone)
    deadline_hours: float = 36.0  # [triage] deadline_hours: a deadline this close is urgent
    dispatch_cutoff: time | None = None  # [shop] dispatch_cutoff: cancel before it is urgent
    urgent_recall: float = DEFAULT_URGENT_RECALL  # [model] urgent_recall: urgent mail to catch
    business_hours: BusinessHours | None = None  # None: response targets count every hour
    store_window_days: int = DEFAULT_STORE_WINDOW_DAYS
    order_pattern: re.Pattern[str] | None = None  # the shop's own order numbers
    own_weight: float = DEFAULT_OWN_WEIGHT  # [labels] own_weight
    shop_name: str | None = None  # [report] shop_name: in the report's title
    raw: dict[str, Any] = field(default_factory=dict)  # the whole TOML: read only in this module

    @property
    def store_path(self) -> Path:
        return self.state_dir / "supportcli.db"

    @property
    def models_dir(self) -> Path:
        return self.state_dir / "models"

    def with_overrides(self, **changes: Any) -> Settings:
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    def accounts(self) -> dict[str, ImapAccount]:
        """The ``[accounts.NAME]`` tables, checked and typed; checked when asked for, so a
        broken account stops only what uses accounts (a ConfigError naming the key)."""
        from .accounts import accounts_from_config

        return accounts_from_config(self.raw, self.config_path)

    def smtp(self) -> tuple[SmtpSettings, SmtpCredential]:
        """The ``[smtp]`` table, checked and typed, and where its password comes from;
        checked when a report is mailed (a ConfigError naming the key)."""
        from .mailer import smtp_from_config

        table = self.raw.get("smtp", {})
        smtp = smtp_from_config(table)  # raises unless table is a non-empty table
        username, command = table.get("username"), table.get("password_command")
        return smtp, SmtpCredential(
            username=None if username is None else str(username),
            password_env=str(table["password_env"]) if table.get("password_env") else None,
            password_command=(tuple(map(str, command)) if isinstance(command, list) else command)
            if isinstance(command, str | list) and command else None,
            keyring=bool(table.get("keyring")),
        )


def load_settings(config_path: Path | None = None) -> Settings:
    path = config_path or default_config_path()
    _warn_about_a_config_in_the_state_dir(path)
    data: dict[str, Any] = {}
    if config_path is not None and not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    if path.is_file():
        try:
            text = path.read_text(encoding="utf-8")
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read config file {path}: {exc}") from None
        check(data, path, text)
    settings = Settings(state_dir=default_state_dir(), config_path=path, raw=data)
    return _apply_toml(settings, data)


def _warn_about_a_config_in_the_state_dir(path: Path) -> None:
    """Earlier versions read the config from ``$SUPPORTCLI_HOME/config.toml``: say so when
    one is there and no longer read."""
    home = os.environ.get("SUPPORTCLI_HOME")
    stray = Path(home).expanduser() / "config.toml" if home else None
    if stray is not None and stray.is_file() and stray.resolve() != path.resolve():
        import logging

        logging.getLogger(__name__).warning(
            "ignoring %s: the config is read from %s (set SUPPORTCLI_CONFIG or use --config to "
            "choose another file)", stray, path,
        )


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
    order_pattern = _pattern(triage.get("order_pattern"), "triage.order_pattern")
    shop, model = _table(data, "shop"), _table(data, "model")
    recall = float(_number(model.get("urgent_recall", DEFAULT_URGENT_RECALL),
                           "model.urgent_recall"))
    horizon = float(_number(triage.get("deadline_hours", 36), "triage.deadline_hours"))
    own_weight = float(_number(_table(data, "labels").get("own_weight", DEFAULT_OWN_WEIGHT),
                               "labels.own_weight"))
    shop_name = _table(data, "report").get("shop_name")
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
        order_pattern=order_pattern,
        target_accuracy=settings.target_accuracy if target is None else float(target),
        timezone=str(shop.get("timezone") or _table(data, "report").get("timezone") or "UTC"),
        business_hours=from_config(_table(data, "report")),
        store_window_days=window,
        deadline_hours=horizon,
        dispatch_cutoff=_clock(shop.get("dispatch_cutoff"), "shop.dispatch_cutoff"),
        urgent_recall=recall,
        own_weight=own_weight,
        shop_name=None if shop_name is None else str(shop_name),
    )


def _clock(value: Any, key: str) -> time | None:
    """A "HH:MM" time of day, or None when not set."""
    if value is None:
        return None
    try:
        return time.fromisoformat(str(value).strip())
    except ValueError:
        raise ConfigError(
            f"config: {key} must be a time such as \"14:00\", got {value!r}"
        ) from None


def _table(data: dict[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise ConfigError(f"config: [{key}] must be a table")
    return value


def _pattern(value: Any, name: str) -> re.Pattern[str] | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise ConfigError(f"config: {name} must be a regular expression in a string")
    try:
        pattern = re.compile(value)
    except re.error as exc:
        raise ConfigError(f"config: {name} is not a valid regular expression: {exc}") from None
    if pattern.groups > 1 or pattern.search(""):
        raise ConfigError(f"config: {name} must match an order number: one group at most, "
                          "and not the empty text")
    return pattern


def _number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"config: {name} must be a number, got {value!r}")
    return float(value)


# --- validation ------------------------------------------------------------------------------
# What the config file may hold. A typo, a wrong type or a value out of range is an error that
# names the file, the line and the key (exit 3), never silently ignored.


@dataclass(frozen=True)
class _Value:
    kind: str  # str, bool, int, number, strings (a list of strings), command (string or list)
    low: float | None = None
    high: float | None = None
    above: bool = False  # low itself is not allowed
    choices: tuple[str, ...] = ()

    def problem(self, value: Any) -> str | None:
        if self.kind == "str" and not (isinstance(value, str) and value.strip()):
            return "must be a non-empty string"
        if self.kind == "bool" and not isinstance(value, bool):
            return "must be true or false"
        if self.kind == "strings" and not (
            isinstance(value, list) and all(isinstance(v, str) and v.strip() for v in value)
        ):
            return 'must be a list of strings, e.g. ["a", "b"]'
        if self.kind == "command" and not (
            (isinstance(value, str) and value.strip())
            or (isinstance(value, list) and value and all(isinstance(v, str) for v in value))
        ):
            return "must be a command: a string, or a list of its arguments"
        if self.kind in ("int", "number"):
            numeric = int if self.kind == "int" else int | float
            if isinstance(value, bool) or not isinstance(value, numeric):
                return "must be " + ("a whole number" if self.kind == "int" else "a number")
            if not self._in_range(value):
                return f"must be {self._range()}, got {value}"
        if self.choices and value not in self.choices:
            return "must be one of " + ", ".join(f'"{c}"' for c in self.choices)
        return None

    def _in_range(self, value: float) -> bool:
        if self.low is not None and (value < self.low or (self.above and value == self.low)):
            return False
        return self.high is None or value <= self.high

    def _range(self) -> str:
        low = f"above {self.low:g}" if self.above else f"at least {self.low:g}"
        return low if self.high is None else f"{low} and at most {self.high:g}"


@dataclass(frozen=True)
class _Map:
    """A table whose keys are names (categories, urgencies, accounts) with the same value."""

    value: _Value | dict[str, Any]
    names: str = ""  # "categories" or "urgencies": only those keys; "" any name


_STR, _BOOL, _CMD = _Value("str"), _Value("bool"), _Value("command")
_PORT = _Value("int", 1, 65535)
_ACCOUNT: dict[str, Any] = {
    "host": _STR, "port": _PORT, "security": _Value("str", choices=("ssl", "starttls", "plain")),
    "allow_insecure": _BOOL, "username": _STR, "folders": _Value("strings"), "sent_folder": _STR,
    "first_sync_days": _Value("int", 1, 36500), "ca_file": _STR,
    "auth": _Value("str", choices=("password", "xoauth2")), "password_env": _STR,
    "password_command": _CMD, "keyring": _BOOL, "password": _STR, "token_command": _CMD,
    "timeout": _Value("number", 0, 3600, above=True),
}  # fmt: skip
SCHEMA: dict[str, Any] = {
    "state_dir": _STR,
    "target_accuracy": _Value("number", 0, 1, above=True),
    "triage": {
        "shop_addresses": _Value("strings"),
        "review_threshold": _Value("number", 0, 1),
        "deadline_hours": _Value("number", 0, 24 * 14, above=True),
        "order_pattern": _STR,
        "store_window_days": _Value("int", 1, 36500),
        "category_weights": _Map(_Value("number", 0, 100), names="categories"),
        "sla_hours": _Map(_Value("number", 0, 24 * 365, above=True), names="urgencies"),
    },
    "labels": {"extra_categories": _Value("strings"), "own_weight": _Value("number", 0, 100,
                                                                           above=True)},
    "model": {"target_accuracy": _Value("number", 0, 1, above=True),
              "urgent_recall": _Value("number", 0, 1, above=True)},
    "shop": {"dispatch_cutoff": _STR, "timezone": _STR},
    "report": {"timezone": _STR, "business_hours": _STR, "shop_name": _STR},
    "smtp": {
        "host": _STR, "port": _PORT, "security": _Value("str", choices=("ssl", "starttls",
                                                                          "plain")),
        "allow_insecure": _BOOL, "timeout": _Value("number", 0, 3600, above=True),
        "from": _STR, "from_address": _STR, "username": _STR, "ca_file": _STR,
        "password_env": _STR, "password_command": _CMD, "keyring": _BOOL,
    },
    "accounts": _Map(_ACCOUNT),
}  # fmt: skip


def check(data: dict[str, Any], path: Path, text: str) -> None:
    """Raise a ConfigError for the first problem in the config file; the hint counts the rest."""
    custom = data.get("labels", {}).get("extra_categories") if isinstance(
        data.get("labels"), dict) else None
    names = {
        "categories": set(CATEGORIES) | set(custom if isinstance(custom, list) else []),
        "urgencies": set(URGENCIES),
    }
    problems = list(_walk(data, SCHEMA, (), names))
    problems += _checked_values(data)
    if not problems:
        return
    lines = key_lines(text)
    key, problem = problems[0]
    more = len(problems) - 1
    raise ConfigError(
        f"{locate(path, lines, key)}: {'.'.join(key)}: {problem}",
        hint=f"{more} more problem{'s' if more > 1 else ''} in this file" if more else None,
    )


def _walk(
    data: dict[str, Any], schema: dict[str, Any], at: tuple[str, ...], names: dict[str, set[str]]
) -> Iterator[tuple[tuple[str, ...], str]]:
    for key, value in data.items():
        spec = schema.get(key)
        where = (*at, key)
        if spec is None:
            what = "section" if isinstance(value, dict) else "key"
            yield where, _unknown(f"{what} in [{'.'.join(at)}]" if at else what, key, schema)
        elif isinstance(spec, dict):
            if not isinstance(value, dict):
                yield where, "must be a table ([" + ".".join(where) + "])"
            else:
                yield from _walk(value, spec, where, names)
        elif isinstance(spec, _Map):
            if not isinstance(value, dict):
                yield where, "must be a table ([" + ".".join(where) + "])"
                continue
            allowed = names.get(spec.names)
            for name, item in value.items():
                if allowed is not None and name not in allowed:
                    kind = spec.names[:-3] + "y" if spec.names.endswith("ies") else spec.names
                    yield (*where, name), _unknown(kind, name, dict.fromkeys(allowed))
                elif isinstance(spec.value, dict):
                    if not isinstance(item, dict):
                        yield (*where, name), "must be a table"
                    else:
                        yield from _walk(item, spec.value, (*where, name), names)
                elif (problem := spec.value.problem(item)) is not None:
                    yield (*where, name), problem
        elif (problem := spec.problem(value)) is not None:
            yield where, problem


def _unknown(what: str, key: str, known: dict[str, Any]) -> str:
    import difflib

    close = difflib.get_close_matches(key, list(known), n=1, cutoff=0.6)
    if close:
        return f"unknown {what} (did you mean {close[0]}?)"
    return f"unknown {what} (known: {', '.join(sorted(known))})"


def _checked_values(data: dict[str, Any]) -> list[tuple[tuple[str, ...], str]]:
    """Values whose form a type cannot tell: a regular expression, a time zone, hours."""
    from .hours import parse_business_hours, zone

    problems: list[tuple[tuple[str, ...], str]] = []
    triage, report = data.get("triage"), data.get("report")
    if isinstance(triage, dict) and isinstance(triage.get("order_pattern"), str):
        try:
            _pattern(triage["order_pattern"], "order_pattern")
        except ConfigError as exc:
            problems.append((("triage", "order_pattern"), exc.message.split(": ", 2)[-1]))
    if isinstance(report, dict):
        for key in ("timezone", "business_hours"):
            value = report.get(key)
            if isinstance(value, str) and value.strip():
                try:
                    zone(value) if key == "timezone" else parse_business_hours(value)
                except ConfigError as exc:
                    problems.append((("report", key), exc.message))
    return problems


_KEY_PART = r"""(?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*')"""
_HEADER = re.compile(rf"^\[\[?\s*({_KEY_PART}(?:\s*\.\s*{_KEY_PART})*)\s*\]\]?")
_ASSIGN = re.compile(rf"^({_KEY_PART}(?:\s*\.\s*{_KEY_PART})*)\s*=")


def key_lines(text: str) -> dict[tuple[str, ...], int]:
    """The line each table and key of a TOML text starts on."""
    found: dict[tuple[str, ...], int] = {}
    table: tuple[str, ...] = ()
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if header := _HEADER.match(stripped):
            table = _dotted(header.group(1))
            found.setdefault(table, number)
        elif assign := _ASSIGN.match(stripped):
            found.setdefault((*table, *_dotted(assign.group(1))), number)
    return found


def _dotted(key: str) -> tuple[str, ...]:
    parts = re.findall(_KEY_PART, key)
    return tuple(p[1:-1] if p[:1] in "\"'" else p for p in parts)


def locate(path: Path, lines: dict[tuple[str, ...], int], key: tuple[str, ...]) -> str:
    """``file, line N`` for a key (or the nearest table above it that has a line)."""
    for end in range(len(key), 0, -1):
        if key[:end] in lines:
            return f"{path}, line {lines[key[:end]]}"
    return str(path)


def locate_error(settings: Settings, exc: ConfigError) -> ConfigError:
    """``exc`` (whose message starts with a dotted key, as accounts' and smtp's do) with the
    config file and line in front."""
    key = re.match(r"^([\w.-]+?)[: ]", exc.message)
    try:
        text = settings.config_path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return exc
    if key is None or not settings.config_path.is_file():
        return exc
    where = locate(settings.config_path, key_lines(text), tuple(key.group(1).split(".")))
    return ConfigError(f"{where}: {exc.message}", exc.hint)
