"""One catalogue of hostile strings, pushed through every output path: terminal tables,
classify/explain panels, csv/json/jsonl/markdown exports, every JSON output (each string in
it, whatever the field), the text/markdown/HTML reports, file names on stderr and the logs.
Escape sequences never reach the output, rich markup shows literally, spreadsheet formulas
are neutralised and HTML is escaped."""

from __future__ import annotations

import csv
import io
import json
import re
from email.header import Header
from email.mime.application import MIMEApplication
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from pathlib import Path

import pytest

from supportcli.cli import main

# Each entry goes into the subject, the sender's name, an attachment's name and the body.
CATALOGUE = {
    "ansi colour": "\x1b[31mRED\x1b[0m order 10234",
    "osc8 hyperlink": "\x1b]8;;http://evil.example/\x07click me\x1b]8;;\x07",
    "osc52 clipboard": "\x1b]52;c;cm0gLXJmIH4=\x07copy",
    "title set": "\x1b]0;owned\x07title",
    "8-bit csi": "\x9b31mred",
    "bell backspace cr": "ring\x07\x08\x08\rOVERWRITE",
    "bidi override": "invoice\u202egpj.exe",
    "zero width": "pay\u200bpal\u200d",
    "rich markup": "[bold red]alarm[/] [link=http://evil.example]x[/link]",
    "csv formula": '=HYPERLINK("http://evil.example","click")',
    "csv plus": "+cmd|' /C calc'!A0",
    "csv at": "@SUM(1+1)*cmd|' /C calc'!A0",
    "html script": '<script>alert(1)</script><img src=x onerror="alert(2)">',
    "markdown pipes": "a | b | `code` **bold**",
}
MAIL = Path(__file__).parent / "mail"
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def hostile_eml(name: str, text: str) -> bytes:
    """A real multipart message carrying ``text`` in its headers, body and attachment name
    (RFC 2047 / RFC 2231 encoded, as a mail client would send it)."""
    msg = MIMEMultipart()
    msg["From"] = f"{Header(text, 'utf-8').encode()} <mallory@example.com>"
    msg["To"] = "support@shop.example"
    msg["Subject"] = Header(text, "utf-8")
    msg["Message-ID"] = f"<{abs(hash(name))}@example.com>"
    msg["Date"] = "Fri, 20 Nov 2026 09:00:00 +0000"
    msg["Auto-Submitted"] = Header(f"auto-replied; {text}", "utf-8")
    msg.attach(MIMEText(f"Hello, where is my order #10234?\n\n{text}\n", "plain", "utf-8"))
    attachment = MIMEApplication(b"%PDF-1.4 tiny", "pdf")
    attachment.add_header(
        "Content-Disposition", "attachment", filename=("utf-8", "", f"{text}.pdf")
    )
    msg.attach(attachment)
    return msg.as_bytes()


@pytest.fixture(params=sorted(CATALOGUE), ids=sorted(CATALOGUE))
def hostile(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, Path]:
    name = str(request.param)
    path = tmp_path / "hostile.eml"
    path.write_bytes(hostile_eml(name, CATALOGUE[name]))
    return name, path


def assert_clean(output: str, where: str) -> None:
    assert "\x1b" not in output, where
    assert not CONTROL.search(output), (where, CONTROL.findall(output)[:5])
    assert "\u202e" not in output and "\u200b" not in output, where


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    assert code == 0, (args, err)
    return out, err


