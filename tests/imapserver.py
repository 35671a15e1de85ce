"""A private, real Dovecot IMAP server for the test suite.

Usage::

    with DovecotServer.start(tmp_path) as server:
        server.append("INBOX", b"Subject: hi\\r\\n\\r\\nbody\\r\\n")
        with server.client() as imap:
            ...

Everything the server needs lives in ``tmp_dir`` (certificates, config,
passwd files, Maildir, log), except its ``base_dir`` (runtime sockets), which
is a short ``/tmp/dv...`` directory because unix socket paths are limited to
~107 bytes.

The server listens on 127.0.0.1 only, on two free ports: ``port`` (plain IMAP,
STARTTLS offered, plaintext LOGIN allowed) and ``ssl_port`` (implicit TLS).
Its certificate is issued by a throwaway CA (``ca_cert``) for ``localhost``
and ``127.0.0.1``.

Authentication:

* ``LOGIN`` / ``AUTHENTICATE PLAIN|LOGIN`` with ``user`` + ``password``;
* ``AUTHENTICATE XOAUTH2`` with ``user`` + ``token``.  Dovecot 2.3's XOAUTH2
  mechanism hands the bearer token to the passdb chain exactly like a password
  (``auth_request_verify_plain``), so no OAuth2 introspection server is
  needed: a second passwd-file passdb restricted with ``mechanisms = xoauth2``
  holds the token as the user's "password".  The password passdb is restricted
  to ``plain login``, so neither secret works in place of the other.

Failed logins are answered immediately (no 0.5 s failure delay, no anvil
penalty), so negative tests stay fast.

Dovecot is normally started as root (as on CI); mail is then owned by the
unprivileged uid/gid 40000.  When the tests run as an ordinary user, Dovecot
runs "rootless" as that user instead.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import errno
import grp
import os
import pwd
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import textwrap
import time
import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import imapclient

__all__ = ["DovecotServer", "DovecotUnavailable", "create_ca"]

MAIL_UID = 40000
MAIL_GID = 40000
READY_TIMEOUT = 10.0  # seconds until the greeting must have arrived
STOP_TIMEOUT = 5.0  # seconds between SIGTERM and SIGKILL
CLIENT_TIMEOUT = 30.0  # socket timeout of helper clients
START_ATTEMPTS = 3  # fresh ports are picked if a chosen one got taken meanwhile

# Debian installs dovecot/doveadm in /usr/sbin, which is not on an ordinary
# user's PATH; look there too before giving up.
_EXTRA_PATH = ("/usr/sbin", "/usr/local/sbin", "/sbin")

Flag = bytes | str


class DovecotUnavailable(RuntimeError):
    """Dovecot (or openssl) is not installed, so no server can be started."""


class _PortInUse(RuntimeError):
    """Dovecot could not bind one of the chosen ports."""


# --------------------------------------------------------------------- helpers


def _which(program: str) -> str | None:
    path = os.pathsep.join([os.environ.get("PATH", os.defpath), *_EXTRA_PATH])
    return shutil.which(program, path=path)


def _require(program: str, package: str) -> str:
    found = _which(program)
    if found is None:
        raise DovecotUnavailable(f"{program} is not installed (apt-get install {package})")
    return found


def _free_port(exclude: Iterable[int] = ()) -> int:
    """Ask the kernel for a currently free TCP port on 127.0.0.1."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port not in exclude:
            return port


