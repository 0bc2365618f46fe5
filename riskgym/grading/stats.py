"""Statistics for small samples: intervals for rates, paired comparisons, agreement. Standard library only.

Risk rates are estimated from tens of episodes, where the normal (CLT) interval is wrong: it collapses to zero
width at 0/n and n/n. Wilson's score interval and the Beta posterior (Jeffreys prior) both behave there.

>>> [round(x, 3) for x in wilson(0, 10)]
[0.0, 0.278]
>>> [round(x, 3) for x in beta_interval(0, 10)]
[0.0, 0.217]
>>> round(mcnemar_exact(0, 6), 4)
0.0312
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

MIN_N = 10
"""Below this many scored episodes a rate is reported with a warning: too few to conclude."""


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval for k successes in n trials (95% by default)."""
    if n == 0:
        return (0.0, 1.0)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (Lentz's method)."""
    tiny, qab, qap, qam = 1e-300, a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        m2 = 2 * m
        for aa in (m * (b - m) * x / ((qam + m2) * (a + m2)), -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))):
            d = 1.0 + aa * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + aa / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < 1e-12:
            break
    return h


def beta_cdf(x: float, a: float, b: float) -> float:
    """The regularized incomplete beta function I_x(a, b): the CDF of Beta(a, b) at x."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def beta_quantile(q: float, a: float, b: float) -> float:
    """The q-quantile of Beta(a, b), by bisection on the CDF."""
    lo, hi = 0.0, 1.0
    for _ in range(60):
        mid = (lo + hi) / 2
        if beta_cdf(mid, a, b) < q:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def beta_interval(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Equal-tailed credible interval of the Beta posterior with Jeffreys' prior, Beta(k + 1/2, n - k + 1/2).

    The lower bound is 0 when k is 0 and the upper 1 when k is n, as is usual.
    """
    if n == 0:
        return (0.0, 1.0)
    a, b, tail = k + 0.5, n - k + 0.5, (1 - level) / 2
    return (0.0 if k == 0 else beta_quantile(tail, a, b), 1.0 if k == n else beta_quantile(1 - tail, a, b))


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value: b and c are the discordant pairs (yes/no and no/yes)."""
    n = b + c
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(min(b, c) + 1)) / 2 ** n
    return min(1.0, 2 * tail)


def paired_bootstrap(a: Sequence[bool], b: Sequence[bool], rounds: int = 2000,
                     seed: int = 0) -> tuple[float, float, float]:
    """The difference of rates a - b over paired episodes, with a 95% percentile bootstrap interval."""
    n = len(a)
    if n == 0 or n != len(b):
        raise ValueError("paired samples must be non-empty and of the same length")
    diffs = [float(x) - float(y) for x, y in zip(a, b, strict=True)]
    return (sum(diffs) / n, *mean_interval(diffs, rounds, seed))


def mean_interval(values: Sequence[float], rounds: int = 2000, seed: int = 0) -> tuple[float, float]:
    """A 95% percentile bootstrap interval of the mean of ``values`` (not empty)."""
    rng, n = random.Random(seed), len(values)
    means = sorted(sum(values[rng.randrange(n)] for _ in range(n)) / n for _ in range(rounds))
    return means[int(0.025 * rounds)], means[int(0.975 * rounds) - 1]


def cohen_kappa(pairs: Sequence[tuple[bool, bool]]) -> float | None:
    """Cohen's kappa of two raters' yes/no labels (None with no pairs; 1.0 when both always agree on one label).

    >>> cohen_kappa([(True, True), (False, False), (True, False), (False, False)])
    0.5
    """
    n = len(pairs)
    if n == 0:
        return None
    observed = sum(x == y for x, y in pairs) / n
    p1 = sum(x for x, _ in pairs) / n
    p2 = sum(y for _, y in pairs) / n
    expected = p1 * p2 + (1 - p1) * (1 - p2)
    return 1.0 if expected == 1.0 else (observed - expected) / (1 - expected)
