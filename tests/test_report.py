"""The morning report: sections, numbers, 80 columns, and hostile mail text made harmless."""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from html.parser import HTMLParser

import pytest

from supportcli import report
from supportcli.hours import parse_business_hours
from supportcli.records import Message, Prediction, ScoreTerm, TriageItem

NOW = datetime(2024, 6, 11, 7, 0, tzinfo=UTC)  # a Tuesday, 08:00 in London
SLA = {"urgent": 2.0, "high": 8.0, "normal": 24.0, "low": 72.0}
HOSTILE_SUBJECT = ('<script>alert(1)</script>" onmouseover="x()" '
                   "\x1b[31mred\x1b[0m [bold red]boom[/]")
HOSTILE_NAME = '\x1b]8;;https://evil.example/\x07Click\x1b]8;;\x07 <img src=x onerror=alert(2)>'
URL_SUBJECT = "see https://evil.example/pay and www.evil.example now"
WIDE_SUBJECT = "注文した商品がまだ届いていません。至急確認してください。" * 3


def make_message(n: int, subject: str, *, hours_ago: float = 5.0, sender_name: str = "",
                 sender_addr: str = "", orders: tuple[str, ...] = ()) -> Message:
    return Message(
        message_id=f"<m{n}@example.com>", source="test", source_key=str(n),
        date=NOW - timedelta(hours=hours_ago), date_is_fallback=False,
        sender_name=sender_name or f"Customer {n}", sender_addr=sender_addr or f"c{n}@example.com",
        to=("support@shop.example",), subject=subject, norm_subject=subject.lower(),
        in_reply_to="", references=(), text_new="hello", text_quoted="", text_signature="",
        is_html=False, attachments=(), order_numbers=orders, automated="", language="en",
        content_hash=f"h{n}",
    )


def make_prediction(category: str, urgency: str, *, review: bool = False) -> Prediction:
    return Prediction(category, 0.55 if review else 0.9, urgency, 0.8, review, "model-test")


def make_item(rank: int, message: Message, category: str, urgency: str, *,
              review: bool = False, reason: str = "") -> TriageItem:
    terms = (ScoreTerm("urgency", 60.0, reason or f"{urgency} urgency (80% sure)"),
             ScoreTerm("waiting", 10.0, "waiting a while"))
    return TriageItem(rank, message, make_prediction(category, urgency, review=review), urgency,
                      100.0 - rank, terms, 1, 0, NOW - message.date)


def sample_items() -> list[TriageItem]:
    rows = [  # subject, category, urgency, hours ago, review, orders, sender name
        ("Chargeback filed for order 1001", "billing_payment", "urgent", 30, False, ("1001",), ""),
        (HOSTILE_SUBJECT, "complaint", "urgent", 1, False, (), HOSTILE_NAME),
        ("Where is my parcel?", "shipping_delivery", "high", 20, False, ("1001",), ""),
        ("Refund please", "returns_refunds", "high", 3, True, ("2002",), ""),
        (URL_SUBJECT, "other", "normal", 50, True, (), ""),
        (WIDE_SUBJECT, "order_status", "normal", 10, False, ("2002",), "山田 太郎"),
        ("Cancel my order", "cancellation", "normal", 2, False, ("3003",), ""),
        ("Do you sell gift cards?", "product_question", "low", 100, False, (), ""),
        ("Password reset", "account_access", "normal", 4, False, (), ""),
        ("Love the shop", "feedback", "low", 6, False, (), ""),
        ("Wholesale enquiry", "wholesale_partnership", "low", 12, False, (), ""),
        ("Another status question", "order_status", "normal", 8, False, (), ""),
    ]
    items = []
    for n, (subject, category, urgency, ago, review, orders, name) in enumerate(rows, start=1):
        m = make_message(n, subject, hours_ago=ago, sender_name=name, orders=orders)
        items.append(make_item(n, m, category, urgency, review=review,
                               reason=f"{urgency}: {subject}" if n == 2 else ""))
    return items


