"""IMAP sync speed, memory and the no-change re-sync, against a private Dovecot.

Run:  python benchmarks/imap_sync.py [--quick] [--messages N] [--big N] [--repeats N]

Seeds INBOX of a throwaway Dovecot (tests/imapserver.py) with N messages of 3 KB (samples
re-sent with fresh Message-IDs, padded with Received/DKIM headers) plus a few with a 5 MB
attachment, then measures in the same run, each timing repeated (best and median shown):

  (a) the IMAP transfer as supportcli's source does it: ImapSource.fetch_new over INBOX,
      RawMessages collected in memory, no parsing;
  (b) the practical ceiling: a bare imaplib loop, UID FETCH n:m (BODY.PEEK[]) per 500;
      target (a) >= 0.80 x (b) in messages per second; (b') the same loop over the small
      messages only (the bare loop downloads the attachments, the source does not);
  (c) the sync workflow (supportcli.sync.sync) into an empty store, in a fresh process;
  (d) parse + Store.add_batch of the same RawMessages from memory, in a fresh process;
      target (c) >= 0.90 x (d) in messages per second (network waits hidden behind parsing);
  and `supportcli sync` as a user runs it: wall time, peak RSS (target < 300 MB), and the
  no-change re-sync (target < 0.5 s).
Prints figures; asserts nothing. Skips (with a note) when Dovecot is not installed.
"""

from __future__ import annotations

import argparse
import base64
import imaplib
import json
import pickle
import random
import resource
import shutil
import ssl
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(1, str(REPO / "tests"))

from _bench import (  # noqa: E402
    best_median,
    child_env,
    crlf,
    load_samples,
    note,
    print_table,
    resend,
    run_child,
    supportcli_argv,
)

from supportcli.accounts import ImapAccount, write_account_toml  # noqa: E402

MESSAGE_SIZE = 3 * 1024
BIG_ATTACHMENT = 5 * 1024 * 1024
BARE_BATCH = 500
FOLDER = "INBOX"
PASSWORD_ENV = "SUPPORTCLI_BENCH_PASSWORD"
SEED = 0


# --- the mailbox -----------------------------------------------------------------------------


def padded(raw: bytes, size: int, rng: random.Random) -> bytes:
    """``raw`` (CRLF) grown to exactly ``size`` bytes with the headers real mail carries:
    two Received lines and a DKIM-Signature whose b= value takes up the rest."""
    stamp = "Mon, 12 Jan 2026 10:03:44 +0000"
    received = b"".join(
        (
            f"Received: from mail-{rng.randrange(10**6)}.example.net (mail.example.net "
            f"[192.0.2.{rng.randrange(1, 255)}])\r\n\tby mx.shop.example (Postfix) with ESMTPS "
            f"id {rng.randbytes(6).hex().upper()}\r\n\tfor <support@shop.example>; {stamp}\r\n"
        ).encode()
        for _ in range(2)
    )
    dkim = (
        b"DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=example.net; s=s1;\r\n"
        b"\th=from:to:subject:date:message-id; bh="
        + base64.b64encode(rng.randbytes(32))
        + b";\r\n\tb="
    )
    room = size - len(raw) - len(received) - len(dkim) - 2
    if room < 0:
        return raw
    text = base64.b64encode(rng.randbytes(room)).decode()
    lines = []  # folded with CRLF + TAB (3 bytes) into lines of 72, the last up to 76
    while room > 76:
        lines.append(text[:72])
        text, room = text[72:], room - 75
    lines.append(text[:room])
    return received + dkim + "\r\n\t".join(lines).encode() + b"\r\n" + raw


def small_messages(count: int) -> list[bytes]:
    """``count`` distinct 3 KB messages from the samples that fit in 3 KB."""
    rng = random.Random(SEED)
    samples = [s for s in load_samples() if len(crlf(s)) < MESSAGE_SIZE - 700]
    start = datetime.now(UTC) - timedelta(days=20)
    out = []
    for i in range(count):
        copy, index = divmod(i, len(samples))
        when = start + timedelta(seconds=90 * i)
        out.append(padded(crlf(resend(samples[index], copy, when)), MESSAGE_SIZE, rng))
    return out


