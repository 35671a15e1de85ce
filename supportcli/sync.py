"""The sync workflow: pull new mail from the configured IMAP accounts into the store.

Each batch of messages is stored together with the folder's cursor in one transaction, so a
sync that is killed resumes exactly where it stopped, and nothing is stored twice (the store
dedupes by Message-ID). Replies found in the Sent folder mark their threads as answered.
Nothing here prints; ``progress`` is called with the number of messages handled.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .config import Settings
from .errors import ConfigError, NoAccountError, UsageError
from .parse import parse
from .records import Message, ParseFailure
from .store import Store

log = logging.getLogger(__name__)


@dataclass
class FolderResult:
    folder: str
    added: int = 0
    duplicates: int = 0
    failures: list[ParseFailure] = field(default_factory=list)


@dataclass
class AccountResult:
    account: str
    folders: list[FolderResult] = field(default_factory=list)
    answered: int = 0

    @property
    def added(self) -> int:
        return sum(f.added for f in self.folders)

    @property
    def failures(self) -> list[ParseFailure]:
        return [x for f in self.folders for x in f.failures]


ADD_ACCOUNT = (
    "add one with `supportcli init --host imap.example.com --username you@shop.example "
    "--password-command CMD`"
)


def configured_accounts(settings: Settings, names: Sequence[str] = ()) -> list[Any]:
    from .config import locate_error

    try:
        accounts = settings.accounts()
    except ConfigError as exc:  # name the file and line of the key
        raise locate_error(settings, exc) from None
    if not accounts:
        raise NoAccountError(f"no IMAP account in {settings.config_path}", hint=ADD_ACCOUNT)
    unknown = [n for n in names if n not in accounts]
    if unknown:
        raise UsageError(
            f"no account named {unknown[0]!r}", hint="configured: " + ", ".join(accounts)
        )
    return [accounts[n] for n in names] if names else list(accounts.values())


def sync(
    settings: Settings,
    store: Store,
    names: Sequence[str] = (),
    *,
    interactive: bool = False,
    progress: Callable[[int], None] | None = None,
    **source_options: Any,
) -> list[AccountResult]:
    from .sources.imap import open_source

    results = []
    for account in configured_accounts(settings, names):
        result = AccountResult(account.name)
        since = account.since()
        with open_source(account, interactive=interactive, **source_options) as source:
            for folder in account.folders:
                result.folders.append(
                    _sync_folder(store, source, account.name, folder, since, progress,
                                 settings.order_pattern)
                )
            if account.sent_folder:
                replied = source.answered_ids(account.sent_folder, since)
                result.answered = store.mark_answered(replied, f"sent:{account.name}")
        log.info("synced %s: %d new message(s)", account.name, result.added)
        results.append(result)
    return results


def _sync_folder(
    store: Store,
    source: Any,
    account: str,
    folder: str,
    since: Any,
    progress: Callable[[int], None] | None,
    order_pattern: re.Pattern[str] | None = None,
) -> FolderResult:
    result = FolderResult(folder)
    for raws, cursor in source.fetch_new(folder, store.cursor(account, folder), since):
        parsed = [parse(raw, order_pattern=order_pattern) for raw in raws]
        messages = [m for m in parsed if isinstance(m, Message)]
        failures = [m for m in parsed if isinstance(m, ParseFailure)]
        added, dupes = store.add_batch(messages, failures, cursor)
        result.added += added
        result.duplicates += dupes
        result.failures += failures
        if progress and raws:
            progress(len(raws))
    return result
