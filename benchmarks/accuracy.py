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

Throughput is timed twice per fold: the first predict call after fitting (supportcli's
per-token table is empty, as in a fresh process) and a second call on the same texts (the
table warm, as in a long run). The folds are small (a few hundred to 2,000 texts), so these
figures are noisy, so the ratio is given twice: from the median throughput over the sets, and
pooled (every text of every set over the time of all the calls); benchmarks/throughput.py
measures bulk classification of whole emails.
"""

from __future__ import annotations

import argparse
import csv
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

DATA = REPO.parent / "shared" / "data"
SEED = 0


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
    results: dict[str, dict[str, float]] = {}
    for name, make in METHODS.items():
        predicted = np.empty(len(y), dtype=object)
        confidence = np.zeros(len(y))
        fit_s = predict_s = warm_s = 0.0
        for train, test in folds.split(X, y):
            pipeline = make()
            t0 = time.perf_counter()
            pipeline.fit(list(X[train]), y[train])  # type: ignore[attr-defined]
            t1 = time.perf_counter()
            predicted[test] = pipeline.predict(list(X[test]))  # type: ignore[attr-defined]
            t2 = time.perf_counter()
            pipeline.predict(list(X[test]))  # type: ignore[attr-defined]
            warm_s += time.perf_counter() - t2
            fit_s += t1 - t0
            predict_s += t2 - t1
            if name == "supportcli":
                probs = pipeline.predict_proba(list(X[test]))  # type: ignore[attr-defined]
                confidence[test] = probs.max(axis=1)
        results[name] = {
            "macro_f1": float(f1_score(y, predicted.astype(str), average="macro")),
            "accuracy": float(accuracy_score(y, predicted.astype(str))),
            "fit_s": fit_s,
            "msgs_per_s": len(y) / predict_s,
            "warm_msgs_per_s": len(y) / warm_s,
            "predict_s": predict_s,
            "warm_s": warm_s,
            "ece": calibration(confidence, predicted.astype(str) == y)[0],
        }
    return results


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
    speed: dict[str, list[float]] = {m: [] for m in METHODS}
    warm: dict[str, list[float]] = {m: [] for m in METHODS}
    seconds = {m: np.zeros(2) for m in METHODS}  # first and second calls, all sets
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
            speed[m].append(results[m]["msgs_per_s"])
            warm[m].append(results[m]["warm_msgs_per_s"])
            seconds[m] += (results[m]["predict_s"], results[m]["warm_s"])
        n_texts += len(texts)
    print(f"{'sum of macro-F1':38}  " + "  ".join(f"{totals[m]:>18.3f}" for m in METHODS))
    for label, measured in (("first call", speed), ("second call", warm)):
        ours, plain = np.median(measured["supportcli"]), np.median(measured["tfidf+LinearSVC"])
        ratios = np.array(measured["supportcli"]) / np.array(measured["tfidf+LinearSVC"])
        print(
            f"classification throughput, {label} per fold (median msgs/s over the sets): "
            f"supportcli {ours:,.0f}, baseline {plain:,.0f}, ratio {ours / plain:.2f} "
            f"(target ≥ 0.70); per set " + " ".join(f"{r:.2f}" for r in ratios)
        )
    ours, plain = n_texts / seconds["supportcli"], n_texts / seconds["tfidf+LinearSVC"]
    print(
        f"classification throughput pooled over all {n_texts:,} texts (first / second call): "
        f"supportcli {ours[0]:,.0f} / {ours[1]:,.0f} msgs/s, baseline {plain[0]:,.0f} / "
        f"{plain[1]:,.0f}, ratio {ours[0] / plain[0]:.2f} / {ours[1] / plain[1]:.2f}"
    )
    default_model_transfer()


if __name__ == "__main__":
    main()
