"""Local mail sources: mbox, Maildir, .eml folders, one file, stdin, and picking among them.

mbox and Maildir fixtures are built in tmp_path with the stdlib ``mailbox`` module, the way
other mail tools write them.
"""

from __future__ import annotations

import io
import mailbox
import os
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

import pytest

from supportcli.errors import ExitCode, SourceError
from supportcli.parse import parse
from supportcli.records import Message, ParseFailure
from supportcli.sources import MessageSource
from supportcli.sources.files import (
    EmlFolderSource,
    MaildirSource,
    MboxSource,
    SingleFileSource,
    StdinSource,
    open_path,
)

MAIL = Path(__file__).parent / "mail"


def make_mail(subject: str, body: str, sender: str = "anna@example.com") -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = "support@shop.example"
    msg["Subject"] = subject
    msg["Date"] = "Tue, 04 Mar 2025 09:12:00 +0000"
    msg["Message-ID"] = f"<{subject.replace(' ', '-')}@example.com>"
    msg.set_content(body)
    return msg


def subjects(source: MessageSource) -> list[str]:
    out = []
    for raw in source.iter_messages():
        message = parse(raw)
        assert isinstance(message, Message), message
        out.append(message.subject)
    return out


# --- mbox ----------------------------------------------------------------------------------


def test_mbox_yields_each_message_with_a_from_line_inside_a_body(tmp_path: Path):
    path = tmp_path / "support.mbox"
    box = mailbox.mbox(path)
    box.add(make_mail("first", "Hello,\nFrom what I can see the parcel is lost.\nAnna\n"))
    box.add(make_mail("second", "Where is my order?\n"))
    box.add(make_mail("third", "Please cancel.\n"))
    box.close()
    assert b"\n>From what I can see" in path.read_bytes()  # mailbox escaped it on write

    raws = list(MboxSource(path).iter_messages())
    assert [r.key for r in raws] == ["0", "1", "2"]
    assert subjects(MboxSource(path)) == ["first", "second", "third"]
    first = parse(raws[0])
    assert isinstance(first, Message)
    assert "From what I can see the parcel is lost." in first.text_new  # unescaped, not a quote
    assert first.text_quoted == ""
    assert not raws[0].data.startswith(b"From ")  # the From_ separator line is not the mail


def test_mboxrd_escaping_is_undone_one_level(tmp_path: Path):
    path = tmp_path / "rd.mbox"
    path.write_bytes(
        b"From anna@example.com Tue Mar  4 09:12:00 2025\n"
        b"From: anna@example.com\nSubject: escaped\n\n"
        b">From the start\n>>From a quote\nplain\n\n"
        b"From bob@example.com Wed Mar  5 10:00:00 2025\n"
        b"From: bob@example.com\nSubject: next\n\nhello\n"
    )
    raws = list(MboxSource(path).iter_messages())
    assert len(raws) == 2
    assert b"\nFrom the start\n>From a quote\nplain" in raws[0].data
    assert raws[0].received == datetime(2025, 3, 4, 9, 12, tzinfo=UTC)  # from the From_ line
    assert raws[1].received == datetime(2025, 3, 5, 10, 0, tzinfo=UTC)


def test_empty_mbox_yields_nothing(tmp_path: Path):
    path = tmp_path / "empty.mbox"
    path.write_bytes(b"")
    assert list(MboxSource(path).iter_messages()) == []


# --- Maildir -------------------------------------------------------------------------------


