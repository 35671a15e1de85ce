"""`supportcli report` for cron: formats, mailing through a real SMTP server, the lock,
--fail-on, --quiet, --log-file and "since the last report" remembered only on success."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from test_mailer import PASSWORD, USER, Servers, servers  # noqa: F401  (fixture)

from supportcli import resources
from supportcli.cli import main
from supportcli.reporting import run_lock
from supportcli.store import Store

DEMO = resources.demo_dir()
AS_OF = "2026-11-20T10:00:00+00:00"
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")


@pytest.fixture
def stocked(capsys: pytest.CaptureFixture[str]) -> None:
    """The demo inbox imported into the store."""
    assert main(["triage", str(DEMO), "-n", "1"]) == 0
    capsys.readouterr()


def report(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["report", "--offline", "--as-of", AS_OF, *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_text_report_fits_80_columns_and_has_every_section(
    stocked: None, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = report(capsys)
    assert code == 0, err
    assert max(len(line) for line in out.splitlines()) <= 80
    positions = [out.find(h) for h in ("HEADLINE", "ANSWER FIRST", "PAST THE RESPONSE TARGET")]
    assert -1 not in positions and positions == sorted(positions)
    assert "Awaiting a reply" in out and "Urgent" in out


def test_html_report_to_file_is_self_contained(
    stocked: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "report.html"
    code, out, _ = report(capsys, "--format", "html", "--output", str(target))
    assert code == 0 and out == ""
    html = target.read_text(encoding="utf-8")
    assert html.lstrip().lower().startswith("<!doctype html")
    assert "<svg" in html and "<script" not in html.lower()
    assert "http://" not in html and "https://" not in html


def test_markdown_report(stocked: None, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = report(capsys, "--format", "markdown")
    assert code == 0
    assert out.startswith("#") and "|" in out


def test_fail_on_quiet_and_log_file(
    stocked: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log_file = tmp_path / "report.log"
    code, out, err = report(capsys, "--fail-on", "urgent", "--log-file", str(log_file),
                            "--output", str(tmp_path / "r.txt"))  # fmt: skip
    assert code == 10
    assert out == ""
    [waiting] = err.splitlines()  # one line says what is waiting
    assert re.fullmatch(r"\d+ threads? at urgent or above awaiting a reply \(\d+ urgent\): "
                        r"exit 10 \(--fail-on urgent\)", waiting), waiting
    for quiet in (["--quiet", "report"], ["report", "--quiet"], ["report", "-q"]):
        assert main([*quiet, "--offline", "--as-of", AS_OF, "--fail-on", "high", "-o",
                     str(tmp_path / "q.txt")]) == 10  # fmt: skip
        assert capsys.readouterr().err == ""  # --quiet before or after the command
    [line] = log_file.read_text().splitlines()
    assert "report ok" in line and "urgent=" in line
    assert main(["--quiet", "report", "--offline", "--as-of", AS_OF, "--output",
                 str(tmp_path / "r2.txt")]) == 0  # fmt: skip
    out, err = capsys.readouterr()
    assert out == "" and err == ""
    assert len(log_file.read_text().splitlines()) == 1


def test_since_last_report_advances_only_on_success(
    stocked: None, tmp_path: Path, isolated_state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, _ = report(capsys, "--output", str(tmp_path / "first.txt"))
    assert code == 0
    first = (tmp_path / "first.txt").read_text(encoding="utf-8")
    with Store(isolated_state / "supportcli.db") as store:
        runs = store.db.execute("SELECT status FROM runs WHERE command='report'").fetchall()
    assert [r[0] for r in runs] == ["ok"]
    broken = tmp_path / "broken.toml"
    broken.write_text('[report]\ntimezone = "Mars/Olympus"\n')
    assert main(["--config", str(broken), "report", "--offline", "--as-of", AS_OF,
                 "-o", str(tmp_path / "x.txt")]) == 3  # fmt: skip
    capsys.readouterr()
    with Store(isolated_state / "supportcli.db") as store:
        statuses = [r[0] for r in store.db.execute("SELECT status FROM runs ORDER BY id")]
    assert "ok" in statuses and statuses.count("ok") == 1
    _, second, _ = report(capsys)
    assert "Last report never" in first and "Last report never" not in second


def test_a_second_overlapping_run_is_refused(
    stocked: None, isolated_state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with run_lock(isolated_state):
        code, _, err = report(capsys)
    assert code == 6
    assert "another supportcli report is running" in err
    assert len(err.strip().splitlines()) == 1
    code, _, _ = report(capsys)
    assert code == 0  # the lock is free again


def test_lock_is_released_when_a_run_is_killed(isolated_state: Path) -> None:
    """flock dies with its process: a SIGKILLed run leaves no stale lock."""
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time; from pathlib import Path; from supportcli.reporting import run_lock\n"
         "with run_lock(Path(sys.argv[1])):\n    print('locked', flush=True); time.sleep(60)",
         str(isolated_state)],
        stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[1],
    )  # fmt: skip
    assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
    holder.kill()
    holder.wait(timeout=10)
    holder.stdout.close()
    with run_lock(isolated_state):
        pass


def test_mailed_report_is_multipart(
    stocked: None,
    servers: Servers,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        f'[smtp]\nhost = "127.0.0.1"\nport = {servers.starttls}\nsecurity = "starttls"\n'
        f'from = "Reports <{USER}>"\nusername = "{USER}"\npassword_env = "SMTP_PW"\n'
        f'ca_file = "{servers.cert}"\n'
    )
    monkeypatch.setenv("SMTP_PW", PASSWORD)
    before = len(servers.inbox.messages)
    code = main(["-vv", "--config", str(config), "report", "--offline", "--as-of", AS_OF,
                 "--mail-to", "owner@shop.example"])  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 0, err
    assert out == "" and "mailed to owner@shop.example" in err
    assert PASSWORD not in out + err
    _, msg = servers.inbox.messages[before]
    assert msg.get_content_type() == "multipart/alternative"
    kinds = [part.get_content_type() for part in msg.iter_parts()]
    assert kinds == ["text/plain", "text/html"]
    assert "urgent" in str(msg["Subject"])


def test_missing_smtp_password_is_exit_3_without_prompting(
    stocked: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[smtp]\nhost = "127.0.0.1"\nfrom = "r@shop.example"\nusername = "r"\n')
    env_before = dict(os.environ)
    code = main(["--config", str(config), "report", "--offline", "--as-of", AS_OF,
                 "--mail-to", "owner@shop.example"])  # fmt: skip
    assert code == 3
    assert "no password source" in capsys.readouterr().err
    assert dict(os.environ) == env_before


def last_marker(home: Path) -> object:
    from supportcli.reporting import last_report_at

    with Store(home / "supportcli.db") as store:
        return last_report_at(store)


def test_a_report_only_looked_at_does_not_move_the_marker(
    stocked: None, tmp_path: Path, isolated_state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = report(capsys)
    assert code == 0 and "Last report never" in out
    assert last_marker(isolated_state) is None
    code, out, _ = report(capsys)
    assert "Last report never" in out  # still: the first one was only looked at
    assert report(capsys, "-o", str(tmp_path / "r.txt"))[0] == 0
    assert str(last_marker(isolated_state)) == "2026-11-20 10:00:00+00:00"


def test_as_of_never_moves_the_marker_backwards(
    stocked: None, tmp_path: Path, isolated_state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert report(capsys, "-o", str(tmp_path / "now.txt"))[0] == 0
    code = main(["report", "--offline", "--as-of", "2026-11-18T10:00:00+00:00",
                 "-o", str(tmp_path / "old.txt")])  # fmt: skip
    assert code == 0
    assert str(last_marker(isolated_state)) == "2026-11-20 10:00:00+00:00"
    assert "Last report Fri 20 Nov 2026" in (tmp_path / "old.txt").read_text(encoding="utf-8")


@pytest.mark.parametrize("fmt", ["text", "markdown", "html"])
def test_demo_report_needs_no_imap_and_leaves_the_store_alone(
    fmt: str, tmp_path: Path, isolated_state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / f"report.{fmt}"
    code = main(["report", "--demo", "-f", fmt, "-o", str(target)])
    out, err = capsys.readouterr()
    assert out == ""
    assert code == 0, err
    text = target.read_text(encoding="utf-8")
    assert "20 Nov 2026 09:40" in text  # as of the demo's newest message
    assert "PayPal dispute opened" in text and "awaiting a reply" in text.lower()
    if fmt == "html":
        assert text.lstrip().lower().startswith("<!doctype html")
    with Store(isolated_state / "supportcli.db") as store:
        assert store.count_messages() == 0
        assert store.db.execute("SELECT count(*) FROM runs").fetchone()[0] == 0


def test_report_on_a_path(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = report(capsys, str(DEMO))
    assert code == 0, err
    assert "ANSWER FIRST" in out and "PayPal dispute opened" in out
    code, _, err = report(capsys, str(tmp_path / "missing.mbox"))
    assert code == 4 and "no such file" in err


def test_readme_quick_start_shows_the_demo_report() -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    quick_start = readme[: readme.index("## Daily use")]
    assert "supportcli report --demo -f html -o report.html" in quick_start
