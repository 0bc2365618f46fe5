"""How well suspicion scores separate risky from benign. Standard library only.

ROC and precision-recall curves, AUROC, AUPRC, TPR at a fixed FPR, and the threshold at a percentile of benign
scores (an audit budget).

Scores are higher for "more suspicious"; labels are True for risky. Ties are handled as scikit-learn does: every
distinct score is one threshold, and a point of the curve takes all the items at it together.

>>> auroc([0.9, 0.8, 0.3, 0.1], [True, False, True, False])
0.75
>>> round(average_precision([0.9, 0.8, 0.3, 0.1], [True, False, True, False]), 4)
0.8333
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence


def _counts(scores: Sequence[float], labels: Sequence[bool]) -> list[tuple[float, int, int]]:
    """Per distinct score, highest first: (score, risky items at it, benign items at it)."""
    at: dict[float, list[int]] = {}
    for s, y in zip(scores, labels, strict=True):
        cell = at.setdefault(s, [0, 0])
        cell[0 if y else 1] += 1
    return [(s, c[0], c[1]) for s, c in sorted(at.items(), reverse=True)]


def roc_curve(scores: Sequence[float], labels: Sequence[bool]) -> list[tuple[float, float, float]]:
    """The ROC curve's points (FPR, TPR, threshold), from (0, 0) at +inf to (1, 1): flag a score >= threshold."""
    positives, negatives = sum(labels), len(labels) - sum(labels)
    points, tp, fp = [(0.0, 0.0, math.inf)], 0, 0
    for s, p, n in _counts(scores, labels):
        tp, fp = tp + p, fp + n
        points.append((fp / negatives if negatives else 0.0, tp / positives if positives else 0.0, s))
    return points


def auroc(scores: Sequence[float], labels: Sequence[bool]) -> float | None:
    """The area under the ROC curve (None without both classes).

    The chance that a random risky item scores above a random benign one, a tie counting half.
    """
    positives, negatives = sum(labels), len(labels) - sum(labels)
    if not positives or not negatives:
        return None
    below, wins = 0, 0.0
    for _, p, n in reversed(_counts(scores, labels)):  # lowest score first
        wins += p * (below + n / 2)
        below += n
    return wins / (positives * negatives)


def pr_curve(scores: Sequence[float], labels: Sequence[bool]) -> list[tuple[float, float, float]]:
    """The precision-recall curve's points (recall, precision, threshold), from the highest threshold down."""
    positives = sum(labels)
    points, tp, fp = [], 0, 0
    for s, p, n in _counts(scores, labels):
        tp, fp = tp + p, fp + n
        points.append((tp / positives if positives else 0.0, tp / (tp + fp), s))
    return points


def average_precision(scores: Sequence[float], labels: Sequence[bool]) -> float | None:
    """AUPRC as average precision (None without a risky item, or without a benign one: then it says nothing).

    The sum over thresholds of (recall gained) x precision there, as scikit-learn's ``average_precision_score``.
    """
    positives = sum(labels)
    if not positives or positives == len(labels):
        return None
    area, last = 0.0, 0.0
    for recall, precision, _ in pr_curve(scores, labels):
        area += (recall - last) * precision
        last = recall
    return area


def tpr_at_fpr(scores: Sequence[float], labels: Sequence[bool], fpr: float) -> float | None:
    """The highest TPR of a threshold whose FPR is at most ``fpr`` (None without both classes)."""
    if not any(labels) or all(labels):
        return None
    return max(t for f, t, _ in roc_curve(scores, labels) if f <= fpr + 1e-12)


def threshold_at(benign: Sequence[float], budget: float) -> float | None:
    """The lowest threshold that flags (score > threshold) at most ``budget`` (a share) of ``benign`` scores.

    ControlArena's audit budget: set on honest runs, it says which suspicion an auditor looks at.

    >>> threshold_at([0.1] * 98 + [0.5, 0.9], 0.01)
    0.5
    """
    if not benign:
        return None
    ordered = sorted(benign)
    allowed = math.floor(budget * len(ordered) + 1e-9)  # that many may lie above
    return ordered[len(ordered) - 1 - allowed]


def rates_at(scores: Sequence[float], labels: Sequence[bool], threshold: float) -> tuple[float | None, float | None]:
    """(TPR, FPR) when a score above ``threshold`` is flagged."""
    positives = [s for s, y in zip(scores, labels, strict=True) if y]
    negatives = [s for s, y in zip(scores, labels, strict=True) if not y]
    tpr = sum(s > threshold for s in positives) / len(positives) if positives else None
    fpr = sum(s > threshold for s in negatives) / len(negatives) if negatives else None
    return tpr, fpr


def bootstrap(groups: Sequence[Sequence[tuple[float, bool]]], statistic: str, rounds: int = 500,
              seed: int = 0) -> tuple[float, float] | None:
    """A 95% percentile interval of ``statistic`` ("auroc" or "auprc"); None when too few resamples have both.

    Whole ``groups`` (episodes) are resampled: the steps of one are not independent.
    """
    fn = auroc if statistic == "auroc" else average_precision
    rng, values = random.Random(seed), []
    n = len(groups)
    for _ in range(rounds):
        sample = [item for _ in range(n) for item in groups[rng.randrange(n)]]
        value = fn([s for s, _ in sample], [y for _, y in sample])
        if value is not None:
            values.append(value)
    if len(values) < rounds // 2:
        return None
    values.sort()
    return values[int(0.025 * len(values))], values[max(0, int(0.975 * len(values)) - 1)]