def _port_is_free(port: int) -> bool:
    """True if nothing listens on 127.0.0.1:port (TIME_WAIT does not count)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return False
            raise
    return True


def _run(argv: Sequence[str | os.PathLike[str]]) -> str:
    """Run a helper command; raise with its output if it fails."""
    args = [os.fspath(a) for a in argv]
    proc = subprocess.run(
        args, stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(
            f"command failed ({proc.returncode}): {' '.join(args)}\n{proc.stdout}{proc.stderr}"
        )
    return proc.stdout


def create_ca(directory: Path, name: str = "ca") -> tuple[Path, Path]:
    """Create a throwaway CA in ``directory``; return ``(cert_pem, key_pem)``.

    The extensions (critical basicConstraints, keyUsage, key identifiers) are
    what Python's ``VERIFY_X509_STRICT`` (default since 3.13) insists on.
    """
    openssl = _require("openssl", "openssl")
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = directory / f"{name}.pem", directory / f"{name}.key"
    _run([
        openssl, "req", "-x509", "-new", "-nodes",
        "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
        "-keyout", key, "-out", cert, "-days", "2",
        "-subj", f"/CN=supportcli test CA {name} {secrets.token_hex(4)}",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        "-addext", "subjectKeyIdentifier=hash",
    ])  # fmt: skip
    return cert, key


def _create_server_cert(directory: Path, ca_cert: Path, ca_key: Path) -> tuple[Path, Path]:
    """Issue a certificate for localhost / 127.0.0.1 signed by the given CA."""
    openssl = _require("openssl", "openssl")
    cert, key = directory / "server.pem", directory / "server.key"
    csr, ext = directory / "server.csr", directory / "server.ext"
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
    _run([
        openssl, "req", "-new", "-nodes",
        "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
        "-keyout", key, "-out", csr, "-subj", "/CN=localhost",
    ])  # fmt: skip
    _run([
        openssl, "x509", "-req", "-in", csr, "-CA", ca_cert, "-CAkey", ca_key,
        "-set_serial", str(secrets.randbits(63)), "-days", "2",
        "-extfile", ext, "-out", cert,
    ])  # fmt: skip
    return cert, key


def _make_traversable(path: Path) -> None:
    """Let other uids traverse (not list) ``path`` and its ancestors.

    Dovecot's auth process (user ``dovecot``) must read the passwd files and
    the mail processes (uid 40000) must reach the Maildir, but pytest's tmp
    dirs are 0700.  Only directories we own are touched, and only x bits added.
    """
    euid = os.geteuid()
    for directory in [path, *path.parents]:
        st = directory.stat()
        if st.st_uid == euid and (st.st_mode & 0o011) != 0o011:
            directory.chmod((st.st_mode & 0o7777) | 0o011)


def _kill_group(pgid: int) -> None:
    """SIGKILL a whole process group, ignoring "already gone"."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


@dataclass
class _Reaper:
    """Cleanup for stop(), and the last resort at garbage collection or exit.

    Kept apart from the server object so that weakref.finalize can hold it.
    """

    base_dir: Path
    pgid: int | None = None  # process group of the running Dovecot, if any

    def __call__(self) -> None:
        if self.pgid is not None:
            _kill_group(self.pgid)
            self.pgid = None
        shutil.rmtree(self.base_dir, ignore_errors=True)


def _tail(path: Path, lines: int) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def _login_retrying(imap: imapclient.IMAPClient, user: str, password: str) -> None:
    """LOGIN, retried when Dovecot answers [UNAVAILABLE] (its auth process was too slow to
    answer, which happens on a loaded machine); a wrong password is never retried."""
    for attempt in range(4):
        try:
            imap.login(user, password)
            return
        except imapclient.exceptions.LoginError as exc:
            if "UNAVAILABLE" not in str(exc) or attempt == 3:
                raise
            time.sleep(0.2 * (attempt + 1))


# ---------------------------------------------------------------------- server


