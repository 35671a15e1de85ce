"""The morning report: one pure ``ReportData``, three renderings.

``render_text`` fits 80 columns, ``render_markdown`` is for chat and tickets, ``render_html``
is one self-contained file (inline CSS, inline SVG chart, no script, no external URL). Every
string that came from an email goes through ``sanitize`` and, in HTML, jinja's autoescape too;
URLs written by customers are defanged (``https[:]//``) so no mail client turns them into links.
The helpers below the dataclasses compute each section from plain records, without I/O.
"""

from __future__ import annotations

import re
import textwrap
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from . import export, sanitize
from . import hours as bh
from .records import URGENCIES, Message, TriageItem

if TYPE_CHECKING:
    from jinja2 import Environment

SECTIONS = ("Headline", "Answer first", "Past the response target", "By category and urgency",
            "Volume, last 14 days", "Oldest waiting", "Same order number in several threads",
            "Model health")
TOP_N, OLDEST_N, VOLUME_DAYS = 10, 5, 14
DRIFT_THRESHOLD, DRIFT_MIN_MESSAGES = 0.25, 30
WIDTH = 80
RETRAIN_HINT = ("label recent mail (supportcli label) and retrain (supportcli train)")


@dataclass(frozen=True)
class Headline:
    new_since_last: int  # customer messages stored since the last successful report
    awaiting: int  # threads awaiting a reply
    urgent: int  # awaiting threads ranked urgent
    needs_review: int  # awaiting threads whose prediction needs a human to check it


@dataclass(frozen=True)
class OverdueItem:
    item: TriageItem
    target_hours: float  # the response target for the item's urgency
    late_hours: float  # past the target, in business hours when those are configured
    due: datetime  # UTC


@dataclass(frozen=True)
class OrderMention:
    subject: str
    sender: str
    date: datetime  # UTC


@dataclass(frozen=True)
class ModelHealth:
    model_id: str
    needs_review: int  # this week's customer messages the model was not sure about
    classified: int  # this week's customer messages classified
    this_week: Mapping[str, int]  # category -> messages this week
    training: Mapping[str, int]  # category -> training examples
    threshold: float = DRIFT_THRESHOLD
    min_messages: int = DRIFT_MIN_MESSAGES  # fewer than this this week: no drift verdict

    @property
    def review_share(self) -> float:
        return self.needs_review / self.classified if self.classified else 0.0

    @property
    def drift(self) -> float:
        return category_drift(Counter(self.this_week), Counter(self.training))

    @property
    def drifted(self) -> bool:
        week, trained = sum(self.this_week.values()), sum(self.training.values())
        return week >= self.min_messages and trained > 0 and self.drift > self.threshold


@dataclass(frozen=True)
class ReportData:
    generated_at: datetime  # UTC; shown in ``timezone``
    headline: Headline
    top_items: Sequence[TriageItem]  # best first, up to TOP_N
    overdue: Mapping[str, Sequence[OverdueItem]]  # urgency -> items, latest first
    by_category: Mapping[str, Mapping[str, int]]  # category -> urgency -> awaiting threads
    daily_volume: Mapping[date, Mapping[str, int]]  # local day -> category -> messages
    oldest: Sequence[TriageItem]  # longest waiting first
    shared_orders: Mapping[str, Sequence[OrderMention]]  # order number -> one per thread
    health: ModelHealth
    timezone: str = "UTC"
    shop_name: str | None = None
    last_report_at: datetime | None = None
    sla_hours: Mapping[str, float] = field(default_factory=dict)
    business_hours: str | None = None  # BusinessHours.describe(), None for wall clock
    left_out: str | None = None  # what the store window left out (StoreWindow.describe())


# -- building the sections (pure) ---------------------------------------------------------


def category_drift(this_week: Counter[str], training: Counter[str]) -> float:
    """Total-variation distance between two category mixes: 0 same, 1 disjoint."""
    a, b = sum(this_week.values()), sum(training.values())
    if not a or not b:
        return 0.0
    categories = set(this_week) | set(training)
    return 0.5 * sum(abs(this_week[c] / a - training[c] / b) for c in categories)


def overdue_by_urgency(
    items: Iterable[TriageItem], sla_hours: Mapping[str, float], now: datetime,
    hours: bh.BusinessHours | None,
) -> dict[str, list[OverdueItem]]:
    """Items past their response target, grouped by urgency (urgent first), latest first."""
    groups: dict[str, list[OverdueItem]] = defaultdict(list)
    for item in items:
        target = sla_hours.get(item.urgency, 24.0)
        late = bh.hours_late(item.message.date, now, target, hours)
        if late > 0:
            due = bh.due_at(item.message.date, target, hours)
            groups[item.urgency].append(OverdueItem(item, target, late, due))
    return {u: sorted(groups[u], key=lambda o: -o.late_hours) for u in _order(groups)}


def counts_by_category(items: Iterable[TriageItem]) -> dict[str, dict[str, int]]:
    counts: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(URGENCIES, 0))
    for item in items:
        row = counts[item.prediction.category]
        row[item.urgency] = row.get(item.urgency, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: (-sum(kv[1].values()), kv[0])))


