"""Accuracy of supportcli's pipeline against plain scikit-learn baselines, side by side.

Run:  python benchmarks/accuracy.py [--quick]

For each labelled set in ../shared/data (skipped when absent) and for samples/ itself:
5-fold stratified cross-validation with a fixed seed, the same folds for every method:
  1. supportcli's training pipeline (model.build_pipeline),
  2. TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True) + LinearSVC,
  3. the same features + ComplementNB.
Then the shipped default model (trained on samples/ only) on ABCD and bitext without training
on them. For supportcli also the expected calibration error of its confidence (top-class
probability, 10 bins, out of fold), as `supportcli evaluate` computes it. Prints tables of
macro-F1 and accuracy, throughput, and training time.

Throughput is timed per fold as a fresh process pays it: each fitted pipeline is pickled, then
loaded and asked to classify the fold's texts, with supportcli's process-wide token store
emptied first (its per-model tables are never pickled, so they start empty too). Three timings:
load + first call (what one `supportcli` run pays), the first call alone, and a second call on
the same texts (warm). The three methods take turns, three rounds per fold, and each timing is
the best of its three rounds: the folds are small (172 to 2,000 texts, 5 to 100 ms a call) and
this machine's noise is of that size. The ratios to the LinearSVC baseline are given per set,
then their median and lowest, and pooled (every text of every set over the summed times);
benchmarks/throughput.py measures bulk classification of whole emails.
"""

from __future__ import annotations

import argparse
import csv
import gc
import pickle
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.metrics import accuracy_score, f1_score
from sklearn.model_selection import StratifiedKFold
from sklearn.naive_bayes import ComplementNB
from sklearn.pipeline import make_pipeline
from sklearn.svm import LinearSVC

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from supportcli import dataset, model, registry, resources  # noqa: E402
from supportcli.config import load_settings  # noqa: E402
from supportcli.evaluation import calibration  # noqa: E402
from supportcli.features import to_text  # noqa: E402
from supportcli.hashing import STORE  # noqa: E402

DATA = REPO.parent / "shared" / "data"
SEED = 0
ROUNDS = 3  # timing rounds per fold; each timing is the best round
TIMINGS = ("fresh", "first", "warm")  # load + first call, first call alone, second call


def baseline_svc() -> object:
    return make_pipeline(TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True), LinearSVC())


def baseline_nb() -> object:
    return make_pipeline(TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True), ComplementNB())


METHODS: dict[str, Callable[[], object]] = {
    "supportcli": model.build_pipeline,
    "tfidf+LinearSVC": baseline_svc,
    "tfidf+ComplementNB": baseline_nb,
}


