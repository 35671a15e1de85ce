"""IMAP accounts from the config file: ``[accounts.NAME]`` tables.

Every problem is a :class:`ConfigError` with one line naming the offending key, e.g.
``accounts.shop.port: must be an integer from 1 to 65535, got "993x"``. Credentials are not
read here (see :mod:`supportcli.credentials`); only where they come from.
"""

from __future__ import annotations

import json
import logging
import re
import stat
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Literal, cast

from .errors import ConfigError

log = logging.getLogger(__name__)

Security = Literal["ssl", "starttls", "plain"]
AuthMethod = Literal["password", "xoauth2"]
Command = str | tuple[str, ...]  # a string runs through /bin/sh, an array is an argv

SECURITY_CHOICES: tuple[str, ...] = ("ssl", "starttls", "plain")
AUTH_CHOICES: tuple[str, ...] = ("password", "xoauth2")
DEFAULT_TIMEOUT = 30.0
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_BARE_KEY = _NAME
_KEYS = frozenset(
    {
        "host", "port", "security", "allow_insecure", "username", "folders", "sent_folder",
        "first_sync_days", "ca_file", "auth", "password_env", "password_command", "keyring",
        "password", "token_command", "timeout",
    }
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class ImapAccount:
    """One mailbox to read. ``password`` is only set when typed into a 0600 config file."""

    name: str
    host: str
    username: str
    port: int = 993
    security: Security = "ssl"
    allow_insecure: bool = False
    folders: tuple[str, ...] = ("INBOX",)
    sent_folder: str | None = None
    first_sync_days: int = 30
    ca_file: Path | None = None
    auth: AuthMethod = "password"
    password_env: str | None = None
    password_command: Command | None = None
    keyring: bool = False
    password: str | None = field(default=None, repr=False)
    token_command: Command | None = None
    timeout: float = DEFAULT_TIMEOUT

    @property
    def source_name(self) -> str:
        return f"imap:{self.name}"

    def since(self, today: date | None = None) -> date:
        """The first day the first sync of a folder reaches back to."""
        return (today or date.today()) - timedelta(days=self.first_sync_days)


def accounts_from_config(
    raw: dict[str, Any], config_path: Path | None = None
) -> dict[str, ImapAccount]:
    """Read every ``[accounts.NAME]`` table of a parsed config file.

    ``config_path`` is the file the TOML came from: a ``password`` key is accepted only when
    that file is readable by its owner alone (mode 0600).
    """
    tables = raw.get("accounts", {})
    if not isinstance(tables, dict):
        raise ConfigError("config: [accounts] must be a table of [accounts.NAME] tables")
    accounts: dict[str, ImapAccount] = {}
    for name, table in tables.items():
        if not isinstance(table, dict):
            raise ConfigError(f"config: accounts.{name} must be a table")
        accounts[name] = account_from_table(name, table, config_path)
    return accounts


def account_from_table(
    name: str, table: dict[str, Any], config_path: Path | None = None
) -> ImapAccount:
    """Validate one ``[accounts.NAME]`` table; see :func:`accounts_from_config`."""
    if not _NAME.match(name):
        raise ConfigError(
            f"config: account name {name!r} may only use letters, digits, '-' and '_'"
        )
    r = _Reader(name, table)
    unknown = sorted(set(table) - _KEYS)
    if unknown:
        raise ConfigError(f"{r.key(unknown[0])}: unknown key (known: {', '.join(sorted(_KEYS))})")
    security = cast(Security, r.choice("security", SECURITY_CHOICES, "ssl"))
    allow_insecure = r.boolean("allow_insecure")
    if security == "plain" and not allow_insecure:
        raise ConfigError(
            f'{r.key("security")}: "plain" sends the password unencrypted; '
            "use ssl or starttls, or set allow_insecure = true"
        )
    account = ImapAccount(
        name=name,
        host=r.text("host", required=True) or "",
        username=r.text("username", required=True) or "",
        port=r.integer("port", 993 if security == "ssl" else 143, 1, 65535),
        security=security,
        allow_insecure=allow_insecure,
        folders=r.folders(),
        sent_folder=r.text("sent_folder"),
        first_sync_days=r.integer("first_sync_days", 30, 1, 36500),
        ca_file=r.path("ca_file"),
        auth=cast(AuthMethod, r.choice("auth", AUTH_CHOICES, "password")),
        password_env=r.text("password_env"),
        password_command=r.command("password_command"),
        keyring=r.boolean("keyring"),
        password=r.text("password", strip=False),
        token_command=r.command("token_command"),
        timeout=r.number("timeout", DEFAULT_TIMEOUT),
    )
    _check_auth(r, account)
    if account.password is not None:
        _check_password_file(r, config_path)
    return account


def _check_auth(r: _Reader, account: ImapAccount) -> None:
    if account.auth == "xoauth2":
        if account.password_command is not None or account.password is not None:
            key = "password_command" if account.password_command is not None else "password"
            raise ConfigError(f'{r.key(key)}: not used with auth = "xoauth2"; use token_command')
        if account.token_command is None and account.password_env is None:
            raise ConfigError(
                f'{r.key("token_command")}: auth = "xoauth2" needs a command that prints a '
                "fresh access token"
            )
    elif account.token_command is not None:
        raise ConfigError(f'{r.key("token_command")}: only used with auth = "xoauth2"')


def _check_password_file(r: _Reader, config_path: Path | None) -> None:
    if config_path is None:
        raise ConfigError(
            f"{r.key('password')}: a password is only accepted from a config file with mode 0600"
        )
    try:
        mode = stat.S_IMODE(config_path.stat().st_mode)
    except OSError as exc:
        raise ConfigError(
            f"{r.key('password')}: cannot check {config_path}: {exc.strerror}"
        ) from None
    if mode & 0o077:
        raise ConfigError(
            f"{r.key('password')}: {config_path} is readable by others (mode {mode:04o}); "
            f"run chmod 600 {config_path}, or use password_command, password_env or keyring"
        )
    log.warning(
        "%s: the password is stored in %s; password_command or keyring keep it out of files",
        r.key("password"),
        config_path,
    )


class _Reader:
    """Typed access to one account table, with errors that name the key."""

    def __init__(self, name: str, table: dict[str, Any]) -> None:
        self.name = name
        self.table = table

    def key(self, key: str) -> str:
        return f"accounts.{self.name}.{key}"

    def fail(self, key: str, expected: str) -> ConfigError:
        value = self.table.get(key)
        shown = "(hidden)" if key == "password" else json.dumps(value, default=str)
        return ConfigError(f"{self.key(key)}: must be {expected}, got {shown}")

    def text(self, key: str, *, required: bool = False, strip: bool = True) -> str | None:
        value = self.table.get(key)
        if value is None:
            if required:
                raise ConfigError(f"{self.key(key)}: missing (required)")
            return None
        if not isinstance(value, str) or not value.strip():
            raise self.fail(key, "a non-empty string")
        return value.strip() if strip else value

    def boolean(self, key: str) -> bool:
        value = self.table.get(key, False)
        if not isinstance(value, bool):
            raise self.fail(key, "true or false")
        return value

    def integer(self, key: str, default: int, low: int, high: int) -> int:
        value = self.table.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise self.fail(key, f"an integer from {low} to {high}")
        return value

    def number(self, key: str, default: float) -> float:
        value = self.table.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 3600:
            raise self.fail(key, "a number of seconds above 0 (at most 3600)")
        return float(value)

    def choice(self, key: str, choices: tuple[str, ...], default: str) -> str:
        value = self.table.get(key, default)
        if value not in choices:
            raise self.fail(key, " or ".join(f'"{c}"' for c in choices))
        return str(value)

    def folders(self) -> tuple[str, ...]:
        value = self.table.get("folders", ["INBOX"])
        if isinstance(value, str):
            value = [value]
        if (
            not isinstance(value, list)
            or not value
            or not all(isinstance(f, str) and f.strip() for f in value)
        ):
            raise self.fail("folders", 'a list of folder names, e.g. ["INBOX"]')
        return tuple(dict.fromkeys(f.strip() for f in value))

    def path(self, key: str) -> Path | None:
        value = self.text(key)
        return Path(value).expanduser() if value else None

    def command(self, key: str) -> Command | None:
        value = self.table.get(key)
        if value is None:
            return None
        if isinstance(value, str) and value.strip():
            return value.strip()
        if isinstance(value, list) and value and all(isinstance(a, str) for a in value):
            return tuple(value)
        raise self.fail(key, "a shell command string or a non-empty list of arguments")


# --- writing ---------------------------------------------------------------------------------


def write_account_toml(account: ImapAccount) -> str:
    """Render ``account`` as a ``[accounts.NAME]`` table that reads back to the same account.

    Defaults are left out. A ``password`` is written only if the account has one; whoever
    writes the file must then create it with mode 0600.
    """
    lines = [f"[accounts.{_toml_key(account.name)}]"]
    default_port = 993 if account.security == "ssl" else 143
    values: list[tuple[str, Any]] = [
        ("host", account.host),
        ("port", account.port if account.port != default_port else None),
        ("security", account.security if account.security != "ssl" else None),
        ("allow_insecure", True if account.allow_insecure else None),
        ("username", account.username),
        ("folders", list(account.folders)),
        ("sent_folder", account.sent_folder),
        ("first_sync_days", account.first_sync_days),
        ("ca_file", str(account.ca_file) if account.ca_file else None),
        ("auth", account.auth if account.auth != "password" else None),
        ("password_env", account.password_env),
        ("password_command", account.password_command),
        ("token_command", account.token_command),
        ("keyring", True if account.keyring else None),
        ("password", account.password),
        ("timeout", account.timeout if account.timeout != DEFAULT_TIMEOUT else None),
    ]
    lines += [f"{key} = {_toml_value(value)}" for key, value in values if value is not None]
    return "\n".join(lines) + "\n"


def _toml_key(key: str) -> str:
    return key if _BARE_KEY.match(key) else _toml_string(key)


def _toml_string(text: str) -> str:
    # JSON escapes quotes, backslashes and C0 controls as TOML does; TOML also wants DEL escaped.
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


def _toml_value(value: Any) -> str:
    """TOML for the few value types an account has (JSON strings are valid TOML strings)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return _toml_string(str(value))
