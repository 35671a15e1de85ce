"""Where passwords and tokens come from, and that they never show up in errors or logs."""

from __future__ import annotations

import shlex
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import keyring
import keyring.backend
import keyring.errors
import pytest

from supportcli import credentials, log
from supportcli.accounts import ImapAccount
from supportcli.credentials import Secret, describe_source, find_secret, get_secret
from supportcli.errors import ConfigError, ExitCode

SECRET = "s3cret-Pa55word!"
ACCOUNT = ImapAccount(name="shop", host="imap.example.com", username="support@example.com")


def _printing(text: str, exit_code: int = 0) -> tuple[str, ...]:
    """argv of a command that prints ``text`` and exits with ``exit_code``."""
    code = f"import sys; sys.stdout.write({text!r}); sys.exit({exit_code})"
    return (sys.executable, "-c", code)


def _config_error(account: ImapAccount, **kwargs: Any) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        get_secret(account, interactive=kwargs.get("interactive", False))
    assert caught.value.exit_code == ExitCode.CONFIG
    assert "\n" not in caught.value.message
    return caught.value


def test_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOP_IMAP_PASSWORD", SECRET)
    account = replace(ACCOUNT, password_env="SHOP_IMAP_PASSWORD")
    assert find_secret(account, interactive=False) == Secret(
        SECRET, "environment variable SHOP_IMAP_PASSWORD"
    )
    assert log.redact(f"x {SECRET} y") == "x *** y"


def test_unset_environment_variable_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SHOP_IMAP_PASSWORD", raising=False)
    error = _config_error(replace(ACCOUNT, password_env="SHOP_IMAP_PASSWORD"))
    assert "no credentials for account shop" in error.message
    assert "SHOP_IMAP_PASSWORD is not set" in error.message


def test_password_command_shell_string_first_line() -> None:
    command = f"printf '%s\\n%s\\n' {shlex.quote(SECRET)} 'second line ignored'"
    account = replace(ACCOUNT, password_command=command)
    assert find_secret(account, interactive=False) == Secret(SECRET, "password_command")


def test_password_command_argv() -> None:
    account = replace(ACCOUNT, password_command=_printing(SECRET + "\n"))
    assert get_secret(account, interactive=False) == SECRET


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        (_printing(SECRET, exit_code=1), "failed with exit status 1"),
        (_printing("\n  \n"), "printed nothing"),
        (("/nonexistent/pass-helper",), "could not be started"),
    ],
    ids=["non-zero-exit", "empty-output", "missing-program"],
)
def test_password_command_failures(command: tuple[str, ...], expected: str) -> None:
    error = _config_error(replace(ACCOUNT, password_command=command))
    assert "accounts.shop.password_command" in error.message
    assert expected in error.message
    assert SECRET not in error.message and SECRET not in (error.hint or "")


def test_password_command_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(credentials, "COMMAND_TIMEOUT", 0.3)
    account = replace(ACCOUNT, password_command=f"echo {SECRET}; sleep 30")
    started = time.monotonic()
    error = _config_error(account)
    assert time.monotonic() - started < 5  # the shell and its sleep were both stopped
    assert "did not finish within 0.3 s" in error.message
    assert SECRET not in error.message


def test_token_command_for_xoauth2() -> None:
    account = replace(ACCOUNT, auth="xoauth2", token_command=_printing("ya29.tok3n\n"))
    assert find_secret(account, interactive=False) == Secret("ya29.tok3n", "token_command")
    assert describe_source(account) == "token_command"


def test_environment_wins_over_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOP_PW", "from-env")
    account = replace(ACCOUNT, password_env="SHOP_PW", password_command=_printing("from-cmd"))
    assert get_secret(account, interactive=False) == "from-env"


class MemoryKeyring(keyring.backend.KeyringBackend):
    priority = 1

    def __init__(self) -> None:
        super().__init__()
        self.items: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.items.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.items[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        self.items.pop((service, username), None)


class BrokenKeyring(MemoryKeyring):
    def get_password(self, service: str, username: str) -> str | None:
        raise keyring.errors.KeyringLocked("locked")


@pytest.fixture
def memory_keyring() -> Iterator[MemoryKeyring]:
    previous = keyring.get_keyring()
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    try:
        yield backend
    finally:
        keyring.set_keyring(previous)


def test_keyring(memory_keyring: MemoryKeyring) -> None:
    account = replace(ACCOUNT, keyring=True)
    error = _config_error(account)
    assert "no keyring entry for supportcli/support@example.com" in error.message

    credentials.store_in_keyring(account, SECRET)
    assert memory_keyring.items == {("supportcli", "support@example.com"): SECRET}
    assert find_secret(account, interactive=False) == Secret(SECRET, "keyring")


def test_unusable_keyring_is_a_config_error() -> None:
    previous = keyring.get_keyring()
    keyring.set_keyring(BrokenKeyring())
    try:
        error = _config_error(replace(ACCOUNT, keyring=True))
    finally:
        keyring.set_keyring(previous)
    assert "keyring is not usable (KeyringLocked)" in error.message


def test_password_from_config_file() -> None:
    account = replace(ACCOUNT, password=SECRET)
    assert find_secret(account, interactive=False) == Secret(SECRET, "config file")


def test_no_source_without_prompt() -> None:
    error = _config_error(ACCOUNT)
    assert error.message == (
        "no credentials for account shop: set password_env, password_command, keyring "
        "or token_command"
    )


def test_prompt_only_when_interactive(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[str] = []

    def fake_getpass(prompt: str) -> str:
        asked.append(prompt)
        return "typed-Secret-1"

    monkeypatch.setattr(credentials.getpass, "getpass", fake_getpass)
    _config_error(ACCOUNT)
    assert asked == []
    assert find_secret(ACCOUNT, interactive=True) == Secret("typed-Secret-1", "prompt")
    assert asked == ["Password for support@example.com at imap.example.com: "]
    assert log.redact("typed-Secret-1") == "***"


def test_empty_prompt_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(credentials.getpass, "getpass", lambda prompt: "")
    assert "no password entered" in _config_error(ACCOUNT, interactive=True).message


def test_secret_repr_hides_value() -> None:
    assert SECRET not in repr(Secret(SECRET, "keyring"))
