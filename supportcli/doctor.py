"""``supportcli doctor``: one check per line, each fast and independent.

First what local use needs (the config file, the store, the model), then for each account:
config, credentials, DNS, TCP, TLS, login, each folder (read-only), capabilities, then any
extra checks the caller adds. A failing check
only skips the checks that need it: a wrong password still shows DNS, TCP and TLS as passed.
Nothing here prints; the CLI renders the list.
"""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .accounts import ImapAccount
from .credentials import Secret, find_secret
from .errors import SupportCliError
from .sources.imap import (
    Connect,
    ImapSource,
    connect_client,
    connection_errors,
    tls_context,
)

if TYPE_CHECKING:
    from .config import Settings

NOTABLE_CAPABILITIES = ("IDLE", "CONDSTORE", "QRESYNC", "X-GM-EXT-1", "MOVE", "UIDPLUS")


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    ok: bool
    detail: str = ""
    hint: str = ""
    skipped: bool = False  # not run because a check it needs failed (counts as not ok)


Hook = Callable[[], Check]


@dataclass
class _Run:
    """State shared between the checks of one account."""

    account: ImapAccount
    connect: Connect
    interactive: bool
    checks: list[Check] = field(default_factory=list)
    secret: Secret | None = None
    client: Any = None
    source: ImapSource | None = None

    def add(self, check: Check) -> bool:
        self.checks.append(check)
        return check.ok

    def skip(self, names: Iterable[str], because: str) -> None:
        for name in names:
            self.checks.append(Check(name, False, f"skipped: {because}", skipped=True))


def run_checks(
    account: ImapAccount,
    *,
    interactive: bool = False,
    connect: Connect = connect_client,
    extra: Iterable[Hook] = (),
) -> list[Check]:
    """All checks for one account; ``extra`` hooks (e.g. the model check) run last."""
    run = _Run(account, connect, interactive)
    try:
        _network_checks(run)
    finally:
        if run.source is not None:
            run.source.close()
        elif run.client is not None:
            _close(run.client)
    run.checks += [_guarded(hook) for hook in extra]
    return run.checks


def local_checks(config_path: Path | None) -> tuple[Settings | None, list[Check]]:
    """What local use needs, with or without a mail account: the config file, the store and
    the model. Returns the settings (None when the config is broken) and the checks."""
    from .config import Settings, default_config_path, default_state_dir, load_settings
    from .store import Store

    checks: list[Check] = []
    settings: Settings | None = None
    try:
        settings = load_settings(config_path)
        where = settings.config_path
        detail = str(where) if where.is_file() else f"no file at {where}: the defaults"
        checks.append(Check("config", True, detail))
    except SupportCliError as exc:
        checks.append(Check("config", False, exc.message, exc.hint or "fix the file, see README"))
    usable = settings or Settings(state_dir=default_state_dir(), config_path=default_config_path())
    try:
        with Store(usable.store_path) as store:
            healthy, count = store.integrity_ok(), store.count_messages()
        checks.append(Check("store", healthy, f"{usable.store_path} ({count} messages)"
                            if healthy else f"{usable.store_path} is damaged",
                            "" if healthy else "move it away; `supportcli sync` rebuilds it"))
    except SupportCliError as exc:
        checks.append(Check("store", False, exc.message, exc.hint or ""))
    checks.append(_guarded(lambda: model_check(usable)))
    return settings, checks


def model_check(settings: Settings) -> Check:
    from .errors import ModelError
    from .model import registry

    try:
        loaded = registry.load_active(settings)
    except registry.RebuildNeeded as exc:
        return Check("model", True, f"{exc.message}; {exc.hint}")
    except ModelError as exc:
        return Check("model", False, exc.message,
                     exc.hint or "`supportcli model use default` goes back to the shipped model")
    return Check("model", True, f"{loaded.model_id} ({loaded.meta.get('n_samples', '?')} samples)")


def all_ok(checks: Iterable[Check]) -> bool:
    return all(check.ok for check in checks)


def _folder_names(account: ImapAccount) -> list[str]:
    names = [f"folder {f}" for f in account.folders]
    return names + ([f"folder {account.sent_folder} (sent)"] if account.sent_folder else [])


def _network_checks(run: _Run) -> None:
    account = run.account
    after_login = ["login", *_folder_names(account), "capabilities"]
    run.add(_config(account))
    have_secret = run.add(_credentials(run))
    if not run.add(_dns(account)):
        return run.skip(["tcp", "tls", *after_login], "the host name does not resolve")
    if not run.add(_tcp(account)):
        return run.skip(["tls", *after_login], "no TCP connection")
    if not run.add(_tls(run)):
        return run.skip(after_login, "no IMAP connection")
    if not have_secret:
        return run.skip(after_login, "no credentials")
    if not run.add(_login(run)):
        return run.skip(after_login[1:], "login failed")
    for folder, name in zip(_folder_list(account), _folder_names(account), strict=True):
        run.add(_folder(run, folder, name))
    run.add(_capabilities(run))
    return None


