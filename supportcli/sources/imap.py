"""The IMAP source: incremental, read-only, resumable. The only module that imports imapclient.

Typical use (one transaction per batch, so a killed sync resumes where it stopped)::

    with ImapSource(account, get_secret(account, interactive=False)) as imap:
        for folder in account.folders:
            saved = store.cursor(account.name, folder)
            for raws, cursor in imap.fetch_new(folder, saved, account.since()):
                store.add_messages(parse each raw)   # then, and only then:
                store.save_cursor(cursor)

Mailbox safety by construction: folders are opened with EXAMINE (read-only), bodies are read
with ``BODY.PEEK`` so ``\\Seen`` is never set, and no STORE/EXPUNGE/MOVE/DELETE is ever sent.
Big messages are fetched as headers + text parts only. Raw FETCH/SEARCH over imaplib (with
one batch prefetched), response parsing and the stand-in message for big mail live in
:mod:`.imap_wire`.
"""

from __future__ import annotations

import ast
import imaplib
import logging
import re
import socket
import ssl
import time
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from ..accounts import ImapAccount
from ..errors import ConfigError, SourceError
from ..log import redact
from ..records import RawMessage, SyncCursor
from . import imap_wire
from .imap_wire import Fetched

log = logging.getLogger(__name__)

BATCH_SIZE = 200  # UIDs per fetch round trip and per yielded batch
WHOLE_MESSAGE_CAP = 256 * 1024  # messages up to this RFC822.SIZE are fetched whole
TEXT_PART_CAP = 256 * 1024  # bytes fetched per text part of a bigger message
RETRY_DELAYS = (0.5, 1.0, 2.0)  # seconds before each reconnect attempt
CONNECT_TIMEOUT_CAP = 15.0
ANSWERED_BATCH = 500

# A connection that broke mid-command: socket errors, TLS errors, timeouts, imaplib aborts.
DROPPED: tuple[type[BaseException], ...] = (imaplib.IMAP4.abort, OSError)

Client = Any  # an imapclient.IMAPClient, or a fake with the same methods
Connect = Callable[[ImapAccount], Client]


class ConnectionFailed(SourceError):
    """The server could not be reached (DNS, refused, timeout, dropped); worth a retry."""


# --- connecting -----------------------------------------------------------------------------