class DovecotServer:
    """A running private Dovecot instance; create it with :meth:`start`."""

    host = "127.0.0.1"
    user = "shop@example.test"
    password = "correct horse battery staple"
    token = "ya29.test-token"

    def __init__(self, tmp_dir: Path, dovecot: str) -> None:
        # Use DovecotServer.start(); __init__ only lays out paths.
        self.tmp_dir = tmp_dir.resolve()
        if any(c.isspace() or c in "\"'#" for c in str(self.tmp_dir)):
            # Paths go unquoted into dovecot.conf and passdb args.
            raise ValueError(f"unsupported characters in tmp_dir: {self.tmp_dir}")
        self.maildir = self.tmp_dir / "Maildir"
        self.home = self.tmp_dir / "home"
        self.log_path = self.tmp_dir / "dovecot.log"
        self.stderr_path = self.tmp_dir / "dovecot.stderr"
        self.config_path = self.tmp_dir / "dovecot.conf"
        self.ca_cert = self.tmp_dir / "tls" / "ca.pem"
        self.port = _free_port()
        self.ssl_port = _free_port(exclude={self.port})
        # Short runtime directory: unix socket paths must stay < ~107 bytes.
        self.base_dir = Path(tempfile.mkdtemp(prefix="dv", dir="/tmp"))
        self.base_dir.chmod(0o755)  # what Dovecot wants (it warns otherwise)
        self._dovecot = dovecot
        self._proc: subprocess.Popen[bytes] | None = None
        self._reaper = _Reaper(self.base_dir)
        self._finalizer = weakref.finalize(self, self._reaper)

    # ------------------------------------------------------------ start/stop

    @classmethod
    def start(cls, tmp_dir: Path) -> DovecotServer:
        """Create certificates, config and storage in ``tmp_dir``; start Dovecot.

        Returns once the server has sent its IMAP greeting.  Raises
        :class:`DovecotUnavailable` if dovecot (or openssl) is not installed.
        """
        dovecot = _require("dovecot", "dovecot-imapd")
        _require("openssl", "openssl")
        tmp_dir.mkdir(parents=True, exist_ok=True)
        server = cls(tmp_dir, dovecot)
        try:
            server._prepare()
            for attempt in range(START_ATTEMPTS):
                server._write_config()
                try:
                    server._launch()
                    break
                except _PortInUse:
                    # Someone grabbed a port between probing and Dovecot's bind.
                    if attempt == START_ATTEMPTS - 1:
                        raise
                    server.port = _free_port()
                    server.ssl_port = _free_port(exclude={server.port})
        except BaseException:
            server.stop()
            raise
        return server

    def stop(self) -> None:
        """SIGTERM, wait up to 5 s, then SIGKILL; remove the runtime base_dir."""
        self._terminate()
        self._finalizer()  # removes base_dir; runs at most once

    def kill(self) -> None:
        """SIGKILL every Dovecot process at once ("server dies mid-sync").

        Open client connections are cut; the Maildir stays as it is.  Use
        :meth:`restart` to bring the server back.
        """
        proc = self._proc
        if proc is None:
            return
        self._proc = None
        _kill_group(proc.pid)
        proc.wait()
        self._reaper.pgid = None
        self._wait_ports_free()

    def restart(self) -> None:
        """Start again (after kill/stop, or stop first) on the same ports and Maildir."""
        self._terminate()
        if not self._finalizer.alive:  # restarting after stop()
            self.base_dir.mkdir(mode=0o755)
            self._finalizer = weakref.finalize(self, self._reaper)
        self._launch()

    @property
    def running(self) -> bool:
        """True while the Dovecot master process is alive."""
        return self._proc is not None and self._proc.poll() is None

    def __enter__(self) -> DovecotServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def log_tail(self, lines: int = 30) -> str:
        """The last lines of the Dovecot log and of its stderr, for error messages."""
        parts = [
            f"--- {path} (tail) ---\n{tail}"
            for path in (self.log_path, self.stderr_path)
            if (tail := _tail(path, lines))
        ]
        return "\n".join(parts) or "(dovecot log is empty)"

    # -------------------------------------------------------------- internals

    def _prepare(self) -> None:
        """Certificates, passwd files and mail directories (once per tmp_dir)."""
        tls_dir = self.ca_cert.parent
        ca_cert, ca_key = create_ca(tls_dir, "ca")
        _create_server_cert(tls_dir, ca_cert, ca_key)

        # passwd-file format: user:password:uid:gid:gecos:home:shell:extra
        (self.tmp_dir / "passwd").write_text(f"{self.user}:{{PLAIN}}{self.password}\n")
        (self.tmp_dir / "tokens").write_text(f"{self.user}:{{PLAIN}}{self.token}\n")
        for directory in (self.maildir, self.home, self.tmp_dir / "state"):
            directory.mkdir(exist_ok=True)

        if os.geteuid() == 0:
            # Mail is accessed as uid 40000; passwd files by user "dovecot".
            for directory in (self.maildir, self.home):
                os.chown(directory, MAIL_UID, MAIL_GID)
                directory.chmod(0o700)
            for name in ("passwd", "tokens"):
                (self.tmp_dir / name).chmod(0o644)
            self.tmp_dir.chmod(0o711)
            _make_traversable(self.tmp_dir)

    def _write_config(self) -> None:
        if os.geteuid() == 0:
            mail_uid, mail_gid = MAIL_UID, MAIL_GID
            internal_user, internal_group, login_user = "dovecot", "dovecot", "dovenull"
            no_chroot = ""
        else:
            # Rootless Dovecot: every service runs as the current user, and
            # the services that chroot by default cannot do so.
            mail_uid, mail_gid = os.getuid(), os.getgid()
            internal_user = login_user = pwd.getpwuid(mail_uid).pw_name
            internal_group = grp.getgrgid(mail_gid).gr_name
            no_chroot = "  chroot =\n"
        tls_dir = self.ca_cert.parent

        self.config_path.write_text(
            f"""\
# Generated by tests/imapserver.py -- private test instance.
instance_name = supportcli-test-{self.base_dir.name}
base_dir = {self.base_dir}
state_dir = {self.tmp_dir / "state"}
log_path = {self.log_path}
protocols = imap
listen = 127.0.0.1
shutdown_clients = yes
default_internal_user = {internal_user}
default_internal_group = {internal_group}
default_login_user = {login_user}
first_valid_uid = {mail_uid}
first_valid_gid = 0

ssl = yes
ssl_cert = <{tls_dir / "server.pem"}
ssl_key = <{tls_dir / "server.key"}

disable_plaintext_auth = no
auth_mechanisms = plain login xoauth2
auth_failure_delay = 0
auth_verbose = yes
auth_cache_size = 0

# Dovecot 2.3 answers failed logins only from a 500 ms timer, even with
# auth_failure_delay = 0, unless the "nodelay" field is set.  This passdb
# always matches and sets it; with continue-fail the passdbs below still
# verify the secret, and "nodelay" survives their failure.
passdb {{
  driver = static
  args = nopassword=y nodelay=yes
  result_success = continue-fail
}}
# The password, for LOGIN and AUTHENTICATE PLAIN/LOGIN only.
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {self.tmp_dir / "passwd"}
  mechanisms = plain login
}}
# The bearer token, for AUTHENTICATE XOAUTH2 only: Dovecot 2.3's XOAUTH2
# checks the token against the passdbs like a password.
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
  # Tests may hold many sessions at once (the default limit is 10).
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
  # No authentication-failure penalty for wrong-password tests.
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
{no_chroot}}}
"""
        )

    def _launch(self) -> None:
        """Start ``dovecot -F`` and wait for its greeting."""
        log_size = self.log_path.stat().st_size if self.log_path.exists() else 0
        with open(self.stderr_path, "ab") as err:
            # Own session, hence own process group: kill() can take down every
            # Dovecot process at once, like a crashing server.
            proc = subprocess.Popen(
                [self._dovecot, "-F", "-c", str(self.config_path)],
                stdin=subprocess.DEVNULL,
                stdout=err,
                stderr=err,
                start_new_session=True,
            )
        self._proc = proc
        self._reaper.pgid = proc.pid
        try:
            self._wait_ready(proc)
        except BaseException:
            # The ports may be busy because of someone else: don't wait for them.
            self._terminate(wait_for_ports=False)
            if b"Address already in use" in self._log_since(log_size):
                raise _PortInUse(self.log_tail()) from None
            raise

    def _log_since(self, offset: int) -> bytes:
        try:
            with open(self.log_path, "rb") as log:
                log.seek(offset)
                return log.read()
        except OSError:
            return b""

    def _wait_ready(self, proc: subprocess.Popen[bytes]) -> None:
        """Wait until the plain port sends ``* OK`` (a bare connect is not enough)."""
        deadline = time.monotonic() + READY_TIMEOUT
        last_error = "no attempt"
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"dovecot exited with status {proc.returncode} during startup\n"
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

    def _terminate(self, wait_for_ports: bool = True) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(STOP_TIMEOUT)
        _kill_group(proc.pid)  # SIGKILL fallback; also sweeps stray children
        proc.wait()
        self._reaper.pgid = None
        if wait_for_ports:
            self._wait_ports_free()

    def _wait_ports_free(self) -> None:
        """After a kill, wait until no straggler still holds the listeners."""
        deadline = time.monotonic() + STOP_TIMEOUT
        while time.monotonic() < deadline:
            if _port_is_free(self.port) and _port_is_free(self.ssl_port):
                return
            time.sleep(0.01)

    # ---------------------------------------------------------------- clients

    def ssl_context(self) -> ssl.SSLContext:
        """A client TLS context that trusts only the throwaway CA."""
        return ssl.create_default_context(cafile=str(self.ca_cert))

    def client(
        self, ssl: bool = False, *, starttls: bool = False, login: bool = True
    ) -> imapclient.IMAPClient:
        """An IMAPClient logged in as ``user`` (unless ``login=False``).

        ``ssl=True`` uses the implicit-TLS port; otherwise the plain port,
        upgraded with STARTTLS if ``starttls=True``.  Certificates are verified
        against ``ca_cert``.  (``ssl`` shadows the module here, as in
        IMAPClient's own signature.)
        """
        context = self.ssl_context()
        imap = imapclient.IMAPClient(
            self.host,
            port=self.ssl_port if ssl else self.port,
            ssl=ssl,  # imapclient defaults to True; be explicit
            ssl_context=context if ssl else None,
            timeout=CLIENT_TIMEOUT,
        )
        try:
            if starttls and not ssl:
                imap.starttls(context)
            if login:
                _login_retrying(imap, self.user, self.password)
        except BaseException:
            imap.shutdown()
            raise
        return imap

    def account_toml(self, folder: str, name: str = "shop", password_env: str = "PW") -> str:
        """A supportcli ``[accounts.NAME]`` table for this server (STARTTLS, CA verified)."""
        return (
            f'[accounts.{name}]\nhost = "{self.host}"\nport = {self.port}\n'
            f'security = "starttls"\nusername = "{self.user}"\nca_file = "{self.ca_cert}"\n'
            f'folders = ["{folder}"]\nfirst_sync_days = 36500\npassword_env = "{password_env}"\n'
        )

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
        """APPEND one message; ``when`` sets its INTERNALDATE."""
        with self.client() as imap:
            imap.append(folder, raw, flags=flags, msg_time=when)

    def append_many(
        self,
        folder: str,
        raws: Iterable[bytes],
        batch: int = 500,
        flags: tuple[Flag, ...] = (),
    ) -> None:
        """Seed many messages quickly: one MULTIAPPEND per ``batch`` messages."""
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
        """UID -> flags, read through EXAMINE so nothing is changed.

        ``\\Recent`` is left out: it is per-session state, not a stored flag.
        """
        with self.client() as imap:
            imap.select_folder(folder, readonly=True)
            uids = imap.search("ALL")
            if not uids:
                return {}
            return {
                uid: tuple(f for f in found if f != imapclient.RECENT)
                for uid, found in imap.get_flags(uids).items()
            }

    def uidvalidity(self, folder: str) -> int:
        with self.client() as imap:
            return int(imap.folder_status(folder, [b"UIDVALIDITY"])[b"UIDVALIDITY"])

    def reset_uidvalidity(self, folder: str) -> int:
        """Give ``folder`` a new UIDVALIDITY and return it.

        Messages, UIDs, flags and dates are kept.  Uses ``doveadm mailbox
        update --uid-validity``, which also works for INBOX.  Dovecot
        disconnects sessions that have the folder selected.
        """
        doveadm = _require("doveadm", "dovecot-core")
        old = self.uidvalidity(folder)
        _run([
            doveadm, "-c", self.config_path, "mailbox", "update",
            "-u", self.user, "--uid-validity", str(old + 1), folder,
        ])  # fmt: skip
        new = self.uidvalidity(folder)
        if new == old:
            raise RuntimeError(f"UIDVALIDITY of {folder!r} did not change ({old})")
        return new
