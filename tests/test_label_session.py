"""The real interactive labelling session in a pseudo-terminal (pexpect): accept, correct with
number keys, skip, undo, quit, and a SIGKILL mid-session that loses nothing answered. Plus
piped answers, the no-input error, and the export/import/set companions, all as subprocesses.

Until ``cli.py`` mounts the sub-app, the child process mounts it itself (see RUNNER); once it
is mounted, RUNNER is the same as ``python -m supportcli``.
"""

from __future__ import annotations

import csv
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pexpect
import pytest

from supportcli import resources
from supportcli.sources.files import open_path
from supportcli.store import Store
from supportcli.workflows import ingest

REPO = Path(__file__).resolve().parents[1]
RUNNER = (
    "from supportcli.cli import app, main\n"
    "from supportcli.commands.label import label_app\n"
    "if not any(g.name == 'label' for g in app.registered_groups):\n"
    "    app.add_typer(label_app, name='label')\n"
    "main()\n"
)
_GAP = r"(?:\s|\x1b\[[0-9;]*m)+"  # spaces and the bold/dim codes that NO_COLOR keeps
SCREEN = re.compile(rf"│{_GAP}id{_GAP}([^\s\x1b]+).*?"
                    r"message (\d+)/(\d+) · labelled (\d+) · skipped (\d+)", re.DOTALL)


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Path | None:
    """Load the active model once; when it had to be rebuilt, its directory is reused."""
    from supportcli import workflows
    from supportcli.config import load_settings

    home = tmp_path_factory.mktemp("model-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SUPPORTCLI_HOME", str(home))
        mp.setenv("SUPPORTCLI_CONFIG", str(home / "config.toml"))
        workflows.load_model(load_settings())
    models = home / "models"
    return models if models.is_dir() else None


@pytest.fixture
def home(isolated_state: Path, model_cache: Path | None) -> Path:
    """A state dir whose store holds the demo inbox (40 messages), no labels yet."""
    if model_cache is not None:
        shutil.copytree(model_cache, isolated_state / "models")
    with Store(isolated_state / "supportcli.db") as store:
        ingest(open_path(str(resources.demo_dir())), store)
    return isolated_state


def labels(home: Path) -> dict[str, tuple[str, str]]:
    with Store(home / "supportcli.db") as store:
        return store.labels()


def predicted(home: Path, message_id: str) -> tuple[str, str]:
    with Store(home / "supportcli.db") as store:
        row = store.db.execute("SELECT category, urgency FROM predictions WHERE message_id = ?",
                               (message_id,)).fetchone()
    return (row[0], row[1])


def spawn(*args: str) -> pexpect.spawn:
    child = pexpect.spawn(sys.executable, ["-c", RUNNER, *args], cwd=str(REPO),
                          env={**os.environ, "COLUMNS": "200"}, dimensions=(80, 200),
                          encoding="utf-8", timeout=60)
    return child


def next_screen(child: pexpect.spawn) -> tuple[str, int]:
    """The message id and position of the next screen drawn."""
    child.expect(SCREEN)
    return child.match.group(1), int(child.match.group(2))


@pytest.fixture
def children() -> Iterator[list[pexpect.spawn]]:
    spawned: list[pexpect.spawn] = []
    yield spawned
    for child in spawned:
        if child.isalive():
            child.kill(signal.SIGKILL)
        child.close(force=True)


