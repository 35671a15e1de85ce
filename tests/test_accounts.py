"""[accounts.NAME] tables: defaults, one-line errors naming the key, the 0600 password rule."""

from __future__ import annotations

import logging
import tomllib
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from supportcli.accounts import ImapAccount, accounts_from_config, write_account_toml
from supportcli.config import load_settings
from supportcli.errors import ConfigError, ExitCode


def _one(table: dict[str, Any], config_path: Path | None = None) -> ImapAccount:
    return accounts_from_config({"accounts": {"shop": table}}, config_path)["shop"]


def _error(table: dict[str, Any], config_path: Path | None = None) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        _one(table, config_path)
    assert caught.value.exit_code == ExitCode.CONFIG
    assert "\n" not in caught.value.message
    return caught.value


BASE = {"host": "imap.example.com", "username": "support@example.com"}


def test_defaults() -> None:
    account = _one(dict(BASE))
    assert account == ImapAccount(
        name="shop", host="imap.example.com", username="support@example.com"
    )
    assert (account.port, account.security, account.folders) == (993, "ssl", ("INBOX",))
    assert (account.first_sync_days, account.timeout, account.auth) == (30, 30.0, "password")
    assert account.sent_folder is None and account.ca_file is None
    assert account.source_name == "imap:shop"
    assert account.since(date(2024, 3, 31)) == date(2024, 3, 1)


def test_no_accounts_is_empty() -> None:
    assert accounts_from_config({}) == {}


def test_starttls_defaults_to_port_143_and_keeps_explicit_values() -> None:
    account = _one(
        BASE
        | {
            "security": "starttls",
            "folders": ["INBOX", "Support/Orders"],
            "sent_folder": "Sent",
            "first_sync_days": 7,
            "ca_file": "~/ca.pem",
            "timeout": 5,
        }
    )
    assert account.port == 143
    assert account.folders == ("INBOX", "Support/Orders")
    assert account.sent_folder == "Sent"
    assert account.first_sync_days == 7
    assert account.ca_file == Path("~/ca.pem").expanduser()
    assert account.timeout == 5.0


def test_plain_needs_allow_insecure() -> None:
    error = _error(BASE | {"security": "plain"})
    assert "accounts.shop.security" in error.message
    assert "allow_insecure" in error.message
    account = _one(BASE | {"security": "plain", "allow_insecure": True})
    assert (account.security, account.port) == ("plain", 143)


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"port": "993x"}, "accounts.shop.port"),
        ({"port": 70000}, "accounts.shop.port"),
        ({"security": "tls"}, "accounts.shop.security"),
        ({"folders": []}, "accounts.shop.folders"),
        ({"folders": ["INBOX", 3]}, "accounts.shop.folders"),
        ({"hots": "typo.example.com"}, "accounts.shop.hots"),
        ({"first_sync_days": 0}, "accounts.shop.first_sync_days"),
        ({"timeout": -1}, "accounts.shop.timeout"),
        ({"keyring": "yes"}, "accounts.shop.keyring"),
        ({"auth": "oauth"}, "accounts.shop.auth"),
        ({"password_command": []}, "accounts.shop.password_command"),
        ({"auth": "xoauth2"}, "accounts.shop.token_command"),
        ({"token_command": "get-token"}, "accounts.shop.token_command"),
        ({"auth": "xoauth2", "token_command": "t", "password_command": "p"}, "password_command"),
    ],
)
def test_bad_values_name_the_key(change: dict[str, Any], key: str) -> None:
    assert key in _error(BASE | change).message


@pytest.mark.parametrize("missing", ["host", "username"])
def test_required_keys(missing: str) -> None:
    table = dict(BASE)
    del table[missing]
    assert _error(table).message == f"accounts.shop.{missing}: missing (required)"


def test_bad_account_name() -> None:
    with pytest.raises(ConfigError, match="account name"):
        accounts_from_config({"accounts": {"my shop": dict(BASE)}})


def test_xoauth2_with_token_command() -> None:
    account = _one(BASE | {"auth": "xoauth2", "token_command": ["oauth2l", "fetch"]})
    assert account.token_command == ("oauth2l", "fetch")


def test_password_needs_a_private_config_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "hunter2-in-config"
    config = tmp_path / "config.toml"
    config.write_text("")
    config.chmod(0o644)
    error = _error(BASE | {"password": secret}, config)
    assert "chmod 600" in error.message and secret not in error.message
    assert "password" in _error(BASE | {"password": secret}).message  # no file to check

    config.chmod(0o600)
    with caplog.at_level(logging.WARNING):
        account = _one(BASE | {"password": secret}, config)
    assert account.password == secret
    assert "accounts.shop.password" in caplog.text and secret not in caplog.text
    assert secret not in repr(account)


def test_wrong_type_password_is_not_echoed() -> None:
    error = _error(BASE | {"password": 12345678})
    assert "12345678" not in error.message


def test_written_table_reads_back(tmp_path: Path) -> None:
    account = ImapAccount(
        name="shop-2",
        host="mail.example.org",
        username="ops@example.org",
        port=1993,
        security="starttls",
        folders=("INBOX", 'Kunden "VIP"', "Zurück\\Archiv", "odd\x7fname"),
        sent_folder="Gesendet",
        first_sync_days=14,
        ca_file=tmp_path / "ca.pem",
        auth="xoauth2",
        token_command=("get-token", "--user", "ops@example.org"),
        timeout=12.5,
    )
    text = write_account_toml(account)
    assert text.startswith("[accounts.shop-2]\n")
    assert accounts_from_config(tomllib.loads(text)) == {"shop-2": account}


def test_written_defaults_stay_short() -> None:
    account = ImapAccount(name="shop", host="h.example", username="u", password_env="SHOP_PW")
    text = write_account_toml(account)
    assert "port" not in text and "security" not in text and "timeout" not in text
    assert accounts_from_config(tomllib.loads(text))["shop"] == account


def test_written_password_reads_back_from_private_file(tmp_path: Path) -> None:
    account = ImapAccount(name="shop", host="h.example", username="u", password='p"w\\d')
    config = tmp_path / "config.toml"
    config.write_text(write_account_toml(account))
    config.chmod(0o600)
    settings = load_settings(config)
    assert settings.accounts()["shop"] == account


def test_from_a_real_config_file(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        '[accounts.shop]\nhost = "imap.fastmail.com"\nusername = "me@fastmail.com"\n'
        'password_command = "pass show fastmail"\n\n'
        '[accounts.gmail]\nhost = "imap.gmail.com"\nusername = "shop@gmail.com"\n'
        'auth = "xoauth2"\ntoken_command = "oauth2-token shop@gmail.com"\n'
        'folders = ["INBOX"]\nsent_folder = "[Gmail]/Sent Mail"\n'
    )
    settings = load_settings(config)
    accounts = settings.accounts()
    assert sorted(accounts) == ["gmail", "shop"]
    assert accounts["shop"].password_command == "pass show fastmail"
    assert accounts["gmail"].sent_folder == "[Gmail]/Sent Mail"
