"""What ``evaluate`` checks before it scores: every label is a known category and urgency (a
typo is a usage error naming its row), and whether the set overlaps the active model's training
data (a warning: such a score says little about new mail)."""

from __future__ import annotations

import csv
import difflib
import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import UsageError

if TYPE_CHECKING:
    from ..config import Settings


def check_labels(path: Path, settings: Settings) -> None:
    """Raise a UsageError naming the first row whose category or urgency is unknown."""
    labels = path / "labels.csv" if path.is_dir() else path
    try:
        with labels.open(newline="", encoding="utf-8-sig") as handle:
            rows = list(csv.DictReader(handle))
    except (OSError, UnicodeDecodeError, csv.Error):
        return  # the loader says what is wrong with the file itself
    known = {"category": settings.categories, "urgency": settings.urgencies}
    for line, row in enumerate(rows, start=2):
        for column, names in known.items():
            value = (row.get(column) or "").strip()
            if value in names or column not in row:
                continue
            close = difflib.get_close_matches(value, names, n=1)
            raise UsageError(
                f"{labels}, line {line}: unknown {column} {value!r}"
                + (f" (did you mean {close[0]}?)" if close else ""),
                hint=f"{column} is one of " + ", ".join(names),
            )


def training_overlap(path: Path, settings: Settings, model_name: str) -> int:
    """How many messages of an .eml folder are, byte for byte, in the active model's training
    data: the bundled samples, and for a model trained on your labels, your labelled mail."""
    if not path.is_dir():
        return 0
    from .. import resources
    from ..store import Store

    samples_dir = resources.samples_dir()
    with (samples_dir / "labels.csv").open(newline="", encoding="utf-8") as handle:
        trained_on = [samples_dir / row["file"] for row in csv.DictReader(handle)]
    mine = {_sha256(p) for p in path.rglob("*.eml") if p.is_file()} - {""}
    shared = mine & {_sha256(p) for p in trained_on}
    if model_name.startswith("default") or not settings.store_path.is_file():
        return len(shared)
    with Store(settings.store_path) as store:
        labelled = set(store.labels())
        known = store.ids_by_content_hash(sorted(mine - shared))
    return len(shared) + sum(1 for message_id in known.values() if message_id in labelled)


def _sha256(path: Path) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return ""
