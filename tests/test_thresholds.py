"""Choosing a decision threshold from a target recall, on data where the answer is known."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from supportcli.model.evaluation import threshold_for_recall


def for_recall(truth, scores, target):  # type: ignore[no-untyped-def]
    value, recall, precision = threshold_for_recall(truth, scores, target)
    return SimpleNamespace(value=value, recall=recall, precision=precision)


def test_the_threshold_is_the_highest_that_meets_the_recall() -> None:
    # ten members scored 0.05, 0.15 … 0.95; ten others scored 0.01, 0.06 … 0.46
    members = np.arange(10) / 10 + 0.05
    others = np.arange(10) / 20 + 0.01
    scores = np.concatenate([members, others])
    truth = np.array([True] * 10 + [False] * 10)
    got = for_recall(truth, scores, 0.9)
    assert got.value == pytest.approx(0.15)  # catches 9 of 10: all members but 0.05
    assert got.recall == pytest.approx(0.9)
    # at 0.15 the others above are 0.16 … 0.46 (7 of them): 9 / 16
    assert got.precision == pytest.approx(9 / 16)


@pytest.mark.parametrize("target", [0.5, 0.8, 0.95, 1.0])
def test_recall_is_met_on_random_data(target: float) -> None:
    rng = np.random.default_rng(7)
    truth = rng.random(2000) < 0.15
    scores = np.clip(truth * 0.3 + rng.normal(0.3, 0.2, 2000), 0, 1)
    got = for_recall(truth, scores, target)
    caught = (scores[truth] >= got.value).mean()
    assert caught >= target
    assert caught == pytest.approx(got.recall)
    # one step higher would miss the target
    higher = np.unique(scores[scores > got.value])
    if higher.size:
        assert (scores[truth] >= higher[0]).mean() < target


def test_a_higher_target_never_gives_a_higher_threshold() -> None:
    rng = np.random.default_rng(3)
    truth = rng.random(500) < 0.2
    scores = rng.random(500) * 0.5 + truth * 0.4
    values = [for_recall(truth, scores, t).value for t in (0.6, 0.7, 0.8, 0.9, 0.99)]
    assert values == sorted(values, reverse=True)


def test_no_member_gives_the_neutral_threshold() -> None:
    assert for_recall([False, False], [0.2, 0.9], 0.9).value == 0.5