def sample_data(
    *, this_week: dict[str, int] | None = None, hours: bool = True
) -> report.ReportData:
    items = sample_items()
    business = parse_business_hours("Mon-Fri 09:00-17:30", "Europe/London") if hours else None
    threads = [[i.message] for i in items]
    dated = [(NOW - timedelta(days=d % 14, hours=d % 5), cat)
             for d, cat in enumerate(["order_status"] * 30 + ["shipping_delivery"] * 20
                                     + ["returns_refunds"] * 9 + ["complaint"] * 4)]
    week = this_week if this_week is not None else {"order_status": 20, "shipping_delivery": 12,
                                                    "returns_refunds": 6, "complaint": 2}
    training = {"order_status": 50, "shipping_delivery": 30, "returns_refunds": 15, "complaint": 5}
    return report.ReportData(
        generated_at=NOW,
        headline=report.Headline(new_since_last=7, awaiting=len(items), urgent=2, needs_review=2),
        top_items=items[:10],
        overdue=report.overdue_by_urgency(items, SLA, NOW, business),
        by_category=report.counts_by_category(items),
        daily_volume=report.daily_volume(dated, NOW.date(), "Europe/London"),
        oldest=report.oldest_waiting(items),
        shared_orders=report.shared_order_numbers(threads),
        health=report.ModelHealth("model-test", 4, 40, week, training),
        timezone="Europe/London", shop_name="Tea & Co <b>", last_report_at=NOW - timedelta(days=1),
        sla_hours=SLA, business_hours=business.describe() if business else None,
    )


def columns(line: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in line)


def positions(text: str, needles: list[str]) -> list[int]:
    found = [text.find(n) for n in needles]
    assert -1 not in found, [n for n, f in zip(needles, found, strict=True) if f == -1]
    return found


# -- sections and numbers -----------------------------------------------------------------


def test_text_report_has_every_section_in_order_and_fits_80_columns() -> None:
    text = report.render_text(sample_data())
    found = positions(text, [s.upper() for s in report.SECTIONS])
    assert found == sorted(found)
    for line in text.splitlines():
        assert columns(line) <= 80, line
    assert re.search(r"New since last report +7\n", text)
    assert re.search(r"Awaiting a reply +12\n", text)
    assert re.search(r"Urgent +2\n", text)
    assert "Generated Tue 11 Jun 2024 08:00 BST" in text  # times in the configured zone
    assert " 1. [urgent] Chargeback filed for order 1001" in text
    assert "10. [low] Love the shop" in text and "Another status question" not in text.split(
        "PAST THE RESPONSE TARGET")[0]


def test_markdown_report_has_every_section_in_order() -> None:
    md = report.render_markdown(sample_data())
    found = positions(md, [f"## {s}" for s in report.SECTIONS])
    assert found == sorted(found)
    assert "| New since last report | 7 |" in md
    assert "<script>" not in md and "\x1b" not in md
    assert "https://" not in md


def test_html_report_has_every_section_in_order_and_the_chart() -> None:
    html = report.render_html(sample_data())
    found = positions(html, [f">{s}</h2>" for s in report.SECTIONS])
    assert found == sorted(found)
    assert html.count("<svg") == 1 and "<rect" in html
    assert ">12</td>" in html  # awaiting
    assert html.startswith("<!DOCTYPE html>")


def test_overdue_counts_business_hours() -> None:
    data = sample_data()
    # urgent target 2 business hours: 30 h ago (Sun 02:00 London) has had Mon 09:00-17:30 and
    # nothing yet on Tuesday at 08:00, so 8.5 business hours elapsed, 6.5 h late
    chargeback = data.overdue["urgent"][0]
    assert chargeback.item.message.subject.startswith("Chargeback")
    assert chargeback.late_hours == pytest.approx(6.5)
    # the hostile one arrived an hour ago, outside business hours: not late
    assert len(data.overdue["urgent"]) == 1
    assert list(data.overdue) == [u for u in report.URGENCIES if u in data.overdue]
    wall = sample_data(hours=False)
    assert wall.overdue["urgent"][0].late_hours == pytest.approx(28.0)
    text = report.render_text(data)
    assert "urgent: 1 past the 2 h target" in text and "6 h late" in text


