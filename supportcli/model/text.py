"""What the model reads: one small record per message, ``ModelInput``. The vectorizers read
its ``text`` (the subject and the customer's new words); cues may also read when it was sent,
the shop's time zone and whether it is automated mail. No numpy, no scikit-learn: workflows
build inputs cheaply. Change what a message becomes and bump ``TEXT_VERSION`` (fingerprint).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

TEXT_VERSION = 2  # 2: automated mail is a field, no longer a marker word in the text
MAX_TEXT_CHARS = 3000


@dataclass(frozen=True, slots=True)
class ModelInput:
    """One message as the model sees it."""

    text: str  # subject + the customer's new text (what the vectorizers read)
    sent: datetime | None = None  # the Date header on the writer's clock (deadlines read it)
    timezone: str = "UTC"  # the shop's IANA time zone
    automated: str = ""  # "" for a person, else why it looks automated


def to_text(subject: str, text_new: str, text_quoted: str = "") -> str:
    """Subject + the customer's new text (the quoted history only when nothing new was written)."""
    body = text_new.strip() or text_quoted.strip()[:1000]
    return f"{subject.strip()}\n{body}"[:MAX_TEXT_CHARS]


def message_text(message: Any) -> str:
    return to_text(message.subject, message.text_new, message.text_quoted)


def message_input(message: Any, timezone: str = "UTC") -> ModelInput:
    """The model's input for a parsed ``records.Message``."""
    sent = getattr(message, "local_date", message.date)  # the writer's own clock
    return ModelInput(message_text(message), sent, timezone, message.automated)


def as_input(item: ModelInput | str) -> ModelInput:
    """``item`` itself, or a bare text (a CSV row, a test) as an input."""
    return item if isinstance(item, ModelInput) else ModelInput(str(item))


_GREETING = re.compile(  # a greeting line or clause: "Hi Anna," "Hello team!" "Dear Sir\n"
    r"^(?:hi|hello|hey|dear|hallo|guten (?:tag|morgen)|bonjour|salut|hola|buenos d[ií]as|"
    r"ciao|buongiorno|good (?:morning|afternoon|evening))(?:[ \t]+[\w'-]+){0,3}[ \t]*"
    r"(?:[,.!:]|\n|$)\s*",
    re.IGNORECASE,
)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")
VIEW_MIN_CHARS = 15


def short_views(message: Any) -> list[str]:
    """Short texts that a message's category also holds for: the opening of the new text (its
    first two sentences, greeting dropped) and the subject alone. Training on them beside the
    whole message teaches the model what the same request looks like typed into a web form
    or a chat box. Views equal to the whole text are left out."""
    whole = message_text(message)
    body = _GREETING.sub("", message.text_new.strip())
    sentences = [s.strip() for s in _SENTENCE_END.split(body) if len(s.strip()) >= VIEW_MIN_CHARS]
    views = [to_text("", " ".join(sentences[:2]))] if sentences else []
    if len(message.subject.strip()) >= VIEW_MIN_CHARS:
        views.append(to_text(message.subject, ""))
    return [v for v in dict.fromkeys(views) if v != whole]