def big_message(number: int) -> bytes:
    """A customer message with a 5 MB PDF-like attachment (base64, about 6.8 MB on the wire)."""
    payload = base64.encodebytes(random.Random(number).randbytes(BIG_ATTACHMENT))
    head = (
        "From: Jonas Weber <jonas.weber@example.net>\n"
        "To: support@shop.example\n"
        f"Subject: Scans of the damaged parcel, order #{48210 + number}\n"
        f"Date: {datetime.now(UTC):%a, %d %b %Y %H:%M:%S +0000}\n"
        f"Message-ID: <big-{number}@bench.example>\n"
        "MIME-Version: 1.0\n"
        'Content-Type: multipart/mixed; boundary="bench-boundary"\n\n'
        "--bench-boundary\n"
        'Content-Type: text/plain; charset="utf-8"\n\n'
        f"Hello, the parcel for order #{48210 + number} arrived crushed. Scans attached;\n"
        "please send a replacement or refund me.\n\nJonas\n"
        "--bench-boundary\n"
        f'Content-Type: application/pdf; name="scan-{number}.pdf"\n'
        f'Content-Disposition: attachment; filename="scan-{number}.pdf"\n'
        "Content-Transfer-Encoding: base64\n\n"
    )
    return crlf(head.encode() + payload + b"--bench-boundary--\n")


def mailbox(small: int, big: int) -> list[bytes]:
    """The small messages with the big ones spread evenly among them."""
    raws = small_messages(small)
    for k in range(big):
        raws.insert((k + 1) * len(raws) // (big + 1), big_message(k))
    return raws


# --- the four measurements -------------------------------------------------------------------


@dataclass
class Transfer:
    seconds: float
    messages: int
    megabytes: float

    @property
    def rate(self) -> float:
        return self.messages / self.seconds


def source_transfer(account: ImapAccount, password: str) -> tuple[Transfer, list[Any]]:
    """(a) ImapSource.fetch_new over the folder, RawMessages kept in memory."""
    from supportcli.sources.imap import ImapSource

    start = time.perf_counter()
    with ImapSource(account, password) as source:
        raws = [r for batch, _ in source.fetch_new(FOLDER, None, account.since()) for r in batch]
        fetched = source.fetched_bytes
    seconds = time.perf_counter() - start
    return Transfer(seconds, len(raws), fetched / 1e6), raws


def bare_transfer(account: ImapAccount, password: str, skip_larger: int | None = None) -> Transfer:
    """(b) A bare imaplib loop: UID FETCH lo:hi (BODY.PEEK[]) per 500 UIDs, kept in memory.
    With ``skip_larger``, only messages up to that many bytes (the ceiling for small mail)."""
    start = time.perf_counter()
    conn = _bare_connect(account)
    try:
        conn.login(account.username, password)
        conn.select(FOLDER, readonly=True)
        query = ("ALL",) if skip_larger is None else ("NOT", "LARGER", str(skip_larger))
        _, found = conn.uid("SEARCH", *query)
        uids = sorted(int(u) for u in found[0].split())
        bodies: list[bytes] = []
        for i in range(0, len(uids), BARE_BATCH):
            chunk = uids[i : i + BARE_BATCH]
            wanted = ",".join(str(u) for u in chunk) if skip_larger else f"{chunk[0]}:{chunk[-1]}"
            _, data = conn.uid("FETCH", wanted, "(BODY.PEEK[])")
            bodies += [item[1] for item in data if isinstance(item, tuple)]
    except BaseException:
        conn.shutdown()
        raise
    conn.logout()
    seconds = time.perf_counter() - start
    return Transfer(seconds, len(bodies), sum(map(len, bodies)) / 1e6)


def _bare_connect(account: ImapAccount) -> imaplib.IMAP4:
    context = ssl.create_default_context(cafile=str(account.ca_file))
    if account.security == "ssl":
        return imaplib.IMAP4_SSL(account.host, account.port, ssl_context=context, timeout=60)
    conn = imaplib.IMAP4(account.host, account.port, timeout=60)
    if account.security == "starttls":
        conn.starttls(context)
    return conn


def child_sync(config: Path) -> dict[str, float]:
    """(c), in a fresh process: the sync workflow into the (empty) store, then once more."""
    from supportcli import sync
    from supportcli.config import load_settings
    from supportcli.store import Store

    settings = load_settings(config)
    times, added, cpu = [], [], []
    for _ in range(2):  # first sync, then the no-change re-sync
        start, cpu_start = time.perf_counter(), time.process_time()
        with Store(settings.store_path) as store:
            added.append(sum(r.added for r in sync.sync(settings, store)))
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - cpu_start)
    return {
        "seconds": times[0],
        "added": added[0],
        "cpu_seconds": cpu[0],
        "resync_seconds": times[1],
        "resync_added": added[1],
        "max_rss_mb": _own_rss_mb(),
    }