def test_maildir_new_and_cur_with_flags_from_file_names(tmp_path: Path):
    box = mailbox.Maildir(tmp_path / "Maildir")
    unread = mailbox.MaildirMessage(make_mail("unread", "new mail"))
    box.add(unread)  # lands in new/
    seen = mailbox.MaildirMessage(make_mail("seen", "read mail"))
    seen.set_subdir("cur")
    seen.set_flags("S")
    box.add(seen)
    answered = mailbox.MaildirMessage(make_mail("answered", "answered mail"))
    answered.set_subdir("cur")
    answered.set_flags("RS")
    box.add(answered)
    box.close()

    source = open_path(str(tmp_path / "Maildir"))
    assert isinstance(source, MaildirSource)
    by_subject = {}
    for raw in source.iter_messages():
        message = parse(raw)
        assert isinstance(message, Message)
        by_subject[message.subject] = raw
    assert set(by_subject) == {"unread", "seen", "answered"}
    assert by_subject["unread"].flags == ()
    assert by_subject["seen"].flags == ("\\Seen",)
    assert set(by_subject["answered"].flags) == {"\\Seen", "\\Answered"}
    assert all(":2," not in raw.key for raw in by_subject.values())  # keys stay stable
    assert all(raw.received is not None for raw in by_subject.values())


def test_maildir_without_tmp_and_with_a_missing_new(tmp_path: Path):
    (tmp_path / "cur").mkdir()
    (tmp_path / "new").mkdir()
    (tmp_path / "cur" / "1700000000.M1P1.host:2,F").write_bytes(
        make_mail("flagged", "x").as_bytes()
    )
    source = open_path(str(tmp_path))
    assert isinstance(source, MaildirSource)
    raws = list(source.iter_messages())
    assert [(r.key, r.flags) for r in raws] == [("1700000000.M1P1.host", ("\\Flagged",))]
    (tmp_path / "new").rmdir()
    assert len(list(MaildirSource(tmp_path).iter_messages())) == 1


# --- .eml folders, single files, stdin -----------------------------------------------------


def test_eml_folder_is_sorted_and_nested(tmp_path: Path):
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "deeper").mkdir(parents=True)
    (tmp_path / "b" / "2.eml").write_bytes(make_mail("b2", "x").as_bytes())
    (tmp_path / "a" / "deeper" / "1.eml").write_bytes(make_mail("a-deeper-1", "x").as_bytes())
    (tmp_path / "a" / "9.EML").write_bytes(make_mail("a9", "x").as_bytes())
    (tmp_path / "notes.txt").write_text("not mail")
    (tmp_path / "._2.eml").write_bytes(b"\x00\x05\x16\x07 AppleDouble junk")
    source = open_path(str(tmp_path))
    assert isinstance(source, EmlFolderSource)
    assert [r.key for r in source.iter_messages()] == ["a/9.EML", "a/deeper/1.eml", "b/2.eml"]
    assert subjects(source) == ["a9", "a-deeper-1", "b2"]


def test_the_test_mail_folder_parses_completely():
    source = open_path(str(MAIL))
    assert isinstance(source, EmlFolderSource)
    results = [parse(raw) for raw in source.iter_messages()]
    assert len(results) >= 25
    assert all(isinstance(m, Message) for m in results)


def test_unreadable_file_in_a_folder_is_reported_and_the_others_go_on(tmp_path: Path):
    (tmp_path / "1.eml").write_bytes(make_mail("one", "x").as_bytes())
    (tmp_path / "2.eml").symlink_to(tmp_path / "gone.eml")  # a directory entry nobody can read
    (tmp_path / "3.eml").write_bytes(make_mail("three", "x").as_bytes())
    raws = list(EmlFolderSource(tmp_path).iter_messages())
    assert [r.key for r in raws] == ["1.eml", "2.eml", "3.eml"]
    results = [parse(raw) for raw in raws]
    assert isinstance(results[0], Message) and isinstance(results[2], Message)
    failure = results[1]
    assert isinstance(failure, ParseFailure)
    assert failure.key == "2.eml"
    assert failure.reason == "cannot read 2.eml: broken symbolic link"
    assert "\n" not in failure.reason


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_file_without_read_permission_in_a_folder(tmp_path: Path):
    locked = tmp_path / "locked.eml"
    locked.write_bytes(make_mail("locked", "x").as_bytes())
    locked.chmod(0)
    (tmp_path / "open.eml").write_bytes(make_mail("open", "x").as_bytes())
    try:
        results = [parse(raw) for raw in EmlFolderSource(tmp_path).iter_messages()]
    finally:
        locked.chmod(0o600)
    assert isinstance(results[0], ParseFailure)
    assert "Permission denied" in results[0].reason
    assert isinstance(results[1], Message)


