"""Opt-in, reversible write-back: show the triage result in the shop's mail client.

``plan`` works out which namespaced IMAP keywords (``$support_urgent``,
``$support_returns_refunds`` …) or, on Gmail, which labels (``support/urgent`` …) each
awaiting message would get, leaving out what it already has: that is the dry run. ``apply``
journals every single addition in the store under a run id before it sends it, and marks it
stored once the server took it; ``untag`` removes exactly what one run added (or, if it was
killed, may have added), nothing else. Nothing here prints.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from . import workflows
from .config import Settings
from .errors import SourceError, UsageError
from .records import TriageItem
from .store import Store

KEYWORD_PREFIX = "$support_"
LABEL_PREFIX = "support/"
# UIDs per STORE command: RFC 7162 asks clients to keep command lines near 8,000 octets, and
# servers refuse longer ones (Dovecot at 64 KB); 500 UIDs of up to ten digits stay under 6 KB.
UIDS_PER_COMMAND = 500


@dataclass(frozen=True)
class Target:
    account: str
    folder: str
    uidvalidity: int
    uid: int
    message_id: str
    subject: str
    tags: tuple[str, ...]  # what the triage says this message should carry


@dataclass
class Change:
    target: Target
    add: tuple[str, ...]  # tags it does not carry yet
    kind: str  # "keyword" or "gmail_label"


@dataclass
class TagResult:
    changes: list[Change]
    run_id: int | None = None  # set when applied
    skipped: list[str] = field(default_factory=list)  # why some messages were left alone
    window: workflows.StoreWindow | None = None  # what the store window left out


def _atom(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", text)


def tags_for(item: TriageItem) -> tuple[str, ...]:
    tags = [item.urgency, item.prediction.category]
    if item.review:
        tags.append("review")
    return tuple(_atom(t) for t in tags)


def targets(items: Sequence[TriageItem]) -> tuple[list[Target], list[str]]:
    found, skipped = [], []
    for item in items:
        m = item.message
        source, _, folder = m.source.partition("/")
        uidvalidity, _, uid = m.source_key.partition(":")
        if not source.startswith("imap:") or not folder or not uid.isdigit():
            skipped.append(f"{m.message_id}: not from an IMAP folder")
            continue
        found.append(Target(source[5:], folder, int(uidvalidity), int(uid), m.message_id,
                            m.subject, tags_for(item)))  # fmt: skip
    return found, skipped


def plan(
    settings: Settings,
    store: Store,
    *,
    accounts: Sequence[str] = (),
    min_urgency: str | None = None,
    offline: bool = True,
) -> TagResult:
    """The dry run: exactly which tags would be added to which messages."""
    request = workflows.TriageRequest(offline=offline, accounts=tuple(accounts),
                                      min_urgency=min_urgency)  # fmt: skip
    triage = workflows.triage(settings, request, store=store)
    wanted, skipped = targets(triage.items)
    changes: list[Change] = []
    for account, folders in _by_account(wanted, lambda t: (t.account, t.folder)).items():
        with _open(settings, account) as source:
            kind = "gmail_label" if source.is_gmail else "keyword"
            for folder, group in folders.items():
                current = _current(source, folder, group, kind)
                for target in group:
                    have = current.get(target.uid)
                    if have is None:
                        skipped.append(f"{target.message_id}: no longer in {folder}")
                        continue
                    names = [_name(t, kind) for t in target.tags]
                    add = tuple(n for n in names if n.lower() not in have)
                    if add:
                        changes.append(Change(target, add, kind))
    return TagResult(changes, None, skipped, triage.window)


def apply(settings: Settings, store: Store, result: TagResult) -> TagResult:
    """Add the planned tags, one connection per account and one command per folder and tag
    set (per ``UIDS_PER_COMMAND`` messages), under a new run id. Each command's tags are
    journaled before it is sent and marked stored once the server took them, so a run killed
    at any point leaves nothing that ``untag --run ID`` does not know of."""
    run_id = store.start_run("tag")
    try:
        groups = _by_account(result.changes, lambda c: (c.target.account, c.target.folder))
        for account, folders in groups.items():
            with _open(settings, account) as source:
                for folder, changes in folders.items():
                    _select_writable(source, folder, changes[0].target.uidvalidity)
                    by_tags: dict[tuple[str, tuple[str, ...]], list[Change]] = defaultdict(list)
                    for change in changes:
                        by_tags[(change.kind, change.add)].append(change)
                    for (kind, add), same in by_tags.items():
                        for part in _batches(same):
                            intent = store.journal_tags(run_id, [
                                (account, folder, c.target.uidvalidity, c.target.uid, tag, kind)
                                for c in part for tag in add
                            ])  # fmt: skip
                            _store(source.client, kind, "+", [c.target.uid for c in part], add)
                            store.mark_stored(intent)
    except BaseException:
        store.finish_run(run_id, "failed", {"changes": len(result.changes)})
        raise
    store.finish_run(run_id, "ok", {"changes": len(result.changes)})
    result.run_id = run_id
    return result


def untag(settings: Settings, store: Store, run_id: int, *, dry_run: bool = False) -> list[Any]:
    """Remove exactly the tags run ``run_id`` added or, if it was interrupted, may have added
    (everything journaled for it and not removed yet); the run is then marked ``undone``."""
    if not store.run_exists(run_id, "tag"):
        raise UsageError(f"no tag run {run_id}", hint="the run id is printed by `tag --apply`")
    rows = store.journaled_tags(run_id)
    if dry_run:
        return rows
    if not rows:
        _mark_undone(store, run_id)
        return rows
    for account, folders in _by_account(rows, lambda r: (r["account"], r["folder"])).items():
        with _open(settings, account) as source:
            for folder, entries in folders.items():
                _select_writable(source, folder, entries[0]["uidvalidity"])
                by_tag: dict[tuple[str, str], list[Any]] = defaultdict(list)
                for row in entries:
                    by_tag[(row["kind"], row["tag"])].append(row)
                for (kind, tag), same in by_tag.items():
                    for part in _batches(same):
                        _store(source.client, kind, "-", [row["uid"] for row in part], (tag,))
                        store.mark_untagged(row["id"] for row in part)
    _mark_undone(store, run_id)
    return rows


def _mark_undone(store: Store, run_id: int) -> None:
    """A run all of whose tags are gone (a running one is left to finish)."""
    if store.run_status(run_id) != "running":
        store.set_run_status(run_id, "undone")


def _name(tag: str, kind: str) -> str:
    return f"{LABEL_PREFIX}{tag}" if kind == "gmail_label" else f"{KEYWORD_PREFIX}{tag}"


def _by_account(
    items: Iterable[Any], where: Callable[[Any], tuple[str, str]]
) -> dict[str, dict[str, list[Any]]]:
    """Items grouped by account, then by folder (``where`` says both), in their order."""
    groups: dict[str, dict[str, list[Any]]] = defaultdict(lambda: defaultdict(list))
    for item in items:
        account, folder = where(item)
        groups[account][folder].append(item)
    return groups


def _open(settings: Settings, account_name: str) -> Any:
    from .sources.imap import open_source
    from .sync import configured_accounts

    [account] = configured_accounts(settings, [account_name])
    return open_source(account)


def _current(source: Any, folder: str, group: list[Target], kind: str) -> dict[int, set[str]]:
    """Each message's present keywords (or Gmail labels), lower-cased, read-only."""
    state = source.select(folder)  # read-only
    uids = [t.uid for t in group if t.uidvalidity == state.uidvalidity]
    if not uids:
        return {}
    item = b"X-GM-LABELS" if kind == "gmail_label" else b"FLAGS"
    fetched = source.client.fetch(uids, [item.decode()])
    return {uid: {_text(v).lower() for v in data.get(item, ())} for uid, data in fetched.items()}


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _select_writable(source: Any, folder: str, uidvalidity: int) -> None:
    """The one place supportcli selects a folder read-write: only for tag/untag --apply."""
    state = source.select(folder, readonly=False)
    if state.uidvalidity != uidvalidity:
        raise SourceError(
            f"{folder} changed (UIDVALIDITY) since the messages were synced: run `supportcli "
            "sync` and tag again"
        )


def _batches(items: list[Any]) -> Iterator[list[Any]]:
    for start in range(0, len(items), UIDS_PER_COMMAND):
        yield items[start : start + UIDS_PER_COMMAND]


def _store(client: Any, kind: str, sign: str, uids: list[int], tags: Sequence[str]) -> None:
    """One UID STORE (or Gmail X-GM-LABELS) command: add (+) or remove (-) tags on uids."""
    if kind == "gmail_label":
        (client.add_gmail_labels if sign == "+" else client.remove_gmail_labels)(uids, list(tags))
    else:
        (client.add_flags if sign == "+" else client.remove_flags)(uids, list(tags))