def child_parse_store(raws_file: Path, store_path: Path) -> dict[str, float]:
    """(d), in a fresh process: parse + Store.add_batch of pickled RawMessages, batch by batch
    as the sync does it (the pickle is loaded before the clock starts)."""
    from supportcli.parse import parse
    from supportcli.records import Message, ParseFailure, SyncCursor
    from supportcli.sources.imap import BATCH_SIZE
    from supportcli.store import Store

    raws = pickle.loads(raws_file.read_bytes())  # our own file
    start, cpu = time.perf_counter(), time.process_time()
    added = 0
    with Store(store_path) as store:
        for i in range(0, len(raws), BATCH_SIZE):
            parsed = [parse(raw) for raw in raws[i : i + BATCH_SIZE]]
            messages = [m for m in parsed if isinstance(m, Message)]
            failures = [m for m in parsed if isinstance(m, ParseFailure)]
            cursor = SyncCursor("bench", FOLDER, 1, i + BATCH_SIZE)
            added += store.add_batch(messages, failures, cursor)[0]
    return {
        "seconds": time.perf_counter() - start,
        "added": added,
        "cpu_seconds": time.process_time() - cpu,
        "max_rss_mb": _own_rss_mb(),
    }


def _own_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --- the run ---------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2,000 + 2 big messages")
    parser.add_argument("--messages", type=int, help="3 KB messages (default 10,000)")
    parser.add_argument("--big", type=int, help="messages with a 5 MB attachment (default 5)")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each timing")
    parser.add_argument("--security", choices=("ssl", "starttls", "plain"), default="ssl")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        mode, *paths = args.child
        result = (
            child_sync(Path(paths[0]))
            if mode == "sync"
            else child_parse_store(Path(paths[0]), Path(paths[1]))
        )
        print(json.dumps(result))
        return
    small = args.messages or (2_000 if args.quick else 10_000)
    big = args.big if args.big is not None else (2 if args.quick else 5)
    try:
        from imapserver import DovecotServer, DovecotUnavailable
    except ImportError as exc:
        note(f"cannot import tests/imapserver.py ({exc}); nothing measured")
        return
    server_dir = Path(tempfile.mkdtemp(prefix="dvb", dir="/tmp"))
    work = Path(tempfile.mkdtemp(prefix="supportcli-bench-"))
    try:
        try:
            server = DovecotServer.start(server_dir)
        except DovecotUnavailable as exc:
            note(f"Dovecot is not available ({exc}); nothing measured")
            return
        try:
            run(server, work, small, big, args)
        finally:
            server.stop()
    finally:
        shutil.rmtree(server_dir, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)


def run(server: Any, work: Path, small: int, big: int, args: argparse.Namespace) -> None:
    start = time.perf_counter()
    raws = mailbox(small, big)
    built = time.perf_counter() - start
    server.append_many(FOLDER, raws, batch=500)
    seeded = time.perf_counter() - start - built
    total_mb = sum(map(len, raws)) / 1e6
    print(
        f"INBOX: {small:,} messages of {MESSAGE_SIZE:,} bytes + {big} with a 5 MB attachment"
        f" ({total_mb:,.1f} MB); built in {built:.1f} s, seeded in {seeded:.1f} s; "
        f"security={args.security}; {args.repeats} runs each (best, median)\n"
    )
    del raws
    account = _account(server, args.security)
    transfer(account, server.password, work, args.repeats)
    config = work / "config.toml"
    config.write_text(write_account_toml(account))
    config.chmod(0o600)
    workflow(config, work, server.password, args.repeats)
    cli(config, work, server.password, args.repeats)


def _account(server: Any, security: str) -> ImapAccount:
    return ImapAccount(
        name="bench",
        host=server.host,
        username=server.user,
        port=server.ssl_port if security == "ssl" else server.port,
        security=security,  # type: ignore[arg-type]
        allow_insecure=security == "plain",
        first_sync_days=36500,
        ca_file=server.ca_cert,
        password_env=PASSWORD_ENV,
    )


def transfer(account: ImapAccount, password: str, work: Path, repeats: int) -> None:
    """(a) against (b), interleaved so that a busy neighbour hurts both alike."""
    runs: dict[str, list[Transfer]] = {"a": [], "b": [], "b'": []}
    raws: list[Any] = []
    for _ in range(repeats):
        ours, raws = source_transfer(account, password)
        runs["a"].append(ours)
        runs["b"].append(bare_transfer(account, password))
        runs["b'"].append(bare_transfer(account, password, skip_larger=256 * 1024))
    (work / "raws.pickle").write_bytes(pickle.dumps(raws))
    names = {
        "a": "(a) ImapSource.fetch_new",
        "b": "(b) bare imaplib, 500/FETCH",
        "b'": "(b') the same, small only",
    }
    rows = []
    for key, measured in runs.items():
        best, median = best_median([m.seconds for m in measured])
        m = measured[0]
        rows.append(
            [
                names[key],
                f"{m.messages:,}",
                f"{m.megabytes:,.1f}",
                f"{best:.2f}",
                f"{median:.2f}",
                f"{m.messages / best:,.0f}",
                f"{m.messages / median:,.0f}",
            ]
        )
    print("IMAP transfer into memory, no parsing")
    print_table(["", "msgs", "MB recv", "best s", "median s", "best msg/s", "median msg/s"], rows)
    for key in ("b", "b'"):
        a_rate = [m.rate for m in runs["a"]]
        b_rate = [m.rate for m in runs[key]]
        print(
            f"ratio (a)/({key}) msgs/s: best {max(a_rate) / max(b_rate):.2f}, median "
            f"{statistics.median(a_rate) / statistics.median(b_rate):.2f}"
            + ("  (target >= 0.80)" if key == "b" else "")
        )
    print()


