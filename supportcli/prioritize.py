"""Pure ranking rules: threads in, ranked items with their reasons out. No I/O.

score = urgency points × category weight + waiting time against the response target
        + follow-ups in the thread + the sender's earlier threads − automated mail

The urgency is the model's, raised by follow-ups and by the cues the model saw that make a
message urgent whatever the text model says. Waiting time counts business hours when the shop
set them (``hours``: one definition of lateness for triage, explain and the report). Every
term carries a sentence saying why, so each row can explain its rank.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, time, timedelta

from . import hours as bh
from .config import Settings
from .model import cues
from .model.text import ModelInput
from .records import URGENCIES, CueHit, Message, Prediction, ScoreTerm, TriageItem

# urgent is far ahead so that a fresh urgent message outranks a high one that has waited long
URGENCY_POINTS = {"urgent": 140.0, "high": 60.0, "normal": 30.0, "low": 5.0}
WAITING_MAX = 40.0
FOLLOWUP_POINTS = 15.0
HISTORY_POINTS = 5.0
AUTOMATED_PENALTY = -60.0
# Cues (``model.cues``) that make a message urgent whatever the text model says: money, law,
# safety or the shop's reputation at risk now, or a deadline within about a day (LABELS.md) …
FORCING_CUES = frozenset({"chargeback or payment dispute", "legal threat", "safety problem",
                          "fraud or unauthorised charge", "deadline within a day",
                          "public review threat"})
# … on mail from a person that the model did not file as praise, a pitch or "other" …
NOT_FORCED = frozenset({"feedback", "spam_vendor", "other"})
# … while automated mail and "other" (a marketplace or payment-processor notice) keep the cues
# that say money is being taken back; a notice that a payout or the account is at risk is high.
AT_RISK_CUES = frozenset({"chargeback or payment dispute", "fraud or unauthorised charge"})
RISK_CUE = "money or account at risk"
NEVER_RAISED = frozenset({"feedback", "spam_vendor"})
DEFAULT_DEADLINE_HOURS = 36.0
# A request to cancel or change an order, sent before the day's dispatch, is urgent.
CANCEL_CUE = "cancel or change an order"
CANCEL_CATEGORIES = frozenset({"cancellation", "shipping_delivery", "order_status"})


@dataclass(frozen=True)
class Rules:
    category_weights: Mapping[str, float]
    sla_hours: Mapping[str, float]
    shop_addresses: frozenset[str] = frozenset()
    business_hours: bh.BusinessHours | None = None  # None: every hour counts
    # below these confidences a label needs review ("category", "urgency"); empty: the
    # model's own verdict (``Prediction.needs_review``) marks the less certain label
    review_thresholds: Mapping[str, float] = field(default_factory=dict)
    deadline_hours: float = DEFAULT_DEADLINE_HOURS  # a deadline this close is urgent
    dispatch_cutoff: time | None = None  # the shop's daily dispatch, in ``timezone``
    timezone: str = "UTC"

    @classmethod
    def from_settings(
        cls, settings: Settings, review_thresholds: Mapping[str, float] | None = None
    ) -> Rules:
        """The one place the ranking rules are built from the settings."""
        return cls(settings.category_weights, settings.sla_hours,
                   frozenset(settings.shop_addresses), settings.business_hours,
                   dict(review_thresholds or {}), settings.deadline_hours,
                   settings.dispatch_cutoff, settings.timezone)


def group_threads(messages: Sequence[Message]) -> list[list[Message]]:
    """Threads by Gmail's thread id when there is one, Message-ID links (In-Reply-To,
    References), else by sender + subject."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def union(a: str, b: str) -> None:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[rb] = ra

    by_subject: dict[tuple[str, str], str] = {}
    by_gmail_thread: dict[str, str] = {}
    for m in messages:
        find(m.message_id)
        for flag in m.flags:  # Gmail tells its own thread id: trust it over headers
            if flag.startswith("X-GM-THRID:"):
                union(by_gmail_thread.setdefault(flag, m.message_id), m.message_id)
        for linked in (m.in_reply_to, *m.references):
            if linked:
                union(m.message_id, linked)
        if len(m.norm_subject) > 3 and m.sender_addr:
            key = (m.sender_addr, m.norm_subject)
            if key in by_subject:
                union(by_subject[key], m.message_id)
            else:
                by_subject[key] = m.message_id
    groups: dict[str, list[Message]] = defaultdict(list)
    for m in messages:
        groups[find(m.message_id)].append(m)
    return [sorted(g, key=lambda m: m.date) for g in groups.values()]