def tls_context(account: ImapAccount) -> ssl.SSLContext:
    """A verifying TLS context; trusts ``ca_file`` instead of the system CAs when given."""
    cafile = str(account.ca_file) if account.ca_file else None
    try:
        return ssl.create_default_context(cafile=cafile)
    except (OSError, ssl.SSLError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError(
            f"accounts.{account.name}.ca_file: cannot load {account.ca_file}: {reason}"
        ) from None


def connect_client(account: ImapAccount) -> Client:
    """Connect (implicit TLS, STARTTLS or plain, per ``account.security``), not logged in."""
    import imapclient

    use_ssl = account.security == "ssl"
    context = tls_context(account) if account.security != "plain" else None
    timeout = imapclient.SocketTimeout(
        connect=min(account.timeout, CONNECT_TIMEOUT_CAP), read=account.timeout
    )
    with connection_errors(account):
        client = imapclient.IMAPClient(
            account.host, port=account.port, ssl=use_ssl, ssl_context=context, timeout=timeout
        )
        try:
            _tune(client)
            if account.security == "starttls":
                if b"STARTTLS" not in client.capabilities():
                    raise SourceError(
                        f"{account.host}:{account.port} does not offer STARTTLS",
                        hint='use security = "ssl" (usually port 993)',
                    )
                client.starttls(context)
        except BaseException:
            _shutdown_quietly(client)
            raise
    return client


def _tune(client: Client) -> None:
    """Aware INTERNALDATEs; imaplib's per-line debug formatting only when someone listens.

    IMAPClient sets imaplib's debug level to 5, which formats every response line (about 3x
    slower bulk fetches); the protocol log is only wanted at ``-vv``.
    """
    client.normalise_times = False
    wanted = logging.getLogger("imapclient.imaplib").isEnabledFor(logging.DEBUG)
    inner = getattr(client, "_imap", None)
    if inner is not None:
        inner.debug = 5 if wanted else 0


@contextmanager
def connection_errors(account: ImapAccount) -> Iterator[None]:
    """Turn socket/TLS/protocol failures while connecting into one-line SourceErrors."""
    where = f"{account.host}:{account.port}"
    try:
        yield
    except ssl.SSLCertVerificationError as exc:
        raise SourceError(
            f"TLS certificate of {account.host} refused: {exc.verify_message}",
            hint=_ca_hint(account),
        ) from None
    except ssl.SSLError as exc:
        raise SourceError(
            f"TLS handshake with {where} failed: {exc.reason or exc}",
            hint='security = "ssl" expects implicit TLS (port 993); port 143 needs "starttls"',
        ) from None
    except socket.gaierror as exc:
        raise ConnectionFailed(
            f"unknown host {account.host}: {exc.strerror}", hint="check host in the config"
        ) from None
    except ConnectionRefusedError:
        raise ConnectionFailed(
            f"connection refused by {where}", hint="check host, port and security"
        ) from None
    except TimeoutError:
        raise ConnectionFailed(f"connection to {where} timed out") from None
    except OSError as exc:
        raise ConnectionFailed(f"cannot connect to {where}: {exc.strerror or exc}") from None
    except imaplib.IMAP4.error as exc:
        raise ConnectionFailed(
            f"{where} did not answer like an IMAP server: {redact(str(exc))[:200]}"
        ) from None


def _ca_hint(account: ImapAccount) -> str:
    if account.ca_file:
        return f"it was checked against ca_file {account.ca_file}: is that the server's CA?"
    return (
        'if the server uses a private or self-signed CA, set ca_file = "/path/to/ca.pem" '
        f"in [accounts.{account.name}]"
    )


def login(client: Client, account: ImapAccount, secret: str) -> None:
    """LOGIN (AUTHENTICATE PLAIN for non-ASCII passwords) or XOAUTH2; SourceError on refusal."""
    from imapclient.exceptions import LoginError

    capabilities = set(client.capabilities())
    failed = f"login failed for {account.username} at {account.host}"
    try:
        if account.auth == "xoauth2":
            if b"AUTH=XOAUTH2" not in capabilities:
                raise SourceError(f"{account.host} does not offer XOAUTH2 login")
            client.oauth2_login(account.username, secret)
        elif b"LOGINDISABLED" in capabilities:
            raise SourceError(
                f"{account.host} refuses passwords on an unencrypted connection",
                hint='use security = "starttls" or "ssl"',
            )
        elif not secret.isascii() and b"AUTH=PLAIN" in capabilities:
            client.plain_login(account.username, secret)
        else:
            client.login(account.username, secret)
    except LoginError as exc:
        said = redact(_server_words(str(exc))).strip()[:200]
        raise SourceError(failed, hint=f"the server said: {said}") from None
    except UnicodeEncodeError:
        raise SourceError(failed, hint="the server accepts only ASCII passwords") from None


_BYTES_REPR = re.compile(r"""b(['"])(.*)\1""", re.DOTALL)


def _server_words(error: str) -> str:
    """What the server answered, from an imaplib/imapclient error: imaplib raises the
    response's bytes, which reach the message as their repr (``b'[AUTHENTICATIONFAILED]
    …'``), and imapclient may put "login failed: " before it."""
    text = error.strip()
    command, said, rest = text.partition(" failed: ")  # imapclient's "<command> failed: …"
    if said and command.isidentifier() and not _BYTES_REPR.fullmatch(text):
        text = rest.strip()
    quoted = _BYTES_REPR.fullmatch(text)
    if quoted is None:
        return text
    try:
        said = ast.literal_eval(text)
    except (SyntaxError, ValueError):
        return quoted.group(2)
    return said.decode("utf-8", "replace") if isinstance(said, bytes) else str(said)


def _shutdown_quietly(client: Client) -> None:
    try:
        client.shutdown()
    except Exception as exc:  # already broken: nothing left to close
        log.debug("closing a broken connection: %s", type(exc).__name__)


# --- the source -----------------------------------------------------------------------------


@dataclass(slots=True)
class FolderState:
    name: str
    uidvalidity: int
    uidnext: int | None
    exists: int


@dataclass(slots=True)
class _Progress:
    """Where one folder's sync stands: the cursor last yielded, and whether to keep SINCE."""

    cursor: SyncCursor | None
    window: bool


@dataclass
class ImapSource:
    """One IMAP account as a :class:`MessageSource`, plus the incremental API.

    ``connect`` is the transport seam (tests pass a fake server there); ``cursors`` (folder ->
    cursor) only matter to :meth:`iter_messages`.
    """

    account: ImapAccount
    secret: str = field(repr=False)
    batch_size: int = BATCH_SIZE
    cursors: Mapping[str, SyncCursor] = field(default_factory=dict)
    connect: Connect = connect_client
    retry_delays: Sequence[float] = RETRY_DELAYS
    sleep: Callable[[float], None] = time.sleep
    capabilities: frozenset[str] = field(default=frozenset(), init=False)
    fetched_bytes: int = field(default=0, init=False)  # message bytes received
    _client: Client = field(default=None, init=False, repr=False)

    @property
    def name(self) -> str:
        return self.account.source_name

    @property
    def is_gmail(self) -> bool:
        return "X-GM-EXT-1" in self.capabilities

    # --- connection -------------------------------------------------------------------------

    def __enter__(self) -> ImapSource:
        self.open()
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def open(self) -> None:
        """Connect and log in (no-op when already connected)."""
        if self._client is not None:
            return
        client = self.connect(self.account)
        try:
            with connection_errors(self.account):
                login(client, self.account, self.secret)
                self.capabilities = frozenset(
                    c.decode("ascii", "replace").upper() for c in client.capabilities()
                )
        except BaseException:
            _shutdown_quietly(client)
            raise
        self._client = client
        log.info("logged in to %s as %s", self.account.host, self.account.username)

    def close(self) -> None:
        client, self._client = self._client, None
        if client is None:
            return
        try:
            client.logout()
        except Exception:
            _shutdown_quietly(client)

    @property
    def client(self) -> Client:
        self.open()
        return self._client

    def _discard(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            _shutdown_quietly(client)

    def _reconnect(self, cause: BaseException) -> None:
        """After a dropped connection: new connection with backoff, or ConnectionFailed."""
        self._discard()
        reason = _describe(cause)
        for attempt, delay in enumerate(self.retry_delays, start=1):
            log.warning(
                "connection to %s lost (%s); reconnecting in %g s (%d/%d)",
                self.account.host, reason, delay, attempt, len(self.retry_delays),
            )  # fmt: skip
            self.sleep(delay)
            try:
                self.open()
                return
            except ConnectionFailed as exc:
                reason = exc.message
        raise ConnectionFailed(
            f"lost the connection to {self.account.host} and could not reconnect "
            f"after {len(self.retry_delays)} tries ({reason})",
            hint="run the sync again: it resumes where it stopped",
        )

    def _retrying(self, action: Callable[[], Any]) -> Any:
        """Run ``action`` (which must be safe to repeat), reconnecting if the link drops."""
        for _ in range(len(self.retry_delays) + 1):
            try:
                return action()
            except DROPPED as exc:
                self._reconnect(exc)
        return action()

    # --- folders ----------------------------------------------------------------------------

    def select(self, folder: str, *, readonly: bool = True) -> FolderState:
        """EXAMINE ``folder`` (read-only; SELECT only for tag/untag --apply); SourceError if it
        does not exist."""
        try:
            info = self.client.select_folder(folder, readonly=readonly)
        except imaplib.IMAP4.abort:
            raise
        except imaplib.IMAP4.error as exc:
            raise self._folder_error(folder, exc) from None
        uidnext = info.get(b"UIDNEXT")
        return FolderState(
            folder,
            int(info[b"UIDVALIDITY"]),
            int(uidnext) if uidnext is not None else None,
            int(info.get(b"EXISTS", 0)),
        )

    def _folder_error(self, folder: str, exc: Exception) -> SourceError:
        said = redact(str(exc)).split(":", 1)[-1].strip()[:200]
        if "NONEXISTENT" not in said.upper() and "exist" not in said.lower():
            return SourceError(f"cannot open folder {folder!r} on {self.account.host}: {said}")
        names = self.list_folders()
        shown = ", ".join(names[:15]) + (", …" if len(names) > 15 else "")
        return SourceError(
            f"folder {folder!r} not found on {self.account.host}",
            hint=f"folders there: {shown}" if names else None,
        )

    def list_folders(self) -> list[str]:
        try:
            found = self.client.list_folders()
        except imaplib.IMAP4.error:
            return []
        return [str(name) for flags, _, name in found if b"\\Noselect" not in flags]

    # --- incremental sync -------------------------------------------------------------------

    def fetch_new(
        self, folder: str, cursor: SyncCursor | None, since: date
    ) -> Generator[tuple[list[RawMessage], SyncCursor], None, None]:
        """New messages of ``folder`` in batches, each with the cursor to save once stored.

        First sync (no cursor, or a cursor of another UIDVALIDITY): messages SINCE ``since``.
        Later syncs: UIDs above the cursor. A batch may be empty when only the cursor moved.
        A dropped connection is reconnected (with backoff) and the sync goes on from the last
        yielded cursor.
        """
        progress = _Progress(cursor, window=cursor is None)
        failures = 0
        while True:
            try:
                for batch, new_cursor in self._sync_pass(folder, progress, since):
                    failures = 0
                    yield batch, new_cursor
                return
            except DROPPED as exc:
                failures += 1
                if failures > len(self.retry_delays):
                    raise ConnectionFailed(
                        f"the connection to {self.account.host} keeps dropping ({_describe(exc)})"
                    ) from None
                self._reconnect(exc)

    def _sync_pass(
        self, folder: str, progress: _Progress, since: date
    ) -> Iterator[tuple[list[RawMessage], SyncCursor]]:
        state = self.select(folder)
        uids, after, big = self._new_uids(state, progress, since)
        batches = [uids[i : i + self.batch_size] for i in range(0, len(uids), self.batch_size)]
        small = [[uid for uid in batch if uid not in big] for batch in batches]
        prefetch = _Prefetch(self, small, [*self._meta_items(), "BODY.PEEK[]"])
        last = after
        try:
            for index, batch in enumerate(batches):
                fetched = prefetch.take(index)
                fetched.update(self._fetch_large([uid for uid in batch if uid in big]))
                prefetch.send(index + 1)  # the server prepares the next batch meanwhile
                raws = self._raws(folder, state.uidvalidity, batch, fetched)
                last = batch[-1]
                progress.cursor = SyncCursor(self.account.name, folder, state.uidvalidity, last)
                yield raws, progress.cursor
        finally:
            prefetch.drain()
        # Everything below UIDNEXT was either fetched or outside the window: skip it next time.
        final = max(last, (state.uidnext or 1) - 1)
        if progress.cursor is None or progress.cursor.last_uid != final:
            progress.cursor = SyncCursor(self.account.name, folder, state.uidvalidity, final)
            yield [], progress.cursor

    def _new_uids(
        self, state: FolderState, progress: _Progress, since: date
    ) -> tuple[list[int], int, set[int]]:
        """(UIDs to fetch, ascending; the UID they come after; those too big to fetch whole)."""
        cursor = progress.cursor
        if cursor is not None and cursor.uidvalidity == state.uidvalidity:
            after = cursor.last_uid
            if state.uidnext is not None and state.uidnext <= after + 1:
                return [], after, set()  # nothing new: no SEARCH needed
            criteria = ["UID", f"{after + 1}:*"]
        else:
            if cursor is not None:
                log.info(
                    "UIDVALIDITY of %s changed (%d -> %d): reading it again from %s",
                    state.name, cursor.uidvalidity, state.uidvalidity, since,
                )  # fmt: skip
                progress.window = True
            after, criteria = 0, []
        if progress.window:
            criteria += ["SINCE", imap_wire.imap_date(since)]
        # "UID n:*" always matches the highest message, even when its UID is below n.
        uids = sorted(uid for uid in self._search(criteria) if uid > after)
        if not uids:
            return [], after, set()
        # Searched after the first SEARCH, so it sees every message that one found.
        big = set(self._search([*criteria, "LARGER", str(WHOLE_MESSAGE_CAP)]))
        return uids, after, big

    def _search(self, criteria: list[str]) -> list[int]:
        conn = getattr(self.client, "_imap", None)
        if conn is None:  # a fake client at the transport seam
            return list(self.client.search(criteria))
        return imap_wire.search(conn, criteria)

    def _meta_items(self) -> list[str]:
        items = ["RFC822.SIZE", "FLAGS", "INTERNALDATE"]
        return items + list(imap_wire.GMAIL_ITEMS) if self.is_gmail else items

    def _fetch_large(self, uids: list[int]) -> Fetched:
        """Flags and dates of big messages, with a stand-in body: headers + text parts."""
        if not uids:
            return {}
        fetched: Fetched = dict(self.client.fetch(uids, self._meta_items()))
        for uid, fields in fetched.items():
            fields[b"BODY[]"] = self._fetch_big(uid)
        return fetched

    def _raws(
        self, folder: str, uidvalidity: int, uids: list[int], fetched: Fetched
    ) -> list[RawMessage]:
        source = f"{self.name}/{folder}"
        raws = []
        for uid in uids:
            fields = fetched.get(uid)
            if fields is None:
                continue  # expunged meanwhile
            data = fields.get(b"BODY[]")
            flags = imap_wire.flags_of(fields)
            if not isinstance(data, bytes):
                data, flags = b"", (*flags, "error:the server sent no message body")
            received = imap_wire.to_utc(fields.get(b"INTERNALDATE"))
            raws.append(RawMessage(source, f"{uidvalidity}:{uid}", data, flags, received))
        return raws

    def _fetch_big(self, uid: int) -> bytes:
        """Header + text parts (capped) of one big message; attachments as placeholders."""
        got = self.client.fetch([uid], ["BODYSTRUCTURE", "BODY.PEEK[HEADER]"]).get(uid, {})
        header = got.get(b"BODY[HEADER]") or b""
        texts, attachments = imap_wire.choose_parts(
            imap_wire.parse_structure(got.get(b"BODYSTRUCTURE"))
        )
        wanted = [f"BODY.PEEK[{p.section}]<0.{TEXT_PART_CAP}>" for p in texts]
        parts = self.client.fetch([uid], wanted).get(uid, {}) if wanted else {}
        fetched = [(p, parts.get(f"BODY[{p.section}]<0>".encode()) or b"") for p in texts]
        self.fetched_bytes += len(header) + sum(len(d) for _, d in fetched)
        return imap_wire.rebuild(header, fetched, attachments)

    # --- answered detection and the plain MessageSource protocol ----------------------------

    def answered_ids(self, folder: str, since: date | None = None) -> set[str]:
        """Message-IDs (without <>) that messages in ``folder`` (the Sent folder) reply to,
        from their In-Reply-To and References headers."""
        return set(self._retrying(lambda: self._answered_ids(folder, since)))

    def _answered_ids(self, folder: str, since: date | None) -> set[str]:
        self.select(folder)
        uids = sorted(self.client.search(["SINCE", since] if since else ["ALL"]))
        wanted = "BODY.PEEK[HEADER.FIELDS (IN-REPLY-TO REFERENCES)]"
        found: set[str] = set()
        for start in range(0, len(uids), ANSWERED_BATCH):
            response = self.client.fetch(uids[start : start + ANSWERED_BATCH], [wanted])
            for data in response.values():
                for key, value in data.items():
                    if key.startswith(b"BODY[HEADER.FIELDS") and isinstance(value, bytes):
                        found |= imap_wire.message_ids(value)
        return found

    def iter_messages(self) -> Iterator[RawMessage]:
        """Every configured folder, from ``cursors`` or else the first-sync window."""
        since = self.account.since()
        opened_here = self._client is None
        try:
            for folder in self.account.folders:
                for batch, _ in self.fetch_new(folder, self.cursors.get(folder), since):
                    yield from batch
        finally:
            if opened_here:
                self.close()


class _Prefetch:
    """UID FETCH of each batch's small messages (whole), at most one in flight.

    ``send(i + 1)`` asks for the next batch before the caller works on batch ``i``, so the
    server prepares it meanwhile; ``take(i)`` reads it. Nothing else may be sent while one is
    in flight; ``drain()`` reads an answer nobody wants any more (e.g. the caller stopped).
    """

    def __init__(self, source: ImapSource, batches: list[list[int]], items: list[str]) -> None:
        self.source = source
        self.batches = batches
        self.items = items
        self.conn = getattr(source.client, "_imap", None)  # None: a fake client
        self.in_flight: tuple[int, bytes] | None = None

    def send(self, index: int) -> None:
        if self.conn is not None and index < len(self.batches) and self.batches[index]:
            self.in_flight = (
                index,
                imap_wire.send_fetch(self.conn, self.batches[index], self.items),
            )

    def take(self, index: int) -> Fetched:
        uids = self.batches[index]
        if not uids:
            return {}
        if self.conn is None:
            return dict(self.source.client.fetch(uids, self.items))
        if self.in_flight is None or self.in_flight[0] != index:
            self.send(index)
        assert self.in_flight is not None
        tag, self.in_flight = self.in_flight[1], None
        fetched = imap_wire.finish_fetch(self.conn, tag)
        self.source.fetched_bytes += sum(len(f.get(b"BODY[]") or b"") for f in fetched.values())
        # Whatever the fast parser could not read (or was expunged): ask imapclient.
        missing = [uid for uid in uids if b"BODY[]" not in fetched.get(uid, {})]
        if missing:
            fetched.update(self.source.client.fetch(missing, self.items))
        return {uid: fetched[uid] for uid in uids if uid in fetched}

    def drain(self) -> None:
        if self.in_flight is None or self.conn is None:
            return
        tag, self.in_flight = self.in_flight[1], None
        try:
            imap_wire.finish_fetch(self.conn, tag)
        except Exception:  # broken or confused: never reuse this connection
            self.source._discard()


def open_source(account: ImapAccount, *, interactive: bool = False, **options: Any) -> ImapSource:
    """An :class:`ImapSource` with the account's secret looked up (not yet connected)."""
    from ..credentials import get_secret

    return ImapSource(account, get_secret(account, interactive=interactive), **options)


def _describe(exc: BaseException) -> str:
    text = redact(str(exc)).strip()
    return f"{type(exc).__name__}: {text}"[:200] if text else type(exc).__name__