def test_accept_correct_skip_undo_quit(home: Path, children: list[pexpect.spawn]) -> None:
    child = spawn("label", "--limit", "5")
    children.append(child)
    first, pos = next_screen(child)
    assert pos == 1 and labels(home) == {}

    child.send("\r")  # Enter accepts the model's two labels
    second, pos = next_screen(child)
    assert pos == 2 and second != first
    assert labels(home) == {first: predicted(home, first)}

    child.send("3")  # category 3 = returns_refunds, then urgency 1 = urgent
    child.expect("returns_refunds: urgency 1-4")
    assert len(labels(home)) == 1  # nothing saved before the urgency is chosen
    child.send("1")
    third, pos = next_screen(child)
    assert pos == 3
    assert labels(home)[second] == ("returns_refunds", "urgent")

    child.send("s")
    _, pos = next_screen(child)
    assert pos == 4 and third not in labels(home)

    child.send("u")  # un-skip
    assert next_screen(child) == (third, 3)
    assert len(labels(home)) == 2
    child.send("u")  # removes the label saved for the second message
    assert next_screen(child) == (second, 2)
    assert labels(home) == {first: predicted(home, first)}

    child.send("b")  # b = feedback; Esc goes back, then c = wholesale_partnership
    child.expect("feedback: urgency")
    child.send("\x1b")
    assert next_screen(child) == (second, 2)
    child.send("c")
    child.expect("wholesale_partnership: urgency")
    child.send("4")
    assert next_screen(child) == (third, 3)
    assert labels(home)[second] == ("wholesale_partnership", "low")

    child.send("f")  # the full message, paged; q goes back to the same message
    child.expect(r"page 1/\d+ · Space/Enter/f next page")
    child.send("q")
    assert next_screen(child) == (third, 3)
    child.send("x")  # an unknown key is refused, nothing saved
    child.expect("unknown key 'x'")
    child.send("q")
    child.expect("labelled 2, skipped 0, 3 left")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert labels(home) == {first: predicted(home, first),
                            second: ("wholesale_partnership", "low")}


def test_sigkill_loses_nothing_answered_and_the_next_session_resumes(
    home: Path, children: list[pexpect.spawn]
) -> None:
    child = spawn("label", "--order", "recent")
    children.append(child)
    first, _ = next_screen(child)
    child.send("\r")
    second, _ = next_screen(child)
    child.send("22")  # shipping_delivery, high: two keys at once
    child.expect("shipping_delivery: urgency")  # the screen after the first key
    third, pos = next_screen(child)
    assert pos == 3
    child.send("5")  # half an answer (a category, no urgency yet) when the kill comes
    child.expect("billing_payment: urgency")
    child.kill(signal.SIGKILL)
    child.expect(pexpect.EOF)
    child.close(force=True)
    assert child.signalstatus == signal.SIGKILL

    assert labels(home) == {first: predicted(home, first),
                            second: ("shipping_delivery", "high")}
    with Store(home / "supportcli.db") as store:
        assert store.integrity_ok()

    again = spawn("label", "--order", "recent")
    children.append(again)
    resumed, pos = next_screen(again)
    assert (resumed, pos) == (third, 1)  # the message that was on screen
    again.send("q")
    again.expect(pexpect.EOF)
    again.close()
    assert again.exitstatus == 0


def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", RUNNER, *args], cwd=REPO, text=True,
                          input=stdin, stdin=None if stdin is not None else subprocess.DEVNULL,
                          capture_output=True, timeout=120, check=False)


def test_piped_answers_and_no_input(home: Path) -> None:
    done = run("label", "--order", "recent", "--limit", "3", stdin="\n2 3\ns\n")
    assert done.returncode == 0, done.stderr
    assert "labelled 2, skipped 1" in done.stderr
    got = labels(home)
    assert len(got) == 2 and ("shipping_delivery", "normal") in got.values()

    refused = run("label")
    assert refused.returncode == 2
    assert "needs a terminal, or answers on stdin" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_export_edit_import_and_set_from_the_command_line(home: Path, tmp_path: Path) -> None:
    out = tmp_path / "labels.csv"
    done = run("label", "export", str(out))
    assert done.returncode == 0, done.stderr
    with out.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    header, body = rows[0], rows[1:]
    assert len(body) == 40 and all(row[4] for row in body)  # every row has a prediction
    body[0][7:9] = ["order_status", "normal"]
    body[1][7:9] = ["nonsense", "normal"]
    with out.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([header, *body])

    imported = run("label", "import", str(out))
    assert imported.returncode == 2
    assert f"{out}:3: unknown category 'nonsense'" in imported.stderr
    assert "imported 1 label(s)" in imported.stderr
    assert labels(home) == {body[0][0]: ("order_status", "normal")}

    changed = run("label", "set", f"<{body[1][0]}>", "--category", "complaint", "-u", "high")
    assert changed.returncode == 0, changed.stderr
    assert labels(home)[body[1][0]] == ("complaint", "high")
    bad = run("label", "set", body[1][0], "--category", "nonsense")
    assert bad.returncode == 2 and "unknown category" in bad.stderr

    samples = tmp_path / "samples"
    exported = run("label", "export", "--eml", str(samples))
    assert exported.returncode == 0, exported.stderr
    assert sorted(p.name for p in samples.iterdir()) == ["label-0001.eml", "label-0002.eml",
                                                          "labels.csv"]