def rank(
    threads: Sequence[Sequence[Message]],
    predictions: Mapping[str, Prediction],
    rules: Rules,
    as_of: datetime,
    *,
    include_answered: bool = False,
    answered: frozenset[str] = frozenset(),
) -> list[TriageItem]:
    """One item per thread that awaits a reply (or every thread), best first.

    A thread is answered when its last message is the shop's, when the customer's last
    message carries the IMAP \\Answered flag, or when a reply in the Sent folder refers to it
    (``answered``: Message-IDs replied to)."""
    threads_per_sender: dict[str, int] = defaultdict(int)
    for thread in threads:
        for sender in {m.sender_addr for m in thread}:
            threads_per_sender[sender] += 1
    items = []
    for thread in threads:
        customer = [m for m in thread if m.sender_addr not in rules.shop_addresses]
        if not customer:
            continue
        last = customer[-1]
        replied = is_answered(thread, rules.shop_addresses, answered)
        if replied and not include_answered:
            continue
        prediction = predictions.get(last.message_id)
        if prediction is None:
            continue
        followups = followups_since_reply(thread, last, rules, answered)
        history = threads_per_sender[last.sender_addr] - 1
        item = score(last, prediction, rules, as_of, followups, history, len(thread))
        items.append(replace(item, answered=True) if replied else item)
    items.sort(key=lambda i: (-i.score, i.message.date, i.message.message_id))
    return [replace(item, rank=n) for n, item in enumerate(items, start=1)]


def followups_since_reply(
    thread: Sequence[Message], last: Message, rules: Rules, answered: frozenset[str] = frozenset()
) -> int:
    """How many times the sender of ``last`` wrote again since the shop last replied: after
    the shop's own last message in the thread, or after their last message that a reply in
    the Sent folder answered."""
    since = 0
    for m in thread:
        if m.date > last.date:
            break
        if m.sender_addr in rules.shop_addresses or m.message_id in answered:
            since = 0
        elif m.sender_addr == last.sender_addr:
            since += 1
    return max(0, since - 1)


# Mail that never escalates by being written again: a thank-you, a confirmation, a vendor
# chasing its own pitch, automated mail.
NO_FOLLOWUP_ESCALATION = frozenset({"feedback", "spam_vendor", "other"})


def forcing_cues(prediction: Prediction, message: Message,
                 rules: Rules | None = None) -> tuple[CueHit, ...]:
    """The cues that make this message urgent whatever the text model says."""
    if prediction.category in NEVER_RAISED:
        return ()
    horizon = rules.deadline_hours if rules else DEFAULT_DEADLINE_HOURS
    automated = bool(message.automated) or prediction.category in NOT_FORCED
    return _forcing(prediction.cues, automated, message.date, horizon)


def cues_force_urgent(item: ModelInput) -> bool:
    """Whether the cues alone would make this input urgent (whatever its category): what the
    model's recall-first threshold need not catch itself (``train`` passes it to the model)."""
    return bool(_forcing(cues.hits(item), bool(item.automated), item.sent,
                         DEFAULT_DEADLINE_HOURS))


