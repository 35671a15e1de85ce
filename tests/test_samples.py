"""The bundled samples: enough of each class, realistic mix, no near-duplicates, and the
shipped default model built from exactly these samples."""

from __future__ import annotations

import csv
import email
import re
from collections import Counter, defaultdict
from email import policy
from functools import cache

import pytest

from supportcli import resources
from supportcli.config import CATEGORIES, URGENCIES
from supportcli.model import artifacts, dataset
from supportcli.parse import parse
from supportcli.records import Message, RawMessage

SAMPLES = resources.samples_dir()


@cache
def rows() -> list[dict[str, str]]:
    with (SAMPLES / "labels.csv").open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@cache
def demo_rows() -> list[dict[str, str]]:
    with (SAMPLES / "demo" / "labels.csv").open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@cache
def parsed(relative: str) -> Message:
    msg = parse(RawMessage("samples", relative, (SAMPLES / relative).read_bytes()))
    assert isinstance(msg, Message), f"{relative}: {msg}"
    return msg


def test_every_labelled_file_exists_once_with_valid_labels() -> None:
    files = [r["file"] for r in rows()]
    assert len(files) == len(set(files))
    on_disk = {f"train/{p.name}" for p in (SAMPLES / "train").glob("*.eml")}
    assert set(files) == on_disk
    for row in rows():
        assert row["category"] in CATEGORIES, row
        assert row["urgency"] in URGENCIES, row


def test_size_and_class_balance() -> None:
    assert len(rows()) >= 600
    categories = Counter(r["category"] for r in rows())
    urgencies = Counter(r["urgency"] for r in rows())
    assert set(categories) == set(CATEGORIES)
    assert min(categories.values()) >= 30, categories
    assert min(urgencies.values()) >= 60, urgencies


def test_mix_looks_like_a_real_inbox() -> None:
    messages = [parsed(r["file"]) for r in rows()]
    n = len(messages)
    replies = sum(1 for m in messages if m.text_quoted.strip())
    html = sum(1 for m in messages if m.is_html or _has_html_part(m))
    foreign = sum(1 for m in messages if m.language and m.language != "en")
    automated_or_vendor = sum(
        1
        for m, r in zip(messages, rows(), strict=True)
        if m.automated or r["category"] == "spam_vendor"
    )
    assert replies / n >= 0.15, replies
    assert html / n >= 0.10, html
    assert foreign / n >= 0.08, foreign
    assert automated_or_vendor / n >= 0.15, automated_or_vendor


def _has_html_part(message: Message) -> bool:
    raw = (SAMPLES / message.source_key).read_bytes()
    msg = email.message_from_bytes(raw, policy=policy.default)
    return any(part.get_content_type() == "text/html" for part in msg.walk())


def _five_grams(text: str) -> set[tuple[str, ...]]:
    words = re.findall(r"\w+", text.lower())
    return {tuple(words[i : i + 5]) for i in range(len(words) - 4)}


def test_no_two_samples_are_near_duplicates() -> None:
    """No two messages (training and demo) share more than half of their word 5-grams."""
    docs: dict[str, set[tuple[str, ...]]] = {}
    for relative in [r["file"] for r in rows()] + [f"demo/{r['file']}" for r in demo_rows()]:
        m = parsed(relative)
        docs[relative] = _five_grams(f"{m.subject} {m.text_new} {m.text_quoted}")
    index: dict[tuple[str, ...], list[str]] = defaultdict(list)
    for name, grams in docs.items():
        for gram in grams:
            index[gram].append(name)
    shared: Counter[tuple[str, str]] = Counter()
    for names in index.values():
        if len(names) > 1:
            for i, a in enumerate(names):
                for b in names[i + 1 :]:
                    shared[(a, b)] += 1
    worst = [
        (a, b, count / max(1, min(len(docs[a]), len(docs[b])))) for (a, b), count in shared.items()
    ]
    offenders = [w for w in worst if w[2] > 0.5]
    assert not offenders, sorted(offenders, key=lambda w: -w[2])[:5]


def test_demo_inbox_is_not_in_the_training_set() -> None:
    train_ids = {parsed(r["file"]).message_id for r in rows()}
    demo = [parsed(f"demo/{r['file']}") for r in demo_rows()]
    assert 35 <= len(demo) <= 60
    assert not train_ids & {m.message_id for m in demo}


def test_shipped_model_was_built_from_these_samples() -> None:
    meta = artifacts.read_meta(resources.default_model_dir())
    assert meta["samples_sha256"] == dataset.folder_hash(SAMPLES), (
        "samples/ changed since models/default was built: run `supportcli train`"
    )
    assert meta["n_samples"] == len(rows())
    model_file = resources.default_model_dir() / artifacts.MODEL_FILE
    assert artifacts.sha256_file(model_file) == meta["sha256"]


@pytest.mark.parametrize("key", ["supportcli", "scikit-learn", "python"])
def test_shipped_model_records_versions(key: str) -> None:
    meta = artifacts.read_meta(resources.default_model_dir())
    assert meta["versions"][key]
