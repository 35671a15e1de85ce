"""What a message is about beyond its words: order numbers, whether it is automated (bounces,
auto-replies, bulk mail) and its language (py3langid, loaded once and freed after a run)."""

from __future__ import annotations

import re
from typing import Any

from .headers import _head_text

LANGUAGE_SAMPLE_CHARS = 200
# One pass, leftmost match first, so "SO-10234" is never also read as "10234":
# "#10234" | "Order (no.|nr.|#|:)* 10234" in several languages | "SO-10234", "ORD-2026-0042"
# | "PO10234"-style codes.
_ORDER_NUMBER = re.compile(
    r"(?<![\w&])#\s?(\d{4,10})\b"
    r"|\b(?=[obacpirfOBACPIRF])(?i:order|bestellung|bestellnummer|auftrag|commande|pedido|ordine"
    r"|bestelling|invoice|rechnung|facture|factura)"
    r"(?:\s*(?i:no\.?|nr\.?|number|nummer|num[eé]ro|n[°º.]|#|:|-))*\s*(\d{4,10})\b"
    r"|\b(?=[soipSOIP])((?i:SO|ORD|PO|INV|ORDER)-[0-9][0-9a-zA-Z]*(?:-[0-9a-zA-Z]+)*)\b"
    r"|\b((?:SO|ORD|PO|INV)-?[A-Z0-9]*\d{3,}[A-Z0-9]*)\b"
)
MAX_ORDER_SCAN_CHARS = 8000
_NOREPLY = re.compile(
    r"^(?:no[-_.]?reply|do[-_.]?not[-_.]?reply|mailer-daemon|postmaster|bounces?|"
    r"notifications?|auto[-_.]?reply|automated)\b",
    re.IGNORECASE,
)


def find_order_numbers(text: str) -> tuple[str, ...]:
    """Order numbers in the order they appear; "SO-10234" wins over a "10234" elsewhere."""
    found: dict[str, None] = {}
    for match in _ORDER_NUMBER.finditer(text[:MAX_ORDER_SCAN_CHARS]):
        found.setdefault(next(g for g in match.groups() if g).upper(), None)
    numbers = list(found)
    return tuple(
        n
        for n in numbers
        if not any(n != m and (n in m.split("-") or m.startswith(n + "-")) for m in numbers)
    )


def _automated(heads: dict[str, str], sender: str, is_report: bool) -> str:
    auto = _head_text(heads, "auto-submitted").lower()
    if auto and auto != "no":
        return f"Auto-Submitted: {auto[:40]}"
    precedence = _head_text(heads, "precedence").lower()
    if precedence in {"bulk", "list", "junk", "auto_reply"}:
        return f"Precedence: {precedence}"
    if is_report:
        return "delivery-status report"
    for header in ("x-autoreply", "x-autorespond"):
        if _head_text(heads, header):
            return f"{header} header"
    if heads.get("list-id") or heads.get("list-unsubscribe"):
        return "mailing list (List-Id/List-Unsubscribe)"
    local = sender.split("@", 1)[0]
    if local and _NOREPLY.match(local):
        return f"no-reply sender {local}@…"
    return ""


_language_identifier: Any = None


def detect_language(text: str) -> str:
    """ISO 639-1 code of the text by py3langid, "" when too short to tell."""
    global _language_identifier
    sample = re.sub(r"\s+", " ", text[: LANGUAGE_SAMPLE_CHARS * 2]).strip()
    if len(sample) < 12:
        return ""
    try:
        if _language_identifier is None:
            from py3langid.langid import MODEL_FILE, LanguageIdentifier

            _language_identifier = LanguageIdentifier.from_model_file(MODEL_FILE)
        code, _ = _language_identifier.classify(sample[:LANGUAGE_SAMPLE_CHARS])
    except Exception:
        return ""
    return str(code)


def release_language_model() -> None:
    """Free py3langid's model (about 70 MB); the next ``detect_language`` loads it again.
    A big triage calls this once parsing is over, before the classifier's peak."""
    global _language_identifier
    _language_identifier = None
