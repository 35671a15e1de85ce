"""Training on the shop's own labels: custom categories, too-few refusal, the not-worse guard,
--force, versions and rollback."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import pytest

from supportcli import resources
from supportcli.cli import main
from supportcli.parse import parse
from supportcli.records import Message, RawMessage
from supportcli.store import Store

SAMPLES = resources.samples_dir()


def _parse(path: Path) -> Message:
    msg = parse(RawMessage("test", path.name, path.read_bytes()))
    assert isinstance(msg, Message)
    return msg


def _labelled(folder: Path, labels: Path, prefix: str = "") -> list[tuple[Message, str, str]]:
    with labels.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return [(_parse(folder / r["file"]), r["category"], r["urgency"]) for r in rows]


def _seed(store_path: Path, items: list[tuple[Message, str, str]]) -> None:
    with Store(store_path) as store:
        store.add_messages([m for m, _, _ in items])
        for m, category, urgency in items:
            store.set_label(m.message_id, category, urgency)


def _engraving_messages(n: int) -> list[tuple[Message, str, str]]:
    items = []
    for i in range(n):
        raw = (
            f"From: buyer{i}@example.com\r\nTo: support@shop.example\r\n"
            f"Subject: engraving request {i}\r\nMessage-ID: <engrave-{i}@example.com>\r\n"
            f"Date: Mon, {i + 1} Jun 2026 10:00:00 +0000\r\n\r\n"
            f"Hi, could you engrave the initials {'AB' if i % 2 else 'JK'}{i} on the "
            f"{'tumbler' if i % 3 else 'pen'}? Which engraving fonts do you offer "
            "for personalised engraving?\r\n"
        ).encode()
        items.append((_parse_bytes(raw), "engraving", "normal"))
    return items


def _parse_bytes(raw: bytes) -> Message:
    msg = parse(RawMessage("test", "x", raw))
    assert isinstance(msg, Message)
    return msg


def _config(tmp_path: Path, extra: list[str]) -> Path:
    config = tmp_path / "config.toml"
    config.write_text(f"[labels]\nextra_categories = {json.dumps(extra)}\n", encoding="utf-8")
    return config


def test_custom_category_with_too_few_examples_is_refused(
    tmp_path: Path, isolated_state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _seed(isolated_state / "supportcli.db", _engraving_messages(2))
    code = main(["--config", str(_config(tmp_path, ["engraving"])), "train"])
    err = capsys.readouterr().err
    assert code == 2
    assert "engraving has 2, needs 3 more" in err


@pytest.mark.slow
def test_custom_category_is_learned_and_rollback_works(
    tmp_path: Path, isolated_state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _seed(isolated_state / "supportcli.db", _engraving_messages(12))
    config = str(_config(tmp_path, ["engraving"]))
    assert main(["--config", config, "train", "--force"]) == 0
    out = capsys.readouterr().out
    assert "engraving" in out and "installed and active" in out
    probe = tmp_path / "probe.eml"
    probe.write_bytes(
        b"From: z@example.com\r\nTo: support@shop.example\r\nSubject: engraving\r\n"
        b"Message-ID: <probe@example.com>\r\nDate: Mon, 16 Nov 2026 10:00:00 +0000\r\n\r\n"
        b"Can you engrave my initials on the tumbler, and which engraving fonts are there?\r\n"
    )
    assert main(["--config", config, "classify", str(probe), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["category"] == "engraving"

    assert main(["model", "list"]) == 0
    listing = capsys.readouterr().out
    assert "default" in listing and listing.count("v20") == 1
    assert main(["model", "use", "default"]) == 0
    capsys.readouterr()
    assert main(["--config", config, "classify", str(probe), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["category"] != "engraving"
    assert main(["model", "use", "no-such-version"]) == 2


@pytest.mark.slow
def test_scrambled_labels_are_refused_unless_forced(
    isolated_state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Older labels scrambled, the newest 20% (the held-out slice) correct: the new model is
    worse on the held-out slice, so it is kept but not installed; --force installs it."""
    train = _labelled(SAMPLES, SAMPLES / "labels.csv")[:120]
    categories = sorted({c for _, c, _ in train})
    scrambled = [
        (m, categories[(categories.index(c) + 3) % len(categories)], u) for m, c, u in train
    ]
    demo = _labelled(SAMPLES / "demo", SAMPLES / "demo" / "labels.csv")
    _seed(isolated_state / "supportcli.db", scrambled + demo)

    assert main(["train", "--own-weight", "8"]) == 0
    out = capsys.readouterr().out
    assert "NOT installed" in out
    assert "new vs current" in out
    assert main(["model", "list"]) == 0
    listing = capsys.readouterr().out
    active = [line for line in listing.splitlines() if "*" in line and "default" in line]
    assert active, listing

    assert main(["train", "--own-weight", "8", "--force"]) == 0
    assert "installed and active" in capsys.readouterr().out