def test_single_file(tmp_path: Path):
    source = open_path(str(MAIL / "lang_fr.eml"))
    assert isinstance(source, SingleFileSource)
    raws = list(source.iter_messages())
    assert len(raws) == 1
    assert raws[0].key == "lang_fr.eml"
    assert raws[0].received is not None
    assert subjects(source) == ["Question sur un produit"]


def test_single_eml_starting_with_a_from_line_is_read_as_mbox(tmp_path: Path):
    path = tmp_path / "export.eml"
    from_line = b"From x@example.com Tue Mar  4 09:12:00 2025\n"
    path.write_bytes(from_line + make_mail("one", "x").as_bytes())
    source = open_path(str(path))
    assert isinstance(source, MboxSource)
    assert subjects(source) == ["one"]


def test_stdin_reads_one_message():
    data = make_mail("from stdin", "Where is my order?").as_bytes()
    source = StdinSource(stream=io.BytesIO(data))
    raws = list(source.iter_messages())
    assert [(r.source, r.key, r.data) for r in raws] == [("stdin", "-", data)]
    assert subjects(StdinSource(stream=io.BytesIO(data))) == ["from stdin"]


def test_an_mbox_on_stdin_is_read_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)  # TMPDIR is read again
    box = tmp_path / "in.mbox"
    mbox = mailbox.mbox(box)
    for n in range(5):
        mbox.add(make_mail(f"message {n}", "From the start, this line is no separator."))
    mbox.close()
    source = StdinSource(stream=io.BytesIO(box.read_bytes()))
    raws = list(source.iter_messages())
    assert [r.source for r in raws] == ["stdin"] * 5
    assert subjects(StdinSource(stream=io.BytesIO(box.read_bytes()))) == [
        f"message {n}" for n in range(5)
    ]
    assert [p.name for p in tmp_path.iterdir()] == ["in.mbox"]  # the spool file is gone


def test_dash_means_stdin():
    assert isinstance(open_path("-"), StdinSource)


def test_every_source_implements_the_protocol(tmp_path: Path):
    mailbox.mbox(tmp_path / "x.mbox").close()
    for source in (
        EmlFolderSource(tmp_path),
        SingleFileSource(MAIL / "lang_fr.eml"),
        StdinSource(stream=io.BytesIO(b"")),
        MboxSource(tmp_path / "x.mbox"),
        MaildirSource(tmp_path),
    ):
        assert isinstance(source, MessageSource)
        assert source.name


# --- errors --------------------------------------------------------------------------------


def test_missing_path_is_one_clear_line(tmp_path: Path):
    missing = tmp_path / "nope.mbox"
    with pytest.raises(SourceError) as info:
        open_path(str(missing))
    assert str(info.value) == f"no such file or folder: {missing}"
    assert info.value.exit_code == ExitCode.SOURCE


def test_broken_link_given_directly(tmp_path: Path):
    link = tmp_path / "x.eml"
    link.symlink_to(tmp_path / "gone.eml")
    with pytest.raises(SourceError, match=r"^broken link: .*x\.eml$"):
        open_path(str(link))


def test_single_file_vanishing_before_it_is_read(tmp_path: Path):
    path = tmp_path / "x.eml"
    path.write_bytes(make_mail("x", "x").as_bytes())
    source = open_path(str(path))
    path.unlink()
    with pytest.raises(SourceError) as info:
        list(source.iter_messages())
    assert info.value.message == f"cannot read {path}: No such file or directory"
    assert "\n" not in info.value.message


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_single_file(tmp_path: Path):
    path = tmp_path / "x.eml"
    path.write_bytes(b"From: a@example.com\n\nx")
    path.chmod(0)
    try:
        with pytest.raises(SourceError, match="permission denied"):
            open_path(str(path))
    finally:
        path.chmod(0o600)


def test_a_device_is_not_a_mail_source():
    with pytest.raises(SourceError, match="not a file or folder"):
        open_path("/dev/null")
