"""The morning-report workflow: lock, sync, triage, build the report data, deliver, and
remember the run only when it succeeded. Nothing here prints."""

from __future__ import annotations

import fcntl
import os
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from . import hours as bh
from . import prioritize, private, report, workflows
from .config import Settings, locate_error
from .errors import ConfigError, StoreError, UsageError
from .records import TriageItem
from .store import Store

LOCK_FILE = "report.lock"


@dataclass
class ReportRequest:
    fmt: str = "text"
    offline: bool = False
    accounts: tuple[str, ...] = ()
    mail_to: tuple[str, ...] = ()
    as_of: datetime | None = None
    path: str | None = None  # report on this mailbox instead of the store
    demo: bool = False  # report on the bundled demo inbox, as of its newest message
    output: Path | None = None  # write the report here

    @property
    def delivered(self) -> bool:
        """Written or mailed: only such a run moves the "last report" marker."""
        return self.output is not None or bool(self.mail_to)


@dataclass
class ReportResult:
    text: str  # the report in the requested format
    data: report.ReportData
    items: list[TriageItem]
    mailed_to: tuple[str, ...] = ()
    failures: int = 0
    summary: dict[str, Any] = field(default_factory=dict)


@contextmanager
def run_lock(state_dir: Path) -> Iterator[None]:
    """An exclusive lock for the whole run; a second overlapping run fails at once.

    flock is released by the kernel when the process dies, so a killed run never leaves a
    stale lock behind.
    """
    private.make_dir(state_dir)
    fd = os.open(state_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StoreError(
                f"another supportcli report is running (lock held on {state_dir / LOCK_FILE})"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield
    finally:
        os.close(fd)


def run_report(settings: Settings, request: ReportRequest) -> ReportResult:
    """Build the report and deliver it. A report on a PATH or the demo reads it into a
    store of its own and leaves the real store alone; a report on the store is remembered as
    the last report only when it was written or mailed."""
    if request.path or request.demo:
        with Store(":memory:") as scratch:
            result = _build(settings, scratch, request)
            _deliver(settings, request, result)
        return result
    with run_lock(settings.state_dir), Store(settings.store_path) as store:
        run_id = store.start_run("report")
        try:
            result = _build(settings, store, request)
            _deliver(settings, request, result)
        except BaseException:
            store.finish_run(run_id, "failed", {})
            raise
        store.finish_run(run_id, "ok" if request.delivered else "shown", result.summary)
    return result


def _deliver(settings: Settings, request: ReportRequest, result: ReportResult) -> None:
    if request.output is not None:
        write_file(request.output, result.text)
    if request.mail_to:
        _mail(settings, request.mail_to, result)
        result.mailed_to = request.mail_to


def write_file(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` whole or not at all (a temporary file, then a rename)."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with tmp.open("w", encoding="utf-8", newline="") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise UsageError(f"cannot write {path}: {exc.strerror}") from None


def _build(settings: Settings, store: Store, request: ReportRequest) -> ReportResult:
    business, timezone = settings.business_hours, settings.timezone  # checked by config
    last = last_report_at(store)
    triage = workflows.triage(
        settings,
        workflows.TriageRequest(
            path=request.path,
            demo=request.demo,
            offline=request.offline,
            accounts=request.accounts,
            as_of=request.as_of,
        ),
        store=store,
    )
    now = triage.as_of
    items = triage.all_items
    data = build_data(settings, store, triage, items, now, last, business, timezone)
    text = {
        "text": report.render_text,
        "markdown": report.render_markdown,
        "html": report.render_html,
    }[request.fmt](data)
    summary = {
        "as_of": now.isoformat(),
        "awaiting": len(items),
        "urgent": data.headline.urgent,
        "new_since_last": data.headline.new_since_last,
        "needs_review": data.headline.needs_review,
        "failures": len(triage.ingest.failures),
    }
    return ReportResult(text, data, items, failures=len(triage.ingest.failures), summary=summary)


def build_data(
    settings: Settings,
    store: Store,
    triage: workflows.TriageResult,
    items: Sequence[TriageItem],
    now: datetime,
    last: datetime | None,
    business: bh.BusinessHours | None,
    timezone: str,
) -> report.ReportData:
    messages = store.messages(since=now - timedelta(days=15))
    shop = frozenset(settings.shop_addresses)
    customer = [m for m in messages if m.sender_addr not in shop]
    predictions = triage.predictions
    since_last = last or now - timedelta(days=1)
    week = [
        m for m in customer if m.date >= now - timedelta(days=7) and m.message_id in predictions
    ]
    local_today = now.astimezone(bh.zone(timezone)).date()
    loaded_meta = _model_meta(settings)
    return report.ReportData(
        generated_at=now,
        headline=report.Headline(
            new_since_last=sum(1 for m in customer if m.date > since_last),
            awaiting=len(items),
            urgent=sum(1 for i in items if i.urgency == "urgent"),
            needs_review=sum(1 for i in items if i.review),
        ),
        top_items=list(items[: report.TOP_N]),
        overdue=report.overdue_by_urgency(items, settings.sla_hours, now, business),
        by_category=report.counts_by_category(items),
        daily_volume=report.daily_volume(
            (
                (m.date, predictions[m.message_id].category)
                for m in customer
                if m.message_id in predictions
            ),
            local_today,
            timezone,
        ),
        oldest=report.oldest_waiting(items),
        shared_orders=report.shared_order_numbers(prioritize.group_threads(customer)),
        health=report.ModelHealth(
            model_id=triage.model_id,
            needs_review=sum(
                1
                for m in week
                if prioritize.review_labels(predictions[m.message_id], triage.review_thresholds)
            ),
            classified=len(week),
            this_week=Counter(predictions[m.message_id].category for m in week),
            training=Counter(loaded_meta.get("category_counts") or _sample_counts()),
        ),
        timezone=timezone,
        shop_name=settings.shop_name,
        last_report_at=last,
        sla_hours=settings.sla_hours,
        business_hours=business.describe() if business else None,
        left_out=triage.window.describe() if triage.window and triage.window.left_out else None,
    )


def _model_meta(settings: Settings) -> dict[str, Any]:
    from .model import artifacts, registry

    return artifacts.read_meta(registry.active_dir(settings))


def _sample_counts() -> Counter[str]:
    import csv

    from . import resources

    with (resources.samples_dir() / "labels.csv").open(newline="", encoding="utf-8") as handle:
        return Counter(row["category"] for row in csv.DictReader(handle))


def last_report_at(store: Store) -> datetime | None:
    """The time the latest report that was written or mailed was made as of (its --as-of,
    else its start). A report made as of an earlier time never moves it backwards."""
    rows = store.db.execute(
        "SELECT started_at, json_extract(summary, '$.as_of') FROM runs "
        "WHERE command = 'report' AND status = 'ok'"
    ).fetchall()
    return max((datetime.fromisoformat(row[1] or row[0]) for row in rows), default=None)


def _mail(settings: Settings, to: Sequence[str], result: ReportResult) -> None:
    from . import mailer
    from .credentials import smtp_secret

    try:
        smtp, credential = settings.smtp()
        secret = smtp_secret(credential)  # never prompts
    except ConfigError as exc:  # name the file and line of the key
        raise locate_error(settings, exc) from None
    data = result.data
    subject = f"Support triage: {data.headline.awaiting} awaiting, {data.headline.urgent} urgent"
    mailer.send_report(
        smtp, secret, list(to), subject, report.render_text(data), report.render_html(data)
    )


def fail_on(items: Sequence[TriageItem], level: str | None) -> bool:
    """True when an item at ``level`` or above is waiting (for ``--fail-on``)."""
    return bool(level) and any(prioritize.urgency_at_least(i.urgency, str(level)) for i in items)


def log_line(result: ReportResult, started: datetime) -> str:
    s = result.summary
    mailed = f" mailed={','.join(result.mailed_to)}" if result.mailed_to else ""
    return (
        f"{started.astimezone(UTC).isoformat(timespec='seconds')} report ok "
        f"awaiting={s['awaiting']} urgent={s['urgent']} new={s['new_since_last']} "
        f"review={s['needs_review']} skipped={s['failures']}{mailed}\n"
    )