def test_counts_by_category_and_urgency() -> None:
    counts = report.counts_by_category(sample_items())
    assert counts["order_status"] == {"urgent": 0, "high": 0, "normal": 2, "low": 0}
    assert next(iter(counts)) == "order_status"  # largest first
    assert sum(sum(r.values()) for r in counts.values()) == 12
    text = report.render_text(sample_data())
    assert re.search(r"  total +2 +2 +5 +3 +12\n", text)


def test_daily_volume_covers_14_local_days() -> None:
    volume = report.daily_volume([(NOW, "a"), (NOW - timedelta(days=20), "a"),
                                  (datetime(2024, 6, 10, 23, 30, tzinfo=UTC), "b")],
                                 date(2024, 6, 11), "Europe/London")
    assert len(volume) == 14 and min(volume) == date(2024, 5, 29)
    # 23:30 UTC on the 10th is 00:30 on the 11th in London
    assert volume[date(2024, 6, 11)] == {"a": 1, "b": 1}
    assert sum(sum(v.values()) for v in volume.values()) == 2


def test_oldest_waiting() -> None:
    oldest = report.oldest_waiting(sample_items(), 3)
    assert [i.message.subject for i in oldest][:2] == ["Do you sell gift cards?", URL_SUBJECT]


def test_order_numbers_across_threads() -> None:
    a1 = make_message(1, "Where is 1001", hours_ago=10, orders=("1001",))
    a2 = make_message(2, "Re: Where is 1001", hours_ago=5, orders=("1001", "4004"))
    b1 = make_message(3, "Chargeback 1001", hours_ago=2, sender_name="Bank", orders=("1001",))
    c1 = make_message(4, "Only here", hours_ago=1, orders=("4004",))
    shared = report.shared_order_numbers([[a1, a2], [b1], [c1]])
    assert list(shared) == ["1001", "4004"]
    assert [(m.subject, m.sender) for m in shared["1001"]] == [
        ("Where is 1001", "Customer 1"), ("Chargeback 1001", "Bank")]
    assert [m.subject for m in shared["4004"]] == ["Re: Where is 1001", "Only here"]
    assert report.shared_order_numbers([[a1, a2]]) == {}  # one thread is not "several"
    text = report.render_text(sample_data())
    assert "1001 in 2 threads" in text and "2002 in 2 threads" in text and "3003 in" not in text


# -- model health -------------------------------------------------------------------------


def test_drift_is_total_variation_distance() -> None:
    same = Counter(a=10, b=30)
    assert report.category_drift(same, Counter(a=1, b=3)) == pytest.approx(0.0)
    assert report.category_drift(Counter(a=5), Counter(b=5)) == pytest.approx(1.0)
    assert report.category_drift(Counter(a=3, b=1), Counter(a=1, b=1)) == pytest.approx(0.25)
    assert report.category_drift(Counter(), Counter(a=1)) == 0.0


def test_drift_flag_on_a_skewed_mix_only() -> None:
    matching = sample_data()
    assert not matching.health.drifted and matching.health.drift < 0.05
    assert "differs sharply" not in report.render_text(matching)
    assert "differs sharply" not in report.render_html(matching)
    skewed = sample_data(this_week={"complaint": 25, "spam_vendor": 15, "order_status": 2})
    assert skewed.health.drifted and skewed.health.drift > 0.5
    for rendered in (report.render_text(skewed), report.render_markdown(skewed),
                     report.render_html(skewed)):
        assert "differs sharply" in rendered
        assert "supportcli label" in rendered and "supportcli train" in rendered
    few = sample_data(this_week={"complaint": 5})
    assert not few.health.drifted
    assert "Too few messages this week" in report.render_text(few)


