"""Errors the user can act on, each with its documented exit code.

One place (``cli.main``) turns these into a one-line message and an exit code; nothing else
decides exit codes.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    UNEXPECTED = 1
    USAGE = 2
    CONFIG = 3  # configuration or credentials
    SOURCE = 4  # mail source: file, folder, IMAP server
    MODEL = 5
    STATE = 6  # local state: store, locks, state dir
    ITEMS_WAITING = 10  # --fail-on: urgent/high items are waiting
    INTERRUPTED = 130


class SupportCliError(Exception):
    """Base class: a failure with a clear one-line message for the user."""

    exit_code: ExitCode = ExitCode.UNEXPECTED

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class UsageError(SupportCliError):
    exit_code = ExitCode.USAGE


class ConfigError(SupportCliError):
    exit_code = ExitCode.CONFIG


class NoAccountError(ConfigError):
    """No IMAP account is configured; each command says what it can do instead."""


class SourceError(SupportCliError):
    exit_code = ExitCode.SOURCE


class ModelError(SupportCliError):
    exit_code = ExitCode.MODEL


class StoreError(SupportCliError):
    exit_code = ExitCode.STATE


class ReportError(SupportCliError):
    exit_code = ExitCode.UNEXPECTED
