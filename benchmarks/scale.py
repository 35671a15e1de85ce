"""Scale: `supportcli triage` (import + classify + rank) on mboxes of 10k, 50k and 100k messages.

Run:  python benchmarks/scale.py [--quick] [--sizes 10000,50000,100000] [--repeats N]

Builds one mbox of the largest size in a temp dir (samples/train re-sent with fresh
Message-IDs, per-copy threads and senders, dates spread over the last 30 days) and its
prefixes for the smaller sizes, then runs, for each size, in a fresh SUPPORTCLI_HOME:

    supportcli triage MBOX --format jsonl -o /dev/null

and prints the child's wall time, messages per second, time per 10k messages (flat when
time grows linearly) and peak RSS (target < 500 MB). ``--quick``: 10k and 20k only.
Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from _bench import (  # noqa: E402
    best_median,
    child_env,
    load_samples,
    print_table,
    resend,
    run_child,
    supportcli_argv,
    write_mbox,
)

FULL_SIZES = (10_000, 50_000, 100_000)
QUICK_SIZES = (10_000, 20_000)
SPAN = timedelta(days=30)
RSS_TARGET_MB = 500


def build_mboxes(directory: Path, sizes: list[int]) -> dict[int, Path]:
    """One mbox of max(sizes) messages, plus byte-prefix copies for the smaller sizes."""
    samples = load_samples()
    largest = max(sizes)
    step = SPAN / largest
    start = datetime.now(UTC) - SPAN - timedelta(hours=1)

    def messages() -> Iterator[tuple[bytes, datetime]]:
        for i in range(largest):
            copy, index = divmod(i, len(samples))
            when = start + step * i
            yield resend(samples[index], copy, when), when

    path = directory / f"{largest}.mbox"
    with path.open("wb") as handle:
        ends = write_mbox(handle, messages())
    out = {largest: path}
    with path.open("rb") as source:
        for size in sizes:
            if size == largest:
                continue
            out[size] = directory / f"{size}.mbox"
            with out[size].open("wb") as target:
                source.seek(0)
                target.write(source.read(ends[size - 1]))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10k and 20k messages only")
    parser.add_argument("--sizes", help="comma-separated message counts")
    parser.add_argument("--repeats", type=int, default=1, help="runs per size (best, median)")
    args = parser.parse_args()
    sizes = (
        sorted(int(s) for s in args.sizes.split(","))
        if args.sizes
        else list(QUICK_SIZES if args.quick else FULL_SIZES)
    )
    work = Path(tempfile.mkdtemp(prefix="supportcli-scale-"))
    try:
        started = time.perf_counter()
        mboxes = build_mboxes(work, sizes)
        megabytes = mboxes[max(sizes)].stat().st_size / 1e6
        print(
            f"built {max(sizes):,}-message mbox ({megabytes:,.0f} MB) and prefixes in "
            f"{time.perf_counter() - started:.1f} s; load average "
            f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs\n"
        )
        rows = []
        for size in sizes:
            runs = []
            for i in range(args.repeats):
                home = work / f"home-{size}-{i}"
                argv = supportcli_argv(
                    "-q", "triage", str(mboxes[size]), "--format", "jsonl", "-o", os.devnull
                )
                runs.append(run_child(argv, child_env(home), timeout=3600).check(f"triage {size}"))
                shutil.rmtree(home, ignore_errors=True)
            best, median = best_median([r.seconds for r in runs])
            rss = max(r.max_rss_mb for r in runs)
            rows.append(
                [
                    f"{size:,}",
                    f"{best:.1f}",
                    f"{median:.1f}",
                    f"{size / best:,.0f}",
                    f"{best / size * 10_000:.1f}",
                    f"{rss:.0f}",
                ]
            )
            print(f"  {size:,} messages: {best:.1f} s, peak RSS {rss:.0f} MB", flush=True)
        print("\nsupportcli triage MBOX --format jsonl -o /dev/null (child process, fresh store)")
        print_table(["messages", "best s", "median s", "msgs/s", "s per 10k", "peak RSS MB"], rows)
        print(f"targets: peak RSS < {RSS_TARGET_MB} MB; 's per 10k' flat (linear growth)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
