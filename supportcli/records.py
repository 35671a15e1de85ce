"""Plain records that flow one way: source -> parse -> store -> model -> prioritize -> render."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

# The urgency levels, most pressing first: the one definition (config, ranking, report and the
# CLI's choices read it).
URGENCIES: tuple[str, ...] = ("urgent", "high", "normal", "low")


@dataclass(frozen=True, slots=True)
class RawMessage:
    """Bytes of one message as a source delivered them."""

    source: str  # e.g. "mbox:/home/me/support.mbox" or "imap:shop/INBOX"
    key: str  # where in the source: file path, mbox index, "UIDVALIDITY:UID"
    data: bytes
    flags: tuple[str, ...] = ()
    received: datetime | None = None  # server INTERNALDATE or file mtime, UTC


@dataclass(frozen=True, slots=True)
class Attachment:
    filename: str
    content_type: str
    size: int  # decoded size in bytes, estimated without decoding


@dataclass(frozen=True, slots=True)
class Message:
    """One parsed email. Text fields are plain, untrusted strings taken from the mail."""

    message_id: str
    source: str
    source_key: str
    date: datetime  # UTC, aware
    date_is_fallback: bool
    sender_name: str
    sender_addr: str  # lower-cased
    to: tuple[str, ...]
    subject: str
    norm_subject: str  # subject without Re:/Fwd:/AW: prefixes, lower-cased
    in_reply_to: str
    references: tuple[str, ...]
    text_new: str  # what the sender wrote this time
    text_quoted: str  # quoted history
    text_signature: str
    is_html: bool
    attachments: tuple[Attachment, ...]
    order_numbers: tuple[str, ...]
    automated: str  # "" for a person, else why it looks automated
    language: str  # ISO 639-1 code, "" when unknown
    content_hash: str
    flags: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    utc_offset: int = 0  # minutes east of UTC in the Date header: the writer's own clock
    relayed_by: str = ""  # the contact-form sender that relayed this customer's message

    @property
    def local_date(self) -> datetime:
        """When it was sent, on the writer's own clock (what "tomorrow" means to them)."""
        return self.date.astimezone(timezone(timedelta(minutes=self.utc_offset)))


@dataclass(frozen=True, slots=True)
class ParseFailure:
    """A message that could not be read; the run reports it and goes on."""

    source: str
    key: str
    reason: str


@dataclass(frozen=True, slots=True)
class CueHit:
    """A hand-made cue that fired, with the words of the message it matched."""

    cue: str  # e.g. "chargeback or payment dispute"
    text: str  # the message's own words around the match, e.g. "file a chargeback with my"
    when: datetime | None = None  # a time the cue resolved from the text (a deadline), UTC

    def __str__(self) -> str:
        return f"{self.cue}: '{self.text}'" if self.text else self.cue


@dataclass(frozen=True, slots=True)
class Prediction:
    category: str
    category_confidence: float
    urgency: str
    urgency_confidence: float
    needs_review: bool
    model_id: str
    category_probs: dict[str, float] = field(default_factory=dict)
    urgency_probs: dict[str, float] = field(default_factory=dict)
    cues: tuple[CueHit, ...] = ()  # every hand-made cue that fired (triage decides what it means)


@dataclass(frozen=True, slots=True)
class ScoreTerm:
    name: str  # "urgency", "waiting", "follow-ups", …
    points: float
    reason: str  # human-readable, e.g. "waiting 26 h, past the 8 h target for high"


@dataclass(frozen=True, slots=True)
class TriageItem:
    rank: int
    message: Message  # the customer's latest message in the thread
    prediction: Prediction
    urgency: str  # the urgency used for ranking: the model's, raised by follow-ups
    score: float
    terms: tuple[ScoreTerm, ...]
    thread_size: int
    followups: int  # customer messages in the thread after the first
    waiting: timedelta  # since the customer's last message
    review: tuple[str, ...] = ()  # the labels the model is unsure of: "category", "urgency"
    answered: bool = False  # the shop has replied to the customer's last message

    @property
    def top_reason(self) -> str:
        best = max(self.terms, key=lambda t: abs(t.points), default=None)
        return best.reason if best else ""


@dataclass(frozen=True, slots=True)
class SyncCursor:
    account: str
    folder: str
    uidvalidity: int
    last_uid: int
