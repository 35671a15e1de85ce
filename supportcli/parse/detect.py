"""What a message is about beyond its words: order numbers, whether it is automated (bounces,
auto-replies, bulk mail) and its language (py3langid, loaded once and freed after a run)."""

from __future__ import annotations

import re
from typing import Any

from .headers import _head_text

LANGUAGE_SAMPLE_CHARS = 200
# Words that name an order (or its invoice) in the languages of the samples.
_ORDER_WORD = (
    r"(?:orders?|bestellnummer|bestellung|bestell|auftragsnummer|auftrag|commande|pedido"
    r"|ordine|bestelling|ordernummer|invoice|rechnung|facture|factura)"
)
_LABEL = r"(?:\s*(?i:no\.?|nr\.?|number|nummer|num[eé]ro|n[°º.]|id|#|:|-))"
_CODE = r"[a-z]{1,6}-\d{3,}(?:-[0-9a-z]+)*"  # letters-dash-digits: NW-48213, HDP-2291
_AMAZON = r"\d{3}-\d{7}-\d{7}"  # 123-1234567-1234567
_EBAY = r"\d{2}-\d{5}-\d{5}"  # 12-34567-89012
# One pass, leftmost match first, so "SO-10234" is never also read as "10234". The shapes:
# "#1001" (Shopify, WooCommerce) and "#NW-48034"; an order word, optionally "no.", "#", ":"…,
# then a code, an Amazon or eBay number, 3+ digits after a label ("order #123") or 4+ digits
# ("order 10234"); Amazon's and eBay's numbers anywhere; "SO-10234", "ORD-2026-0042",
# "PO10234"-style codes anywhere.
_ORDER_NUMBER = re.compile(
    rf"(?<![\w&])#\s?(\d{{4,10}}\b|(?i:{_CODE})\b)"
    rf"|\b(?=[obacpirfOBACPIRF])(?i:{_ORDER_WORD}){_LABEL}*\s*"
    rf"((?i:{_AMAZON}|{_EBAY}|{_CODE})\b|\d{{4,10}}\b(?!-\d))"
    rf"|\b(?=[obacpirfOBACPIRF])(?i:{_ORDER_WORD}){_LABEL}+\s*(\d{{3,10}})\b(?!-\d)"
    rf"|\b({_AMAZON}|{_EBAY})\b"
    r"|\b(?=[soipSOIP])((?i:SO|ORD|PO|INV|ORDER)-[0-9][0-9a-zA-Z]*(?:-[0-9a-zA-Z]+)*)\b"
    r"|\b((?:SO|ORD|PO|INV)-?[A-Z0-9]*\d{3,}[A-Z0-9]*)\b"
)
MAX_ORDER_SCAN_CHARS = 8000
_NOREPLY = re.compile(
    r"^(?:no[-_.]?reply|do[-_.]?not[-_.]?reply|mailer-daemon|postmaster|bounces?|"
    r"notifications?|auto[-_.]?reply|automated)\b",
    re.IGNORECASE,
)


def find_order_numbers(text: str, extra: re.Pattern[str] | None = None) -> tuple[str, ...]:
    """Order numbers in the order they appear; "SO-10234" wins over a "10234" elsewhere.

    A letters-dash-digits code counts next to an order word ("order NW-48213"); once it has,
    the same prefix counts anywhere in the text ("NW-48214 too"). ``extra``: the shop's own
    pattern (``[triage] order_pattern``), matched anywhere; its first group if it has one."""
    text = text[:MAX_ORDER_SCAN_CHARS]
    found: dict[int, str] = {}
    for match in _ORDER_NUMBER.finditer(text):
        found.setdefault(match.start(), next(g for g in match.groups() if g).upper())
    prefixes = {n.split("-")[0] for n in found.values() if "-" in n and n[0].isalpha()}
    if prefixes:
        same = re.compile(rf"\b((?i:{'|'.join(map(re.escape, sorted(prefixes)))})-\d{{3,}})\b")
        for match in same.finditer(text):
            found.setdefault(match.start(1), match.group(1).upper())
    if extra is not None:
        for match in extra.finditer(text):
            value = match.group(1) if extra.groups else match.group(0)
            if value:
                found.setdefault(match.start(), value.upper())
    numbers = list(dict.fromkeys(found[at] for at in sorted(found)))
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
