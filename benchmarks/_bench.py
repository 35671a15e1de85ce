"""Helpers shared by the benchmark scripts (not a benchmark itself).

- paths: the repository, ``samples/train`` and ``../shared/data``;
- timing: repeated runs summarised as best and median (other jobs may share the machine);
- child processes: wall time and peak RSS of one child, from ``os.wait4``;
- mail: samples re-sent as new messages (fresh Message-IDs, per-copy threads and senders,
  shifted dates), and mbox files built from them;
- a plain text table printer.
"""

from __future__ import annotations

import contextlib
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime
from pathlib import Path
from typing import BinaryIO

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "samples" / "train"
DATA = REPO.parent / "shared" / "data"


# --- timing ----------------------------------------------------------------------------------


def best_median(values: Sequence[float]) -> tuple[float, float]:
    """(smallest, median) of repeated timings."""
    return min(values), statistics.median(values)


def repeat(action: Callable[[], float], times: int) -> list[float]:
    """Run ``action`` (which returns the seconds it measured) ``times`` times."""
    return [action() for _ in range(times)]


# --- child processes -------------------------------------------------------------------------


@dataclass(frozen=True)
class ChildRun:
    """One finished child process: wall time, exit code, peak RSS and its output."""

    seconds: float
    returncode: int
    max_rss_mb: float  # the child process itself
    stdout: str
    stderr: str
    cpu_seconds: float = 0.0  # user + system time of the child itself
    tree_rss_mb: float | None = None  # sampled peak of the child + its descendants, summed

    def check(self, what: str) -> ChildRun:
        if self.returncode != 0:
            raise RuntimeError(f"{what} exited with {self.returncode}:\n{self.stderr[-2000:]}")
        return self


def run_child(
    argv: Sequence[str],
    env: dict[str, str] | None = None,
    timeout: float = 900.0,
    *,
    watch_tree: bool = False,
) -> ChildRun:
    """Run ``argv`` in REPO; its peak RSS comes from ``wait4`` (this child only). With
    ``watch_tree``, the summed RSS of the child and its worker processes is also sampled
    every 50 ms (needs psutil)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(
            list(argv), cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err
        )
        killer = threading.Timer(timeout, proc.kill)
        killer.start()
        watcher = _TreeWatcher(proc.pid) if watch_tree else None
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            killer.cancel()
            tree_peak = watcher.stop() if watcher else None
        seconds = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)  # already reaped
        out.seek(0)
        err.seek(0)
        return ChildRun(
            seconds,
            proc.returncode,
            usage.ru_maxrss / 1024,  # kilobytes on Linux
            out.read().decode("utf-8", "replace"),
            err.read().decode("utf-8", "replace"),
            usage.ru_utime + usage.ru_stime,
            tree_peak,
        )


class _TreeWatcher:
    """Samples the summed RSS of a process and its descendants in a thread."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = 0.0
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            import psutil
        except ImportError:
            self.peak = -1.0
            return
        while not self.done.wait(0.05):
            try:
                root = psutil.Process(self.pid)
                procs = [root, *root.children(recursive=True)]
                total = 0
                for p in procs:
                    with contextlib.suppress(psutil.Error):
                        total += p.memory_info().rss
            except psutil.Error:
                continue
            self.peak = max(self.peak, total / 2**20)

    def stop(self) -> float | None:
        self.done.set()
        self.thread.join()
        return None if self.peak < 0 else self.peak


def child_env(home: Path, **extra: str) -> dict[str, str]:
    """The environment for a supportcli child: its own state dir, no colour, no config (its
    config file is in that state dir, and absent)."""
    env = dict(os.environ)
    env.update({"SUPPORTCLI_HOME": str(home), "SUPPORTCLI_CONFIG": str(home / "config.toml"),
                "NO_COLOR": "1", **extra})
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


def supportcli_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "supportcli", *args]


# --- mail ------------------------------------------------------------------------------------


def sample_files() -> list[Path]:
    return sorted(SAMPLES.glob("*.eml"))


def load_samples() -> list[bytes]:
    """The labelled training samples, as raw bytes with LF line ends."""
    return [p.read_bytes().replace(b"\r\n", b"\n") for p in sample_files()]


_ADDRESS = re.compile(rb"([A-Za-z0-9._%+-]+)@")


def resend(raw: bytes, copy: int, when: datetime) -> bytes:
    """A sample as a new message of copy number ``copy``, dated ``when`` (LF line ends).

    Message-ID, In-Reply-To and References get a per-copy prefix, so a reply still links to
    its own copy of the original and the copies never merge into one giant thread; the
    sender's address gets a per-copy tag for the same reason (threads also group by sender
    and subject). Nothing else changes, so the text the model sees is the sample's.
    """
    head, sep, body = raw.partition(b"\n\n")
    fields: list[list[bytes]] = []
    for line in head.split(b"\n"):
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1].append(line)
        else:
            fields.append([line])
    out = []
    for lines in fields:
        name = lines[0].split(b":", 1)[0].strip().lower()
        if name in (b"message-id", b"in-reply-to", b"references"):
            lines = [line.replace(b"<", b"<c%d." % copy) for line in lines]
        elif name == b"date":
            lines = [b"Date: " + format_datetime(when).encode()]
        elif name == b"from":
            lines = [_ADDRESS.sub(rb"\g<1>.c%d@" % copy, b"\n".join(lines), count=1)]
        out.append(b"\n".join(lines))
    return b"\n".join(out) + (sep or b"\n\n") + body


def crlf(raw: bytes) -> bytes:
    return raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


_FROM_LINE = re.compile(rb"^(>*From )", re.MULTILINE)


def write_mbox(handle: BinaryIO, messages: Iterable[tuple[bytes, datetime]]) -> list[int]:
    """Write (raw, date) pairs as mboxrd to ``handle``; returns the offset after each one."""
    ends = []
    for raw, when in messages:
        envelope = when.strftime("From bench@example.test %a %b %d %H:%M:%S %Y\n").encode()
        body = _FROM_LINE.sub(rb">\1", raw.rstrip(b"\n"))
        handle.write(envelope + body + b"\n\n")
        ends.append(handle.tell())
    return ends


# --- output ----------------------------------------------------------------------------------


def print_table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
    """Left-aligned first column, right-aligned others; floats as they come formatted."""
    cells = [[str(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]

    def line(values: Sequence[str]) -> str:
        first = values[0].ljust(widths[0])
        rest = (v.rjust(w) for v, w in zip(values[1:], widths[1:], strict=True))
        return "  ".join([first, *rest]).rstrip()

    print(line(headers))
    print("  ".join("-" * w for w in widths))
    for row in cells:
        print(line(row))
    sys.stdout.flush()


def note(text: str) -> None:
    print(f"note: {text}", file=sys.stderr, flush=True)