def daily_volume(dated: Iterable[tuple[datetime, str]], today: date, timezone: str = "UTC",
                 days: int = VOLUME_DAYS) -> dict[date, dict[str, int]]:
    """(message date, category) pairs counted per local day, every one of ``days`` days present."""
    zone = bh.zone(timezone)
    first = today - timedelta(days=days - 1)
    volume: dict[date, dict[str, int]] = {first + timedelta(n): {} for n in range(days)}
    for when, category in dated:
        day = when.astimezone(zone).date()
        if day in volume:
            volume[day][category] = volume[day].get(category, 0) + 1
    return volume


def shared_order_numbers(threads: Iterable[Sequence[Message]]) -> dict[str, list[OrderMention]]:
    """Order numbers mentioned in more than one thread, with the first mention in each."""
    seen: dict[str, list[OrderMention]] = defaultdict(list)
    for thread in threads:
        firsts: dict[str, Message] = {}
        for m in sorted(thread, key=lambda m: m.date):
            for order in m.order_numbers:
                firsts.setdefault(order, m)
        for order, m in firsts.items():
            sender = m.sender_name or m.sender_addr
            seen[order].append(OrderMention(m.subject, sender, m.date))
    return {o: sorted(ms, key=lambda x: x.date) for o, ms in sorted(seen.items()) if len(ms) > 1}


def oldest_waiting(items: Iterable[TriageItem], n: int = OLDEST_N) -> list[TriageItem]:
    return sorted(items, key=lambda i: (-i.waiting, i.rank))[:n]


# -- shared formatting --------------------------------------------------------------------

_SCHEME = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]{1,20}):(?=//)")
_WWW = re.compile(r"(?i)\bwww\.")


def safe(value: str | None, width: int | None = None) -> str:
    """One clean line with URLs defanged, cut to ``width`` characters."""
    return sanitize.one_line(_defang(value or ""), width)


def _defang(value: str) -> str:
    """``https://x`` -> ``https[:]//x``, ``www.x`` -> ``www[.]x``: text, never a link."""
    return _WWW.sub("www[.]", _SCHEME.sub(r"\1[:]", sanitize.clean_text(value)))


def waited(item: TriageItem) -> str:
    return bh.age_text(item.waiting)


def local(value: datetime | None, timezone: str, fmt: str = "%a %d %b %Y %H:%M %Z") -> str:
    return value.astimezone(bh.zone(timezone)).strftime(fmt) if value else "never"


def sender(m: Message) -> str:
    return f"{m.sender_name} <{m.sender_addr}>" if m.sender_name else m.sender_addr


def who(m: Message) -> str:
    return m.sender_name or m.sender_addr


def targets(data: ReportData) -> str:
    parts = [f"{u} {bh.age_text(h)}" for u, h in data.sla_hours.items()]
    clock = f"business hours {data.business_hours}" if data.business_hours else "wall clock"
    return ", ".join(parts) + f" ({clock})" if parts else clock


def categories_by_volume(volume: Mapping[date, Mapping[str, int]]) -> list[str]:
    totals: Counter[str] = Counter()
    for counts in volume.values():
        totals.update(counts)
    return [c for c, _ in sorted(totals.items(), key=lambda kv: (-kv[1], kv[0]))]


def _order(keys: Iterable[str]) -> list[str]:
    keys = list(keys)
    return [u for u in URGENCIES if u in keys] + sorted(k for k in keys if k not in URGENCIES)


# -- text -------------------------------------------------------------------------------


def _width(ch: str) -> int:
    if unicodedata.combining(ch):
        return 0
    return 2 if unicodedata.east_asian_width(ch) in "WF" else 1


def _cols(text: str) -> int:
    return sum(_width(ch) for ch in text)


def clip(text: str, width: int = WIDTH) -> str:
    """``text`` cut to ``width`` terminal columns (wide characters count twice)."""
    used = 0
    for n, ch in enumerate(text):
        used += _width(ch)
        if used > width:
            head = text[:n]
            while _cols(head) > width - 1:  # room for the ellipsis: at most two steps
                head = head[:-1]
            return head + "…"
    return text


def cell(value: object, width: int) -> str:
    """A clean table cell padded (or cut) to exactly ``width`` columns."""
    text = clip(safe(str(value)), width)
    return text + " " * (width - _cols(text))


def wrap(text: str, indent: int, width: int = WIDTH) -> list[str]:
    pad = " " * indent
    return textwrap.wrap(text, width, initial_indent=pad, subsequent_indent=pad) or [pad]


# -- rendering -------------------------------------------------------------------------

PALETTE = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1",
           "#ff9da7", "#9c755f", "#bab0ac", "#1f77b4", "#8c564b", "#17becf")
URGENCY_COLORS = {"urgent": "#b91c1c", "high": "#c2410c", "normal": "#1d4ed8", "low": "#4b5563"}


