"""A private, real Dovecot IMAP server for the test suite.

Usage::

    server = DovecotServer.start(tmp_path)
    try:
        server.append("INBOX", b"Subject: hi\\r\\n\\r\\nbody\\r\\n")
        with server.client() as imap:
            ...
    finally:
        server.stop()

or ``with DovecotServer.start(tmp_path) as server: ...``.

Everything the server needs lives in ``tmp_dir`` (certificates, config,
passwd files, Maildir, log), except its ``base_dir`` (runtime sockets), which
lives in a short ``/tmp/dv...`` directory because unix socket paths are limited
to ~107 bytes.

The server listens on 127.0.0.1 only, on two free ports: ``port`` (plain IMAP,
STARTTLS offered, plaintext LOGIN allowed) and ``ssl_port`` (implicit TLS).
The certificate is issued by a throwaway CA (``ca_cert``) for ``localhost``
and ``127.0.0.1``.

Authentication:

* ``LOGIN`` / ``AUTHENTICATE PLAIN|LOGIN`` with ``user`` + ``password``;
* ``AUTHENTICATE XOAUTH2`` with ``user`` + ``token``.  Dovecot 2.3's XOAUTH2
  mechanism hands the bearer token to the passdb chain exactly like a
  password (``auth_request_verify_plain``), so no OAuth2 introspection server
  is needed: a second passwd-file passdb, restricted with
  ``mechanisms = xoauth2``, holds the token as the user's "password".  The
  password passdb is restricted to ``plain login``, so the password does not
  work as a token and the token does not work as a password.

Dovecot is normally started as root (as on CI); mail is then owned by the
unprivileged uid/gid 40000.  When the tests run as an ordinary user, Dovecot
runs "rootless" as that user instead.
"""

from __future__ import annotations

import datetime as _dt
import os
import secrets
import shutil
import signal
import socket
import ssl
import stat
import subprocess
import tempfile
import textwrap
import time
import weakref
from pathlib import Path
from types import TracebackType
from typing import Iterable, Sequence

import imapclient

__all__ = ["DovecotServer", "DovecotUnavailable", "create_ca"]

MAIL_UID = 40000
MAIL_GID = 40000
READY_TIMEOUT = 10.0
STOP_TIMEOUT = 5.0
CLIENT_TIMEOUT = 30.0

# Debian puts dovecot/doveadm in /usr/sbin, which is not on an ordinary
# user's PATH; look there too before giving up.
_EXTRA_PATH = ("/usr/sbin", "/usr/local/sbin", "/sbin")

Flag = bytes | str


class DovecotUnavailable(RuntimeError):
    """Dovecot (or openssl) is not installed, so no server can be started."""


def _which(program: str) -> str | None:
    path = os.pathsep.join([os.environ.get("PATH", os.defpath), *_EXTRA_PATH])
    return shutil.which(program, path=path)


def _free_port() -> int:
    """Ask the kernel for a currently free TCP port on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _run(argv: Sequence[str | os.PathLike[str]], cwd: Path | None = None) -> str:
    """Run a helper command, raising a readable error if it fails."""
    proc = subprocess.run(
        [os.fspath(a) for a in argv],
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(
            f"command failed ({proc.returncode}): {' '.join(map(str, argv))}\n"
            f"{proc.stdout}{proc.stderr}"
        )
    return proc.stdout


def _openssl() -> str:
    openssl = _which("openssl")
    if openssl is None:
        raise DovecotUnavailable("openssl is not installed (needed for test certificates)")
    return openssl


def create_ca(directory: Path, name: str = "ca") -> tuple[Path, Path]:
    """Create a throwaway CA in ``directory``; return (cert_pem, key_pem).

    The extensions (critical basicConstraints, keyUsage, key identifiers) are
    what Python's ``VERIFY_X509_STRICT`` (default since 3.13) insists on.
    """
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = directory / f"{name}.pem", directory / f"{name}.key"
    _run(
        [
            _openssl(), "req", "-x509", "-new", "-nodes",
            "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-keyout", key, "-out", cert, "-days", "2",
            "-subj", f"/CN=supportcli test CA {name} {secrets.token_hex(4)}",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign",
            "-addext", "subjectKeyIdentifier=hash",
        ]
    )
    return cert, key


def _create_server_cert(directory: Path, ca_cert: Path, ca_key: Path) -> tuple[Path, Path]:
    """Issue a certificate for localhost / 127.0.0.1 signed by the given CA."""
    cert, key, csr = directory / "server.pem", directory / "server.key", directory / "server.csr"
    ext = directory / "server.ext"
    ext.write_text(
        textwrap.dedent(
            """\
            basicConstraints = critical, CA:FALSE
            keyUsage = critical, digitalSignature, keyEncipherment
            extendedKeyUsage = serverAuth
            subjectAltName = DNS:localhost, IP:127.0.0.1
            subjectKeyIdentifier = hash
            authorityKeyIdentifier = keyid, issuer
            """
        )
    )
    openssl = _openssl()
    _run(
        [
            openssl, "req", "-new", "-nodes",
            "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-keyout", key, "-out", csr, "-subj", "/CN=localhost",
        ]
    )
    _run(
        [
            openssl, "x509", "-req", "-in", csr, "-CA", ca_cert, "-CAkey", ca_key,
            "-set_serial", str(secrets.randbits(63)), "-days", "2",
            "-extfile", ext, "-out", cert,
        ]
    )
    return cert, key


def _make_traversable(path: Path) -> None:
    """Let other uids traverse (not list) ``path`` and its ancestors.

    Dovecot's auth process (user ``dovecot``) must read the passwd files and the
    mail processes (uid 40000) must reach the Maildir; pytest's tmp dirs are
    0700.  Only directories we own are touched, and only the x bits are added.
    """
    euid = os.geteuid()
    for directory in [path, *path.parents]:
        st = directory.stat()
        if st.st_uid == euid and (st.st_mode & 0o011) != 0o011:
            directory.chmod(stat.S_IMODE(st.st_mode) | 0o011)


def _kill_group(pgid: int) -> None:
    """SIGKILL a whole process group, ignoring "already gone"."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _cleanup(pgid: int, base_dir: str) -> None:
    """Last-resort cleanup (garbage collection / interpreter exit)."""
    _kill_group(pgid)
    shutil.rmtree(base_dir, ignore_errors=True)


