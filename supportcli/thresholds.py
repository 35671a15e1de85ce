"""Recall-first decisions: the lowest probability at which a class must be called so that a
target share of its true members is caught, chosen on out-of-fold probabilities.

Missing an urgent message costs more than a false alarm, so urgency is not decided by the most
probable class alone: ``urgent`` is called from ``p(urgent) >= t_urgent`` and ``high`` from
``p(urgent) + p(high) >= t_high``, each threshold chosen so that cross-validation meets
``urgent_recall``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.metrics import precision_recall_curve


@dataclass(frozen=True)
class Threshold:
    value: float  # call the class when its score is at least this
    recall: float  # on the out-of-fold scores it was chosen from
    precision: float
    support: int  # true members among those scores


def for_recall(is_member: Sequence[bool] | np.ndarray, scores: Sequence[float] | np.ndarray,
               target: float) -> Threshold:
    """The highest threshold whose recall on ``scores`` is at least ``target`` (the best
    precision that meets it). With no member at all, 0.5."""
    y = np.asarray(is_member, dtype=bool)
    s = np.asarray(scores, dtype=float)
    if not y.any():
        return Threshold(0.5, 0.0, 0.0, 0)
    precision, recall, cuts = precision_recall_curve(y, s)
    # precision/recall have one more entry than cuts (the last is recall 0); recall falls as
    # the cut rises, so the last cut that still meets the target is the highest one.
    meets = np.flatnonzero(recall[:-1] >= target)
    i = int(meets[-1]) if meets.size else 0
    return Threshold(float(cuts[i]), float(recall[i]), float(precision[i]), int(y.sum()))
