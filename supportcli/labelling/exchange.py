"""Labels in and out of the store as files: a CSV round trip for a spreadsheet, and the
labelled messages as .eml files."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import format_datetime, formataddr
from pathlib import Path
from typing import TextIO

from .. import sanitize
from ..errors import SourceError, UsageError
from ..records import Message, Prediction
from ..store import Store

EXCERPT_CHARS = 200
EXPORT_COLUMNS = ("id", "sender", "subject", "excerpt", "predicted_category",
                  "predicted_urgency", "confidence", "category", "urgency")


def write_csv(store: Store, stream: TextIO, predictions: Mapping[str, Prediction],
              messages: Sequence[Message] | None = None) -> int:
    """Every message (or the ones given) with its predicted and current labels."""
    labels = store.labels()
    writer = csv.writer(stream)
    writer.writerow(EXPORT_COLUMNS)
    rows = 0
    for m in store.messages() if messages is None else messages:
        p = predictions.get(m.message_id)
        category, urgency = labels.get(m.message_id, ("", ""))
        sender = f"{m.sender_name} <{m.sender_addr}>" if m.sender_name else m.sender_addr
        writer.writerow([sanitize.for_csv(value) for value in (
            m.message_id, sanitize.one_line(sender), sanitize.one_line(m.subject),
            sanitize.one_line(m.text_new)[:EXCERPT_CHARS],
            p.category if p else "", p.urgency if p else "",
            f"{p.category_confidence:.3f}" if p else "", category, urgency,
        )])
        rows += 1
    return rows


def export_csv(store: Store, path: Path, predictions: Mapping[str, Prediction],
               messages: Sequence[Message] | None = None) -> int:
    try:
        with path.open("w", encoding="utf-8", newline="") as handle:
            return write_csv(store, handle, predictions, messages)
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror}") from None


@dataclass
class ImportResult:
    imported: int = 0  # labels written
    unchanged: int = 0  # rows whose labels equal the stored ones
    errors: list[tuple[int, str]] = field(default_factory=list)  # (CSV line, problem)
    blank: int = 0  # rows with neither category nor urgency: left alone


def import_csv(store: Store, path: Path, categories: Sequence[str],
               urgencies: Sequence[str]) -> ImportResult:
    """Read edited ``category``/``urgency`` columns back. Every row is checked; a bad row is
    reported with its line number and the good rows are imported."""
    result = ImportResult()
    reader = csv.reader(io.StringIO(_read_text(path), newline=""))
    try:
        header = [name.strip().lower() for name in next(reader)]
    except (StopIteration, csv.Error) as exc:
        result.errors.append((1, "no header row" if isinstance(exc, StopIteration) else str(exc)))
        return result
    missing = [name for name in ("id", "category", "urgency") if name not in header]
    if missing:
        result.errors.append((1, f"missing column(s): {', '.join(missing)}"))
        return result
    columns = {name: header.index(name) for name in ("id", "category", "urgency")}
    lookup = ({c.lower(): c for c in categories}, {u.lower(): u for u in urgencies})
    stored = store.labels()
    first_line: dict[str, int] = {}
    while True:
        line = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            result.errors.append((line, f"unreadable row: {exc}"))
            if reader.line_num < line:
                break
            continue
        if not any(cell.strip() for cell in row):
            continue
        checked = _check_row(store, row, len(header), columns, lookup)
        if isinstance(checked, str):
            result.errors.append((line, checked))
        elif checked is None:
            result.blank += 1
        elif checked[0] in first_line:
            result.errors.append((line, f"duplicate id (first on line {first_line[checked[0]]})"))
        else:
            message_id, category, urgency = checked
            first_line[message_id] = line
            if stored.get(message_id) == (category, urgency):
                result.unchanged += 1
            else:
                store.set_label(message_id, category, urgency, by="import")
                result.imported += 1
    return result


def _read_text(path: Path) -> str:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SourceError(f"cannot read {path}: {exc.strerror}") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:  # a spreadsheet saved it in the Windows code page
        return data.decode("cp1252", errors="replace")


def _check_row(store: Store, row: list[str], width: int, columns: dict[str, int],
               lookup: tuple[dict[str, str], dict[str, str]]) -> tuple[str, str, str] | str | None:
    """(message_id, category, urgency), an error message, or None for a row without labels."""
    absent = [name for name, index in columns.items() if index >= len(row)]
    if absent:
        return f"missing column(s): {', '.join(absent)} ({len(row)} of {width} fields)"
    if any(cell.strip() for cell in row[width:]):
        return f"{len(row)} fields, the header has {width} (a comma outside quotes?)"
    raw_id, category, urgency = (row[columns[name]].strip() for name in columns)
    if not category and not urgency:
        return None
    problems = []
    message_id = _resolve_id(store, raw_id)
    if message_id is None:
        problems.append(f"unknown id {sanitize.one_line(raw_id, 60)!r}" if raw_id else "empty id")
    for value, name, known in ((category, "category", lookup[0]), (urgency, "urgency", lookup[1])):
        if not value:
            problems.append(f"{name} is empty")
        elif value.lower() not in known:
            problems.append(f"unknown {name} {sanitize.one_line(value, 40)!r}")
    if problems or message_id is None:
        return "; ".join(problems)
    return message_id, lookup[0][category.lower()], lookup[1][urgency.lower()]


def _resolve_id(store: Store, raw: str) -> str | None:
    """The stored Message-ID for a cell (``<…>`` and the CSV formula guard ``'`` undone)."""
    for candidate in (raw, raw.removeprefix("'")):
        candidate = candidate.strip().strip("<>")
        if candidate and store.has_message(candidate):
            return candidate
    return None


def to_eml(m: Message) -> bytes:
    """A simple RFC 822 message rebuilt from the stored fields (attachments are not kept)."""
    msg = EmailMessage()
    msg["From"] = formataddr((sanitize.one_line(m.sender_name), m.sender_addr))
    if m.to:
        msg["To"] = ", ".join(sanitize.one_line(a) for a in m.to)
    msg["Subject"] = sanitize.one_line(m.subject)
    msg["Date"] = format_datetime(m.date)
    msg["Message-ID"] = f"<{m.message_id}>"
    if m.in_reply_to:
        msg["In-Reply-To"] = f"<{m.in_reply_to}>"
    if m.references:
        msg["References"] = " ".join(f"<{r}>" for r in m.references)
    if m.automated:
        msg["Auto-Submitted"] = "auto-generated"
    parts = [m.text_new.strip(), f"-- \n{m.text_signature.strip()}" if m.text_signature.strip()
             else "", m.text_quoted.strip()]
    msg.set_content(sanitize.clean_text("\n\n".join(p for p in parts if p)) + "\n")
    return msg.as_bytes()


def export_eml(store: Store, directory: Path) -> int:
    """Each labelled message as ``label-NNNN.eml`` plus ``labels.csv`` (``file,category,
    urgency``): the ``samples/`` format, ready for training."""
    labels = store.labels()
    try:
        directory.mkdir(parents=True, exist_ok=True)
        rows = []
        for n, m in enumerate(store.messages(message_ids=list(labels)), start=1):
            name = f"label-{n:04d}.eml"
            (directory / name).write_bytes(to_eml(m))
            rows.append((name, *labels[m.message_id]))
        with (directory / "labels.csv").open("w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(("file", "category", "urgency"))
            writer.writerows(rows)
    except OSError as exc:
        raise UsageError(f"cannot write to {directory}: {exc.strerror}") from None
    return len(rows)
