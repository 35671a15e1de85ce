"""The IMAP source against a real private Dovecot (tests/imapserver.py), and Gmail via a fake.

Every folder is private to its test, so tests can run in any order on one server.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import shutil
import ssl
import tempfile
import time
import traceback
from collections.abc import Iterator
from dataclasses import replace
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from imapserver import DovecotServer, DovecotUnavailable, create_ca

from supportcli.accounts import ImapAccount, Security
from supportcli.doctor import Check, all_ok, run_checks
from supportcli.errors import ExitCode, SourceError
from supportcli.parse import parse
from supportcli.records import Message, RawMessage, SyncCursor
from supportcli.sources import MessageSource, imap_wire
from supportcli.sources.imap import ConnectionFailed, ImapSource, open_source
from supportcli.store import Store

pytestmark = pytest.mark.imap

TODAY = dt.datetime.now(dt.UTC)
SINCE = (TODAY - dt.timedelta(days=30)).date()
FAST_RETRY = (0.05, 0.1, 0.2)


@pytest.fixture(scope="module")
def server() -> Iterator[DovecotServer]:
    # Not under pytest's basetemp: every pytest run resets /tmp/pytest-of-USER to mode 0700,
    # which would lock Dovecot's unprivileged processes out of this one's files mid-module
    # whenever a second pytest starts on the same machine.
    tmp = Path(tempfile.mkdtemp(prefix="supportcli-imap-"))
    try:
        try:
            srv = DovecotServer.start(tmp)
        except DovecotUnavailable as exc:
            if os.environ.get("CI"):
                pytest.fail(f"dovecot is required in CI: {exc}")
            pytest.skip(f"dovecot not installed: {exc}")
        with srv:
            yield srv
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture
def account(server: DovecotServer) -> ImapAccount:
    return ImapAccount(
        name="test",
        host=server.host,
        username=server.user,
        port=server.ssl_port,
        ca_file=server.ca_cert,
        timeout=10,
    )


@pytest.fixture
def folder(server: DovecotServer, request: pytest.FixtureRequest) -> str:
    name = request.node.name.replace("[", "-").replace("]", "").replace("test_", "")
    server.create_folder(name)
    return name


def mail(n: int, *, reply_to: str = "", refs: str = "", subject: str = "") -> bytes:
    headers = f"From: Customer {n} <customer{n}@example.test>\r\nTo: shop@example.test\r\n"
    headers += f"Subject: {subject or f'Where is order {10000 + n}?'}\r\n"
    headers += f"Message-ID: <m{n}@example.test>\r\nDate: {TODAY:%a, %d %b %Y %H:%M:%S +0000}\r\n"
    if reply_to:
        headers += f"In-Reply-To: <{reply_to}>\r\n"
    if refs:
        headers += f"References: {refs}\r\n"
    return (headers + f"\r\nHello, my parcel {n} has not arrived.\r\n").encode()


def sync(source: ImapSource, store: Store, folder: str) -> tuple[int, int]:
    """What the sync workflow does: store each batch, then save its cursor."""
    added = dupes = 0
    saved = store.cursor(source.account.name, folder)
    for raws, cursor in source.fetch_new(folder, saved, SINCE):
        parsed = [parse(raw) for raw in raws]
        assert all(isinstance(m, Message) for m in parsed), parsed
        a, d = store.add_messages(m for m in parsed if isinstance(m, Message))
        added, dupes = added + a, dupes + d
        store.save_cursor(cursor)
    return added, dupes


def fetch_all(
    source: ImapSource, folder: str, cursor: SyncCursor | None = None
) -> list[RawMessage]:
    return [raw for batch, _ in source.fetch_new(folder, cursor, SINCE) for raw in batch]


def message_ids(raws: list[RawMessage]) -> list[str]:
    parsed = [parse(raw) for raw in raws]
    return [m.message_id for m in parsed if isinstance(m, Message)]


def ids(store: Store) -> list[str]:
    return sorted(m.message_id for m in store.messages())


# --- sync --------------------------------------------------------------------------------------


def test_first_sync_window_then_incremental(
    server: DovecotServer, account: ImapAccount, folder: str
) -> None:
    old = TODAY - dt.timedelta(days=90)
    server.append(folder, mail(1), when=old)
    for n in (2, 3, 4):
        server.append(folder, mail(n), when=TODAY - dt.timedelta(days=n))
    server.append(folder, mail(5), when=old)  # above the others' UIDs, outside the window
    validity = server.uidvalidity(folder)
    uids = server.uids(folder)

    with ImapSource(account, server.password, batch_size=2) as source:
        batches = list(source.fetch_new(folder, None, SINCE))
        assert [len(b) for b, _ in batches] == [2, 1, 0]
        assert [c.last_uid for _, c in batches] == [uids[2], uids[3], uids[4]]
        first = [raw for b, _ in batches for raw in b]
        assert message_ids(first) == [
            "m2@example.test", "m3@example.test", "m4@example.test"
        ]  # fmt: skip
        raw = first[0]
        assert raw.source == f"imap:test/{folder}"
        assert raw.key == f"{validity}:{uids[1]}"
        assert raw.data == mail(2)
        assert raw.received is not None and raw.received.tzinfo == dt.UTC
        assert abs(raw.received - (TODAY - dt.timedelta(days=2))) < dt.timedelta(seconds=2)

        cursor = batches[-1][1]
        assert list(source.fetch_new(folder, cursor, SINCE)) == []  # nothing new
        server.append_many(folder, [mail(6), mail(7)])
        new = list(source.fetch_new(folder, cursor, SINCE))
        assert message_ids([r for b, _ in new for r in b]) == [
            "m6@example.test", "m7@example.test"
        ]  # fmt: skip
        assert new[-1][1] == SyncCursor("test", folder, validity, max(server.uids(folder)))


def test_uid_star_quirk_does_not_refetch_the_last_message(
    server: DovecotServer, account: ImapAccount, folder: str
) -> None:
    server.append_many(folder, [mail(1), mail(2)])
    last = max(server.uids(folder))
    stale = SyncCursor("test", folder, server.uidvalidity(folder), last + 5)
    with ImapSource(account, server.password) as source:
        assert fetch_all(source, folder, stale) == []


def test_seen_and_other_flags_are_untouched(
    server: DovecotServer, account: ImapAccount, folder: str
) -> None:
    server.append(folder, mail(1))
    server.append(folder, mail(2), flags=(b"\\Seen", b"\\Answered"))
    server.append(folder, mail(3), flags=(b"\\Flagged",))
    before = server.flags(folder)
    with ImapSource(account, server.password) as source:
        raws = fetch_all(source, folder)
    assert server.flags(folder) == before
    assert [set(r.flags) for r in raws] == [set(), {"\\Seen", "\\Answered"}, {"\\Flagged"}]
    assert before[min(before)] == ()  # the unread message is still unread


def test_store_roundtrip_and_uidvalidity_change_without_duplicates(
    server: DovecotServer, account: ImapAccount, folder: str, tmp_path: Path
) -> None:
    server.append_many(folder, [mail(n) for n in range(10, 20)])
    with Store(tmp_path / "store.db") as store, ImapSource(account, server.password) as source:
        assert sync(source, store, folder) == (10, 0)
        old = store.cursor("test", folder)
        assert old is not None and old.last_uid == max(server.uids(folder))

        new_validity = server.reset_uidvalidity(folder)  # also drops our session
        server.append(folder, mail(20))
        source.retry_delays = FAST_RETRY
        assert sync(source, store, folder) == (1, 10)  # read again, deduped by Message-ID
        assert store.count_messages() == 11
        assert store.cursor("test", folder) == SyncCursor(
            "test", folder, new_validity, max(server.uids(folder))
        )
        assert sync(source, store, folder) == (0, 0)


def test_server_killed_mid_sync_resumes_without_loss_or_duplicates(
    server: DovecotServer, account: ImapAccount, folder: str, tmp_path: Path
) -> None:
    expected = [f"m{n}@example.test" for n in range(100, 130)]
    server.append_many(folder, [mail(n) for n in range(100, 130)])
    options: dict[str, Any] = {"batch_size": 5, "retry_delays": FAST_RETRY}
    with Store(tmp_path / "store.db") as store:
        source = ImapSource(account, server.password, **options)
        stored = 0
        try:
            with pytest.raises(ConnectionFailed) as caught:
                for raws, cursor in source.fetch_new(folder, None, SINCE):
                    store.add_messages(m for m in map(parse, raws) if isinstance(m, Message))
                    store.save_cursor(cursor)
                    stored += len(raws)
                    if stored == 10:
                        server.kill()  # dies between two batches; stays down
        finally:
            source.close()
            server.restart()
        assert caught.value.exit_code == ExitCode.SOURCE
        assert "could not reconnect after 3 tries" in caught.value.message
        # The next batch may already have been in our socket buffer when the server died.
        assert stored in (10, 15) and store.count_messages() == stored

        with ImapSource(account, server.password, **options) as again:
            assert sync(again, store, folder) == (30 - stored, 0)  # only what was missing
        assert ids(store) == sorted(expected)


def test_dropped_connection_reconnects_and_continues(
    server: DovecotServer, account: ImapAccount, folder: str, caplog: pytest.LogCaptureFixture
) -> None:
    server.append_many(folder, [mail(n) for n in range(200, 220)])
    seen: list[str] = []
    with ImapSource(account, server.password, batch_size=4, retry_delays=FAST_RETRY) as source:
        for raws, _ in source.fetch_new(folder, None, SINCE):
            seen += [raw.key for raw in raws]
            if len(seen) == 8:
                server.kill()
                server.restart()  # back before the next batch is asked for
    validity = server.uidvalidity(folder)
    assert seen == [f"{validity}:{uid}" for uid in server.uids(folder)]
    assert "connection to 127.0.0.1 lost" in caplog.text  # it really reconnected


# --- connections, TLS, authentication ----------------------------------------------------------


@pytest.mark.parametrize("security", ["ssl", "starttls"])
def test_tls_with_the_ca_verified(
    server: DovecotServer, account: ImapAccount, security: Security
) -> None:
    port = server.ssl_port if security == "ssl" else server.port
    with ImapSource(replace(account, security=security, port=port), server.password) as source:
        sock = source.client.socket()
        assert isinstance(sock, ssl.SSLSocket)
        assert ("DNS", "localhost") in (sock.getpeercert() or {})["subjectAltName"]
        assert source.select("INBOX").uidvalidity > 0


def test_plain_connection_when_allowed(server: DovecotServer, account: ImapAccount) -> None:
    plain = replace(account, security="plain", allow_insecure=True, port=server.port)
    with ImapSource(plain, server.password) as source:
        assert not isinstance(source.client.socket(), ssl.SSLSocket)


@pytest.mark.parametrize("security", ["ssl", "starttls"])
def test_wrong_ca_is_refused(
    server: DovecotServer, account: ImapAccount, tmp_path: Path, security: Security
) -> None:
    other_ca, _ = create_ca(tmp_path, "other")
    port = server.ssl_port if security == "ssl" else server.port
    wrong = replace(account, security=security, port=port, ca_file=other_ca)
    with pytest.raises(SourceError) as caught:
        ImapSource(wrong, server.password).open()
    assert caught.value.exit_code == ExitCode.SOURCE
    assert caught.value.message.startswith("TLS certificate of 127.0.0.1 refused: ")
    assert "issuer" in caught.value.message  # names the CA problem
    assert str(other_ca) in (caught.value.hint or "")


def test_wrong_password_fails_fast_and_never_shows_it(
    server: DovecotServer, account: ImapAccount, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = "not-the-Right-one-42"
    caplog.set_level(logging.DEBUG)
    started = time.monotonic()
    with pytest.raises(SourceError) as caught:
        ImapSource(account, wrong).open()
    assert time.monotonic() - started < 2
    error = caught.value
    assert error.message == f"login failed for {server.user} at 127.0.0.1"
    assert error.exit_code == ExitCode.SOURCE
    assert "Authentication failed" in (error.hint or "")
    shown = "".join(traceback.format_exception(error)) + (error.hint or "") + caplog.text
    assert wrong not in shown


def test_password_never_logged_at_debug(
    server: DovecotServer, account: ImapAccount, folder: str, caplog: pytest.LogCaptureFixture
) -> None:
    server.append(folder, mail(1))
    caplog.set_level(logging.DEBUG)  # root and imapclient's protocol log, no redacting filter
    with ImapSource(account, server.password) as source:
        assert len(fetch_all(source, folder)) == 1
    assert "LOGIN **REDACTED**" in caplog.text  # the protocol trace really was on
    assert server.password not in caplog.text


def test_xoauth2_with_token_command(
    server: DovecotServer, account: ImapAccount, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    oauth = replace(account, auth="xoauth2", token_command=("printf", "%s\n", server.token))
    with open_source(oauth) as source:
        assert source.select("INBOX").uidvalidity > 0
    assert server.token not in caplog.text

    expired = replace(oauth, token_command=("printf", "ya29.expired"))
    with pytest.raises(SourceError, match="login failed"):
        open_source(expired).open()


def test_password_command(server: DovecotServer, account: ImapAccount) -> None:
    with open_source(replace(account, password_command=("printf", "%s", server.password))) as src:
        assert src.select("INBOX").exists >= 0


@pytest.mark.parametrize(
    ("host", "port", "expected"),
    [
        ("nonexistent.invalid", 993, "unknown host nonexistent.invalid"),
        ("127.0.0.1", None, "connection refused by 127.0.0.1:"),
    ],
    ids=["unknown-host", "refused"],
)
def test_unreachable_server(
    account: ImapAccount, host: str, port: int | None, expected: str
) -> None:
    if port is None:
        import socket

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]  # free, and nobody listens there
    started = time.monotonic()
    with pytest.raises(ConnectionFailed) as caught:
        ImapSource(replace(account, host=host, port=port), "pw").open()
    assert time.monotonic() - started < 2
    assert caught.value.message.startswith(expected)
    assert caught.value.exit_code == ExitCode.SOURCE


def test_missing_folder(server: DovecotServer, account: ImapAccount) -> None:
    with ImapSource(account, server.password) as source, pytest.raises(SourceError) as caught:
        fetch_all(source, "Nope")
    assert caught.value.message == "folder 'Nope' not found on 127.0.0.1"
    assert "INBOX" in (caught.value.hint or "")


# --- big mail, answered detection, protocol ----------------------------------------------------


def big_mail(n: int, *, html: bool = False) -> bytes:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "buyer@example.test", "shop@example.test", "Invoice"
    msg["Message-ID"] = f"<big{n}@example.test>"
    if html:
        msg.set_content("<p>Please see the <b>attached invoice</b>.</p>", subtype="html")
    else:
        msg.set_content("Please see the attached invoice, café.", charset="utf-8")
    pdf = bytes(range(256)) * 19532 + b"1234"  # 5 000 196 bytes
    msg.add_attachment(pdf, "application", "pdf", filename="Rechnung März.pdf")
    return msg.as_bytes()


@pytest.mark.parametrize("html", [False, True], ids=["plain", "html"])
def test_big_attachment_is_listed_not_downloaded(
    server: DovecotServer, account: ImapAccount, folder: str, html: bool
) -> None:
    server.append(folder, big_mail(1, html=html))
    server.append(folder, mail(2))
    with ImapSource(account, server.password) as source:
        raws = fetch_all(source, folder)
        assert source.fetched_bytes < 16 * 1024
    big = raws[0]
    assert len(big.data) < 4 * 1024
    message = parse(big)
    assert isinstance(message, Message)
    assert message.message_id == "big1@example.test" and message.subject == "Invoice"
    expected_text = "attached invoice" if html else "attached invoice, café."
    assert expected_text in message.text_new
    assert message.is_html == html
    [attachment] = message.attachments
    assert attachment.filename == "Rechnung März.pdf"
    assert attachment.content_type == "application/pdf"
    assert abs(attachment.size - 5_000_196) < 5_000_196 * 0.01
    assert raws[1].data == mail(2)  # small ones are fetched whole


def test_big_text_part_is_capped(server: DovecotServer, account: ImapAccount, folder: str) -> None:
    line = "Order 12345 is late and I am not happy about it at all.\n"
    msg = EmailMessage()
    msg["From"], msg["Subject"], msg["Message-ID"] = "a@example.test", "Long", "<long@example.test>"
    msg.set_content(line * 20_000, cte="quoted-printable")  # ~1.1 MB of text
    server.append(folder, msg.as_bytes())
    with ImapSource(account, server.password) as source:
        [raw] = fetch_all(source, folder)
    assert len(raw.data) < 300 * 1024
    message = parse(raw)
    assert isinstance(message, Message)
    assert message.text_new.startswith(line.strip())
    assert message.order_numbers == ("12345",)


def test_answered_ids_from_the_sent_folder(
    server: DovecotServer, account: ImapAccount, folder: str
) -> None:
    server.append(
        folder, mail(1, reply_to="a@example.test", refs="<z@example.test> <a@example.test>")
    )
    server.append(folder, mail(2, reply_to="b@example.test"))
    server.append(folder, mail(3))  # a new message, not a reply
    before = server.flags(folder)
    with ImapSource(account, server.password) as source:
        assert source.answered_ids(folder) == {"a@example.test", "b@example.test", "z@example.test"}
    assert server.flags(folder) == before


def test_iter_messages_implements_the_source_protocol(
    server: DovecotServer, account: ImapAccount, folder: str
) -> None:
    server.append_many(folder, [mail(1), mail(2)])
    source = ImapSource(replace(account, folders=(folder,)), server.password)
    assert isinstance(source, MessageSource)
    assert source.name == "imap:test"
    assert [raw.data for raw in source.iter_messages()] == [mail(1), mail(2)]


# --- doctor ------------------------------------------------------------------------------------


def by_name(checks: list[Check]) -> dict[str, Check]:
    return {check.name: check for check in checks}


def test_doctor_all_pass(server: DovecotServer, account: ImapAccount, folder: str) -> None:
    server.append(folder, mail(1))
    healthy = replace(account, folders=("INBOX", folder), password_env="DOCTOR_PW")
    os.environ["DOCTOR_PW"] = server.password
    try:
        checks = run_checks(healthy, extra=[lambda: Check("model", True, "default model")])
    finally:
        del os.environ["DOCTOR_PW"]
    assert [c.name for c in checks] == [
        "config", "credentials", "dns", "tcp", "tls", "login", "folder INBOX",
        f"folder {folder}", "capabilities", "model",
    ]  # fmt: skip
    assert all_ok(checks), checks
    found = by_name(checks)
    assert found[f"folder {folder}"].detail.startswith("1 messages")
    assert "IDLE" in found["capabilities"].detail
    assert "certificate verified" in found["tls"].detail


def test_doctor_failures_only_skip_what_depends_on_them(
    server: DovecotServer, account: ImapAccount, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCTOR_PW", "wrong-password-here")
    wrong = replace(account, password_env="DOCTOR_PW", folders=("INBOX", "Nope"))

    def broken_model() -> Check:
        raise RuntimeError("model file missing")

    found = by_name(run_checks(wrong, extra=[broken_model]))
    assert [found[n].ok for n in ("config", "credentials", "dns", "tcp", "tls")] == [True] * 5
    assert not found["login"].ok and found["login"].detail.startswith("login failed")
    assert found["folder INBOX"].skipped and found["capabilities"].skipped
    assert not found["broken_model"].ok and "model file missing" in found["broken_model"].detail

    monkeypatch.setenv("DOCTOR_PW", server.password)
    found = by_name(run_checks(wrong))
    assert found["login"].ok and found["folder INBOX"].ok and found["capabilities"].ok
    assert not found["folder Nope"].ok and "not found" in found["folder Nope"].detail


def test_doctor_unreachable_host(account: ImapAccount) -> None:
    found = by_name(run_checks(replace(account, host="nonexistent.invalid", password="x")))
    assert not found["dns"].ok
    assert found["tcp"].skipped and found["login"].skipped


# --- Gmail, through a fake at the transport seam ----------------------------------------------


class FakeGmail:
    """The few IMAPClient methods the source uses, answering like Gmail does.

    Anything that could change the mailbox (STORE, EXPUNGE, MOVE, ...) is simply absent,
    so calling it would fail the test.
    """

    def __init__(self) -> None:
        self.commands: list[tuple[Any, ...]] = []
        self.messages = {
            7: (mail(1), 1700000000000000001, 1700000000000000001, (b"\\Seen",)),
            9: (mail(2, reply_to="m1@example.test"), 1700000000000000002, 1700000000000000001, ()),
        }

    def capabilities(self) -> tuple[bytes, ...]:
        return (b"IMAP4REV1", b"X-GM-EXT-1", b"AUTH=XOAUTH2", b"IDLE")

    def oauth2_login(self, user: str, token: str) -> None:
        self.commands.append(("oauth2_login", user))

    def select_folder(self, folder: str, readonly: bool = False) -> dict[bytes, Any]:
        self.commands.append(("select", folder, readonly))
        return {b"UIDVALIDITY": 11, b"UIDNEXT": 10, b"EXISTS": 2}

    def search(self, criteria: list[Any]) -> list[int]:
        self.commands.append(("search", *criteria))
        return [] if "LARGER" in criteria else sorted(self.messages)

    def fetch(self, uids: list[int], items: list[str]) -> dict[int, dict[bytes, Any]]:
        self.commands.append(("fetch", tuple(uids), tuple(items)))
        out: dict[int, dict[bytes, Any]] = {}
        for uid in uids:
            data, msgid, thrid, flags = self.messages[uid]
            answer: dict[bytes, Any] = {
                b"RFC822.SIZE": len(data),
                b"FLAGS": flags,
                b"INTERNALDATE": TODAY,
                b"X-GM-MSGID": msgid,
                b"X-GM-THRID": thrid,
                b"BODY[]": data,
            }
            out[uid] = {k: v for k, v in answer.items() if k.decode() in " ".join(items)}
            if any(item.startswith("BODY.PEEK[]") for item in items):
                out[uid][b"BODY[]"] = data
        return out

    def logout(self) -> None:
        self.commands.append(("logout",))


def test_gmail_ids_and_threads_via_fake() -> None:
    fake = FakeGmail()
    gmail = ImapAccount(
        name="gmail", host="imap.gmail.com", username="shop@gmail.com",
        auth="xoauth2", token_command="unused", folders=("[Gmail]/All Mail",),
    )  # fmt: skip
    with ImapSource(gmail, "ya29.fake", connect=lambda _account: fake) as source:
        assert source.is_gmail
        batches = list(source.fetch_new("INBOX", None, SINCE))
    raws = [raw for batch, _ in batches for raw in batch]
    assert raws[0].flags == (
        "\\Seen", "X-GM-MSGID:1700000000000000001", "X-GM-THRID:1700000000000000001"
    )  # fmt: skip
    assert raws[1].flags[-1] == "X-GM-THRID:1700000000000000001"  # same thread
    assert [r.key for r in raws] == ["11:7", "11:9"]
    assert batches[-1][1] == SyncCursor("gmail", "INBOX", 11, 9)
    assert ("select", "INBOX", True) in fake.commands
    fetched = [c[2] for c in fake.commands if c[0] == "fetch"]
    assert fetched == [
        ("RFC822.SIZE", "FLAGS", "INTERNALDATE", "X-GM-MSGID", "X-GM-THRID", "BODY.PEEK[]")
    ]
    assert all(item.startswith(("BODY.PEEK", "RFC822.SIZE", "FLAGS", "INTERNALDATE", "X-GM"))
               for items in fetched for item in items)  # fmt: skip
    assert fake.commands[0] == ("oauth2_login", "shop@gmail.com")


def test_stopping_early_leaves_the_connection_clean(
    server: DovecotServer, account: ImapAccount, folder: str
) -> None:
    other = folder + "-other"
    server.create_folder(other)
    server.append_many(folder, [mail(n) for n in range(300, 312)])
    server.append_many(other, [mail(n) for n in range(400, 403)])
    with ImapSource(account, server.password, batch_size=4) as source:
        batches = source.fetch_new(folder, None, SINCE)
        next(batches)  # the next batch is already asked for
        batches.close()
        assert not source.client._imap.tagged_commands  # its answer was read and dropped
        assert message_ids(fetch_all(source, other)) == [
            f"m{n}@example.test" for n in (400, 401, 402)
        ]


# --- the wire, without a server ----------------------------------------------------------------


def test_parse_fetch_layouts() -> None:
    data = [
        (b'1 (UID 7 RFC822.SIZE 12 FLAGS (\\Seen $Label) INTERNALDATE " 3-Mar-2024 10:00:00 +0100"'
         b" BODY[] {12}", b"Subject: a\r\n"),
        b")",
        b"2 (FLAGS (\\Deleted))",  # unsolicited, no UID: ignored
        (b"3 (X-GM-THRID 99 X-GM-MSGID 98 UID 9 BODY[] {3}", b"abc"),
        b' INTERNALDATE "13-Dec-2023 23:59:59 -0800" FLAGS () RFC822.SIZE 3)',
        None,
    ]  # fmt: skip
    fetched = imap_wire.parse_fetch(data)
    assert fetched[7] == {
        b"RFC822.SIZE": 12,
        b"FLAGS": (b"\\Seen", b"$Label"),
        b"INTERNALDATE": dt.datetime(2024, 3, 3, 9, 0, tzinfo=dt.UTC),
        b"BODY[]": b"Subject: a\r\n",
    }
    assert fetched[9][b"BODY[]"] == b"abc" and fetched[9][b"RFC822.SIZE"] == 3
    assert fetched[9][b"INTERNALDATE"] == dt.datetime(2023, 12, 14, 7, 59, 59, tzinfo=dt.UTC)
    assert imap_wire.flags_of(fetched[9]) == ("X-GM-MSGID:98", "X-GM-THRID:99")
    assert sorted(fetched) == [7, 9]


def test_search_date_is_english_whatever_the_locale() -> None:
    assert imap_wire.imap_date(dt.date(2024, 5, 3)) == "3-May-2024"
    assert imap_wire.parse_search([b"4 17 230"]) == [4, 17, 230]
    assert imap_wire.parse_search([None]) == []


def test_rebuild_keeps_rfc2231_names_and_drops_old_mime_headers() -> None:
    structure = (
        [
            (b"TEXT", b"PLAIN", (b"CHARSET", b"latin-1"), None, None, b"QUOTED-PRINTABLE", 20, 1),
            (b"APPLICATION", b"PDF", None, None, None, b"BASE64", 780, None,
             (b"ATTACHMENT", (b"FILENAME*", b"utf-8''R%C3%A9sum%C3%A9.pdf")), None),
            (b"IMAGE", b"PNG", (b"NAME", b'a "b".png'), None, None, b"BASE64", 78, None, None),
        ],
        b"MIXED",
    )  # fmt: skip
    parts = imap_wire.parse_structure(structure)
    assert [p.section for p in parts] == ["1", "2", "3"]
    texts, attachments = imap_wire.choose_parts(parts)
    assert [p.content_type for p in texts] == ["text/plain"]
    header = (
        b"From: a@example.test\r\nContent-Type: multipart/mixed;\r\n boundary=XYZ\r\n"
        b"Subject: Caf\xe9\r\nMIME-Version: 1.0\r\n\r\n"
    )
    raw = imap_wire.rebuild(header, [(texts[0], b"Caf=E9 ok\r\n")], attachments)
    message = parse(RawMessage("imap:x/INBOX", "1:1", raw))
    assert isinstance(message, Message)
    assert message.text_new == "Café ok"
    assert [(a.filename, a.size) for a in message.attachments] == [
        ("Résumé.pdf", 570), ('a "b".png', 57)
    ]  # fmt: skip
    assert raw.count(b"boundary=") == 1 and b"XYZ" not in raw