def test_terminal_and_exports(
    hostile: tuple[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    name, path = hostile
    for fmt in ("table", "json", "jsonl", "csv", "markdown"):
        out, err = run(capsys, "-vv", "triage", str(path), "--all", "--format", fmt)
        assert_clean(out, f"{name} triage {fmt}")
        assert_clean(err, f"{name} triage {fmt} stderr")
        if fmt == "csv":
            for row in csv.DictReader(io.StringIO(out)):
                for key in ("subject", "sender_name"):
                    assert not row[key].startswith(("=", "+", "-", "@")), (name, key, row[key])
        if fmt == "json":
            record = json.loads(out)[0]
            assert record["subject"]
        if fmt == "table" and name == "rich markup":
            assert "[bold red]alarm[/]" in out
        if fmt == "markdown":
            assert "<script" not in out


def test_classify_and_explain(
    hostile: tuple[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    name, path = hostile
    for args in (["classify", str(path)], ["classify", str(path), "--json"],
                 ["explain", str(path)]):  # fmt: skip
        out, err = run(capsys, *args)
        assert_clean(out, f"{name} {args}")
        assert_clean(err, f"{name} {args} stderr")
    out, _ = run(capsys, "classify", str(path))
    if name == "rich markup":
        assert "[bold red]alarm[/]" in out
    assert ".pdf" in out  # the attachment is listed, its name made safe


@pytest.mark.parametrize("fmt", ["text", "markdown", "html"])
def test_reports(fmt: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for i, (name, text) in enumerate(sorted(CATALOGUE.items())):
        (inbox / f"{i:02d}.eml").write_bytes(hostile_eml(name, text))
    run(capsys, "triage", str(inbox), "-n", "1")
    out, err = run(capsys, "report", "--offline", "--format", fmt,
                   "--as-of", "2026-11-20T10:00:00+00:00")  # fmt: skip
    assert_clean(out, f"report {fmt}")
    assert_clean(err, f"report {fmt} stderr")
    if fmt == "html":
        assert "<script" not in out.lower()
        assert "onerror=" not in out.replace("onerror=&#34;", "")
        assert "&lt;script&gt;" in out
        assert "http://" not in out
    if fmt == "text":
        assert max(len(line) for line in out.splitlines()) <= 80


def _strings(value: object) -> list[str]:
    """Every string in decoded JSON, keys included, at any depth."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (*_strings(k), *_strings(v))]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def assert_clean_json(output: str, where: str, lines: bool = False) -> None:
    """Each string of the decoded JSON is clean: an escaped ESC (\\u001b) in the text comes
    back as a real one once a script decodes it."""
    documents = [json.loads(x) for x in output.splitlines()] if lines else [json.loads(output)]
    found = [s for d in documents for s in _strings(d)]
    assert found, where
    for text in found:
        assert_clean(text, f"{where}: {text!r}")


def test_every_json_output_is_clean_in_every_field(
    hostile: tuple[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    name, path = hostile
    out, _ = run(capsys, "triage", str(path), "--all", "--format", "json")
    assert_clean_json(out, f"{name} triage json")
    message_id = json.loads(out)[0]["message_id"]
    out, _ = run(capsys, "triage", str(path), "--all", "--format", "jsonl")
    assert_clean_json(out, f"{name} triage jsonl", lines=True)
    for args in (["classify", str(path)], ["explain", str(path)], ["explain", message_id]):
        out, _ = run(capsys, *args, "--json")
        assert_clean_json(out, f"{name} {args[0]} --json")
    labelled = tmp_path / "labelled"
    labelled.mkdir()
    (labelled / "m.eml").write_bytes(path.read_bytes())
    (labelled / "n.eml").write_bytes((MAIL / "reply_gmail.eml").read_bytes())
    (labelled / "labels.csv").write_text(
        "file,category,urgency\nm.eml,other,low\nn.eml,shipping_delivery,high\n"
    )
    out, _ = run(capsys, "evaluate", str(labelled), "--format", "json")
    assert_clean_json(out, f"{name} evaluate json")


def test_file_names_are_clean_on_stderr_at_default_verbosity(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Names from disk reach stderr (the "skipped" report, the log) made safe."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "good.eml").write_bytes(hostile_eml("good", "hello"))
    for text in CATALOGUE.values():
        (inbox / f"{text.replace('/', '_')}.eml").write_bytes(b"\x00 not a mail")
    out, err = run(capsys, "triage", str(inbox), "--all")
    assert f"skipped {len(CATALOGUE)} message(s)" in err
    assert_clean(out, "triage stdout")
    assert_clean(err, "triage stderr")