def workflow(config: Path, work: Path, password: str, repeats: int) -> None:
    """(c) the sync workflow against (d) parse + store from memory, each in a fresh process."""
    me = [sys.executable, str(Path(__file__).resolve()), "--child"]
    c_runs, d_runs = [], []
    for i in range(repeats):
        home = work / f"sync-{i}"
        env = child_env(home, **{PASSWORD_ENV: password})
        c_runs.append(_json(run_child([*me, "sync", str(config)], env).check("sync child")))
        store = work / f"parse-{i}" / "supportcli.db"
        argv = [*me, "parse-store", str(work / "raws.pickle"), str(store)]
        d_runs.append(_json(run_child(argv, child_env(work / f"parse-{i}")).check("parse child")))
        shutil.rmtree(home, ignore_errors=True)
        shutil.rmtree(store.parent, ignore_errors=True)
    count = int(c_runs[0]["added"])
    rows = []
    for name, runs in (
        ("(c) sync workflow, empty store", c_runs),
        ("(d) parse + add_batch, memory", d_runs),
    ):
        best, median = best_median([r["seconds"] for r in runs])
        cpu = statistics.median(r["cpu_seconds"] for r in runs)
        rows.append(
            [
                name,
                f"{int(runs[0]['added']):,}",
                f"{best:.2f}",
                f"{median:.2f}",
                f"{count / best:,.0f}",
                f"{count / median:,.0f}",
                f"{cpu:.2f}",
                f"{max(r['max_rss_mb'] for r in runs):.0f}",
            ]
        )
    print("Sync against parse + store (fresh process each, timed inside it)")
    print_table(
        [
            "",
            "stored",
            "best s",
            "median s",
            "best msg/s",
            "median msg/s",
            "median CPU s",
            "peak RSS MB",
        ],
        rows,
    )
    c_best, c_median = best_median([r["seconds"] for r in c_runs])
    d_best, d_median = best_median([r["seconds"] for r in d_runs])
    print(
        f"ratio (c)/(d) msgs/s: best {d_best / c_best:.2f}, median {d_median / c_median:.2f}"
        "  (target >= 0.90)"
    )
    best, median = best_median([r["resync_seconds"] for r in c_runs])
    added = sum(int(r["resync_added"]) for r in c_runs)
    print(
        f"no-change re-sync (workflow, same process): best {best:.3f} s, median {median:.3f} s,"
        f" {added} new  (target < 0.5 s)\n"
    )


def cli(config: Path, work: Path, password: str, repeats: int) -> None:
    """`supportcli sync` as a user runs it: wall time and peak RSS of the whole process."""
    first, again = [], []
    for i in range(repeats):
        home = work / f"cli-{i}"
        env = child_env(home, **{PASSWORD_ENV: password})
        argv = supportcli_argv("--config", str(config), "-q", "sync")
        first.append(run_child(argv, env).check("supportcli sync"))
        again.append(run_child(argv, env).check("supportcli sync (again)"))
        shutil.rmtree(home, ignore_errors=True)
    rows = []
    for name, runs in (
        ("supportcli sync, empty store", first),
        ("supportcli sync, nothing new", again),
    ):
        best, median = best_median([r.seconds for r in runs])
        rss = [r.max_rss_mb for r in runs]
        rows.append(
            [
                name,
                f"{best:.2f}",
                f"{median:.2f}",
                f"{max(rss):.0f}",
                f"{statistics.median(rss):.0f}",
            ]
        )
    print("The CLI in a child process (wall time includes Python start-up and imports)")
    print_table(["", "best s", "median s", "peak RSS MB (max)", "(median)"], rows)
    print("target: peak RSS < 300 MB")


def _json(run: Any) -> dict[str, float]:
    return dict(json.loads(run.stdout.strip().splitlines()[-1]))


if __name__ == "__main__":
    main()