def test_review_share() -> None:
    health = sample_data().health
    assert health.review_share == pytest.approx(0.1)
    assert "Needs review: 4 of 40 messages this week (10%)" in report.render_text(sample_data())


# -- hostile text -------------------------------------------------------------------------


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


ALLOWED_TAGS = {"html", "head", "meta", "title", "body", "div", "h1", "h2", "h3", "p", "br",
                "table", "tr", "th", "td", "span", "strong", "ul", "li", "svg", "rect", "line",
                "text"}


def test_html_escapes_hostile_mail_text_and_fetches_nothing() -> None:
    html = report.render_html(sample_data())
    lowered = html.lower()
    assert "<script" not in lowered and "javascript:" not in lowered
    assert "http://" not in lowered and "https://" not in lowered
    assert "url(" not in lowered and "@import" not in lowered
    assert "\x1b" not in html and "]8;;" not in html
    parser = _Tags()
    parser.feed(html)
    assert {tag for tag, _ in parser.tags} <= ALLOWED_TAGS
    for tag, attrs in parser.tags:
        for name in attrs:
            assert name not in {"src", "href", "xlink:href", "srcset", "action", "background"}
            assert not name.startswith("on"), (tag, name)
    # the hostile strings are there, as text
    text = "".join(parser.text)
    assert '<script>alert(1)</script>" onmouseover="x()" red [bold red]boom[/]' in text
    assert "Click <img src=x onerror=alert(2)>" in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&#34; onmouseover=&#34;x()&#34;" in html
    assert "https[:]//evil.example/pay" in text and "www[.]evil.example" in text
    assert "Tea &amp; Co &lt;b&gt;" in html


def test_html_has_no_style_block_and_inline_styles() -> None:
    html = report.render_html(sample_data())
    assert "<style" not in html
    assert html.count('style="') > 50


def test_text_and_markdown_strip_escapes_and_defang_urls() -> None:
    data = sample_data()
    text, md = report.render_text(data), report.render_markdown(data)
    for out in (text, md):
        assert "\x1b" not in out and "\x07" not in out
        assert "https://" not in out and "www.evil" not in out
    assert "https[:]//evil.example" in text and r"https\[:\]//evil.example" in md
    assert '<script>alert(1)</script>" onmouseover="x()" red [bold red]boom[/]' in text
    assert r"\[bold red\]boom\[/\]" in md and "&lt;script&gt;" in md


def test_templates_never_mark_strings_safe() -> None:
    from importlib.resources import files

    for template in files("supportcli").joinpath("templates").iterdir():
        source = template.read_text(encoding="utf-8")
        assert not re.search(r"\|\s*safe\b", source), template.name
        assert "autoescape false" not in source, template.name


def test_wide_and_long_strings_keep_80_columns() -> None:
    items = sample_items()
    long = make_message(99, "x" * 300, sender_name="N" * 200, orders=("5" * 120,))
    items.append(make_item(11, long, "other", "urgent"))
    data = sample_data()
    data = report.ReportData(**{**data.__dict__, "top_items": items[-10:], "oldest": items[-5:],
                                "shared_orders": report.shared_order_numbers(
                                    [[long], [make_message(98, "y", orders=("5" * 120,))]])})
    for line in report.render_text(data).splitlines():
        assert columns(line) <= 80, line


def test_empty_report_renders() -> None:
    data = report.ReportData(
        generated_at=NOW, headline=report.Headline(0, 0, 0, 0), top_items=[], overdue={},
        by_category={}, daily_volume=report.daily_volume([], NOW.date()), oldest=[],
        shared_orders={}, health=report.ModelHealth("m", 0, 0, {}, {}))
    text = report.render_text(data)
    assert "Nothing is awaiting a reply." in text and "Last report never" in text
    assert "<svg" in report.render_html(data)
    assert "## Model health" in report.render_markdown(data)