def _quote(value: object) -> str:
    """Quote a value for dovecot.conf (paths under pytest tmp dirs are plain)."""
    text = str(value)
    if any(c in text for c in '"\\\n'):
        raise ValueError(f"unsupported character in dovecot.conf value: {text!r}")
    return f'"{text}"'


class DovecotServer:
    """A running private Dovecot instance; create it with :meth:`start`."""

    host = "127.0.0.1"

    def __init__(self, tmp_dir: Path) -> None:
        # Use DovecotServer.start(); __init__ only lays out paths.
        self.tmp_dir = tmp_dir.resolve()
        self.user = "shop@example.test"
        self.password = "correct horse battery staple"
        self.token = "ya29.test-token"
        self.port = _free_port()
        self.ssl_port = _free_port()
        while self.ssl_port == self.port:
            self.ssl_port = _free_port()
        self.maildir = self.tmp_dir / "Maildir"
        self.home = self.tmp_dir / "home"
        self.log_path = self.tmp_dir / "dovecot.log"
        self.stderr_path = self.tmp_dir / "dovecot.stderr"
        self.config_path = self.tmp_dir / "dovecot.conf"
        self.ca_cert = self.tmp_dir / "tls" / "ca.pem"
        # Short runtime directory: unix socket paths must stay < ~107 bytes.
        self.base_dir = Path(tempfile.mkdtemp(prefix="dv", dir="/tmp"))
        self._dovecot = ""
        self._proc: subprocess.Popen[bytes] | None = None
        self._finalizer: weakref.finalize | None = None

    # ------------------------------------------------------------------ setup

    @classmethod
    def start(cls, tmp_dir: Path) -> DovecotServer:
        """Create config, certificates and storage in ``tmp_dir``; start Dovecot.

        Raises :class:`DovecotUnavailable` if dovecot is not installed.
        """
        dovecot = _which("dovecot")
        if dovecot is None:
            raise DovecotUnavailable("dovecot is not installed (apt-get install dovecot-imapd)")
        _openssl()  # fail early with DovecotUnavailable if missing
        tmp_dir.mkdir(parents=True, exist_ok=True)
        server = cls(tmp_dir)
        server._dovecot = dovecot
        try:
            server._prepare()
            server._launch()
        except BaseException:
            server.stop()
            raise
        return server

    def _prepare(self) -> None:
        tls_dir = self.tmp_dir / "tls"
        ca_cert, ca_key = create_ca(tls_dir, "ca")
        assert ca_cert == self.ca_cert
        server_cert, server_key = _create_server_cert(tls_dir, ca_cert, ca_key)

        passwd = self.tmp_dir / "passwd"
        tokens = self.tmp_dir / "tokens"
        passwd.write_text(f"{self.user}:{{PLAIN}}{self.password}\n")
        tokens.write_text(f"{self.user}:{{PLAIN}}{self.token}\n")

        self.maildir.mkdir(exist_ok=True)
        self.home.mkdir(exist_ok=True)
        (self.tmp_dir / "state").mkdir(exist_ok=True)

        if os.geteuid() == 0:
            mail_uid, mail_gid = MAIL_UID, MAIL_GID
            internal_user, login_user = "dovecot", "dovenull"
            for path in (self.maildir, self.home):
                os.chown(path, MAIL_UID, MAIL_GID)
                path.chmod(0o700)
            for path in (passwd, tokens, server_cert, ca_cert):
                path.chmod(0o644)
            self.tmp_dir.chmod(0o711)
            _make_traversable(self.tmp_dir)
        else:
            # Rootless Dovecot: every service runs as the current user.
            import pwd

            mail_uid, mail_gid = os.getuid(), os.getgid()
            internal_user = login_user = pwd.getpwuid(mail_uid).pw_name

        # Services that chroot by default cannot do so without root.
        no_chroot = "" if os.geteuid() == 0 else "  chroot =\n"

        self.config_path.write_text(
            f"""\
# Generated by tests/imapserver.py -- private test instance.
instance_name = supportcli-test-{self.base_dir.name}
base_dir = {_quote(self.base_dir)}
state_dir = {_quote(self.tmp_dir / "state")}
log_path = {_quote(self.log_path)}
protocols = imap
listen = 127.0.0.1
shutdown_clients = yes
default_internal_user = {internal_user}
default_login_user = {login_user}
first_valid_uid = {mail_uid}
first_valid_gid = 0

ssl = yes
ssl_cert = <{self.tmp_dir / "tls" / "server.pem"}
ssl_key = <{self.tmp_dir / "tls" / "server.key"}

disable_plaintext_auth = no
auth_mechanisms = plain login xoauth2
auth_failure_delay = 0
auth_verbose = yes
auth_cache_size = 0

# Password for LOGIN / PLAIN.
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {self.tmp_dir / "passwd"}
  mechanisms = plain login
}}
# Dovecot 2.3's XOAUTH2 verifies the bearer token through the passdbs like a
# password; this passdb only answers XOAUTH2 and holds the token.
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {self.tmp_dir / "tokens"}
  mechanisms = xoauth2
}}
userdb {{
  driver = static
  args = uid={mail_uid} gid={mail_gid} home={self.home}
}}

mail_location = maildir:{self.maildir}
mail_fsync = never
protocol imap {{
  # Tests may open many sessions at once (default limit is 10).
  mail_max_userip_connections = 1000
}}

service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {self.ssl_port}
    ssl = yes
  }}
{no_chroot}}}
service anvil {{
  # No authentication-failure penalty for the wrong-password tests.
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
{no_chroot}}}
"""
        )

    def _launch(self) -> None:
        """Start ``dovecot -F`` and wait for the IMAP greeting."""
        with open(self.stderr_path, "ab") as err:
            # Own session/process group: kill() can take down every Dovecot
            # process at once, like a crashing server.
            self._proc = subprocess.Popen(
                [self._dovecot, "-F", "-c", str(self.config_path)],
                stdin=subprocess.DEVNULL,
                stdout=err,
                stderr=err,
                start_new_session=True,
            )
        if self._finalizer is not None:
            self._finalizer.detach()
        self._finalizer = weakref.finalize(self, _cleanup, self._proc.pid, str(self.base_dir))
        self._wait_ready()

    def _wait_ready(self) -> None:
        """Wait until the plain port sends ``* OK`` (a bare connect is not enough)."""
        assert self._proc is not None
        deadline = time.monotonic() + READY_TIMEOUT
        last_error = "no attempt"
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(
                    f"dovecot exited with status {self._proc.returncode} during startup\n"
                    + self.log_tail()
                )
            try:
                with socket.create_connection((self.host, self.port), timeout=1.0) as sock:
                    greeting = b""
                    while b"\n" not in greeting:
                        chunk = sock.recv(1024)
                        if not chunk:
                            break
                        greeting += chunk
                if greeting.startswith(b"* OK"):
                    return
                last_error = f"unexpected greeting {greeting!r}"
            except OSError as exc:
                last_error = repr(exc)
            time.sleep(0.02)
        raise RuntimeError(
            f"dovecot did not greet on {self.host}:{self.port} within "
            f"{READY_TIMEOUT:.0f} s (last error: {last_error})\n" + self.log_tail()
        )

    def log_tail(self, lines: int = 30) -> str:
        """The last lines of the Dovecot log and stderr, for error messages."""
        parts = []
        for path in (self.log_path, self.stderr_path):
            try:
                text = path.read_text(errors="replace")
            except OSError:
                continue
            tail = "\n".join(text.splitlines()[-lines:])
            if tail:
                parts.append(f"--- {path} (tail) ---\n{tail}")
        return "\n".join(parts) or "(dovecot log is empty)"

    # -------------------------------------------------------------- lifecycle

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def stop(self) -> None:
        """SIGTERM, wait up to 5 s, then SIGKILL; remove the runtime base_dir."""
        self._terminate()
        if self._finalizer is not None:
            self._finalizer.detach()
            self._finalizer = None
        shutil.rmtree(self.base_dir, ignore_errors=True)

    def _terminate(self) -> None:
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                pass
        # Also sweeps up any stray child left in the group.
        _kill_group(proc.pid)
        proc.wait()
        self._proc = None

    def kill(self) -> None:
        """SIGKILL every Dovecot process at once ("server dies mid-sync").

        Open client connections are cut; the Maildir stays as it is.
        """
        proc = self._proc
        if proc is None:
            return
        _kill_group(proc.pid)
        proc.wait()
        self._proc = None
        # Children are reparented when the master dies; make sure none of them
        # still holds the listening sockets before a restart().
        deadline = time.monotonic() + STOP_TIMEOUT
        while time.monotonic() < deadline and self._group_alive(proc.pid):
            time.sleep(0.01)

    @staticmethod
    def _group_alive(pgid: int) -> bool:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

    def restart(self) -> None:
        """(Re)start on the same ports with the same Maildir (after kill/stop)."""
        if self.running:
            self._terminate()
        self._launch()

    def __enter__(self) -> DovecotServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ---------------------------------------------------------------- clients

    def ssl_context(self) -> ssl.SSLContext:
        """A client context that trusts only the throwaway CA."""
        return ssl.create_default_context(cafile=str(self.ca_cert))

    def client(
        self, ssl: bool = False, *, starttls: bool = False, login: bool = True
    ) -> imapclient.IMAPClient:
        """An IMAPClient, logged in as ``user`` unless ``login=False``.

        ``ssl=True`` uses the implicit-TLS port; otherwise the plain port, with
        ``starttls=True`` upgrading the connection first.  Certificates are
        verified against ``ca_cert``.
        """
        context = self.ssl_context()
        imap = imapclient.IMAPClient(
            self.host,
            port=self.ssl_port if ssl else self.port,
            ssl=ssl,
            ssl_context=context if ssl else None,
            timeout=CLIENT_TIMEOUT,
        )
        try:
            if starttls and not ssl:
                imap.starttls(context)
            if login:
                imap.login(self.user, self.password)
        except BaseException:
            imap.shutdown()
            raise
        return imap

    # ----------------------------------------------------------- mail helpers

    def create_folder(self, name: str) -> None:
        with self.client() as imap:
            imap.create_folder(name)

    def append(
        self,
        folder: str,
        raw: bytes,
        flags: tuple[Flag, ...] = (),
        when: _dt.datetime | None = None,
    ) -> None:
        """APPEND one message (``when`` sets the INTERNALDATE)."""
        with self.client() as imap:
            imap.append(folder, raw, flags=flags, msg_time=when)

    def append_many(
        self,
        folder: str,
        raws: Iterable[bytes],
        batch: int = 500,
        flags: tuple[Flag, ...] = (),
    ) -> None:
        """Seed many messages quickly with MULTIAPPEND, ``batch`` per command."""
        pending: list[bytes | dict[str, object]] = []
        with self.client() as imap:
            for raw in raws:
                pending.append({"msg": raw, "flags": flags} if flags else raw)
                if len(pending) >= batch:
                    imap.multiappend(folder, pending)
                    pending = []
            if pending:
                imap.multiappend(folder, pending)

    def uids(self, folder: str) -> list[int]:
        with self.client() as imap:
            imap.select_folder(folder, readonly=True)
            return sorted(imap.search("ALL"))

    def flags(self, folder: str) -> dict[int, tuple[bytes, ...]]:
        """UID -> flags, read with EXAMINE so \\Recent etc. are left alone."""
        with self.client() as imap:
            imap.select_folder(folder, readonly=True)
            uids = imap.search("ALL")
            if not uids:
                return {}
            return {uid: tuple(f) for uid, f in imap.get_flags(uids).items()}

    def uidvalidity(self, folder: str) -> int:
        with self.client() as imap:
            return int(imap.folder_status(folder, [b"UIDVALIDITY"])[b"UIDVALIDITY"])

    def reset_uidvalidity(self, folder: str) -> int:
        """Give ``folder`` a new UIDVALIDITY (messages and flags kept); return it.

        Uses ``doveadm mailbox update --uid-validity``, which also works for
        INBOX.  Sessions that have the folder selected are disconnected by
        Dovecot, as a real server would do.
        """
        doveadm = _which("doveadm")
        if doveadm is None:
            raise DovecotUnavailable("doveadm is not installed")
        old = self.uidvalidity(folder)
        new = old + 1
        _run(
            [
                doveadm, "-c", self.config_path, "mailbox", "update",
                "-u", self.user, "--uid-validity", str(new), folder,
            ]
        )
        current = self.uidvalidity(folder)
        if current == old:
            raise RuntimeError(f"UIDVALIDITY of {folder!r} did not change ({old})")
        return current