def _folder_list(account: ImapAccount) -> list[str]:
    return list(account.folders) + ([account.sent_folder] if account.sent_folder else [])


def _config(account: ImapAccount) -> Check:
    detail = f"account {account.name}: {account.host}:{account.port} ({account.security})"
    if account.security == "plain":
        return Check("config", True, detail + ", NOT encrypted", "prefer ssl or starttls")
    if account.ca_file and not account.ca_file.is_file():
        return Check("config", False, f"ca_file {account.ca_file} does not exist")
    if account.ca_file:
        try:  # a file that holds no certificate is a config error, as in `sync` (exit 3)
            tls_context(account)
        except SupportCliError as exc:
            return Check("config", False, exc.message, exc.hint or "")
    return Check("config", True, detail)


def _credentials(run: _Run) -> Check:
    try:
        run.secret = find_secret(run.account, interactive=run.interactive)
    except SupportCliError as exc:
        return Check("credentials", False, exc.message, exc.hint or "")
    return Check("credentials", True, f"from {run.secret.source}")


def _dns(account: ImapAccount) -> Check:
    try:
        infos = socket.getaddrinfo(account.host, account.port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        return Check("dns", False, f"unknown host {account.host}: {exc}", "check host")
    addresses = sorted({str(info[4][0]) for info in infos})
    return Check("dns", True, f"{account.host} -> {', '.join(addresses[:4])}")


def _tcp(account: ImapAccount) -> Check:
    started = time.monotonic()
    try:
        with socket.create_connection((account.host, account.port), timeout=account.timeout):
            pass
    except OSError as exc:
        reason = "refused" if isinstance(exc, ConnectionRefusedError) else str(exc)
        return Check("tcp", False, f"{account.host}:{account.port}: {reason}", "check port")
    ms = (time.monotonic() - started) * 1000
    return Check("tcp", True, f"{account.host}:{account.port} in {ms:.0f} ms")


def _tls(run: _Run) -> Check:
    try:
        run.client = run.connect(run.account)
    except SupportCliError as exc:
        return Check("tls", False, exc.message, exc.hint or "")
    if run.account.security == "plain":
        return Check("tls", True, "not encrypted (allow_insecure = true)", "prefer ssl")
    sock = run.client.socket() if hasattr(run.client, "socket") else None
    if not isinstance(sock, ssl.SSLSocket):
        return Check("tls", True, f"{run.account.security}: certificate verified")
    return Check("tls", True, _describe_tls(sock))


def _describe_tls(sock: ssl.SSLSocket) -> str:
    cert = sock.getpeercert() or {}
    expires = cert.get("notAfter")
    detail = f"{sock.version()}, certificate verified"
    if isinstance(expires, str):
        when = datetime.fromtimestamp(ssl.cert_time_to_seconds(expires), tz=UTC)
        days = (when - datetime.now(UTC)).days
        detail += f", expires {when:%Y-%m-%d} (in {days} days)"
    return detail


def _login(run: _Run) -> Check:
    assert run.secret is not None
    client, run.client = run.client, None
    run.source = ImapSource(run.account, run.secret.value, connect=lambda _account: client)
    try:
        run.source.open()
    except SupportCliError as exc:
        run.source = None
        _close(client)
        return Check("login", False, exc.message, exc.hint or "")
    return Check("login", True, f"as {run.account.username} ({run.account.auth})")


def _folder(run: _Run, folder: str, name: str) -> Check:
    assert run.source is not None
    try:
        with connection_errors(run.account):
            state = run.source.select(folder)
    except SupportCliError as exc:
        return Check(name, False, exc.message, exc.hint or "")
    return Check(name, True, f"{state.exists} messages, opened read-only")


def _capabilities(run: _Run) -> Check:
    assert run.source is not None
    caps = run.source.capabilities
    notable = [c for c in NOTABLE_CAPABILITIES if c in caps]
    detail = ", ".join(notable) if notable else "basic IMAP4rev1"
    if "X-GM-EXT-1" in caps:
        detail += " (Gmail: message and thread ids used)"
    return Check("capabilities", True, detail)


def _guarded(hook: Hook) -> Check:
    """An extra check that raises becomes a failed check, not a crash."""
    try:
        return hook()
    except SupportCliError as exc:
        return Check(getattr(hook, "__name__", "check"), False, exc.message, exc.hint or "")
    except Exception as exc:
        return Check(getattr(hook, "__name__", "check"), False, f"{type(exc).__name__}: {exc}")


def _close(client: Any) -> None:
    try:
        client.logout()
    except Exception:
        try:
            client.shutdown()
        except Exception:  # already gone
            return
