"""Progress of ``train`` on a terminal: which step (each round of fits) and how many of its
fits (the cross-validation folds and the final model) are done, with the time taken.

The fits run through joblib; its own progress messages (``parallel_config(verbose=…)``) are
read here instead of being printed. Nothing at all is shown without a terminal."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stderr
from typing import Any, TextIO

_DONE = re.compile(r"Done\s+(\d+)(?: out of\s+(\d+))?")


class _FitCounter:
    """A stand-in for stderr while training: joblib's lines move the bar, the rest passes."""

    def __init__(self, progress: Any, task: Any, stderr: TextIO) -> None:
        self.progress, self.task, self.stderr = progress, task, stderr
        self.step, self.done, self.total = 1, 0, 0

    def write(self, text: str) -> int:
        for line in text.splitlines():
            found = _DONE.search(line) if line.startswith("[Parallel") else None
            if found is None:
                if line.strip():
                    self.stderr.write(line + "\n")
                continue
            self.done, self.total = int(found[1]), int(found[2] or self.total)
            self._show()
            if "finished" in line:
                self.step, self.done, self.total = self.step + 1, 0, 0
        return len(text)

    def flush(self) -> None:
        self.stderr.flush()

    def _show(self) -> None:
        of = f" of {self.total}" if self.total else ""
        self.progress.update(
            self.task, description=f"step {self.step}: {self.done}{of} fits done "
            "(cross-validation folds and the final model)"
        )


@contextmanager
def train_progress(quiet: bool) -> Iterator[None]:
    """Show training progress on stderr when it is a terminal (not with --quiet or NO_COLOR)."""
    if quiet or not sys.stderr.isatty() or os.environ.get("NO_COLOR"):
        yield
        return
    from joblib import parallel_config
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    stderr = sys.stderr
    progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                        console=Console(file=stderr), transient=True)
    with progress:
        task = progress.add_task("step 1: reading the labelled messages", total=None)
        counter = _FitCounter(progress, task, stderr)
        with parallel_config(verbose=11), redirect_stderr(counter):
            yield