def test_target_accuracy_in_the_config_sets_the_review_threshold(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    coverage = {}
    for target in (0.7, 0.95):
        config = tmp_path / f"c{target}.toml"
        config.write_text(f"[model]\ntarget_accuracy = {target}\n", encoding="utf-8")
        out_dir = tmp_path / f"m{target}"
        assert main(["--config", str(config), "train", "--output", str(out_dir)]) == 0
        printed = capsys.readouterr().out
        assert "coverage" in printed
        assert "not installed" in printed and "installed and active" not in printed
        meta = json.loads((out_dir / "meta.json").read_text())
        category = meta["metrics"]["category"]
        assert meta["metrics"]["target_accuracy"] == target
        assert category["covered_accuracy"] >= target - 0.02
        coverage[target] = category["coverage"]
    assert coverage[0.95] < coverage[0.7]
    bad = tmp_path / "bad.toml"
    bad.write_text("[model]\ntarget_accuracy = 7\n", encoding="utf-8")
    assert main(["--config", str(bad), "train", "--output", str(tmp_path / "x")]) == 3


@pytest.fixture
def small_samples(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Six bundled samples per category (the guard's logic, not the model, is under test):
    each fit takes a fraction of a second."""
    with (SAMPLES / "labels.csv").open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    chosen: list[dict[str, str]] = []
    for category in sorted({r["category"] for r in rows}):
        chosen += [r for r in rows if r["category"] == category][:6]
    folder = tmp_path / "samples"
    (folder / "train").mkdir(parents=True)
    for row in chosen:
        (folder / row["file"]).write_bytes((SAMPLES / row["file"]).read_bytes())
    with (folder / "labels.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=["file", "category", "urgency"])
        writer.writeheader()
        writer.writerows(chosen)
    monkeypatch.setattr(resources, "samples_dir", lambda: folder)
    return folder


def _comparison(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[dict[str, object], str]:
    assert main(["train", *args]) == 0
    out = capsys.readouterr().out
    assert main(["model", "list"]) == 0
    newest = sorted(v for v in capsys.readouterr().out.split() if v.startswith("v20"))[-1]
    meta = json.loads((Path(os.environ["SUPPORTCLI_HOME"]) / "models" / newest / "meta.json")
                      .read_text())  # fmt: skip
    return meta["comparison"], out


@pytest.mark.usefixtures("small_samples")
def test_the_guard_scores_both_models_on_labels_neither_was_trained_on(
    isolated_state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """First retrain: the current model (the default) never saw the shop's labels, so both
    are scored on the newest 20%. Retraining on exactly the same labels: the current model
    was trained on those, so both are cross-validated on the same folds (and, the same
    recipe, score the same: installed). New labels on newer mail: back to the newest 20%."""
    demo = sorted(_labelled(SAMPLES / "demo", SAMPLES / "demo" / "labels.csv"),
                  key=lambda item: item[0].date)  # fmt: skip
    _seed(isolated_state / "supportcli.db", demo[:30])

    first, out = _comparison(capsys, "--force")
    assert first["holdout"] == 6 and first["method"] == "holdout"
    assert "compared on your newest 6 labels, which neither model was trained on" in out

    again, out = _comparison(capsys)
    assert again["new"] == again["current"], again  # scored on the held-out slice, unequal
    assert again["installed"] and "installed and active" in out
    assert again["method"] == "cross-validation" and again["folds"] == 3
    assert "compared by 3-fold cross-validation of both on the same folds of your 30" in out

    _seed(isolated_state / "supportcli.db", demo[30:])
    later, out = _comparison(capsys)
    assert later["method"] == "holdout" and later["holdout"] == 8
    assert "on your newest 8 labels, which neither model was trained on" in out


def test_train_progress_counts_the_fits_of_each_step(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import io
    import sys

    from joblib import Parallel, delayed

    from supportcli.commands import train_progress

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    seen: list[str] = []

    class Recording:
        def __init__(self, *_: object, **__: object) -> None:
            pass

        def __enter__(self) -> Recording:
            return self

        def __exit__(self, *_: object) -> None:
            pass

        def add_task(self, description: str, total: object = None) -> int:
            seen.append(description)
            return 0

        def update(self, task: int, description: str) -> None:
            seen.append(description)

    terminal = Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    monkeypatch.delenv("NO_COLOR")
    monkeypatch.setattr("rich.progress.Progress", Recording)
    with train_progress.train_progress(quiet=False):
        Parallel(n_jobs=1)(delayed(abs)(-n) for n in range(3))
        Parallel(n_jobs=1)(delayed(abs)(-n) for n in range(2))
        print("a line of its own", file=sys.stderr)
    assert seen[0] == "step 1: reading the labelled messages"
    assert "step 1: 3 of 3 fits done (cross-validation folds and the final model)" in seen
    assert any(s.startswith("step 2: 2 of 2 fits done") for s in seen)
    assert "[Parallel" not in terminal.getvalue()  # joblib's own lines are not shown
    assert "a line of its own" in terminal.getvalue()
    seen.clear()
    with train_progress.train_progress(quiet=True):
        Parallel(n_jobs=1)(delayed(abs)(-n) for n in range(2))
    assert seen == []
