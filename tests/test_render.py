"""The triage table and the confusion matrix fit the terminal they are printed on."""

from __future__ import annotations

import io
from dataclasses import replace
from functools import lru_cache
from types import SimpleNamespace

import pytest
from rich.cells import cell_len
from rich.console import Console

from supportcli import render, sanitize
from supportcli.config import CATEGORIES, load_settings
from supportcli.records import TriageItem


@lru_cache(maxsize=1)
def demo_items() -> tuple[TriageItem, ...]:
    from supportcli import workflows

    result = workflows.triage(load_settings(), workflows.TriageRequest(demo=True))
    return tuple(result.items)


def printed(renderable: object, width: int) -> list[str]:
    console = Console(width=width, file=io.StringIO(), record=True, color_system=None)
    console.print(renderable)
    return console.export_text().splitlines()


def row_lines(lines: list[str], items: tuple[TriageItem, ...]) -> dict[int, str]:
    """The first line of each item's row, by rank (rows start with the right-aligned rank)."""
    rows = {}
    for line in lines[2:]:
        rank = line[:3].strip()  # the rank column; a dim why line is indented past it
        if rank.isdigit() and int(rank) <= len(items) and int(rank) not in rows:
            rows[int(rank)] = line
    return rows


@pytest.mark.parametrize("width", [80, 100, 160])
def test_no_line_is_wider_than_the_terminal(width: int) -> None:
    items = demo_items()
    lines = printed(render.triage_table(items, "title"), width)
    assert max(cell_len(line) for line in lines) <= width
    # one or two lines a row (title, header and the legend around them)
    assert len(lines) <= 3 + 2 * len(items) + (3 if width >= render.WIDE else 0)


def test_at_80_columns_every_row_shows_30_characters_of_its_subject() -> None:
    items = demo_items()
    lines = printed(render.triage_table(items, "title"), 80)
    rows = row_lines(lines, items)
    assert sorted(rows) == [i.rank for i in items]
    for item in items:
        subject = sanitize.for_terminal(item.message.subject)
        assert subject[:30] in rows[item.rank], (subject, rows[item.rank])
        # short category names, no confidence column
        assert render.short_category(item.prediction.category) in rows[item.rank]
    assert "conf" not in lines[1]


def test_at_100_columns_confidence_and_language_appear() -> None:
    items = demo_items()
    lines = printed(render.triage_table(items, "title"), 100)
    assert "conf" in lines[1] and "lang" in lines[1]
    row = row_lines(lines, items)[1]
    assert f"{items[0].prediction.category_confidence:.0%}" in row


def test_at_160_columns_everything_is_shown() -> None:
    items = demo_items()
    lines = printed(render.triage_table(items, "title"), 160)
    text = "\n".join(lines)
    for item in items:
        assert item.prediction.category in text
        assert sanitize.for_terminal(item.message.subject) in text
        assert sanitize.for_terminal(item.top_reason) in text.replace("\n" + " " * 7, " ")
    assert "…" not in text


def test_wide_characters_and_long_fields_never_overflow() -> None:
    base = demo_items()[0]
    message = replace(
        base.message,
        subject="注文した商品がまだ届きません" * 5,
        sender_name="Ｗｉｄｅ Ｎａｍｅ" * 4,
    )
    item = replace(base, message=message, rank=1234)
    for width in (40, 80, 100, 160):
        lines = printed(render.triage_table([item], "a title " * 30), width)
        assert max(cell_len(line) for line in lines) <= width, width


def test_confusion_matrix_of_13_categories_fits_80_columns_with_a_legend() -> None:
    labels = sorted(CATEGORIES)
    target = SimpleNamespace(
        name="category",
        labels=labels,
        confusion=[[120 if i == j else (3 if j == i + 1 else 0) for j in range(13)]
                   for i in range(13)],
    )
    lines = printed(render.confusion_table(target), 80)
    assert max(cell_len(line) for line in lines) <= 80
    text = "\n".join(lines)
    for label in labels:
        code = render.class_codes(labels)[label]
        assert f"{code}={label}" in text
    assert len(set(render.class_codes(labels).values())) == 13


def test_class_codes_are_unique_for_custom_labels() -> None:
    codes = render.class_codes(["gift_cards", "gift_wrapping", "high", "urgent"])
    assert codes["high"] == "high" and codes["urgent"] == "urgent"
    assert len(set(codes.values())) == 4
