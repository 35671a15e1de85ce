"""rich renderables for the terminal. Builds tables and panels; never prints.

Text from email is always passed to rich as ``Text`` objects made by ``sanitize.for_terminal``,
never as markup, so ``[bold red]`` in a subject is shown literally and escape sequences are
stripped before they reach the terminal.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from . import sanitize
from .export import REVIEW_NOTE
from .hours import age_text
from .prioritize import describe_cue, forcing_cues
from .records import Message, Prediction, TriageItem

URGENCY_STYLE = {"urgent": "bold red", "high": "yellow", "normal": "default", "low": "dim"}


def _t(value: str, width: int | None = None, style: str = "") -> Text:
    return Text(sanitize.for_terminal(value, width), style=style)


# Short category names for narrow terminals; a custom category is cut to 9 characters.
SHORT_CATEGORY = {
    "order_status": "order",
    "shipping_delivery": "shipping",
    "returns_refunds": "returns",
    "cancellation": "cancel",
    "billing_payment": "billing",
    "product_question": "product",
    "account_access": "account",
    "technical_issue": "technical",
    "complaint": "complaint",
    "feedback": "feedback",
    "wholesale_partnership": "wholesale",
    "spam_vendor": "spam",
    "other": "other",
}
WIDE = 120  # at this width and wider, the triage table shows everything
DETAILS = 100  # confidence and language from this width
REVIEW_LEGEND = REVIEW_NOTE


def short_category(name: str) -> str:
    return SHORT_CATEGORY.get(name, name[:9])


def review_marks(item: TriageItem) -> tuple[str, ...]:
    """The labels of an item the model is unsure of."""
    return item.review


class TriageTable:
    """The ranked threads, laid out for the width of the console that prints them.

    Every row takes one line of facts (rank, age, urgency, category, sender, subject; the
    model's confidence and the language from 100 columns) and a dim second line saying why
    it ranks there. Below 120 columns category names are short and the why is cut to one
    line; from 120 columns everything is shown in full."""

    def __init__(self, items: Sequence[TriageItem], title: str) -> None:
        self.items = items
        self.title = title

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield from triage_lines(self.items, self.title, options.max_width, console)


def triage_table(items: Sequence[TriageItem], title: str) -> TriageTable:
    return TriageTable(items, title)


def triage_lines(
    items: Sequence[TriageItem], title: str, width: int, console: Console
) -> list[Text]:
    width = max(width, 20)
    wide, details = width >= WIDE, width >= DETAILS
    cats = [_category_label(i, wide) for i in items]
    urgencies = [_urgency_label(i) for i in items]
    cols = {
        "#": max([len(str(i.rank)) for i in items] + [1]),
        "age": 4,
        "urgency": max([c.cell_len for c in urgencies] + [7]),
        "category": max([c.cell_len for c in cats] + [8]),
    }
    if details:
        cols.update({"conf": 4, "lang": 4})
    room = width - sum(cols.values()) - len(cols)
    senders = [cell_len(_sender(i)) for i in items] or [4]
    if wide:  # room for the whole name, up to 40 columns
        sender_w = max(8, min(max(senders), 40, max(22, room * 35 // 100)))
    else:
        sender_w = max(8, min(22, room * 3 // 10))
    subject_w = max(1, room - sender_w - 1)
    lines = [Text(sanitize.one_line(title), style="bold")]
    head = Text(style="bold")
    for name, w in [*cols.items(), ("from", sender_w), ("subject", subject_w)]:
        head.append(_cell(Text(name), w, right=name in ("#", "age", "conf")))
        head.append(" ")
    lines.append(_fit(head, width))
    indent = cols["#"] + 1 + cols["age"] + 1
    for item, cat, urg in zip(items, cats, urgencies, strict=True):
        m, p = item.message, item.prediction
        row = Text(style="dim" if m.automated else "")
        cells = [
            _cell(Text(str(item.rank)), cols["#"], right=True),
            _cell(Text(age_text(item.waiting, compact=True)), cols["age"], right=True),
            _cell(urg, cols["urgency"]),
            _cell(cat, cols["category"]),
        ]
        if details:
            cells += [
                _cell(Text(f"{p.category_confidence:.0%}"), 4, right=True),
                _cell(Text(m.language or "-"), 4),
            ]
        cells += [
            _cell(Text(_sender(item)), sender_w),
            _cell(_t(m.subject or "(no subject)"), subject_w),
        ]
        for cell in cells:
            row.append(cell)
            row.append(" ")
        lines.append(_fit(row, width))
        why = _why(item)
        if why.plain:
            if wide:
                for part in why.wrap(console, width - indent):
                    lines.append(_fit(Text(" " * indent) + part, width))
            else:
                lines.append(_fit(Text(" " * indent) + _cell(why, width - indent), width))
    if any(review_marks(i) for i in items):
        lines.append(Text(REVIEW_LEGEND, style="dim"))
    return lines


def triage_title(result: Any, show_all: bool) -> str:
    """``result`` is a ``workflows.TriageResult``: what is shown of how many threads."""
    when = f"as of {result.as_of:%Y-%m-%d %H:%M} UTC"
    shown, answered, awaiting = len(result.items), result.answered_threads, result.awaiting
    if show_all:
        return (f"{shown} of {awaiting + answered} threads · {awaiting} awaiting a reply, "
                f"{answered} answered · {when}")
    hidden = f" · {answered} answered (--all shows them)" if answered else ""
    return f"{shown} of {awaiting} threads awaiting a reply{hidden} · {when}"


def waiting_line(items: Sequence[TriageItem], level: str) -> str:
    """What ``--fail-on LEVEL`` found waiting, in one line."""
    from collections import Counter

    from .prioritize import urgency_at_least
    from .records import URGENCIES

    counts = Counter(i.urgency for i in items if urgency_at_least(i.urgency, level))
    found = ", ".join(f"{counts[u]} {u}" for u in URGENCIES if counts[u])
    total = sum(counts.values())
    return (f"{total} thread{'s' if total != 1 else ''} at {level} or above awaiting a reply "
            f"({found}): exit 10 (--fail-on {level})")


def nothing_left(result: Any, filters: Sequence[str]) -> str:
    """Why a triage shows no row."""
    awaiting, total = result.awaiting, result.awaiting + result.answered_threads
    if filters and result.all_items:
        return (f"0 of {total} threads match {' '.join(filters)}; {awaiting} "
                f"{'is' if awaiting == 1 else 'are'} awaiting a reply in all")
    if total:
        return f"nothing is awaiting a reply: all {total} threads are answered"
    return "no threads to rank"


def _sender(item: TriageItem) -> str:
    return sanitize.for_terminal(item.message.sender_name or item.message.sender_addr)


def _category_label(item: TriageItem, wide: bool) -> Text:
    name = item.prediction.category
    label = Text(name if wide else short_category(name))
    if "category" in review_marks(item):
        label.append("?", style="magenta")
    return label


def _urgency_label(item: TriageItem) -> Text:
    label = Text(item.urgency, style=URGENCY_STYLE.get(item.urgency, ""))
    if "urgency" in review_marks(item):
        label.append("?", style="magenta")
    return label


def _why(item: TriageItem) -> Text:
    parts = ["answered"] if item.answered else []
    if item.thread_size > 1:
        parts.append(f"{item.thread_size} msgs")
    parts.append(item.top_reason)
    return _t(" · ".join(p for p in parts if p), style="dim")


def _cell(text: Text, width: int, *, right: bool = False) -> Text:
    """``text`` cut (with an ellipsis) or padded to exactly ``width`` cells."""
    text = text.copy()
    text.no_wrap = True
    text.truncate(width, overflow="ellipsis")
    gap = max(0, width - text.cell_len)
    if right:
        return Text(" " * gap) + text
    text.append(" " * gap)
    return text


def _fit(text: Text, width: int) -> Text:
    text.rstrip()
    text.truncate(width, overflow="ellipsis")
    text.no_wrap = True
    text.end = "\n"
    return text


def message_panel(
    message: Message,
    prediction: Prediction,
    item: TriageItem | None,
    explanation: dict[str, list[tuple[str, float]]] | None = None,
    *,
    detailed: bool = False,
) -> RenderableType:
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="bold", no_wrap=True)
    facts.add_column()
    facts.add_row("from", _t(f"{message.sender_name} <{message.sender_addr}>"))
    facts.add_row("date", message.date.strftime("%Y-%m-%d %H:%M UTC"))
    facts.add_row("subject", _t(message.subject or "(no subject)"))
    unsure = item.review if item else ()
    mark = {label: "?" if label in unsure else "" for label in ("category", "urgency")}
    facts.add_row(
        "category",
        f"{prediction.category}{mark['category']} ({prediction.category_confidence:.0%})",
    )
    urgency = item.urgency if item else prediction.urgency
    facts.add_row(
        "urgency",
        Text(
            f"{urgency}{mark['urgency']} ({prediction.urgency_confidence:.0%})",
            style=URGENCY_STYLE.get(urgency, ""),
        ),
    )
    if unsure:
        facts.add_row(
            "review",
            Text(f"needs review: the model is unsure of its {' and '.join(unsure)}",
                 style="magenta"),
        )
    if prediction.cues:
        facts.add_row("cues", _t("; ".join(map(str, prediction.cues))))
    if message.language:
        facts.add_row("language", message.language)
    if message.order_numbers:
        facts.add_row("orders", _t(", ".join(message.order_numbers)))
    if message.automated:
        facts.add_row("automated", _t(message.automated))
    for a in message.attachments:
        facts.add_row("attachment", _t(f"{a.filename} ({a.content_type}, {a.size:,} bytes)"))
    parts: list[RenderableType] = [facts]
    if detailed:
        parts.append(runner_up_table(prediction))
        forced = forcing_cues(prediction, message)
        if forced and item is not None and item.urgency == "urgent":
            why = "; ".join(describe_cue(hit, message) for hit in forced)
            parts.append(_t(f"urgency decided by a cue, not the text model: {why}", style="bold"))
    if item is not None:
        parts.append(score_table(item))
    if explanation:
        parts.append(explanation_table(explanation))
    title = "supportcli explain" if detailed else "supportcli classify"
    return Panel(Group(*parts), title=title, title_align="left")


def thread_view(result: Any, *, quoted: bool = False) -> RenderableType:
    """``show``: the thread newest first (quoted history folded unless ``quoted``), then the
    customer's other threads and order numbers. ``result`` is a ``showing.ShowResult``."""
    s = result.summary
    head = Text(style="bold")
    if result.rank is not None:
        head.append(f"#{result.rank} ")
    head.append(_t(s.subject or "(no subject)"))
    facts = [f"{s.size} message{'s' if s.size != 1 else ''}"]
    if s.category:
        facts.append(s.category + ("?" if result.prediction and result.prediction.needs_review
                                   else ""))
        facts.append(s.urgency)
    facts.append("answered" if s.answered else "awaiting a reply")
    parts: list[RenderableType] = [head, Text(" · ".join(facts), style="dim")]
    for n, m in enumerate(result.thread):
        parts.append(_message_box(m, len(result.thread) - n, s.size, result, quoted))
    parts.append(_customer_history(result))
    return Group(*parts)


def _message_box(m: Message, number: int, size: int, result: Any, quoted: bool) -> Panel:
    body = Text(sanitize.clean_text(m.text_new).strip() or "(no new text)")
    signature = sanitize.clean_text(m.text_signature).strip()
    if signature:
        body.append("\n-- \n" + signature, style="dim")
    history = sanitize.clean_text(m.text_quoted).strip()
    if history and quoted:
        body.append("\n\n" + history, style="dim")
    elif history:
        n = len(history.splitlines())
        body.append(f"\n[{n} line{'s' if n != 1 else ''} of quoted history folded: --quoted "
                    "shows them]", style="dim italic")
    for a in m.attachments:
        body.append("\nattachment: ", style="bold")
        body.append(_t(f"{a.filename} ({a.content_type}, {a.size:,} bytes)"))
    sender = f"{m.sender_name} <{m.sender_addr}>" if m.sender_name else m.sender_addr
    shop = " (shop)" if m.sender_addr in result.shop_addresses else ""
    title = _t(f"{number}/{size} · {m.date:%Y-%m-%d %H:%M} · {sender}{shop}")
    return Panel(body, title=title, title_align="left")


def _customer_history(result: Any) -> RenderableType:
    name = f"{result.customer_name} <{result.customer_addr}>" if result.customer_name else (
        result.customer_addr)
    parts: list[RenderableType] = [Text.assemble(("customer ", "bold"), _t(name))]
    if result.other_threads:
        table = Table(box=None, padding=(0, 2, 0, 0), header_style="bold", pad_edge=False)
        table.add_column("last", no_wrap=True)
        table.add_column("msgs", justify="right", no_wrap=True)
        table.add_column("category", no_wrap=True)
        table.add_column("answered", no_wrap=True)
        table.add_column("subject", overflow="ellipsis", no_wrap=True, ratio=1)
        for t in result.other_threads:
            table.add_row(f"{t.last:%Y-%m-%d}", str(t.size), short_category(t.category) or "-",
                          "yes" if t.answered else "no", _t(t.subject or "(no subject)"))
        parts += [Text(f"{len(result.other_threads)} other thread(s):"), table]
    else:
        parts.append(Text("no other threads from this customer", style="dim"))
    orders = ", ".join(result.order_numbers) if result.order_numbers else "none mentioned"
    parts.append(Text.assemble(("order numbers: ", "bold"), _t(orders)))
    return Group(*parts)


def score_table(item: TriageItem) -> Table:
    table = Table(title=f"priority score {item.score:g}", title_justify="left", box=None)
    table.add_column("term")
    table.add_column("points", justify="right")
    table.add_column("why")
    for term in item.terms:
        table.add_row(term.name, f"{term.points:+.1f}", _t(term.reason))
    return table


def explanation_table(explanation: dict[str, list[tuple[str, float]]]) -> Table:
    table = Table(title="what pushed the decision", title_justify="left", box=None)
    table.add_column("target")
    table.add_column("feature")
    table.add_column("weight", justify="right")
    for target, features in explanation.items():
        for name, weight in features[:6]:
            table.add_row(target, _t(name, 40), f"{weight:+.3f}")
    return table


def metrics_table(title: str, metrics: dict[str, Any]) -> Table:
    table = Table(title=title, title_justify="left")
    for column in ("class", "precision", "recall", "f1", "support"):
        table.add_column(column, justify="left" if column == "class" else "right")
    for name, row in metrics.get("per_class", {}).items():
        table.add_row(
            name,
            f"{row['precision']:.2f}",
            f"{row['recall']:.2f}",
            f"{row['f1']:.2f}",
            str(row["support"]),
        )
    table.caption = (
        f"accuracy {metrics['accuracy']:.3f} · macro-F1 {metrics['macro_f1']:.3f} · "
        f"review below {metrics['threshold']:.2f} → coverage {metrics['coverage']:.0%} "
        f"at {metrics['covered_accuracy']:.1%} accuracy"
    )
    return table


def comparison_table(comparison: dict[str, Any]) -> Table:
    table = Table(
        title="new vs current model",
        title_justify="left",
    )
    table.add_column("model")
    for column in ("category macro-F1", "urgency macro-F1", "mean"):
        table.add_column(column, justify="right")
    for name in ("current", "new"):
        row = comparison[name]
        table.add_row(
            name,
            f"{row['category_macro_f1']:.3f}",
            f"{row['urgency_macro_f1']:.3f}",
            f"{row['mean_macro_f1']:.3f}",
        )
    return table


def versions_table(versions: Sequence[Any], problems: dict[str, str] | None = None) -> Table:
    """The model versions; ``problems``: why a version cannot be loaded, by name. A broken
    version is never marked as the healthy active one."""
    problems = problems or {}
    table = Table(title="model versions", title_justify="left")
    for column in ("", "version", "created", "samples", "category F1", "urgency F1", "state"):
        table.add_column(column)
    broken_active = False
    for v in versions:
        problem = problems.get(v.name, "")
        broken_active |= bool(v.active and problem)
        table.add_row(
            ("!" if problem else "*") if v.active else "",
            v.name,
            v.created[:16].replace("T", " "),
            str(v.n_samples),
            "-" if v.category_macro_f1 is None else f"{v.category_macro_f1:.3f}",
            "-" if v.urgency_macro_f1 is None else f"{v.urgency_macro_f1:.3f}",
            Text(f"broken: {problem}", style="red") if problem else Text("ok"),
        )
    table.caption = "* = active" + (
        "; ! = active but broken: run `supportcli model use default`" if broken_active else ""
    )
    return table


def runner_up_table(prediction: Prediction, k: int = 3) -> Table:
    table = Table(title="probabilities (top classes)", title_justify="left", box=None)
    table.add_column("target")
    table.add_column("class")
    table.add_column("probability", justify="right")
    for target, probs in (
        ("category", prediction.category_probs),
        ("urgency", prediction.urgency_probs),
    ):
        for name, p in sorted(probs.items(), key=lambda kv: -kv[1])[:k]:
            table.add_row(target, name, f"{p:.1%}")
    return table


# Column codes for the confusion matrix: 13 categories fit 80 columns only when short.
CLASS_CODE = {
    "order_status": "ord",
    "shipping_delivery": "ship",
    "returns_refunds": "ret",
    "cancellation": "canc",
    "billing_payment": "bill",
    "product_question": "prod",
    "account_access": "acct",
    "technical_issue": "tech",
    "complaint": "cmpl",
    "feedback": "fdbk",
    "wholesale_partnership": "whol",
    "spam_vendor": "spam",
    "other": "oth",
}


def class_codes(labels: Sequence[str]) -> dict[str, str]:
    """A short, unique code per label: the known ones from ``CLASS_CODE``, labels of six
    characters or fewer as they are, others cut to four characters (numbered when two clash)."""
    codes: dict[str, str] = {}
    for label in labels:
        code = CLASS_CODE.get(label) or (label if len(label) <= 6 else label[:4])
        base, n = code, 2
        while code in codes.values():
            code, n = f"{base[:3]}{n}", n + 1
        codes[label] = code
    return codes


def confusion_table(target: Any) -> RenderableType:
    codes = class_codes(target.labels)
    title = Text(f"{target.name}: confusion (rows = true, columns = predicted)", style="italic")
    table = Table(box=None, padding=(0, 1, 0, 0), header_style="bold")
    table.add_column("true", no_wrap=True)
    for label in target.labels:
        table.add_column(codes[label], justify="right", no_wrap=True)
    for label, row in zip(target.labels, target.confusion, strict=True):
        table.add_row(codes[label], *[str(v) if v else "·" for v in row])
    shortened = [f"{code}={label}" for label, code in codes.items() if code != label]
    if not shortened:
        return Group(title, table)
    return Group(title, table, Text("  ".join(shortened), style="dim"))


def reliability_table(target: Any) -> Table:
    table = Table(
        title=f"{target.name}: calibration (expected calibration error {target.ece:.3f})",
        title_justify="left",
    )
    for column in ("confidence bin", "messages", "mean confidence", "accuracy"):
        table.add_column(column, justify="right")
    for row in target.reliability:
        table.add_row(
            f"{row['low']:.1f}–{row['high']:.1f}",
            str(row["count"]),
            f"{row['confidence']:.1%}",
            f"{row['accuracy']:.1%}",
        )
    return table