def read_csv(
    path: Path, target: str, keep: Callable[[dict[str, str]], bool] = lambda r: True
) -> tuple[list[str], list[str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        rows = [r for r in csv.DictReader(handle) if keep(r) and r.get(target)]
    return [to_text(r.get("subject", ""), r.get("body", "")) for r in rows], [
        r[target] for r in rows
    ]


def sets(quick: bool) -> list[tuple[str, str, list[str], list[str]]]:
    out = []
    samples = dataset.load_folder(resources.samples_dir())
    out.append(("samples/ (category)", "category", samples.texts, samples.categories))
    out.append(("samples/ (urgency)", "urgency", samples.texts, samples.urgencies))
    if not DATA.is_dir():
        print(f"note: {DATA} not found; only samples/ is measured", file=sys.stderr)
        return out
    standalone = lambda r: r.get("standalone_request") == "True"  # noqa: E731
    specs = [
        ("ABCD standalone", DATA / "abcd_humanfirst" / "dev.csv", "category", standalone),
        ("banking77 (mapped)", DATA / "banking77" / "dev.csv", "category", lambda r: True),
        ("bitext", DATA / "bitext_customer_service" / "dev.csv", "category", lambda r: True),
        (
            "hadoop priority",
            DATA / "gitbugs_hadoop_priority" / "dev.csv",
            "urgency",
            lambda r: True,
        ),
        ("bueck tickets", DATA / "bueck_synthetic_tickets" / "dev.csv", "urgency", lambda r: True),
    ]
    for name, path, target, keep in specs:
        texts, labels = read_csv(path, target, keep)
        if quick and len(texts) > 3000:
            rng = np.random.default_rng(SEED)
            idx = rng.choice(len(texts), 3000, replace=False)
            texts, labels = [texts[i] for i in idx], [labels[i] for i in idx]
        out.append((name, target, texts, labels))
    return out


def cross_validate(texts: list[str], labels: list[str]) -> dict[str, dict[str, float]]:
    y = np.asarray(labels)
    counts = np.unique(y, return_counts=True)[1]
    folds = StratifiedKFold(n_splits=min(5, int(counts.min())), shuffle=True, random_state=SEED)
    X = np.asarray(texts, dtype=object)
    predicted = {name: np.empty(len(y), dtype=object) for name in METHODS}
    confidence = np.zeros(len(y))
    fit_s = dict.fromkeys(METHODS, 0.0)
    seconds = {name: dict.fromkeys(TIMINGS, 0.0) for name in METHODS}
    for train, test in folds.split(X, y):
        test_texts = list(X[test])
        saved = {}
        for name, make in METHODS.items():
            pipeline = make()
            t0 = time.perf_counter()
            pipeline.fit(list(X[train]), y[train])  # type: ignore[attr-defined]
            fit_s[name] += time.perf_counter() - t0
            predicted[name][test] = pipeline.predict(test_texts)  # type: ignore[attr-defined]
            if name == "supportcli":
                probs = pipeline.predict_proba(test_texts)  # type: ignore[attr-defined]
                confidence[test] = probs.max(axis=1)
            saved[name] = pickle.dumps(pipeline)
        best = {name: dict.fromkeys(TIMINGS, np.inf) for name in METHODS}
        for round_ in range(ROUNDS):
            names = list(METHODS)
            for name in names[round_ % len(names) :] + names[: round_ % len(names)]:
                took = fresh_process(saved[name], test_texts)
                for timing, seconds_ in zip(TIMINGS, took, strict=True):
                    best[name][timing] = min(best[name][timing], seconds_)
        for name in METHODS:
            for timing in TIMINGS:
                seconds[name][timing] += best[name][timing]
    results: dict[str, dict[str, float]] = {}
    for name in METHODS:
        guessed = predicted[name].astype(str)
        results[name] = {
            "macro_f1": float(f1_score(y, guessed, average="macro")),
            "accuracy": float(accuracy_score(y, guessed)),
            "fit_s": fit_s[name],
            **{f"{timing}_s": seconds[name][timing] for timing in TIMINGS},
        }
    right = predicted["supportcli"].astype(str) == y
    results["supportcli"]["ece"] = calibration(confidence, right)[0]
    return results


def fresh_process(saved: bytes, texts: list[str]) -> tuple[float, float, float]:
    """Seconds to load a pickled pipeline and classify ``texts`` once, the first call alone, and
    a second call, starting as a new process would: supportcli's token store empty."""
    STORE.clear()
    gc.collect()
    t0 = time.perf_counter()
    pipeline = pickle.loads(saved)
    t1 = time.perf_counter()
    pipeline.predict(texts)
    t2 = time.perf_counter()
    pipeline.predict(texts)
    t3 = time.perf_counter()
    return t2 - t0, t2 - t1, t3 - t2


def default_model_transfer() -> None:
    if not DATA.is_dir():
        return
    loaded = registry.load_active(load_settings())
    print("\nShipped default model (trained on samples/ only), never trained on these sets:")
    print(f"{'set':22} {'n':>6} {'accuracy':>9} {'macro-F1':>9}")
    standalone = lambda r: r.get("standalone_request") == "True"  # noqa: E731
    for name, path, keep in (
        ("ABCD standalone", DATA / "abcd_humanfirst" / "dev.csv", standalone),
        ("bitext", DATA / "bitext_customer_service" / "dev.csv", lambda r: True),
    ):
        texts, labels = read_csv(path, "category", keep)
        predicted = [p.category for p in loaded.model.predict(texts, loaded.model_id)]
        print(
            f"{name:22} {len(texts):>6} {accuracy_score(labels, predicted):>9.3f} "
            f"{f1_score(labels, predicted, average='macro'):>9.3f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="at most 3,000 rows per set")
    args = parser.parse_args()
    header = f"{'set':22} {'target':8} {'n':>6}  " + "  ".join(f"{m:>18}" for m in METHODS)
    header += "  supportcli ECE"
    print("5-fold stratified CV, seed 0, macro-F1 (accuracy)")
    print(header)
    totals = dict.fromkeys(METHODS, 0.0)
    rates: dict[str, list[list[float]]] = {m: [] for m in METHODS}  # per set: msgs/s per timing
    seconds = {m: np.zeros(len(TIMINGS)) for m in METHODS}  # all sets
    names: list[str] = []
    n_texts = 0
    for name, target, texts, labels in sets(args.quick):
        results = cross_validate(texts, labels)
        cells = "  ".join(
            f"{results[m]['macro_f1']:>10.3f} ({results[m]['accuracy']:.3f})" for m in METHODS
        )
        ece = results["supportcli"]["ece"]
        print(f"{name:22} {target:8} {len(texts):>6}  {cells}  {ece:>14.3f}", flush=True)
        for m in METHODS:
            totals[m] += results[m]["macro_f1"]
            taken = np.array([results[m][f"{timing}_s"] for timing in TIMINGS])
            rates[m].append(list(len(texts) / taken))
            seconds[m] += taken
        names.append(name)
        n_texts += len(texts)
    print(f"{'sum of macro-F1':38}  " + "  ".join(f"{totals[m]:>18.3f}" for m in METHODS))
    print_throughput(names, rates, seconds, n_texts)
    default_model_transfer()


def print_throughput(names: list[str], rates: dict[str, list[list[float]]],
                     seconds: dict[str, np.ndarray], n_texts: int) -> None:
    ours, plain = np.array(rates["supportcli"]), np.array(rates["tfidf+LinearSVC"])
    ratios = ours / plain
    print(f"\nClassification throughput, msgs/s (fresh process, best of {ROUNDS} rounds per fold):")
    print(f"{'set':22} {'load + first call':>26} {'first call alone':>26} {'second call':>26}")
    print(f"{'':22}" + f" {'supportcli':>10} {'baseline':>8} {'ratio':>6}" * 3)
    for i, name in enumerate(names):
        cells = "".join(f" {ours[i, t]:>10,.0f} {plain[i, t]:>8,.0f} {ratios[i, t]:>6.2f}"
                        for t in range(len(TIMINGS)))
        print(f"{name:22}{cells}")
    summaries = {
        "median per-set ratio": np.median(ratios, axis=0),
        "lowest per-set ratio": ratios.min(axis=0),
        f"pooled, {n_texts:,} texts": seconds["tfidf+LinearSVC"] / seconds["supportcli"],
        # the earlier summary: it divides the medians of different sets
        "ratio of the medians": np.median(ours, axis=0) / np.median(plain, axis=0),
    }
    for label, values in summaries.items():
        print(f"{label:22}" + "".join(f" {'':>19} {r:>6.2f}" for r in values))
    print("target: supportcli >= 0.70 x the baseline's throughput")


if __name__ == "__main__":
    main()
