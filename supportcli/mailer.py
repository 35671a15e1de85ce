"""Sending the report over SMTP (smtplib only): one multipart/alternative message, text + HTML.

Config, a ``[smtp]`` table::

    [smtp]
    host = "smtp.example.com"
    port = 587                      # default: 465 for ssl, 587 for starttls, 25 for plain
    security = "starttls"           # ssl | starttls | plain (plain needs allow_insecure = true)
    username = "reports@shop.example"   # default: the from address
    from = "Support report <reports@shop.example>"
    timeout = 30                    # seconds
    ca_file = "/etc/ssl/my-ca.pem"  # extra CA to trust, e.g. a self-signed relay

The password never lives here: the caller looks it up (credentials.py) and passes it in.
Every failure is a ``MailError`` with one line that never contains the secret.
"""

from __future__ import annotations

import logging
import smtplib
import socket
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, getaddresses, make_msgid, parseaddr
from pathlib import Path
from typing import Any

from . import log as logsetup
from .errors import ConfigError, ExitCode, ReportError

log = logging.getLogger(__name__)
SECURITY = ("ssl", "starttls", "plain")
DEFAULT_PORTS = {"ssl": 465, "starttls": 587, "plain": 25}


class MailError(ReportError):
    """The report could not be sent (server unreachable, TLS, refused, …)."""


class MailAuthError(MailError):
    """The SMTP server refused the login: a credentials problem, exit 3."""

    exit_code = ExitCode.CONFIG


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    from_addr: str  # "Name <addr>" or a bare address
    port: int = 587
    security: str = "starttls"  # one of SECURITY
    username: str | None = None  # None: log in as the from address when a secret is given
    timeout: float = 30.0
    ca_file: Path | None = None
    allow_insecure: bool = False

    @property
    def login(self) -> str:
        return self.username or parseaddr(self.from_addr)[1]

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"


def smtp_from_config(raw: Mapping[str, Any]) -> SmtpSettings:
    """Check and type the ``[smtp]`` table; any problem is a one-line ConfigError."""
    if not isinstance(raw, Mapping) or not raw:
        raise ConfigError("no [smtp] table in the config: add host and from to send reports")
    host = raw.get("host")
    if not isinstance(host, str) or not host.strip():
        raise ConfigError("smtp.host is missing")
    security = str(raw.get("security", "starttls")).lower()
    if security not in SECURITY:
        raise ConfigError(f"smtp.security must be one of {', '.join(SECURITY)}, not {security!r}")
    allow_insecure = raw.get("allow_insecure", False)
    if not isinstance(allow_insecure, bool):
        raise ConfigError("smtp.allow_insecure must be true or false")
    if security == "plain" and not allow_insecure:
        raise ConfigError("smtp.security = 'plain' sends mail and passwords unencrypted; "
                          "set smtp.allow_insecure = true to accept that")
    port = raw.get("port", DEFAULT_PORTS[security])
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise ConfigError(f"smtp.port must be a number from 1 to 65535, not {port!r}")
    timeout = raw.get("timeout", 30)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
        raise ConfigError(f"smtp.timeout must be a positive number of seconds, not {timeout!r}")
    sender = raw.get("from", raw.get("from_address"))
    if not isinstance(sender, str) or not _valid_address(sender):
        raise ConfigError("smtp.from must be an address such as 'Reports <reports@shop.example>'")
    username = raw.get("username")
    if username is not None and (not isinstance(username, str) or not username):
        raise ConfigError("smtp.username must be a non-empty string")
    ca_file = raw.get("ca_file")
    ca_path = Path(str(ca_file)).expanduser() if ca_file else None
    if ca_path is not None and not ca_path.is_file():
        raise ConfigError(f"smtp.ca_file not found: {ca_path}")
    return SmtpSettings(host.strip(), sender.strip(), port, security, username, float(timeout),
                        ca_path, allow_insecure)


def build_message(settings: SmtpSettings, to: Sequence[str], subject: str, text: str,
                  html: str) -> EmailMessage:
    """multipart/alternative: text/plain first, text/html last (the preferred part)."""
    msg = EmailMessage()
    try:
        msg["Subject"] = " ".join(subject.split())
        msg["From"] = settings.from_addr
        msg["To"] = ", ".join(to)
        msg["Date"] = formatdate(localtime=True)
        msg["Message-ID"] = make_msgid("supportcli-report", _domain(settings.from_addr))
        msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies, please
        msg["X-Auto-Response-Suppress"] = "All"  # the same for Exchange / Outlook
        msg.set_content(text)
        msg.add_alternative(html, subtype="html")
    except (ValueError, TypeError) as exc:
        raise MailError(f"cannot build the report message: {_one_line(str(exc))}") from None
    return msg


