"""Logging: stderr only, verbosity counted with -v, secrets never written.

Every secret the tool handles (passwords, tokens) is registered with :func:`add_secret`; a
filter on the root handler replaces it with ``***`` in every record, whatever logger wrote it
(imapclient's protocol log included).
"""

from __future__ import annotations

import logging
import sys
from typing import Any

_SECRETS: set[str] = set()
REDACTED = "***"
HANDLER_NAME = "supportcli"


def add_secret(secret: str | None) -> None:
    if secret and len(secret) >= 3:
        _SECRETS.add(secret)


def redact(text: str) -> str:
    for secret in sorted(_SECRETS, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


class RedactingFilter(logging.Filter):
    """Replaces every registered secret in the message and in any traceback it carries, and
    makes both safe for a terminal: names of files, folders and senders reach log records
    as arguments, so the whole message is cleaned (escape sequences, control and bidi
    characters; one line), whichever logger wrote it."""

    def filter(self, record: logging.LogRecord) -> bool:
        from .sanitize import clean_text, one_line

        record.msg, record.args = one_line(redact(record.getMessage())), None
        if record.exc_info:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
            record.exc_info = None
        if record.exc_text:
            record.exc_text = clean_text(redact(record.exc_text))
        if record.stack_info:
            record.stack_info = clean_text(redact(record.stack_info))
        return True


def setup(verbosity: int, *, quiet: bool = False) -> None:
    """0: warnings, 1 (-v): info, 2 (-vv): debug. Quiet: errors only."""
    level = (
        logging.ERROR
        if quiet
        else (logging.WARNING, logging.INFO, logging.DEBUG)[min(verbosity, 2)]
    )
    handler: logging.Handler
    if sys.stderr.isatty():
        from rich.logging import RichHandler

        handler = RichHandler(show_time=False, show_path=False, markup=False, rich_tracebacks=False)
        handler.setFormatter(logging.Formatter("%(message)s"))
    else:
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter())
    if verbosity < 2:
        handler.addFilter(_quiet_third_parties)
    root = logging.getLogger()
    for old in list(root.handlers):
        if old.get_name() == HANDLER_NAME:
            root.removeHandler(old)
    handler.set_name(HANDLER_NAME)
    root.addHandler(handler)
    root.setLevel(level)


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time of each record (not the stream that
    was current at setup), so a redirected or replaced stderr never breaks logging."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


def _quiet_third_parties(record: logging.LogRecord) -> bool:
    """Libraries' info and debug chatter (imapclient's protocol trace…) only at -vv."""
    return record.name.startswith("supportcli") or record.levelno >= logging.WARNING
