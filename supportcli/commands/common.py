"""What every command module shares: the per-run context, consoles, and option parsing."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ..errors import UsageError
from ..records import URGENCIES

if TYPE_CHECKING:
    from rich.console import Console

    from ..config import Settings


if TYPE_CHECKING:

    class Urgency(StrEnum):
        """The urgency levels, as a command-line choice."""

else:  # the choices are records.URGENCIES, in order
    Urgency = StrEnum("Urgency", {u: u for u in URGENCIES})


class Security(StrEnum):
    ssl = "ssl"
    starttls = "starttls"
    plain = "plain"


AccountOption = Annotated[
    list[str] | None, typer.Option("--account", help="Only this IMAP account (repeatable).")
]


@dataclass
class Context:
    config: Path | None
    verbose: int
    quiet: bool

    def settings(self) -> Settings:
        from ..config import load_settings

        return load_settings(self.config)

    @property
    def interactive(self) -> bool:
        """A person at a terminal, who may be asked for a password."""
        return sys.stdin.isatty() and sys.stderr.isatty()


@contextmanager
def without_an_account(instead: str) -> Iterator[None]:
    """Add what this command can do without an IMAP account to the no-account error."""
    from ..errors import NoAccountError

    try:
        yield
    except NoAccountError as exc:
        raise NoAccountError(exc.message, hint=f"{exc.hint}; or, without one, {instead}") from None


def get_context(ctx: typer.Context) -> Context:
    root = ctx.find_root()
    obj = root.obj if root is not None else ctx.obj
    return obj if isinstance(obj, Context) else Context(None, 0, False)


def stdout_console() -> Console:
    from rich.console import Console

    width = None if sys.stdout.isatty() else 160
    return Console(width=width, soft_wrap=False, highlight=False)


def stderr_console() -> Console:
    """Messages on stderr: one line each, never hard-wrapped when it is not a terminal (a
    log file or a pipe reads them as lines)."""
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=not sys.stderr.isatty())


def note_window(window: Any, quiet: bool) -> None:
    """Say on stderr what the store window left out of a store-wide triage, report or tag."""
    if window is not None and window.left_out and not quiet:
        stderr_console().print(window.describe(), markup=False)


def parse_when(value: str | None, *, name: str) -> datetime | None:
    """An ISO date/time, or a span back from now such as 24h, 3d, 2w."""
    when = parse_since(value, name=name)
    return datetime.now(UTC) - when if isinstance(when, timedelta) else when


def parse_since(value: str | None, *, name: str) -> datetime | timedelta | None:
    """An ISO date/time, or a span such as 24h, 3d, 2w (which the caller counts back from the
    time it ranks as of)."""
    if value is None:
        return None
    value = value.strip()
    units = {"h": 1, "d": 24, "w": 24 * 7}
    if value[:-1].isdigit() and value[-1:].lower() in units:
        return timedelta(hours=int(value[:-1]) * units[value[-1].lower()])
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise UsageError(
            f"{name}: expected a date like 2026-11-20, 2026-11-20T09:00 or 24h/3d, got {value!r}"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
