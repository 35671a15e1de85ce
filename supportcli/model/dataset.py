"""Labelled data on disk: an ``.eml`` folder with ``labels.csv`` (``file,category,urgency``), or
a CSV with ``subject,body,category,urgency`` columns, as model inputs and labels."""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass
from pathlib import Path

from ..errors import SourceError
from ..parse import parse
from ..records import Message, ParseFailure, RawMessage
from .text import ModelInput, message_input, to_text


@dataclass(frozen=True)
class LabelledSet:
    inputs: list[ModelInput]
    categories: list[str]
    urgencies: list[str]
    messages: list[Message | None]  # None for CSV rows
    names: list[str]


def load(path: Path) -> LabelledSet:
    if path.is_dir():
        return load_folder(path)
    if path.suffix.lower() == ".csv":
        return load_csv(path)
    raise SourceError(f"{path}: expected a folder with labels.csv or a .csv file")


def _read_rows(path: Path) -> list[dict[str, str]]:
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            return list(csv.DictReader(handle))
    except FileNotFoundError:
        raise SourceError(f"no labels file {path}") from None
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise SourceError(f"cannot read {path}: {exc}") from None


def _check_columns(path: Path, rows: list[dict[str, str]], needed: set[str]) -> None:
    if not rows:
        raise SourceError(f"{path} has no rows")
    missing = needed - set(rows[0])
    if missing:
        raise SourceError(f"{path} lacks the column(s) {', '.join(sorted(missing))}")


def load_folder(folder: Path) -> LabelledSet:
    labels = folder / "labels.csv"
    rows = _read_rows(labels)
    _check_columns(labels, rows, {"file", "category", "urgency"})
    messages = []
    for row in rows:
        try:
            data = (folder / row["file"]).read_bytes()
        except OSError as exc:
            raise SourceError(f"{labels}: cannot read {row['file']}: {exc.strerror}") from None
        parsed = parse(RawMessage(f"samples:{folder.name}", row["file"], data))
        if isinstance(parsed, ParseFailure):
            raise SourceError(f"{labels}: {row['file']} cannot be parsed: {parsed.reason}")
        messages.append(parsed)
    return LabelledSet([message_input(m) for m in messages],
                       [r["category"].strip() for r in rows], [r["urgency"].strip() for r in rows],
                       list(messages), [r["file"] for r in rows])


def load_csv(path: Path) -> LabelledSet:
    rows = _read_rows(path)
    _check_columns(path, rows, {"subject", "body", "category", "urgency"})
    return LabelledSet([ModelInput(to_text(r["subject"] or "", r["body"] or "")) for r in rows],
                       [r["category"].strip() for r in rows], [r["urgency"].strip() for r in rows],
                       [None] * len(rows), [f"{path.name}:{i + 2}" for i in range(len(rows))])


def folder_hash(folder: Path) -> str:
    """sha256 over labels.csv and every file it names: what the default model was built from."""
    labels = folder / "labels.csv"
    digest = hashlib.sha256(labels.read_bytes())
    for row in _read_rows(labels):
        digest.update(row["file"].encode())
        digest.update(hashlib.sha256((folder / row["file"]).read_bytes()).digest())
    return digest.hexdigest()
