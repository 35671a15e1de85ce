"""Learning curve: macro-F1 against the number of labels, random order against the tool's
uncertainty order (active learning), and the cost of training on 20,000 messages.

Run:  python benchmarks/learning_curve.py [--quick]

For ABCD (standalone requests) and banking77 (mapped categories) from ../shared/data
(skipped with a note when absent): one fixed stratified split (seed 0, 30% test). From the
training pool, train model.classifier.build_pipeline on 10, 25, 50, 100, 200 … labels per
class (times the number of classes, up to the whole pool) chosen

  (a) at random (mean over several seeds), and
  (b) in the tool's uncertainty order: start from a random seed set of 2 labels per class,
      then repeatedly fit, order the unlabelled pool with labelling.queue(order="uncertain")
      (smallest margin between the top two class probabilities first, classes that already
      have many labels held back, senders/threads mixed) and label the head of the queue,
      in batches of 15% of the labels so far;

and print macro-F1 on the fixed test split for each budget, and the share of the pool the
uncertainty order needs to reach the random order's final macro-F1 (target <= 60%).
Then time model.training.fit (both targets, as `supportcli train` calls it) on 20,000 labelled
messages (samples/train replicated with small perturbations) in a child process and print
its peak RSS (target < 60 s). ``--quick``: banking77 cut to 3,000 rows, one random seed.
Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import random
import resource
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from sklearn.metrics import f1_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from _bench import DATA, best_median, note, print_table, run_child  # noqa: E402

from supportcli import labelling, resources  # noqa: E402
from supportcli.model import dataset, training  # noqa: E402
from supportcli.model.classifier import build_pipeline  # noqa: E402
from supportcli.model.text import to_text  # noqa: E402
from supportcli.records import Message, Prediction  # noqa: E402

SEED = 0
TEST_SHARE = 0.3
PER_CLASS = (10, 25, 50, 100, 200, 400, 800, 1600, 3200)
SEED_PER_CLASS = 2  # random labels before the uncertainty order takes over
GROWTH = 0.15  # each active-learning batch adds this share of the labels so far
SHARE_TARGET = 0.60
TOLERANCE = 0.005  # macro-F1 points: about the spread between random seeds at large budgets
FIT_MESSAGES = 20_000
FIT_TARGET_S = 60.0
QUICK_ROWS = 3000


@dataclass
class LabelledData:
    name: str
    texts: list[str]
    labels: list[str]


def read_set(name: str, path: Path, keep: Callable[[dict[str, str]], bool]) -> LabelledData:
    with path.open(newline="", encoding="utf-8") as handle:
        rows = [r for r in csv.DictReader(handle) if keep(r) and r.get("category")]
    texts = [to_text(r.get("subject") or "", r.get("body") or "") for r in rows]
    return LabelledData(name, texts, [r["category"] for r in rows])


def data_sets(quick: bool) -> list[LabelledData]:
    specs: list[tuple[str, Path, Callable[[dict[str, str]], bool]]] = [
        (
            "ABCD standalone",
            DATA / "abcd_humanfirst" / "dev.csv",
            lambda r: r.get("standalone_request") == "True",
        ),
        ("banking77 (mapped)", DATA / "banking77" / "dev.csv", lambda r: True),
    ]
    out = []
    for name, path, keep in specs:
        if not path.is_file():
            note(f"{path} not found; {name} skipped")
            continue
        data = read_set(name, path, keep)
        if quick and len(data.texts) > QUICK_ROWS:
            keep_idx, _ = train_test_split(
                np.arange(len(data.texts)),
                train_size=QUICK_ROWS,
                random_state=SEED,
                stratify=data.labels,
            )
            data = LabelledData(
                f"{name}, {QUICK_ROWS:,} rows",
                [data.texts[i] for i in keep_idx],
                [data.labels[i] for i in keep_idx],
            )
        out.append(data)
    return out


# --- one learning curve ------------------------------------------------------------------------


class Experiment:
    """One data set, its fixed split, and macro-F1 of a model fitted on a subset of the pool."""

    def __init__(self, data: LabelledData) -> None:
        self.data = data
        self.y = np.asarray(data.labels)
        self.pool, self.test = train_test_split(
            np.arange(len(self.y)), test_size=TEST_SHARE, random_state=SEED, stratify=self.y
        )
        self.classes = sorted(set(data.labels))
        self.fits = 0

    def budgets(self) -> list[int]:
        n = len(self.classes)
        return [k * n for k in PER_CLASS if k * n < len(self.pool)] + [len(self.pool)]

    def fit(self, chosen: Sequence[int]) -> tuple[float, Pipeline]:
        """(macro-F1 on the test split, the fitted pipeline) for training rows ``chosen``
        (sorted first, so the result depends on the set only, not on its order)."""
        rows = sorted(int(i) for i in chosen)
        pipeline = build_pipeline()
        pipeline.fit([self.data.texts[i] for i in rows], self.y[rows])
        predicted = pipeline.predict([self.data.texts[i] for i in self.test])
        self.fits += 1
        return float(f1_score(self.y[self.test], predicted, average="macro")), pipeline

    def random_curve(self, seed: int) -> dict[int, float]:
        order = np.random.RandomState(seed).permutation(self.pool).tolist()
        return {b: self.fit(order[:b])[0] for b in self.budgets()}

    def uncertainty_curve(self) -> dict[int, float]:
        """Labelled-set size -> macro-F1, following the tool's queue, at every batch (each
        budget in ``budgets()`` is one of the sizes)."""
        rng = np.random.RandomState(SEED)
        seed_size = SEED_PER_CLASS * len(self.classes)
        labelled = [int(i) for i in rng.choice(self.pool, seed_size, replace=False)]
        messages = {int(i): _message(int(i), self.data.texts[i]) for i in self.pool}
        curve: dict[int, float] = {}
        budgets = self.budgets()
        while True:
            curve[len(labelled)], pipeline = self.fit(labelled)
            if len(labelled) >= len(self.pool):
                return curve
            taken = set(labelled)
            rest = [i for i in self.pool.tolist() if i not in taken]
            step = max(len(self.classes), math.ceil(GROWTH * len(labelled)))
            size = min([len(labelled) + step, *(b for b in budgets if b > len(labelled))])
            labelled += self._queue(pipeline, rest, labelled, messages)[: size - len(labelled)]

    def _queue(
        self, pipeline: Pipeline, rest: list[int], labelled: list[int], messages: dict[int, Message]
    ) -> list[int]:
        """The unlabelled rows in the order `supportcli label` would show them."""
        probs = pipeline.predict_proba([self.data.texts[i] for i in rest])
        names = [str(c) for c in pipeline.classes_]
        predictions = {
            messages[i].message_id: _prediction(names, row)
            for i, row in zip(rest, probs, strict=True)
        }
        labels = {messages[i].message_id: (str(self.y[i]), "normal") for i in labelled}
        ordered = labelling.queue([messages[i] for i in rest], predictions, labels)
        return [int(m.source_key) for m in ordered]


def _message(index: int, text: str) -> Message:
    """A stand-in message (one sender each, no thread) for the labelling queue."""
    return Message(
        message_id=f"row-{index}@bench",
        source="bench",
        source_key=str(index),
        date=datetime(2026, 1, 1, tzinfo=UTC),
        date_is_fallback=False,
        sender_name="",
        sender_addr=f"customer-{index}@example.test",
        to=(),
        subject="",
        norm_subject="",
        in_reply_to="",
        references=(),
        text_new=text,
        text_quoted="",
        text_signature="",
        is_html=False,
        attachments=(),
        order_numbers=(),
        automated="",
        language="en",
        content_hash=str(index),
    )


def _prediction(classes: list[str], probs: np.ndarray) -> Prediction:
    best = int(np.argmax(probs))
    return Prediction(
        category=classes[best],
        category_confidence=float(probs[best]),
        urgency="normal",
        urgency_confidence=1.0,
        needs_review=False,
        model_id="bench",
        category_probs={c: float(p) for c, p in zip(classes, probs, strict=True)},
    )


def learning_curve(data: LabelledData, seeds: int) -> None:
    started = time.perf_counter()
    exp = Experiment(data)
    n_classes, pool = len(exp.classes), len(exp.pool)
    randoms = [exp.random_curve(seed) for seed in range(seeds)]
    active = exp.uncertainty_curve()
    print(
        f"\n{data.name}: {len(data.texts):,} rows, {n_classes} classes, pool {pool:,}, "
        f"test {len(exp.test):,}"
    )
    rows = []
    for budget in exp.budgets():
        scores = [r[budget] for r in randoms]
        spread = f" ±{np.std(scores):.3f}" if seeds > 1 else ""
        per_class = budget / n_classes
        rows.append(
            [
                f"{per_class:,.0f}" + ("" if budget < pool else " (all)"),
                f"{budget:,}",
                f"{np.mean(scores):.3f}{spread}",
                f"{active[budget]:.3f}",
            ]
        )
    random_label = f"random (mean of {seeds})" if seeds > 1 else "random"
    print_table(["labels/class", "labels", random_label, "uncertainty"], rows)
    final = float(np.mean([r[pool] for r in randoms]))
    random_mean = {b: float(np.mean([r[b] for r in randoms])) for b in exp.budgets()}

    def first(curve: dict[int, float], level: float) -> int:
        return min((n for n, f1 in curve.items() if f1 >= level - 1e-9), default=pool)

    print(f"random order's final macro-F1 (whole pool): {final:.3f}; labels needed")
    for what, level in (("to reach it", final), (f"to come within {TOLERANCE}", final - TOLERANCE)):
        ours, theirs = first(active, level), first(random_mean, level)
        target = f" (target <= {SHARE_TARGET:.0%})" if level == final else ""
        print(
            f"  {what:>22}: uncertainty order {ours:,} = {ours / pool:.0%} of the pool{target};"
            f" random order {theirs:,} = {theirs / pool:.0%} (budgets above only)"
        )
    path = ", ".join(f"{size}:{f1:.3f}" for size, f1 in sorted(active.items()))
    print(f"uncertainty order, every batch (labels:macro-F1): {path}")
    print(f"({exp.fits} fits in {time.perf_counter() - started:.0f} s)", flush=True)


# --- training time on 20,000 messages ------------------------------------------------------


_FILLERS = ("please", "thanks", "hi", "again", "asap", "really", "today", "kindly", "still")


def perturbed_corpus(size: int) -> tuple[list[str], list[str], list[str]]:
    """samples/train replicated to ``size`` texts, each copy with 1-4 small edits (a word
    dropped, inserted or swapped with its neighbour, a digit appended)."""
    samples = dataset.load_folder(resources.samples_dir())
    rng = random.Random(SEED)
    texts, categories, urgencies = [], [], []
    for i in range(size):
        j = i % len(samples.inputs)
        words = samples.inputs[j].text.split(" ")
        for _ in range(rng.randint(1, 4)):
            k = rng.randrange(len(words))
            edit = rng.randrange(4)
            if edit == 0 and len(words) > 4:
                del words[k]
            elif edit == 1:
                words.insert(k, rng.choice(_FILLERS))
            elif edit == 2 and k + 1 < len(words):
                words[k], words[k + 1] = words[k + 1], words[k]
            else:
                words[k] += str(rng.randrange(10))
        texts.append(" ".join(words))
        categories.append(samples.categories[j])
        urgencies.append(samples.urgencies[j])
    return texts, categories, urgencies


def child_fit(size: int) -> dict[str, float]:
    texts, categories, urgencies = perturbed_corpus(size)
    start = time.perf_counter()
    training.fit(texts, categories, urgencies)
    return {
        "seconds": time.perf_counter() - start,
        "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def fit_cost(size: int, repeats: int) -> None:
    me = [sys.executable, str(Path(__file__).resolve()), "--child-fit", str(size)]
    load = os.getloadavg()[0]
    runs = []
    for _ in range(repeats):
        run = run_child(me, timeout=1800, watch_tree=True)
        result = json.loads(run.check("fit child").stdout.strip().splitlines()[-1])
        runs.append((float(result["seconds"]), float(result["max_rss_mb"]), run.tree_rss_mb))
    best, median = best_median([r[0] for r in runs])
    tree = [r[2] for r in runs if r[2] is not None]
    print(
        f"\ntraining.fit (category + urgency, out-of-fold calibration) on {size:,} labelled "
        f"messages (samples/train replicated, perturbed), {repeats} run(s), load average "
        f"{load:.1f} before:"
    )
    print(f"  time: best {best:.1f} s, median {median:.1f} s (target < {FIT_TARGET_S:.0f} s)")
    print(
        f"  peak RSS: main process {max(r[1] for r in runs):.0f} MB"
        + (f"; main + joblib workers, summed (sampled) {max(tree):.0f} MB" if tree else "")
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="banking77 cut to 3,000 rows")
    parser.add_argument("--seeds", type=int, help="random orders averaged (default 3, quick 1)")
    parser.add_argument("--fit-repeats", type=int, default=1, help="runs of the timed fit")
    parser.add_argument("--fit-messages", type=int, default=FIT_MESSAGES, help="its size")
    parser.add_argument("--child-fit", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_fit:
        print(json.dumps(child_fit(args.child_fit)))
        return
    if not DATA.is_dir():
        note(f"{DATA} not found: no learning curves, only the training time")
    print(
        f"fixed stratified split: seed {SEED}, {TEST_SHARE:.0%} test; build_pipeline; "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    )
    seeds = args.seeds or (1 if args.quick else 3)
    for data in data_sets(args.quick):
        learning_curve(data, seeds)
    fit_cost(args.fit_messages, args.fit_repeats)


if __name__ == "__main__":
    main()
