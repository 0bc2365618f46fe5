"""Intervals and tests against published values (Brown, Cai & DasGupta 2001; exact binomial tails)."""

import math

import pytest

from riskgym.grading.stats import beta_cdf, beta_interval, cohen_kappa, mcnemar_exact, paired_bootstrap, wilson


@pytest.mark.parametrize(("k", "n", "low", "high"), [
    (0, 10, 0.0, 0.2775), (5, 10, 0.2366, 0.7634), (10, 10, 0.7225, 1.0), (1, 20, 0.0089, 0.2361),
])
def test_wilson_matches_published_values(k, n, low, high):
    lo, hi = wilson(k, n)
    assert lo == pytest.approx(low, abs=5e-4) and hi == pytest.approx(high, abs=5e-4)


@pytest.mark.parametrize(("k", "n", "low", "high"), [
    (0, 10, 0.0, 0.2172), (5, 10, 0.2235, 0.7765), (3, 20, 0.0441, 0.3486),
])
def test_jeffreys_beta_interval_matches_published_values(k, n, low, high):
    lo, hi = beta_interval(k, n)
    assert lo == pytest.approx(low, abs=5e-4) and hi == pytest.approx(high, abs=5e-4)


def test_beta_interval_is_symmetric():
    for k, n in ((0, 20), (3, 20), (7, 9)):
        lo, hi = beta_interval(k, n)
        mirror_lo, mirror_hi = beta_interval(n - k, n)
        assert lo == pytest.approx(1 - mirror_hi, abs=1e-9) and hi == pytest.approx(1 - mirror_lo, abs=1e-9)


def test_beta_cdf_against_closed_forms():
    assert beta_cdf(0.3, 1, 1) == pytest.approx(0.3)  # uniform
    assert beta_cdf(0.3, 2, 1) == pytest.approx(0.09)  # x^2
    assert beta_cdf(0.5, 7, 7) == pytest.approx(0.5)  # symmetric
    assert beta_cdf(0.2, 0.5, 0.5) == pytest.approx(2 / math.pi * math.asin(math.sqrt(0.2)))  # arcsine


def test_mcnemar_exact_is_the_binomial_tail():
    assert mcnemar_exact(0, 6) == pytest.approx(2 / 64)
    assert mcnemar_exact(1, 9) == pytest.approx(2 * 11 / 1024)
    assert mcnemar_exact(4, 4) == 1.0 and mcnemar_exact(0, 0) == 1.0


def test_paired_bootstrap_and_kappa():
    diff, lo, hi = paired_bootstrap([True] * 8 + [False] * 2, [False] * 8 + [True] * 2)
    # a resample's difference is (2K - 10) / 10, K ~ Binomial(10, 0.8): its 2.5% quantile is K = 5 and its 97.5%
    # quantile K = 10; 2,000 rounds may land one K off at the low end (P(K <= 5) = 0.033)
    assert diff == pytest.approx(0.6) and lo in (pytest.approx(0.0), pytest.approx(0.2)) and hi == pytest.approx(1.0)
    # 100 pairs, 30 go one way and 10 the other: the difference 0.2 with standard error sqrt((0.4 - 0.04) / 100)
    big_a, big_b = [True] * 30 + [False] * 10 + [True] * 60, [False] * 30 + [True] * 10 + [True] * 60
    diff, lo, hi = paired_bootstrap(big_a, big_b)
    assert diff == pytest.approx(0.2) and lo == pytest.approx(0.2 - 1.96 * 0.06, abs=0.03)
    assert hi == pytest.approx(0.2 + 1.96 * 0.06, abs=0.03)
    assert paired_bootstrap(big_a, big_b, seed=0) == paired_bootstrap(big_a, big_b, seed=0)  # seeded
    assert paired_bootstrap([True] * 5, [True] * 5) == (0.0, 0.0, 0.0)
    with pytest.raises(ValueError):
        paired_bootstrap([True], [True, False])
    assert cohen_kappa([(True, True)] * 5 + [(False, False)] * 5) == 1.0
    assert cohen_kappa([(True, False)] * 5 + [(False, True)] * 5) == -1.0
    assert cohen_kappa([]) is None
