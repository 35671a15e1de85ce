"""Opt-in, reversible write-back: show the triage result in the shop's mail client.

``plan`` works out which namespaced IMAP keywords (``$support_urgent``,
``$support_returns_refunds`` …) or, on Gmail, which labels (``support/urgent`` …) each
awaiting message would get, leaving out what it already has: that is the dry run. ``apply``
adds them and journals every single addition in the store under a run id; ``untag`` removes
exactly what one run added, nothing else. Nothing here prints.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from . import workflows
from .config import Settings
from .errors import SourceError, UsageError
from .records import TriageItem
from .store import Store

KEYWORD_PREFIX = "$support_"
LABEL_PREFIX = "support/"


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


def _atom(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", text)


def tags_for(item: TriageItem) -> tuple[str, ...]:
    tags = [item.urgency, item.prediction.category]
    if item.prediction.needs_review:
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
    for account, folder, group in _grouped(wanted):
        with _open(settings, account) as source:
            kind = "gmail_label" if source.is_gmail else "keyword"
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
    return TagResult(changes, None, skipped)


def apply(settings: Settings, store: Store, result: TagResult) -> TagResult:
    """Add the planned tags, journaling each one under a new run id."""
    run_id = store.start_run("tag")
    try:
        for (account, folder), changes in _by_folder(result.changes).items():
            with _open(settings, account) as source:
                client = _select_writable(source, folder, changes[0].target.uidvalidity)
                for change in changes:
                    _add(client, change)
                    store.journal_tags(run_id, [
                        (account, folder, change.target.uidvalidity, change.target.uid, tag,
                         change.kind)
                        for tag in change.add
                    ])  # fmt: skip
    except BaseException:
        store.finish_run(run_id, "failed", {"changes": len(result.changes)})
        raise
    store.finish_run(run_id, "ok", {"changes": len(result.changes)})
    result.run_id = run_id
    return result


def untag(settings: Settings, store: Store, run_id: int, *, dry_run: bool = False) -> list[Any]:
    """Remove exactly the tags run ``run_id`` added (and are still journaled as present)."""
    if not store.run_exists(run_id, "tag"):
        raise UsageError(f"no tag run {run_id}", hint="the run id is printed by `tag --apply`")
    rows = store.journaled_tags(run_id)
    if dry_run or not rows:
        return rows
    by_folder: dict[tuple[str, str], list[Any]] = defaultdict(list)
    for row in rows:
        by_folder[(row["account"], row["folder"])].append(row)
    for (account, folder), entries in by_folder.items():
        with _open(settings, account) as source:
            client = _select_writable(source, folder, entries[0]["uidvalidity"])
            for row in entries:
                if row["kind"] == "gmail_label":
                    client.remove_gmail_labels([row["uid"]], [row["tag"]])
                else:
                    client.remove_flags([row["uid"]], [row["tag"]])
            store.mark_untagged(row["id"] for row in entries)
    return rows


def _name(tag: str, kind: str) -> str:
    return f"{LABEL_PREFIX}{tag}" if kind == "gmail_label" else f"{KEYWORD_PREFIX}{tag}"


def _grouped(wanted: Iterable[Target]) -> list[tuple[str, str, list[Target]]]:
    groups: dict[tuple[str, str], list[Target]] = defaultdict(list)
    for target in wanted:
        groups[(target.account, target.folder)].append(target)
    return [(a, f, g) for (a, f), g in groups.items()]


def _by_folder(changes: Iterable[Change]) -> dict[tuple[str, str], list[Change]]:
    groups: dict[tuple[str, str], list[Change]] = defaultdict(list)
    for change in changes:
        groups[(change.target.account, change.target.folder)].append(change)
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


def _select_writable(source: Any, folder: str, uidvalidity: int) -> Any:
    """The one place supportcli selects a folder read-write: only for tag/untag --apply."""
    client = source.client
    info = client.select_folder(folder, readonly=False)
    if int(info.get(b"UIDVALIDITY", 0)) != uidvalidity:
        raise SourceError(
            f"{folder} changed (UIDVALIDITY) since the messages were synced: run `supportcli "
            "sync` and tag again"
        )
    return client


def _add(client: Any, change: Change) -> None:
    if change.kind == "gmail_label":
        client.add_gmail_labels([change.target.uid], list(change.add))
    else:
        client.add_flags([change.target.uid], list(change.add))
