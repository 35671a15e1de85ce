"""Triage items to csv, json, jsonl and markdown, written to a text stream.

Every string that came from an email goes through ``sanitize``: control characters stripped,
CSV cells that could start a formula neutralised, markdown and HTML escaped, and every string
of a JSON record cleaned on the way out (``to_json``, which every JSON output uses).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from typing import Any, TextIO

from . import sanitize
from .hours import age_text
from .records import TriageItem

FORMATS = ("json", "jsonl", "csv", "markdown")  # what `write` writes; the CLI's choices
CSV_FIELDS = [
    "rank",
    "score",
    "message_id",
    "date",
    "age_hours",
    "sender",
    "sender_name",
    "subject",
    "category",
    "category_confidence",
    "urgency",
    "urgency_confidence",
    "needs_review",
    "review",
    "language",
    "automated",
    "order_numbers",
    "thread_size",
    "followups",
    "answered",
    "reasons",
]


def item_record(item: TriageItem) -> dict[str, Any]:
    m, p = item.message, item.prediction
    return {
        "rank": item.rank,
        "score": item.score,
        "message_id": sanitize.clean_text(m.message_id),
        "date": m.date.isoformat(),
        "age_hours": round(item.waiting.total_seconds() / 3600, 1),
        "sender": sanitize.clean_text(m.sender_addr),
        "sender_name": sanitize.one_line(m.sender_name),
        "subject": sanitize.one_line(m.subject),
        "category": p.category,
        "category_confidence": round(p.category_confidence, 3),
        "urgency": item.urgency,
        "urgency_confidence": round(p.urgency_confidence, 3),
        "needs_review": bool(item.review),
        "review": list(item.review),  # the labels the model is unsure of
        "language": m.language,
        "automated": m.automated,
        "order_numbers": list(m.order_numbers),
        "thread_size": item.thread_size,
        "followups": item.followups,
        "answered": item.answered,
        "reasons": [sanitize.one_line(t.reason) for t in item.terms],
        "cues": [{"cue": h.cue, "text": sanitize.one_line(h.text)} for h in p.cues],
    }


def to_json(record: Any, indent: int | None = None) -> str:
    """The one way a record becomes JSON: every string in it cleaned (``sanitize.for_json``),
    whichever field it is in, then dumped."""
    return json.dumps(sanitize.for_json(record), ensure_ascii=False, indent=indent)


def write(items: Sequence[TriageItem], fmt: str, out: TextIO) -> None:
    """Write items one record at a time (a 100,000-row export never sits in memory)."""
    records = (item_record(i) for i in items)
    if fmt == "json":
        out.write("[")
        for n, record in enumerate(records):
            out.write(",\n" if n else "\n")
            out.write(_indent(to_json(record, indent=2)))
        out.write("\n]\n" if items else "]\n")
    elif fmt == "jsonl":
        for record in records:
            out.write(to_json(record) + "\n")
    elif fmt == "csv":
        writer = csv.DictWriter(out, fieldnames=CSV_FIELDS, extrasaction="ignore")
        writer.writeheader()
        for record in records:
            flat = {
                **record,
                "order_numbers": " ".join(record["order_numbers"]),
                "review": " ".join(record["review"]),
                "reasons": "; ".join(record["reasons"]),
            }
            writer.writerow({k: sanitize.for_csv(v) for k, v in flat.items()})
    elif fmt == "markdown":
        _markdown(items, out)
    else:
        raise ValueError(f"unknown format {fmt}")


def _indent(text: str) -> str:
    return "\n".join("  " + line for line in text.splitlines())


def _markdown(items: Sequence[TriageItem], out: TextIO) -> None:
    out.write("| # | age | from | subject | category | urgency | why |\n")
    out.write("|---|---|---|---|---|---|---|\n")
    for item in items:
        cells = [
            str(item.rank),
            age_text(item.waiting, compact=True),
            sanitize.for_markdown(item.message.sender_name or item.message.sender_addr, 30),
            sanitize.for_markdown(item.message.subject or "(no subject)", 60),
            sanitize.for_markdown(marked(item, "category")),
            marked(item, "urgency"),
            ("answered · " if item.answered else "") + sanitize.for_markdown(item.top_reason, 70),
        ]
        out.write("| " + " | ".join(cells) + " |\n")
    if any(item.review for item in items):
        out.write(f"\n{REVIEW_NOTE}\n")


REVIEW_NOTE = "? after a label: the model is unsure of it; check it before you rely on it"


def marked(item: TriageItem, label: str) -> str:
    """The item's category or urgency, with "?" when the model is unsure of it."""
    value = item.prediction.category if label == "category" else item.urgency
    return value + ("?" if label in item.review else "")