def send_report(settings: SmtpSettings, secret: str | None, to: Sequence[str], subject: str,
                text: str, html: str) -> None:
    """Send the report to ``to``; log in only when ``secret`` is given."""
    logsetup.add_secret(secret)
    recipients = _recipients(to)
    msg = build_message(settings, [" ".join(t.split()) for t in to], subject, text, html)
    try:
        with _connect(settings) as client:
            if secret:
                _login(client, settings, secret)
            refused = client.send_message(msg, parseaddr(settings.from_addr)[1], recipients)
    except MailError:
        raise
    except smtplib.SMTPAuthenticationError as exc:
        raise MailAuthError(
            f"SMTP login as {settings.login} on {settings.where} refused: {_reply(exc)}",
            hint="check the SMTP password or app password") from None
    except smtplib.SMTPRecipientsRefused as exc:
        raise MailError(f"{settings.where} refused every recipient: "
                        f"{_refusals(exc.recipients)}") from None
    except smtplib.SMTPSenderRefused as exc:
        raise MailError(f"{settings.where} refused the sender {settings.from_addr}: "
                        f"{_reply(exc)}") from None
    except smtplib.SMTPResponseException as exc:
        raise MailError(f"{settings.where} refused the report: {_reply(exc)}") from None
    except ssl.SSLCertVerificationError as exc:
        raise MailError(f"TLS certificate of {settings.where} not trusted: "
                        f"{_one_line(exc.verify_message or str(exc))}",
                        hint="set smtp.ca_file to the CA that signed it") from None
    except (ssl.SSLError, smtplib.SMTPException, OSError) as exc:
        raise MailError(f"cannot send the report via {settings.where}: {_describe(exc)}") from None
    if refused:
        log.warning("some recipients were refused: %s", _refusals(refused))
    log.info("report sent to %d recipient(s) via %s", len(recipients) - len(refused),
             settings.where)


def _connect(settings: SmtpSettings) -> smtplib.SMTP:
    context = ssl.create_default_context(
        cafile=str(settings.ca_file) if settings.ca_file else None)
    client = (smtplib.SMTP_SSL(settings.host, settings.port, timeout=settings.timeout,
                               context=context) if settings.security == "ssl"
              else smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout))
    try:
        client.ehlo()
        if settings.security == "starttls":
            if not client.has_extn("starttls"):
                raise MailError(f"{settings.where} does not offer STARTTLS "
                                "(use security = 'ssl', or check host and port)")
            client.starttls(context=context)
            client.ehlo()
    except BaseException:
        client.close()
        raise
    return client


def _login(client: smtplib.SMTP, settings: SmtpSettings, secret: str) -> None:
    if not client.has_extn("auth"):
        raise MailError(f"{settings.where} does not offer AUTH, but a password was given")
    client.login(settings.login, secret)


def _recipients(to: Sequence[str]) -> list[str]:
    """Envelope addresses; any entry that is not clearly an address is an error, not dropped."""
    addresses: list[str] = []
    for entry in to:
        if any(ord(c) < 32 or ord(c) == 127 for c in entry):
            raise MailError(f"recipient with a control character: {_one_line(repr(entry))}")
        parsed = getaddresses([entry])
        if not parsed or not all(_valid_address(a) and a in entry for _, a in parsed):
            raise MailError(f"not an email address: {_one_line(entry)}")
        addresses += [addr for _, addr in parsed]
    if not addresses:
        raise MailError("no recipient: give --mail-to ADDRESS")
    return addresses


def _valid_address(value: str) -> bool:
    if "\n" in value or "\r" in value:
        return False
    local, at, domain = parseaddr(value)[1].rpartition("@")
    return bool(local and at and domain) and not any(c.isspace() for c in local + domain)


def _domain(address: str) -> str:
    return parseaddr(address)[1].rpartition("@")[2] or "localhost"


def _reply(exc: smtplib.SMTPResponseException) -> str:
    text = exc.smtp_error.decode("utf-8", "replace") if isinstance(exc.smtp_error, bytes) \
        else str(exc.smtp_error)
    return f"{exc.smtp_code} {_one_line(text)}"


def _refusals(recipients: Mapping[str, tuple[int, bytes]]) -> str:
    return "; ".join(f"{addr} ({code} {_one_line(msg.decode('utf-8', 'replace'))})"
                     for addr, (code, msg) in recipients.items())


def _describe(exc: BaseException) -> str:
    if isinstance(exc, socket.gaierror):
        return "host name not found"
    if isinstance(exc, TimeoutError | socket.timeout):
        return "timed out"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    return _one_line(str(exc) or type(exc).__name__)


def _one_line(text: str) -> str:
    """Whitespace folded, secrets redacted, cut to a readable length."""
    return logsetup.redact(" ".join(text.split()))[:300]