def test_screen_shows_hostile_mail_as_plain_text(tmp_path: Path) -> None:
    from factories import message
    from rich.console import Console

    from supportcli import labelling
    from supportcli.commands.label_screen import screen
    from supportcli.config import CATEGORIES, URGENCIES

    evil = message("evil@x", subject="[bold red]URGENT[/] \x1b]8;;http://evil\x07click\x1b]8;;\x07",
                   text="line one\n\x1b[2Jcleared?\n" + "\n".join(f"l{i}" for i in range(60)))
    with Store(tmp_path / "s.db") as store:
        store.add_messages([evil])
        session = labelling.Session(store, [evil], CATEGORIES, URGENCIES, {})
        console = Console(record=True, width=80, color_system=None)
        console.print(screen(session, evil, width=80, height=40))
    text = console.export_text()
    assert "[bold red]URGENT[/] click" in text
    assert "\x1b" not in text and "cleared?" in text
    assert "more lines hidden — press f" in text
    assert re.search(r"model +no prediction", text)
    assert "message 1/1 · labelled 0 · skipped 0 · labels: none yet" in text


def _demo_session(tmp_path: Path) -> tuple[object, list[object]]:
    from supportcli import labelling
    from supportcli.config import CATEGORIES, URGENCIES

    store = Store(tmp_path / "s.db")
    ingest(open_path(str(resources.demo_dir())), store)
    messages = store.messages()
    return labelling.Session(store, messages, CATEGORIES, URGENCIES, {}), messages


def test_the_header_and_the_keys_fit_80_by_24(tmp_path: Path) -> None:
    from rich.console import Console

    from supportcli.commands.label_screen import screen

    session, messages = _demo_session(tmp_path)
    for message in messages:
        for picked, notice in ((None, ""), ("returns_refunds", "saved complaint / urgent")):
            console = Console(record=True, width=80, height=24, color_system=None)
            console.print(screen(session, message, picked=picked, notice=notice,  # type: ignore[arg-type]
                                 width=80, height=24))
            lines = console.export_text().splitlines()
            assert len(lines) <= 23, (message.subject, len(lines))  # type: ignore[attr-defined]
            assert max(len(line) for line in lines) <= 80
            head = "\n".join(lines[:6])
            for name in ("from", "date", "subject", "model"):
                assert re.search(rf"│ {name} ", head), head
            assert lines[-1 if not notice else -2].strip().startswith(
                ("Enter/a accept", "returns_refunds: urgency"))


def test_f_pages_the_full_message(tmp_path: Path) -> None:
    import io

    from rich.console import Console

    from supportcli.commands.label_screen import KeyReader, page_message

    _, messages = _demo_session(tmp_path)
    longest = max(messages, key=lambda m: len(m.text_new) + len(m.text_quoted))  # type: ignore[attr-defined]
    console = Console(record=True, width=80, height=12, color_system=None)
    keys = KeyReader(io.StringIO(" \nb\nq\n"))
    page_message(longest, keys, console)  # type: ignore[arg-type]
    text = console.export_text()
    pages = re.findall(r"page (\d+)/(\d+) · Space/Enter/f next page", text)
    assert [p for p, _ in pages] == ["1", "2", "1"] and int(pages[0][1]) >= 2
    assert text.count(longest.subject) == 3  # type: ignore[attr-defined]
    assert max(len(line) for line in text.splitlines()) <= 80
