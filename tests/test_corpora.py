"""The parser on real-world corpora in ../shared/data (odd, broken and hostile mail).

No message may raise out of ``parse`` or fail with an internal error (a ParseFailure whose
reason is a Python exception means a bug was swallowed), and the model's input text
(subject + new text, or the quoted text when nothing is new) must be non-empty for at
least 99 % of them. Skipped when the shared data is not there.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import pytest

from supportcli.model.text import message_text
from supportcli.parse import parse
from supportcli.records import Message, ParseFailure, RawMessage

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
CORPORA = (
    "spamassassin_raw",
    "flanker_fixtures",
    "mikel_mail_fixtures",
    "cpython_test_email",
    "spamscope_mailparser_fixtures",
)
if not all((DATA / name / "messages").is_dir() for name in CORPORA):
    pytest.skip(f"corpora not found under {DATA}", allow_module_level=True)

INTERNAL_ERROR = re.compile(r"^[A-Z]\w*(?:Error|Exception|Warning)\b")
MIN_WITH_TEXT = 0.99


@cache
def results(corpus: str) -> tuple[tuple[str, Message | ParseFailure], ...]:
    root = DATA / corpus / "messages"
    out = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        key = path.relative_to(root).as_posix()
        out.append((key, parse(RawMessage(f"corpus:{corpus}", key, path.read_bytes()))))
    return tuple(out)


def has_text(result: Message | ParseFailure) -> bool:
    return isinstance(result, Message) and bool(message_text(result).strip())


@pytest.mark.parametrize("corpus", CORPORA)
def test_every_message_parses_without_an_internal_error(corpus: str):
    parsed = results(corpus)
    assert parsed, f"no messages in {corpus}"
    internal = [
        f"{key}: {result.reason}"
        for key, result in parsed
        if isinstance(result, ParseFailure) and INTERNAL_ERROR.match(result.reason)
    ]
    assert internal == []
    for _, result in parsed:
        assert isinstance(result, Message | ParseFailure)
        if isinstance(result, Message):
            assert result.date.tzinfo is not None
            assert result.message_id


def test_model_text_comes_out_for_at_least_99_percent():
    parsed = [result for corpus in CORPORA for _, result in results(corpus)]
    empty = [
        f"{result.source}/{result.source_key if isinstance(result, Message) else result.key}"
        for result in parsed
        if not has_text(result)
    ]
    share = 1 - len(empty) / len(parsed)
    assert len(parsed) > 4000
    assert share >= MIN_WITH_TEXT, f"{share:.2%} with text; empty: {empty[:20]}"
