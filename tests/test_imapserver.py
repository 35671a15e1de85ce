"""Self-tests for the Dovecot test harness in tests/imapserver.py."""

from __future__ import annotations

import contextlib
import datetime as dt
import imaplib
import ssl
from collections.abc import Iterator
from pathlib import Path

import imapclient
import imapserver
import pytest
from imapclient.exceptions import LoginError
from imapserver import DovecotServer, DovecotUnavailable, create_ca

pytestmark = pytest.mark.imap


def _message(n: int) -> bytes:
    return (
        f"From: customer{n}@example.test\r\n"
        f"To: shop@example.test\r\n"
        f"Subject: order question {n}\r\n"
        f"Message-ID: <msg{n}@example.test>\r\n"
        f"\r\n"
        f"Where is my parcel {n}?\r\n"
    ).encode()


def _close_quietly(imap: imapclient.IMAPClient) -> None:
    """Drop a connection that may already be broken."""
    with contextlib.suppress(OSError, imaplib.IMAP4.error):
        imap.shutdown()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DovecotServer]:
    with DovecotServer.start(tmp_path_factory.mktemp("dovecot")) as srv:
        yield srv


def test_login_plain_port_with_starttls(server: DovecotServer) -> None:
    imap = imapclient.IMAPClient(server.host, port=server.port, ssl=False, timeout=10)
    try:
        assert b"STARTTLS" in imap.capabilities()
        imap.starttls(server.ssl_context())
        cert = imap._imap.sock.getpeercert()  # verified against ca_cert
        assert ("DNS", "localhost") in cert["subjectAltName"]
        imap.login(server.user, server.password)
        assert imap.select_folder("INBOX", readonly=True)[b"READ-ONLY"]
    finally:
        imap.logout()


def test_login_plain_port_without_tls(server: DovecotServer) -> None:
    with server.client() as imap:
        assert imap.noop()


def test_login_implicit_tls(server: DovecotServer) -> None:
    with server.client(ssl=True) as imap:
        assert imap._imap.sock.version() in ("TLSv1.2", "TLSv1.3")
        assert imap.noop()


@pytest.mark.parametrize("use_starttls", [False, True], ids=["imaps", "starttls"])
def test_wrong_ca_is_refused(server: DovecotServer, tmp_path: Path, use_starttls: bool) -> None:
    other_ca, _ = create_ca(tmp_path, "other")
    context = ssl.create_default_context(cafile=str(other_ca))
    with pytest.raises(ssl.SSLCertVerificationError):
        if use_starttls:
            imap = imapclient.IMAPClient(server.host, port=server.port, ssl=False, timeout=10)
            try:
                imap.starttls(context)
            finally:
                _close_quietly(imap)
        else:
            imapclient.IMAPClient(
                server.host, port=server.ssl_port, ssl=True, ssl_context=context, timeout=10
            )


def test_wrong_password(server: DovecotServer) -> None:
    imap = server.client(login=False)
    try:
        with pytest.raises(LoginError):
            imap.login(server.user, "wrong password")
    finally:
        imap.shutdown()


def test_xoauth2_token(server: DovecotServer) -> None:
    imap = server.client(login=False)
    try:
        assert b"AUTH=XOAUTH2" in imap.capabilities()
        imap.oauth2_login(server.user, server.token)
        assert imap.select_folder("INBOX", readonly=True)
    finally:
        imap.logout()


@pytest.mark.parametrize(
    ("secret_attr", "mechanism"),
    [("token", "LOGIN"), ("password", "XOAUTH2"), (None, "XOAUTH2")],
    ids=["token-as-password", "password-as-token", "wrong-token"],
)
def test_secrets_are_not_interchangeable(
    server: DovecotServer, secret_attr: str | None, mechanism: str
) -> None:
    secret = getattr(server, secret_attr) if secret_attr else "ya29.expired"
    imap = server.client(login=False)
    try:
        with pytest.raises(LoginError):
            if mechanism == "LOGIN":
                imap.login(server.user, secret)
            else:
                imap.oauth2_login(server.user, secret)
    finally:
        imap.shutdown()


def test_append_and_read_back(server: DovecotServer) -> None:
    server.create_folder("Orders")
    when = dt.datetime(2024, 5, 1, 12, 30, tzinfo=dt.UTC)
    server.append("Orders", _message(1), flags=(b"\\Seen", "$Label1"), when=when)
    server.append_many("Orders", [_message(n) for n in range(2, 12)], batch=4)

    uids = server.uids("Orders")
    assert len(uids) == 11
    flags = server.flags("Orders")
    assert set(flags[uids[0]]) == {b"\\Seen", b"$Label1"}
    assert all(flags[uid] == () for uid in uids[1:])  # \Recent is left out

    with server.client() as imap:
        imap.select_folder("Orders", readonly=True)
        data = imap.fetch(uids[:1], ["RFC822", "INTERNALDATE"])[uids[0]]
    assert data[b"RFC822"] == _message(1)
    assert data[b"INTERNALDATE"].astimezone(dt.UTC) == when
    # A read-only look must not have marked anything as seen.
    assert server.flags("Orders") == flags


def test_reset_uidvalidity(server: DovecotServer) -> None:
    server.append("INBOX", _message(100), flags=(b"\\Flagged",))
    before_uids, before_flags = server.uids("INBOX"), server.flags("INBOX")
    old = server.uidvalidity("INBOX")

    new = server.reset_uidvalidity("INBOX")

    assert new != old
    with server.client() as imap:
        assert imap.select_folder("INBOX")[b"UIDVALIDITY"] == new
    assert server.uids("INBOX") == before_uids
    assert server.flags("INBOX") == before_flags


def test_kill_and_restart_keep_messages(server: DovecotServer) -> None:
    server.create_folder("Survivors")
    server.append_many("Survivors", [_message(n) for n in range(200, 205)])
    expected = server.uids("Survivors")
    validity = server.uidvalidity("Survivors")

    victim = server.client()
    try:
        victim.select_folder("Survivors")
        server.kill()
        assert not server.running
        with pytest.raises((imaplib.IMAP4.abort, OSError)):
            victim.noop()
    finally:
        _close_quietly(victim)

    server.restart()
    assert server.running
    assert server.uids("Survivors") == expected
    assert server.uidvalidity("Survivors") == validity


def test_missing_dovecot_raises_unavailable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(imapserver, "_which", lambda program: None)
    with pytest.raises(DovecotUnavailable):
        DovecotServer.start(tmp_path)
    assert issubclass(DovecotUnavailable, RuntimeError)
