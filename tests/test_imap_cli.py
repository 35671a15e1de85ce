"""The IMAP commands end to end against a real Dovecot: init, sync, triage with sync,
answered detection through the Sent folder, doctor, and clean failures without secrets."""

from __future__ import annotations

import itertools
import json
import stat
from pathlib import Path

import pytest

from supportcli import resources
from supportcli.cli import main
from supportcli.parse import parse
from supportcli.records import Message, RawMessage
from supportcli.store import Store

pytestmark = pytest.mark.imap
DEMO = sorted(resources.demo_dir().glob("*.eml"))
_folders = itertools.count(1)


@pytest.fixture
def server(dovecot: object) -> object:
    return dovecot


@pytest.fixture
def mailbox(server: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, object]:
    """A fresh folder with six demo messages, a config pointing at it, the password in env."""
    folder = f"Support{next(_folders)}"
    server.create_folder(folder)  # type: ignore[attr-defined]
    for path in DEMO[:6]:
        server.append(folder, path.read_bytes())  # type: ignore[attr-defined]
    monkeypatch.setenv("SHOP_IMAP_PASSWORD", server.password)  # type: ignore[attr-defined]
    config = tmp_path / "config.toml"
    code = main([
        "--config", str(config), "init", "--name", "shop",
        "--host", server.host, "--port", str(server.port),  # type: ignore[attr-defined]
        "--security", "starttls", "--username", server.user,  # type: ignore[attr-defined]
        "--folder", folder, "--password-env", "SHOP_IMAP_PASSWORD",
        "--ca-file", str(server.ca_cert), "--days", "36500",  # type: ignore[attr-defined]
    ])  # fmt: skip
    assert code == 0
    return {"config": str(config), "folder": folder, "server": server}


def _message_id(path: Path) -> str:
    msg = parse(RawMessage("t", path.name, path.read_bytes()))
    assert isinstance(msg, Message)
    return msg.message_id


def test_init_writes_a_private_config_and_refuses_to_overwrite(
    mailbox: dict[str, object], capsys: pytest.CaptureFixture[str]
) -> None:
    config = Path(str(mailbox["config"]))
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    text = config.read_text()
    assert "[accounts.shop]" in text and "password_env" in text
    assert "correct horse" not in text
    capsys.readouterr()
    assert main(["--config", str(config), "init", "--name", "shop", "--host", "x",
                 "--username", "y", "--password-env", "P"]) == 2  # fmt: skip
    assert "already exists" in capsys.readouterr().err


def test_sync_is_incremental_and_never_marks_mail_read(
    mailbox: dict[str, object], isolated_state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server, folder, config = mailbox["server"], str(mailbox["folder"]), str(mailbox["config"])
    before = server.flags(folder)  # type: ignore[attr-defined]
    assert main(["--config", config, "sync"]) == 0
    assert "shop: 6 new" in capsys.readouterr().err
    with Store(isolated_state / "supportcli.db") as store:
        assert store.count_messages() == 6
    assert server.flags(folder) == before  # type: ignore[attr-defined]

    server.append(folder, DEMO[6].read_bytes())  # type: ignore[attr-defined]
    assert main(["--config", config, "sync"]) == 0
    assert "shop: 1 new" in capsys.readouterr().err
    assert main(["--config", config, "sync"]) == 0
    assert "shop: 0 new" in capsys.readouterr().err
    with Store(isolated_state / "supportcli.db") as store:
        assert store.count_messages() == 7


def test_triage_syncs_first_and_sent_replies_mark_threads_answered(
    mailbox: dict[str, object], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server, config = mailbox["server"], Path(str(mailbox["config"]))
    sent = f"Sent{next(_folders)}"
    server.create_folder(sent)  # type: ignore[attr-defined]
    replied_to = _message_id(DEMO[0])
    server.append(sent, (  # type: ignore[attr-defined]
        "From: support@northwind-coffee.example\r\nTo: customer@example.com\r\n"
        f"Subject: Re: your order\r\nMessage-ID: <reply-1@northwind-coffee.example>\r\n"
        f"In-Reply-To: <{replied_to}>\r\nReferences: <{replied_to}>\r\n"
        "Date: Fri, 20 Nov 2026 10:00:00 +0000\r\n\r\nThanks, sorted!\r\n"
    ).encode())  # fmt: skip
    config.write_text(config.read_text() + f'sent_folder = "{sent}"\n')
    assert main(["--config", str(config), "triage", "--format", "json"]) == 0
    awaiting = json.loads(capsys.readouterr().out)
    assert replied_to not in {i["message_id"] for i in awaiting}
    assert len(awaiting) >= 4
    assert main(["--config", str(config), "triage", "--offline", "--all", "--format", "json"]) == 0
    everything = json.loads(capsys.readouterr().out)
    assert replied_to in {i["message_id"] for i in everything}


def test_doctor_passes_on_a_good_account(
    mailbox: dict[str, object], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--config", str(mailbox["config"]), "doctor"]) == 0
    out = capsys.readouterr().out
    for name in ("config", "credentials", "dns", "tcp", "tls", "login", "model"):
        assert f"✓ {name}" in out, out
    assert "✗" not in out


def test_wrong_password_is_one_line_exit_4_and_never_shows_the_secret(
    mailbox: dict[str, object], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = "wrong-but-secret-Pa55word"
    monkeypatch.setenv("SHOP_IMAP_PASSWORD", secret)
    config = str(mailbox["config"])
    assert main(["-vv", "--config", config, "sync"]) == 4
    out, err = capsys.readouterr()
    assert "login failed" in err
    # the server's words as text, not a Python bytes repr (b'[AUTHENTICATIONFAILED] …')
    assert "hint: the server said: [AUTHENTICATIONFAILED] Authentication failed." in err, err
    assert "said: b'" not in err
    assert secret not in out + err
    assert "Traceback" not in err
    assert main(["-vv", "--config", config, "doctor"]) == 4
    out, err = capsys.readouterr()
    assert "✗ login" in out and "✓ tcp" in out
    assert secret not in out + err


def test_missing_credentials_under_cron_exit_3(
    mailbox: dict[str, object], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("SHOP_IMAP_PASSWORD")
    assert main(["--config", str(mailbox["config"]), "sync"]) == 3
    assert "no credentials for account shop" in capsys.readouterr().err


def test_no_account_configured(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "empty.toml"
    config.write_text("")
    assert main(["--config", str(config), "sync"]) == 3
    assert "supportcli init" in capsys.readouterr().err


def test_a_ca_file_that_holds_no_certificate_is_a_config_error_in_sync_and_doctor(
    mailbox: dict[str, object], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    garbage = tmp_path / "garbage-ca.pem"
    garbage.write_bytes(b"-----BEGIN CERTIFICATE-----\nnot base64 at all\n")
    config = Path(str(mailbox["config"]))
    config.write_text(config.read_text().replace(str(mailbox["server"].ca_cert), str(garbage)))  # type: ignore[attr-defined]
    assert main(["--config", str(config), "sync"]) == 3
    assert "ca_file: cannot load" in capsys.readouterr().err
    assert main(["--config", str(config), "doctor"]) == 3
    out = capsys.readouterr().out
    assert "✗ config" in out and "ca_file: cannot load" in out, out