def _forcing(hits: Sequence[CueHit], automated: bool, sent: datetime | None,
             horizon: float) -> tuple[CueHit, ...]:
    """The hits of cues that force urgency (only money taken back on automated mail), a
    deadline only when it falls within ``horizon`` hours of sending."""
    allowed = AT_RISK_CUES if automated else FORCING_CUES
    return tuple(hit for hit in hits if hit.cue in allowed and (
        hit.when is None or sent is None or (hit.when - sent).total_seconds() <= horizon * 3600))


def before_dispatch(prediction: Prediction, message: Message, rules: Rules) -> str:
    """Why a cancel or change request is urgent when it came on a working day before the
    shop's dispatch cut-off (``[shop] dispatch_cutoff``), or ""."""
    if rules.dispatch_cutoff is None or prediction.category not in CANCEL_CATEGORIES:
        return ""
    hit = next((h for h in prediction.cues if h.cue == CANCEL_CUE), None)
    local = message.date.astimezone(bh.zone(rules.timezone))
    if hit is None or local.weekday() > 4 or local.time() >= rules.dispatch_cutoff:
        return ""
    return f"{hit.cue} cue: '{hit.text}' before the {rules.dispatch_cutoff:%H:%M} dispatch"


def is_answered(
    thread: Sequence[Message], shop_addresses: frozenset[str], answered: frozenset[str]
) -> bool:
    """The shop has replied to the customer's last message in the thread: the thread ends with
    the shop's message, the customer's last message carries \\Answered, or a reply in the Sent
    folder refers to it (``answered``: Message-IDs replied to)."""
    customer = [m for m in thread if m.sender_addr not in shop_addresses]
    if not customer:
        return True
    last = customer[-1]
    return (
        thread[-1].sender_addr in shop_addresses
        or "\\Answered" in last.flags
        or last.message_id in answered
    )


def effective_urgency(prediction: Prediction, followups: int, message: Message,
                      rules: Rules | None = None) -> tuple[str, str]:
    """The urgency used for ranking, and why it differs from the model's, if it does."""
    forced = forcing_cues(prediction, message, rules)
    if forced:
        return "urgent", "; ".join(describe_cue(hit, message) for hit in forced)
    dispatch = before_dispatch(prediction, message, rules) if rules else ""
    if dispatch:
        return "urgent", dispatch
    risk = next((h for h in prediction.cues if h.cue == RISK_CUE), None)
    if risk and prediction.urgency in ("normal", "low") and prediction.category not in \
            NEVER_RAISED:
        return "high", describe_cue(risk, message)
    if prediction.category in NO_FOLLOWUP_ESCALATION or prediction.urgency == "low":
        return prediction.urgency, ""
    if followups >= 2 and prediction.urgency != "urgent":
        return "urgent", f"{_ordinal(followups + 1)} message from the customer in this thread"
    if followups == 1 and prediction.urgency in ("normal", "low"):
        return "high", "second message from the customer in this thread"
    return prediction.urgency, ""


def describe_cue(hit: CueHit, message: Message) -> str:
    """A cue as a reader recognises it: its name, the words it matched, and for a deadline the
    moment it names on the writer's clock ("deadline within a day cue: 'by 4pm tomorrow' =
    Fri 16:00, 30 h after it was sent")."""
    text = f"{hit.cue} cue: '{hit.text}'"
    if hit.when is None:
        return text
    local = hit.when.astimezone(message.local_date.tzinfo)
    hours = max(0.0, (hit.when - message.date).total_seconds() / 3600)
    when = f"{local:%a %H:%M}" if (local.hour, local.minute) != (0, 0) else f"{local:%a %-d %b}"
    after = "the day it was sent" if hours < 1 else f"{hours:.0f} h after it was sent"
    return f"{text} = {when}, {after}"


