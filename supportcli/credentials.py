"""Passwords and OAuth2 access tokens for IMAP accounts.

Sources, tried in this order: the environment variable named by ``password_env``, the
``password_command`` (or ``token_command`` for XOAUTH2), the system keyring (service
``supportcli``, the account's username), the ``password`` key of a 0600 config file, and
finally an interactive prompt when the caller allows one. Every secret is registered with
:func:`supportcli.log.add_secret` the moment it is read, so no log line can show it; error
messages never include a command's output. This is the only module that imports ``keyring``.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import signal
import subprocess
from dataclasses import dataclass, field

from . import log
from .accounts import Command, ImapAccount
from .config import SmtpCredential
from .errors import ConfigError

KEYRING_SERVICE = "supportcli"
SMTP_KEYRING_SERVICE = "supportcli-smtp"
COMMAND_TIMEOUT = 30.0  # seconds a password/token command may take


@dataclass(frozen=True, slots=True)
class Secret:
    """A password or token and where it came from (the value is never shown in a repr)."""

    value: str = field(repr=False)
    source: str  # e.g. "password_command", "environment variable SHOP_PASS", "keyring"


def get_secret(account: ImapAccount, *, interactive: bool) -> str:
    """The password (or XOAUTH2 access token) for ``account``; ConfigError if there is none."""
    return find_secret(account, interactive=interactive).value


def find_secret(account: ImapAccount, *, interactive: bool) -> Secret:
    """Like :func:`get_secret`, also telling which source answered (for ``doctor``)."""
    missing: list[str] = []
    for lookup in (_from_env, _from_command, _from_keyring, _from_config):
        found = lookup(account, missing)
        if found is not None:
            return found
    if interactive:
        return _prompt(account)
    detail = f" ({'; '.join(missing)})" if missing else ""
    raise ConfigError(
        f"no credentials for account {account.name}{detail}: set password_env, "
        "password_command, keyring or token_command",
        hint="or run interactively to be asked for the password",
    )


def describe_source(account: ImapAccount) -> str:
    """Where the secret would come from, without reading it."""
    if account.password_env:
        return f"environment variable {account.password_env}"
    if account.auth == "xoauth2" and account.token_command is not None:
        return "token_command"
    if account.password_command is not None:
        return "password_command"
    if account.keyring:
        return "keyring"
    if account.password is not None:
        return "config file"
    return "prompt"


def _found(value: str, source: str) -> Secret:
    log.add_secret(value)
    return Secret(value, source)


def _from_env(account: ImapAccount, missing: list[str]) -> Secret | None:
    if not account.password_env:
        return None
    value = os.environ.get(account.password_env, "")
    if not value:
        missing.append(f"environment variable {account.password_env} is not set")
        return None
    return _found(value, f"environment variable {account.password_env}")


def _from_command(account: ImapAccount, missing: list[str]) -> Secret | None:
    key = "token_command" if account.auth == "xoauth2" else "password_command"
    command = account.token_command if account.auth == "xoauth2" else account.password_command
    if command is None:
        return None
    return _found(run_secret_command(command, f"accounts.{account.name}.{key}"), key)


def run_secret_command(command: Command, what: str, timeout: float | None = None) -> str:
    """Run a password/token command and return the first line it prints.

    A string runs through ``/bin/sh -c`` (like mbsync's PassCmd); a tuple is an argv.
    Failures name the command's key and exit status, never its output.
    """
    timeout = COMMAND_TIMEOUT if timeout is None else timeout
    argv = ["/bin/sh", "-c", command] if isinstance(command, str) else list(command)
    try:
        returncode, stdout = _run(argv, timeout)
    except subprocess.TimeoutExpired:
        raise ConfigError(f"{what} did not finish within {timeout:g} s") from None
    except OSError as exc:
        raise ConfigError(f"{what} could not be started: {exc.strerror}") from None
    lines = stdout.decode("utf-8", "replace").splitlines()
    value = lines[0].strip() if lines else ""
    log.add_secret(value)
    if returncode != 0:
        raise ConfigError(
            f"{what} failed with exit status {returncode}",
            hint="run the command yourself to see its error",
        )
    if not value:
        raise ConfigError(f"{what} printed nothing on its first line")
    return value


def _run(argv: list[str], timeout: float) -> tuple[int, bytes]:
    """Run in its own process group, so a timeout also ends what a shell started."""
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        stdout, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise
    return proc.returncode, stdout


def _from_keyring(account: ImapAccount, missing: list[str]) -> Secret | None:
    if not account.keyring:
        return None
    try:
        import keyring

        value = keyring.get_password(KEYRING_SERVICE, account.username)
    except Exception as exc:  # no backend, locked, D-Bus errors: keyring raises many kinds
        raise ConfigError(
            f"accounts.{account.name}.keyring: the system keyring is not usable "
            f"({type(exc).__name__})",
            hint="use password_command or password_env instead",
        ) from None
    if not value:
        missing.append(f"no keyring entry for {KEYRING_SERVICE}/{account.username}")
        return None
    return _found(value, "keyring")


def store_in_keyring(account: ImapAccount, value: str) -> None:
    """Save a password in the system keyring (used by ``supportcli init``)."""
    log.add_secret(value)
    try:
        import keyring

        keyring.set_password(KEYRING_SERVICE, account.username, value)
    except Exception as exc:  # see _from_keyring
        raise ConfigError(
            f"cannot save the password in the keyring ({type(exc).__name__})"
        ) from None


def _from_config(account: ImapAccount, missing: list[str]) -> Secret | None:
    if account.password is None:
        return None
    return _found(account.password, "config file")


def _prompt(account: ImapAccount) -> Secret:
    what = "Access token" if account.auth == "xoauth2" else "Password"
    try:
        value = getpass.getpass(f"{what} for {account.username} at {account.host}: ")
    except EOFError:
        value = ""
    log.add_secret(value)
    if not value:
        raise ConfigError(f"no {what.lower()} entered for account {account.name}")
    return Secret(value, "prompt")


def smtp_secret(source: SmtpCredential) -> str | None:
    """The SMTP password from the environment, a command or the keyring; never a prompt.

    None when ``[smtp]`` names no credential source (a relay that needs no login)."""
    env = source.password_env
    if env:
        value = os.environ.get(str(env), "")
        if not value:
            raise ConfigError(f"smtp.password_env: the variable {env} is not set")
        log.add_secret(value)
        return value
    command = source.password_command
    if command:
        return run_secret_command(command, "smtp.password_command")
    if source.keyring:
        try:
            import keyring

            stored = keyring.get_password(SMTP_KEYRING_SERVICE, source.username or "")
        except Exception as exc:
            raise ConfigError(
                f"smtp.keyring: the system keyring is not usable ({type(exc).__name__})"
            ) from None
        if not stored:
            raise ConfigError(
                f"smtp.keyring: no password stored for service {SMTP_KEYRING_SERVICE}"
            )
        log.add_secret(stored)
        return stored
    if source.username:
        raise ConfigError(
            "smtp.username is set but no password source: set password_env, "
            "password_command or keyring in [smtp]"
        )
    return None
