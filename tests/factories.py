"""Small builders for records, shared by tests that need hand-made messages."""

from __future__ import annotations

from datetime import UTC, datetime

from supportcli.records import CueHit, Message, Prediction

CHARGEBACK = CueHit("chargeback or payment dispute", "file a chargeback with my bank")


def message(
    message_id: str = "m1@example.com",
    *,
    sender: str = "ann@example.com",
    subject: str = "Where is my order?",
    text: str = "Hello, where is my order #10234?",
    date: datetime | None = None,
    in_reply_to: str = "",
    references: tuple[str, ...] = (),
    automated: str = "",
    flags: tuple[str, ...] = (),
) -> Message:
    from supportcli.parse import normalize_subject

    return Message(
        message_id=message_id,
        source="test",
        source_key=message_id,
        date=date or datetime(2026, 11, 20, 9, 0, tzinfo=UTC),
        date_is_fallback=False,
        sender_name=sender.split("@")[0].title(),
        sender_addr=sender,
        to=("support@shop.example",),
        subject=subject,
        norm_subject=normalize_subject(subject),
        in_reply_to=in_reply_to,
        references=references,
        text_new=text,
        text_quoted="",
        text_signature="",
        is_html=False,
        attachments=(),
        order_numbers=(),
        automated=automated,
        language="en",
        content_hash=message_id,
        flags=flags,
    )


def prediction(
    category: str = "order_status",
    urgency: str = "normal",
    *,
    confidence: float = 0.9,
    cues: tuple[CueHit, ...] = (),
    needs_review: bool = False,
) -> Prediction:
    others = {"urgent": 0.0, "high": 0.0, "normal": 0.0, "low": 0.0}
    others[urgency] = confidence
    rest = [u for u in others if u != urgency]
    for u in rest:
        others[u] = round((1 - confidence) / len(rest), 4)
    return Prediction(
        category=category,
        category_confidence=confidence,
        urgency=urgency,
        urgency_confidence=confidence,
        needs_review=needs_review,
        model_id="test",
        category_probs={category: confidence},
        urgency_probs=others,
        cues=cues,
    )
