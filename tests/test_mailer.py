"""Mailing the report through a real SMTP server (aiosmtpd) on 127.0.0.1 with TLS and AUTH."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import ipaddress
import logging
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from supportcli import mailer
from supportcli.errors import ConfigError, ExitCode

# aiosmtpd warns when AUTH is allowed without STARTTLS; the implicit-TLS server is encrypted
# from the first byte, which aiosmtpd cannot see.
pytestmark = pytest.mark.filterwarnings(
    "ignore:Requiring AUTH while not requiring TLS:UserWarning")

PASSWORD = "s3cret-Pa55word!"
USER = "reports@shop.example"
TEXT = "Support report\n\nHEADLINE\n  Awaiting a reply 12\n"
HTML = "<!DOCTYPE html><html><body><h1>Support report</h1><p>Awaiting 12</p></body></html>"


@dataclass
class Inbox:
    messages: list[tuple[Any, EmailMessage]] = field(default_factory=list)
    logins: list[tuple[str, str]] = field(default_factory=list)

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          options: list[str]) -> str:
        if address.startswith("nobody@"):
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        self.messages.append((envelope, parsed))
        return "250 2.0.0 queued"

    def authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str,
                     auth_data: Any) -> AuthResult:
        assert isinstance(auth_data, LoginPassword)
        login, password = auth_data.login.decode(), auth_data.password.decode()
        self.logins.append((mechanism, login))
        return AuthResult(success=(login, password) == (USER, PASSWORD), handled=False)


@dataclass
class Servers:
    cert: Path
    starttls: int
    implicit: int
    inbox: Inbox


def _self_signed(directory: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
            critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    cert, key = _self_signed(tmp_path_factory.mktemp("smtp-tls"))
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    inbox = Inbox()
    common: dict[str, Any] = {"hostname": "127.0.0.1", "authenticator": inbox.authenticate,
              "auth_required": True, "ready_timeout": 5.0}
    starttls = Controller(inbox, port=_free_port(), tls_context=server_ctx,
                          require_starttls=True, **common)
    # implicit TLS: aiosmtpd does not know the socket is encrypted, so it must not insist
    implicit = Controller(inbox, port=_free_port(), ssl_context=server_ctx,
                          auth_require_tls=False, **common)
    starttls.start()
    implicit.start()
    try:
        yield Servers(cert, starttls.port, implicit.port, inbox)
    finally:
        starttls.stop()
        implicit.stop()


def settings(servers: Servers, **changes: Any) -> mailer.SmtpSettings:
    base = mailer.smtp_from_config({
        "host": "127.0.0.1", "port": servers.starttls, "security": "starttls",
        "from": f"Support reports <{USER}>", "timeout": 5, "ca_file": str(servers.cert),
    })
    return replace(base, **changes)


def test_report_sent_over_starttls_with_auth(servers: Servers) -> None:
    before = len(servers.inbox.messages)
    mailer.send_report(settings(servers), PASSWORD, ["Owner <owner@shop.example>"],
                       "Support report: 2 urgent, 12 awaiting", TEXT, HTML)
    envelope, msg = servers.inbox.messages[before]
    assert envelope.mail_from == USER and envelope.rcpt_tos == ["owner@shop.example"]
    assert servers.inbox.logins[-1][1] == USER
    assert msg.get_content_type() == "multipart/alternative"
    parts = list(msg.iter_parts())
    assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
    assert parts[0].get_content().replace("\r\n", "\n") == TEXT
    assert parts[1].get_content().strip() == HTML
    assert msg["Subject"] == "Support report: 2 urgent, 12 awaiting"
    assert msg["Auto-Submitted"] == "auto-generated"
    assert msg["From"] == f"Support reports <{USER}>" and msg["To"] == "Owner <owner@shop.example>"
    assert msg["Message-ID"].endswith("@shop.example>") and msg["Date"]
    assert PASSWORD not in envelope.content.decode("utf-8", "replace")


def test_report_sent_over_implicit_tls(servers: Servers) -> None:
    before = len(servers.inbox.messages)
    mailer.send_report(settings(servers, port=servers.implicit, security="ssl"), PASSWORD,
                       ["owner@shop.example", "staff@shop.example"], "Report", TEXT, HTML)
    envelope, msg = servers.inbox.messages[before]
    assert envelope.rcpt_tos == ["owner@shop.example", "staff@shop.example"]
    assert msg.get_content_type() == "multipart/alternative"


def test_wrong_password_is_one_line_without_the_password(
    servers: Servers, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = "wrong-" + PASSWORD
    caplog.set_level(logging.DEBUG)
    with pytest.raises(mailer.MailAuthError) as info:
        mailer.send_report(settings(servers), wrong, ["owner@shop.example"], "R", TEXT, HTML)
    message = info.value.message
    assert "\n" not in message and "login" in message and "535" in message
    assert wrong not in message and PASSWORD not in message
    assert wrong not in caplog.text and wrong not in str(info.value.hint)
    assert info.value.exit_code == ExitCode.CONFIG
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_server_refuses_mail_without_login(servers: Servers) -> None:
    with pytest.raises(mailer.MailError) as info:
        mailer.send_report(settings(servers), None, ["owner@shop.example"], "R", TEXT, HTML)
    assert "\n" not in info.value.message and "530" in info.value.message


def test_untrusted_certificate_is_refused(servers: Servers) -> None:
    with pytest.raises(mailer.MailError) as info:
        mailer.send_report(settings(servers, ca_file=None), PASSWORD, ["owner@shop.example"],
                           "R", TEXT, HTML)
    assert "not trusted" in info.value.message and info.value.hint
    assert PASSWORD not in info.value.message


def test_refused_recipient(servers: Servers) -> None:
    with pytest.raises(mailer.MailError) as info:
        mailer.send_report(settings(servers), PASSWORD, ["nobody@shop.example"], "R", TEXT, HTML)
    assert "nobody@shop.example" in info.value.message and "550" in info.value.message


def test_connection_refused_is_one_line() -> None:
    config = {"host": "127.0.0.1", "port": _free_port(), "from": USER, "timeout": 2}
    with pytest.raises(mailer.MailError) as info:
        mailer.send_report(mailer.smtp_from_config(config), PASSWORD, [USER], "R", TEXT, HTML)
    assert info.value.message.endswith("connection refused") and PASSWORD not in str(info.value)


@pytest.mark.parametrize("to", [[], ["not an address"], ["a@b.example\r\nBcc: x@y.example"],
                                ["ok@shop.example", '"x" <>'], ["a@b.example Bcc: x@y.example"]])
def test_bad_recipients_are_refused_before_connecting(to: list[str]) -> None:
    config = mailer.smtp_from_config({"host": "127.0.0.1", "port": _free_port(), "from": USER})
    with pytest.raises(mailer.MailError, match=r"recipient|not an email address"):
        mailer.send_report(config, None, to, "R", TEXT, HTML)


def test_subject_cannot_inject_headers() -> None:
    config = mailer.smtp_from_config({"host": "127.0.0.1", "from": USER})
    msg = mailer.build_message(config, [USER], "Report\r\nBcc: evil@example.com", TEXT, HTML)
    assert msg["Subject"] == "Report Bcc: evil@example.com" and msg["Bcc"] is None


def test_config_defaults_and_errors(tmp_path: Path) -> None:
    ssl_settings = mailer.smtp_from_config({"host": "smtp.example.com", "security": "ssl",
                                            "from": USER})
    assert (ssl_settings.port, ssl_settings.login, ssl_settings.timeout) == (465, USER, 30.0)
    assert mailer.smtp_from_config({"host": "h", "from": USER}).port == 587
    plain = mailer.smtp_from_config({"host": "h", "from": USER, "security": "plain",
                                     "allow_insecure": True, "username": "bob"})
    assert (plain.port, plain.login) == (25, "bob")
    bad: list[dict[str, Any]] = [
        {}, {"from": USER}, {"host": "h"}, {"host": "h", "from": "nobody"},
        {"host": "h", "from": USER, "security": "tls"},
        {"host": "h", "from": USER, "security": "plain"},
        {"host": "h", "from": USER, "port": "587"}, {"host": "h", "from": USER, "port": 70000},
        {"host": "h", "from": USER, "timeout": 0},
        {"host": "h", "from": USER, "ca_file": str(tmp_path / "missing.pem")},
    ]
    for raw in bad:
        with pytest.raises(ConfigError) as info:
            mailer.smtp_from_config(raw)
        assert "\n" not in info.value.message