def score(
    message: Message,
    prediction: Prediction,
    rules: Rules,
    as_of: datetime,
    followups: int = 0,
    history: int = 0,
    thread_size: int = 1,
) -> TriageItem:
    urgency, raised_by = effective_urgency(prediction, followups, message, rules)
    weight = rules.category_weights.get(prediction.category, 1.0)
    terms = [_urgency_term(prediction, urgency, raised_by, weight)]
    terms.append(_waiting_term(message.date, as_of, rules, urgency))
    if followups:
        terms.append(
            ScoreTerm(
                "follow-ups",
                min(3, followups) * FOLLOWUP_POINTS,
                f"customer wrote {followups + 1} times in this thread",
            )
        )
    if history:
        terms.append(
            ScoreTerm(
                "sender history",
                min(3, history) * HISTORY_POINTS,
                f"sender has {history} other thread{'s' if history > 1 else ''}",
            )
        )
    if message.automated:
        terms.append(
            ScoreTerm("automated", AUTOMATED_PENALTY, f"automated mail ({message.automated})")
        )
    total = round(sum(t.points for t in terms), 1)
    waiting = max(as_of - message.date, timedelta(0))
    review = review_labels(prediction, rules.review_thresholds, model_urgency=not raised_by)
    return TriageItem(
        0, message, prediction, urgency, total, tuple(terms), thread_size, followups, waiting,
        review,
    )


def _waiting_term(sent: datetime, as_of: datetime, rules: Rules, urgency: str) -> ScoreTerm:
    """Waiting time against the response target, counted as ``hours`` counts it (business
    hours when the shop set them): the same lateness the report shows."""
    sla = rules.sla_hours.get(urgency, 24.0)
    hours = bh.elapsed_hours(sent, as_of, rules.business_hours)
    points = min(WAITING_MAX, 20.0 * hours / sla) if sla > 0 else WAITING_MAX
    late = "past" if bh.is_overdue(sent, as_of, sla, rules.business_hours) else "within"
    clock = " of business hours" if rules.business_hours else ""
    why = (f"waiting {bh.age_text(hours)}{clock}, {late} the {bh.age_text(sla)} target for "
           f"{urgency}")
    return ScoreTerm("waiting", points, why)


def review_labels(
    prediction: Prediction, thresholds: Mapping[str, float], *, model_urgency: bool = True
) -> tuple[str, ...]:
    """The labels a person should check: a category or an urgency whose confidence is below
    its threshold. An urgency that a cue or the follow-ups decided is not the model's guess,
    so it is never marked."""
    if not thresholds:
        if not prediction.needs_review:
            return ()
        return (
            ("category",)
            if prediction.category_confidence <= prediction.urgency_confidence
            else ("urgency",)
        )
    marks = []
    if prediction.category_confidence < thresholds.get("category", 0.0):
        marks.append("category")
    if model_urgency and (
        prediction.urgency_confidence < thresholds.get("urgency", 0.0)
        or (prediction.urgency != "urgent"  # a notable chance that it is urgent after all
            and prediction.urgency_probs.get("urgent", 0.0) >= thresholds.get("urgent_review", 2))
    ):
        marks.append("urgency")
    return tuple(marks)


def _urgency_term(prediction: Prediction, urgency: str, raised_by: str, weight: float) -> ScoreTerm:
    if raised_by:
        points, why = URGENCY_POINTS[urgency], f"{urgency}: {raised_by}"
    else:
        probs = prediction.urgency_probs or {urgency: 1.0}
        points = sum(URGENCY_POINTS.get(u, 0.0) * p for u, p in probs.items())
        why = f"{urgency} urgency ({prediction.urgency_confidence:.0%} sure)"
    if weight != 1.0:
        why += f", ×{weight:g} for {prediction.category}"
    return ScoreTerm("urgency", round(points * weight, 1), why)




def _ordinal(n: int) -> str:
    return {2: "2nd", 3: "3rd"}.get(n, f"{n}th")


def urgency_at_least(urgency: str, minimum: str) -> bool:
    return URGENCIES.index(urgency) <= URGENCIES.index(minimum)
