"""rich renderables for the terminal. Builds tables and panels; never prints.

Text from email is always passed to rich as ``Text`` objects made by ``sanitize.for_terminal``,
never as markup, so ``[bold red]`` in a subject is shown literally and escape sequences are
stripped before they reach the terminal.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from . import sanitize
from .records import Message, Prediction, TriageItem

URGENCY_STYLE = {"urgent": "bold red", "high": "yellow", "normal": "default", "low": "dim"}


def _t(value: str, width: int | None = None, style: str = "") -> Text:
    return Text(sanitize.for_terminal(value, width), style=style)


def age(item: TriageItem) -> str:
    hours = item.waiting.total_seconds() / 3600
    if hours < 1:
        return f"{int(hours * 60)}m"
    return f"{hours:.0f}h" if hours < 48 else f"{hours / 24:.0f}d"


def triage_table(items: Sequence[TriageItem], title: str) -> Table:
    table = Table(title=title, title_justify="left", expand=False, pad_edge=False)
    table.add_column("#", justify="right", no_wrap=True)
    table.add_column("age", justify="right", no_wrap=True)
    table.add_column("from", max_width=24, no_wrap=True, overflow="ellipsis")
    table.add_column("subject", ratio=3, overflow="fold")
    table.add_column("category", no_wrap=True)
    table.add_column("urgency", no_wrap=True)
    table.add_column("conf", justify="right", no_wrap=True)
    table.add_column("lang", no_wrap=True)
    table.add_column("why", ratio=3, overflow="fold")
    for item in items:
        m, p = item.message, item.prediction
        category = Text(p.category)
        if p.needs_review:
            category.append(" ?review", style="magenta")
        subject = _t(m.subject or "(no subject)", 80)
        if item.thread_size > 1:
            subject.append(f" ({item.thread_size} msgs)", style="dim")
        table.add_row(
            str(item.rank),
            age(item),
            _t(m.sender_name or m.sender_addr, 24),
            subject,
            category,
            Text(item.urgency, style=URGENCY_STYLE.get(item.urgency, "")),
            f"{p.category_confidence:.0%}",
            m.language or "-",
            _t(item.top_reason, 90, style="dim" if m.automated else ""),
        )
    return table


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
    facts.add_row("category", f"{prediction.category} ({prediction.category_confidence:.0%})")
    urgency = item.urgency if item else prediction.urgency
    facts.add_row(
        "urgency",
        Text(
            f"{urgency} ({prediction.urgency_confidence:.0%})", style=URGENCY_STYLE.get(urgency, "")
        ),
    )
    if prediction.needs_review:
        facts.add_row("review", Text("needs review: the model is unsure", style="magenta"))
    if prediction.cues:
        facts.add_row("cues", _t(", ".join(prediction.cues)))
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
        if prediction.cues and item is not None and item.urgency == "urgent":
            parts.append(
                Text(
                    "urgency decided by a cue, not the text model: " + ", ".join(prediction.cues),
                    style="bold",
                )
            )
    if item is not None:
        parts.append(score_table(item))
    if explanation:
        parts.append(explanation_table(explanation))
    title = "supportcli explain" if detailed else "supportcli classify"
    return Panel(Group(*parts), title=title, title_align="left")


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


def versions_table(versions: Sequence[Any]) -> Table:
    table = Table(title="model versions", title_justify="left")
    for column in ("", "version", "created", "samples", "category F1", "urgency F1"):
        table.add_column(column)
    for v in versions:
        table.add_row(
            "*" if v.active else "",
            v.name,
            v.created[:16].replace("T", " "),
            str(v.n_samples),
            "-" if v.category_macro_f1 is None else f"{v.category_macro_f1:.3f}",
            "-" if v.urgency_macro_f1 is None else f"{v.urgency_macro_f1:.3f}",
        )
    table.caption = "* = active"
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


def confusion_table(target: Any) -> Table:
    table = Table(
        title=f"{target.name}: confusion (rows = true, columns = predicted)", title_justify="left"
    )
    table.add_column("true \\ predicted")
    short = [label[:8] for label in target.labels]
    for name in short:
        table.add_column(name, justify="right")
    for label, row in zip(target.labels, target.confusion, strict=True):
        table.add_row(label, *[str(v) if v else "·" for v in row])
    return table


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