def render_text(data: ReportData) -> str:
    """Plain text, every line at most 80 columns (wide characters count twice)."""
    out = _render("report.txt.j2", data)
    return "\n".join(clip(line.rstrip()) for line in out.strip("\n").splitlines()) + "\n"


def render_markdown(data: ReportData) -> str:
    return _render("report.md.j2", data).strip("\n") + "\n"


def render_html(data: ReportData) -> str:
    """One self-contained HTML document: inline styles, inline SVG, nothing fetched."""
    return _render("report.html.j2", data)


def chart_geometry(volume: Mapping[date, Mapping[str, int]], width: int = 760) -> dict[str, Any]:
    """Positions for a stacked bar chart of messages per day and category (drawn in SVG)."""
    cats = categories_by_volume(volume)
    color = {c: PALETTE[n % len(PALETTE)] for n, c in enumerate(cats)}
    left, top, plot_h = 36, 20, 180
    plot_w = width - left - 8
    days = sorted(volume)
    slot = plot_w / max(len(days), 1)
    ymax = _nice(max((sum(v.values()) for v in volume.values()), default=0))
    bars = []
    for n, day in enumerate(days):
        x, y, segments = left + n * slot, float(top + plot_h), []
        for c in cats:
            count = volume[day].get(c, 0)
            if count:
                h = plot_h * count / ymax
                y -= h
                segments.append({"y": round(y, 1), "h": round(h, 1), "color": color[c],
                                 "title": f"{day:%a %d %b}: {c} {count}"})
        bars.append({"day": day, "x": round(x, 1), "slot": round(slot, 1), "segments": segments,
                     "bar_x": round(x + slot * 0.15, 1), "bar_w": round(slot * 0.7, 1),
                     "mid": round(x + slot / 2, 1), "top": round(y, 1),
                     "total": sum(volume[day].values()), "weekend": day.weekday() >= 5})
    ticks = [{"y": round(top + plot_h - plot_h * v / ymax, 1), "label": int(v)}
             for v in (0, ymax / 2, ymax) if v == int(v)]
    per_row = max(1, (width - left) // 160)
    legend = [{"x": left + (n % per_row) * 160, "y": top + plot_h + 44 + (n // per_row) * 18,
               "color": color[c], "label": c} for n, c in enumerate(cats)]
    height = top + plot_h + 44 + (len(cats) + per_row - 1) // per_row * 18 + 4
    return {"width": width, "height": height, "left": left, "top": top, "plot_w": plot_w,
            "plot_h": plot_h, "bars": bars, "ticks": ticks, "legend": legend, "color": color}


def _nice(peak: int) -> int:
    """The smallest 1, 2 or 5 × 10^k at or above ``peak`` (at least 2)."""
    scale = 1
    while True:
        for step in (2, 5, 10):
            if step * scale >= peak:
                return step * scale
        scale *= 10


def _render(name: str, data: ReportData) -> str:
    health, rows = data.health, data.by_category.values()
    volume: Counter[str] = Counter()
    for counts in data.daily_volume.values():
        volume.update(counts)
    week_total = sum(health.this_week.values())
    return _environment().get_template(name).render(
        data=data, tz=data.timezone, sections=SECTIONS, urgencies=URGENCIES,
        title="Support report" + (f" · {safe(data.shop_name, 60)}" if data.shop_name else ""),
        targets=targets(data), chart=chart_geometry(data.daily_volume),
        urgency_totals={u: sum(row.get(u, 0) for row in rows) for u in URGENCIES},
        volume_totals=[f"{c} {n}" for c, n in sorted(volume.items(), key=lambda x: (-x[1], x[0]))],
        drift=health.drift, drifted=health.drifted, retrain_hint=RETRAIN_HINT,
        week_total=week_total, enough_for_drift=week_total >= health.min_messages,
        urgency_colors=URGENCY_COLORS, mix=_mix(health), review_note=export.REVIEW_NOTE,
    )


def _mix(health: ModelHealth) -> list[tuple[str, float, float]]:
    """(category, share this week, share in training), the largest differences first."""
    a, b = sum(health.this_week.values()) or 1, sum(health.training.values()) or 1
    rows = [(c, health.this_week.get(c, 0) / a, health.training.get(c, 0) / b)
            for c in set(health.this_week) | set(health.training)]
    return sorted(rows, key=lambda r: (-abs(r[1] - r[2]), r[0]))


@lru_cache(maxsize=1)
def _environment() -> Environment:
    from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

    env = Environment(
        loader=PackageLoader("supportcli", "templates"),
        # HTML and SVG templates escape everything; text and markdown have their own filters
        autoescape=select_autoescape(["html.j2", "svg.j2"], default_for_string=True),
        undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True,
    )
    env.filters.update(
        clean=safe, md=lambda v, width=None: sanitize.for_markdown(_defang(v or ""), width),
        age=bh.age_text, waited=waited, local=local, sender=sender, who=who, clip=clip, wrap=wrap,
        cell=cell, marked=export.marked,
        pct=lambda v: f"{v:.0%}",
    )
    return env
