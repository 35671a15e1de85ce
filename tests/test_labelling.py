"""The labelling logic over a real store: queue orders, the session state machine, CSV export
and import with bad rows, .eml export that parses back, and the cross-validated audit."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from factories import message

from supportcli import labelling, resources
from supportcli.config import CATEGORIES, URGENCIES
from supportcli.errors import UsageError
from supportcli.model import dataset
from supportcli.parse import parse
from supportcli.records import Message, Prediction, RawMessage
from supportcli.store import Store

DEMO = resources.demo_dir()
T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def demo_messages(*numbers: int) -> list[Message]:
    out = []
    for n in numbers:
        path = DEMO / f"demo-{n:03d}.eml"
        parsed = parse(RawMessage(f"eml:{DEMO}", path.name, path.read_bytes()))
        assert isinstance(parsed, Message), parsed
        out.append(parsed)
    return out


def pred(category: str, top: float, second: float = 0.0, urgency: str = "normal") -> Prediction:
    """A prediction whose top two category probabilities are ``top`` and ``second``."""
    runner_up = "other" if category != "other" else "feedback"
    return Prediction(
        category=category, category_confidence=top, urgency=urgency, urgency_confidence=0.7,
        needs_review=top < 0.5, model_id="test",
        category_probs={category: top, runner_up: second, "complaint": 0.0},
        urgency_probs={urgency: 0.7},
    )


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(tmp_path / "store.db") as s:
        yield s


def ids(messages: list[Message]) -> list[str]:
    return [m.message_id for m in messages]


# --- queue ---------------------------------------------------------------------------------


def test_uncertain_order_puts_the_smallest_margin_first() -> None:
    margins = {"a": 0.5, "b": 0.1, "c": 0.3, "d": 0.05, "e": 0.9}
    msgs = [message(f"{k}@x", sender=f"{k}@example.com", subject=f"subject {k}") for k in margins]
    preds = {f"{k}@x": pred("order_status", 0.5 + m / 2, 0.5 - m / 2) for k, m in margins.items()}
    got = labelling.queue(msgs, preds, {}, order="uncertain")
    assert ids(got) == ["d@x", "b@x", "c@x", "a@x", "e@x"]
    assert labelling.margin(preds["d@x"]) == pytest.approx(0.05)


def test_one_sender_never_fills_the_queue() -> None:
    # 20 near-coin-flip messages from one sender, 10 more certain ones from ten people
    bulk = [message(f"bulk{i}@x", sender="news@bulk.example", subject=f"offer {i}",
                    date=T0 + timedelta(minutes=i)) for i in range(20)]
    people = [message(f"p{i}@x", sender=f"person{i}@example.com", subject=f"question {i}")
              for i in range(10)]
    preds = {m.message_id: pred("spam_vendor", 0.40, 0.39) for m in bulk}
    preds |= {m.message_id: pred("order_status", 0.6 + i / 100, 0.2)
              for i, m in enumerate(people)}
    got = labelling.queue(bulk + people, preds, {})
    assert sorted(ids(got)) == sorted(ids(bulk + people))  # nothing lost
    senders = [m.sender_addr for m in got]
    # while other senders are left, any 10 in a row hold at most 2 from the bulk sender
    last_person = max(i for i, s in enumerate(senders) if s != "news@bulk.example")
    for start in range(0, last_person - 9):
        assert senders[start : start + 10].count("news@bulk.example") <= 2, senders
    assert senders[:2] == ["news@bulk.example"] * 2  # the most uncertain still lead
    # people come in their own uncertainty order
    assert [m.message_id for m in got if m.message_id.startswith("p")] == ids(people)


def test_one_thread_is_spread_out() -> None:
    first = message("t0@x", sender="kim@example.com", subject="Refund?", date=T0)
    replies = [message(f"t{i}@x", sender="kim@example.com", subject="Re: Refund?",
                       in_reply_to=f"t{i - 1}@x", date=T0 + timedelta(hours=i))
               for i in range(1, 3)]
    others = [message(f"o{i}@x", sender=f"o{i}@example.com", subject=f"other {i}")
              for i in range(6)]
    preds = {m.message_id: pred("returns_refunds", 0.35, 0.34) for m in [first, *replies]}
    preds |= {m.message_id: pred("order_status", 0.7, 0.2) for m in others}
    got = ids(labelling.queue([first, *replies, *others], preds, {}))
    thread_positions = sorted(got.index(i) for i in ("t0@x", "t1@x", "t2@x"))
    assert got[0] == "t2@x"  # equally unsure: the newest first
    # every other sender comes before the thread's second message; then the rule gives way
    assert thread_positions == [0, 7, 8]
    assert got[7:] == ["t1@x", "t0@x"]


def test_classes_with_many_labels_wait() -> None:
    msgs = [message(f"{k}@x", sender=f"{k}@example.com") for k in ("status", "thanks", "late")]
    preds = {
        "status@x": pred("order_status", 0.55, 0.45),  # margin 0.10
        "thanks@x": pred("feedback", 0.60, 0.40),  # margin 0.20
        "late@x": pred("feedback", 0.70, 0.30),  # margin 0.40
    }
    labels = {f"old{i}@x": ("order_status", "normal") for i in range(10)}
    labels["old-fb@x"] = ("feedback", "low")
    # order_status has every label so far: +0.25 → 0.35; feedback has 1/10: +0.025
    got = labelling.queue(msgs, preds, labels)
    assert ids(got) == ["thanks@x", "status@x", "late@x"]
    assert ids(labelling.queue(msgs, preds, {})) == ["status@x", "thanks@x", "late@x"]


def test_recent_random_category_limit_and_labelled_are_skipped() -> None:
    msgs = [message(f"m{i}@x", sender=f"s{i}@example.com", date=T0 + timedelta(hours=i))
            for i in range(20)]
    preds = {m.message_id: pred("order_status" if i % 2 else "feedback", 0.8, 0.1)
             for i, m in enumerate(msgs)}
    labels = {"m19@x": ("feedback", "low"), "m4@x": ("order_status", "normal")}

    recent = labelling.queue(msgs, preds, labels, order="recent")
    assert ids(recent)[:3] == ["m18@x", "m17@x", "m16@x"]
    assert "m19@x" not in ids(recent) and "m4@x" not in ids(recent)
    assert len(recent) == 18

    one = ids(labelling.queue(msgs, preds, labels, order="random", seed=1))
    assert one == ids(labelling.queue(msgs, preds, labels, order="random", seed=1))
    assert one != ids(labelling.queue(msgs, preds, labels, order="random", seed=2))
    assert sorted(one) == sorted(ids(recent))

    feedback = labelling.queue(msgs, preds, labels, order="recent", category="feedback")
    assert ids(feedback) == [f"m{i}@x" for i in (18, 16, 14, 12, 10, 8, 6, 2, 0)]
    # reviewing a class can include what is already labelled as that class
    review = labelling.queue(msgs, preds, labels, order="recent", category="order_status",
                             include_labelled=True)
    assert "m4@x" in ids(review)  # predicted feedback, labelled order_status
    assert "m4@x" not in ids(labelling.queue(msgs, preds, labels, category="order_status"))

    assert len(labelling.queue(msgs, preds, labels, limit=5)) == 5
    with pytest.raises(UsageError):
        labelling.queue(msgs, preds, labels, order="sideways")


# --- session -------------------------------------------------------------------------------


def session_over(store: Store, preds: dict[str, Prediction]) -> labelling.Session:
    items = labelling.queue(store.messages(), preds, store.labels(), order="recent",
                            skipped=store.skipped())
    return labelling.Session(store, items, CATEGORIES, URGENCIES, preds)


def test_session_accept_set_skip_undo_write_the_store_at_once(store: Store) -> None:
    store.add_messages(demo_messages(1, 8, 13, 21, 26))
    preds = {m.message_id: pred("order_status", 0.6, 0.3, urgency="normal")
             for m in store.messages()}
    session = session_over(store, preds)
    first, second, third, fourth = session.items[:4]

    assert session.current() == first
    assert session.accept() == ("order_status", "normal")
    assert store.labels() == {first.message_id: ("order_status", "normal")}

    session.set("shipping_delivery", "high")
    assert store.labels()[second.message_id] == ("shipping_delivery", "high")
    with pytest.raises(UsageError):
        session.set("not_a_category", "high")
    with pytest.raises(UsageError):
        session.set("complaint", "whenever")
    assert session.current() == third and len(store.labels()) == 2

    session.skip()
    assert session.current() == fourth
    assert third.message_id not in store.labels()
    assert store.skipped() == {third.message_id}
    progress = session.progress()
    assert (progress.position, progress.total, progress.labelled, progress.skipped) == (3, 5, 2, 1)
    assert progress.categories == {"order_status": 1, "shipping_delivery": 1}

    assert session.undo() == third  # un-skip: no label, no skip remembered
    assert len(store.labels()) == 2 and store.skipped() == set()
    assert session.undo() == second  # the label saved for it is removed
    assert store.labels() == {first.message_id: ("order_status", "normal")}
    session.set("complaint", "urgent")
    assert store.labels()[second.message_id] == ("complaint", "urgent")

    # a new session (as after a crash) queues only what has no label yet
    again = session_over(store, preds)
    assert ids(again.items) == [third.message_id, fourth.message_id, session.items[4].message_id]

    # what a session skipped comes last in the next one, until it is labelled
    again.skip()
    later = session_over(store, preds)
    assert ids(later.items)[-1] == third.message_id
    later.set("other", "low")
    later.set("other", "low")
    later.skip()  # skipped again, then undone: the earlier session's skip stays
    assert later.undo() == third and store.skipped() == {third.message_id}
    later.undo()
    later.undo()
    later = session_over(store, preds)
    assert ids(later.items) == [fourth.message_id, session.items[4].message_id, third.message_id]
    later.set("other", "low")
    later.set("other", "low")
    later.set("feedback", "low")
    assert store.skipped() == set()
    assert session_over(store, preds).items == []


def test_undo_restores_a_label_that_was_replaced(store: Store) -> None:
    store.add_messages(demo_messages(1, 8))
    target = store.messages()[0]
    store.set_label(target.message_id, "feedback", "low", by="earlier")
    preds = {m.message_id: pred("order_status", 0.6, 0.3) for m in store.messages()}
    items = labelling.queue(store.messages(), preds, store.labels(), category="feedback",
                            include_labelled=True)
    session = labelling.Session(store, items, CATEGORIES, URGENCIES, preds)
    assert session.current() == target
    session.accept()
    assert store.labels()[target.message_id] == ("order_status", "normal")
    session.undo()
    row = store.db.execute("SELECT category, urgency, labelled_by FROM labels").fetchall()
    assert [tuple(r) for r in row] == [("feedback", "low", "earlier")]
    assert session.undo() is None  # nothing left to undo


def test_session_without_prediction_and_at_the_end(store: Store) -> None:
    store.add_messages(demo_messages(1))
    session = labelling.Session(store, store.messages(), CATEGORIES, URGENCIES, {})
    with pytest.raises(UsageError):
        session.accept()  # no prediction: the labels must be picked
    session.set("order_status", "low")
    assert session.current() is None
    with pytest.raises(UsageError):
        session.skip()


def test_set_label_for_scripts(store: Store) -> None:
    store.add_messages(demo_messages(1))
    mid = store.messages()[0].message_id
    with pytest.raises(UsageError, match="both"):
        labelling.set_label(store, mid, "order_status", None, CATEGORIES, URGENCIES)
    assert labelling.set_label(store, f"<{mid}>", "order_status", "low", CATEGORIES,
                               URGENCIES) is None
    assert labelling.set_label(store, mid, None, "high", CATEGORIES, URGENCIES) == (
        "order_status", "low")
    assert store.labels()[mid] == ("order_status", "high")
    with pytest.raises(UsageError, match="no message"):
        labelling.set_label(store, "nope@x", "order_status", "low", CATEGORIES, URGENCIES)


# --- CSV -----------------------------------------------------------------------------------


def test_csv_export_edit_import_with_bad_rows(store: Store, tmp_path: Path) -> None:
    store.add_messages(demo_messages(1, 8, 13, 21))
    hostile = message("-1+1@evil.example", sender="x@evil.example",
                      subject="=HYPERLINK(\"http://evil.example\")", text="@SUM(A1)\x1b[31m red",
                      date=T0 + timedelta(days=30))  # the last row
    store.add_messages([hostile])
    store.set_label(store.messages()[0].message_id, "order_status", "normal")
    preds = {m.message_id: pred("complaint", 0.61, 0.2, urgency="high") for m in store.messages()}
    path = tmp_path / "labels.csv"
    assert labelling.export_csv(store, path, preds) == 5

    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == list(labelling.EXPORT_COLUMNS)
    assert all(len(r["excerpt"]) <= 200 for r in rows)
    assert rows[0]["category"] == "order_status" and rows[1]["category"] == ""
    assert {r["predicted_category"] for r in rows} == {"complaint"}
    assert rows[0]["confidence"] == "0.610"
    evil = next(r for r in rows if "evil" in r["sender"])
    assert evil["subject"].startswith("'=") and evil["excerpt"].startswith("'@")
    assert "\x1b" not in path.read_text(encoding="utf-8")
    assert evil["id"] == "'-1+1@evil.example"  # formula guard; import undoes it

    # a spreadsheet user fills in labels, and makes mistakes
    rows[1]["category"], rows[1]["urgency"] = "shipping_delivery", "high"
    rows[2]["category"], rows[2]["urgency"] = "Returns_Refunds", "NORMAL"  # case is forgiven
    rows[3]["category"], rows[3]["urgency"] = "refunds", "high"  # unknown category
    evil["category"], evil["urgency"] = "spam_vendor", "low"
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=labelling.EXPORT_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    text = out.getvalue()
    text += "nobody@nowhere,,,\"a\nmultiline\nexcerpt\",,,,feedback,low\n"  # lines 7-9
    text += "CAK7pQw1rZ0vH3bq9Lx-Tn5e2wQmYpA8sVd+Jt4c@mail.gmail.com,x,y\n"  # line 10: short
    text += f"{rows[1]['id']},,,,,,,order_status,sometime\n"  # line 11: bad urgency
    text += f"{rows[1]['id']},,,,,,,feedback,low\n"  # line 12: duplicate of line 3
    text += "\n"  # an empty line is no row
    path.write_text(text, encoding="utf-8")

    result = labelling.import_csv(store, path, CATEGORIES, URGENCIES)
    errors = dict(result.errors)
    assert sorted(errors) == [5, 7, 10, 11, 12], result.errors
    assert "unknown category 'refunds'" in errors[5]
    assert "unknown id 'nobody@nowhere'" in errors[7]
    assert "missing column(s)" in errors[10]
    assert "unknown urgency 'sometime'" in errors[11]
    assert "duplicate id (first on line 3)" in errors[12]
    assert (result.imported, result.unchanged) == (3, 1)
    labels = store.labels()
    assert labels[rows[1]["id"]] == ("shipping_delivery", "high")
    assert labels[rows[2]["id"]] == ("returns_refunds", "normal")
    assert labels["-1+1@evil.example"] == ("spam_vendor", "low")
    assert rows[3]["id"] not in labels

    again = labelling.import_csv(store, path, CATEGORIES, URGENCIES)
    assert (again.imported, again.unchanged, len(again.errors)) == (0, 4, 5)


def test_import_without_a_label_column_imports_nothing(store: Store, tmp_path: Path) -> None:
    store.add_messages(demo_messages(1))
    path = tmp_path / "broken.csv"
    mid = store.messages()[0].message_id
    path.write_text(f"id,category\n{mid},order_status\n", encoding="utf-8")
    result = labelling.import_csv(store, path, CATEGORIES, URGENCIES)
    assert result.errors == [(1, "missing column(s): urgency")]
    assert store.labels() == {}
    # a cp1252 file from a spreadsheet is still read
    path.write_bytes(f"id,category,urgency,note\n{mid},order_status,low,caf\xe9\n".encode("cp1252"))
    result = labelling.import_csv(store, path, CATEGORIES, URGENCIES)
    assert (result.imported, result.errors) == (1, [])


def test_rows_without_labels_are_left_alone(store: Store, tmp_path: Path) -> None:
    store.add_messages(demo_messages(1, 8))
    path = tmp_path / "export.csv"
    labelling.export_csv(store, path, {})
    result = labelling.import_csv(store, path, CATEGORIES, URGENCIES)
    assert (result.imported, result.unchanged, result.blank, result.errors) == (0, 0, 2, [])


# --- .eml export ---------------------------------------------------------------------------


def test_export_eml_parses_back_as_samples(store: Store, tmp_path: Path) -> None:
    # a non-ASCII sender, a reply with quoted history, an automated reply, an attachment
    store.add_messages(demo_messages(2, 14, 37, 28, 1))
    wanted = {m.message_id: m for m in store.messages() if not m.subject.startswith("Order")}
    for i, mid in enumerate(sorted(wanted)):
        store.set_label(mid, CATEGORIES[i], URGENCIES[i % 4])
    out = tmp_path / "samples"
    assert labelling.export_eml(store, out) == 4

    with (out / "labels.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["file"] for r in rows] == [f"label-{i:04d}.eml" for i in range(1, 5)]
    labels = store.labels()
    for row in rows:
        back = parse(RawMessage("eml:out", row["file"], (out / row["file"]).read_bytes()))
        assert isinstance(back, Message), back
        original = wanted[back.message_id]
        assert back.subject == original.subject
        assert back.sender_addr == original.sender_addr
        assert back.sender_name == original.sender_name
        assert back.in_reply_to == original.in_reply_to
        assert back.date == original.date
        assert back.text_new.strip() == original.text_new.strip()
        assert bool(back.automated) == bool(original.automated)
        assert (row["category"], row["urgency"]) == labels[back.message_id]
    assert any(wanted[mid].text_quoted for mid in wanted)
    # the folder is a valid training set for `dataset`
    data = dataset.load_folder(out)
    assert len(data.inputs) == 4 and sorted(data.categories) == sorted(r["category"] for r in rows)


# --- audit ---------------------------------------------------------------------------------

TOPICS = {
    "shipping_delivery": "parcel courier tracking depot delivery van driver doorstep",
    "billing_payment": "invoice card charged payment receipt vat declined bank",
    "product_question": "grinder burr size material stock colour compatible beans",
}


def synthetic(n: int = 8) -> tuple[list[str], list[str], list[str], list[str]]:
    texts, cats, urgs, ids_ = [], [], [], []
    for category, words in TOPICS.items():
        vocab = words.split()
        for i in range(n):
            texts.append(" ".join(vocab[(i + j) % len(vocab)] for j in range(6)) + f" ref{i}")
            cats.append(category)
            urgs.append("high" if category == "shipping_delivery" else "normal")
            ids_.append(f"{category}-{i}")
    return texts, cats, urgs, ids_


def test_audit_finds_a_deliberately_wrong_label() -> None:
    texts, cats, urgs, ids_ = synthetic()
    wrong = ids_.index("billing_payment-3")
    cats[wrong] = "product_question"
    result = labelling.audit(texts, cats, urgs, ids_, min_confidence=0.5)
    assert result.checked == len(texts)
    flagged = [(i.message_id, i.target, i.label, i.predicted) for i in result.items]
    assert flagged[0] == ("billing_payment-3", "category", "product_question", "billing_payment")
    assert [i.confidence for i in result.items] == sorted(
        (i.confidence for i in result.items), reverse=True)
    assert all(i.confidence >= 0.5 for i in result.items)
    assert result.too_small == {}


def test_audit_skips_classes_too_small_to_cross_validate() -> None:
    texts, cats, urgs, ids_ = synthetic()
    texts.append("a single wholesale enquiry")
    cats.append("wholesale_partnership")
    urgs.append("normal")
    ids_.append("lonely")
    result = labelling.audit(texts, cats, urgs, ids_, min_confidence=0.99)
    assert result.too_small == {"category": {"wholesale_partnership": 1}}
    assert all(i.message_id != "lonely" or i.target == "urgency" for i in result.items)
