"""ROC, PR, AUROC, AUPRC, TPR at a fixed FPR and the audit threshold, against values worked out by hand."""

import itertools
import math

from hypothesis import given
from hypothesis import strategies as st

from riskgym.monitoring.metrics import (
    auroc,
    average_precision,
    bootstrap,
    pr_curve,
    rates_at,
    roc_curve,
    threshold_at,
    tpr_at_fpr,
)
from tests.conftest import exact_bootstrap

# three risky steps and five benign ones; the hand computation is in each test
RISKY = [0.9, 0.7, 0.4]
BENIGN = [0.8, 0.3, 0.2, 0.1, 0.05]
SCORES, LABELS = RISKY + BENIGN, [True] * 3 + [False] * 5


def test_auroc_counts_the_pairs_a_risky_step_wins():
    # 0.9 beats all 5 benign, 0.7 beats 4 (not 0.8), 0.4 beats 4: 13 of 15 pairs
    assert auroc(SCORES, LABELS) == 13 / 15


def test_a_tie_counts_half():
    assert auroc([0.5, 0.5], [True, False]) == 0.5
    assert auroc([0.5, 0.5, 0.1], [True, False, False]) == 0.75


def test_average_precision_sums_precision_where_recall_grows():
    # ranked: 0.9 R (1/1), 0.8 B, 0.7 R (2/3), 0.4 R (3/4): each gain is a third of recall
    assert math.isclose(average_precision(SCORES, LABELS), (1 + 2 / 3 + 3 / 4) / 3)


def test_the_curves_go_corner_to_corner():
    roc = roc_curve(SCORES, LABELS)
    assert roc[0][:2] == (0.0, 0.0) and roc[-1][:2] == (1.0, 1.0)
    assert [(f, t) for f, t, _ in roc][:3] == [(0.0, 0.0), (0.0, 1 / 3), (0.2, 1 / 3)]
    pr = pr_curve(SCORES, LABELS)
    assert pr[0][:2] == (1 / 3, 1.0) and pr[-1][:2] == (1.0, 3 / 8)


def test_tpr_at_a_fixed_fpr():
    # no benign step may be flagged at 1% or 5% of five: only 0.9 is above them all
    assert tpr_at_fpr(SCORES, LABELS, 0.01) == 1 / 3
    assert tpr_at_fpr(SCORES, LABELS, 0.05) == 1 / 3
    # one of five (20%) may: flag >= 0.4, all three risky
    assert tpr_at_fpr(SCORES, LABELS, 0.2) == 1.0


def test_the_audit_threshold_flags_at_most_the_budget_of_benign_scores():
    benign = [i / 100 for i in range(100)]  # 0.00 ... 0.99
    t = threshold_at(benign, 0.05)
    assert t == 0.94 and sum(s > t for s in benign) == 5
    assert threshold_at(benign, 0.0) == 0.99
    assert rates_at(SCORES, LABELS, 0.5) == (2 / 3, 1 / 5)


def test_without_both_classes_there_is_no_figure():
    assert auroc([0.1, 0.2], [False, False]) is None
    assert average_precision([0.1, 0.2], [True, True]) is None
    assert tpr_at_fpr([0.3], [True], 0.01) is None


def test_the_bootstrap_interval_is_the_resamples_own():
    groups = [[(0.9, True), (0.2, False)], [(0.85, False), (0.7, True)], [(0.1, False)], [(0.8, True), (0.3, False)]]
    lo, hi = bootstrap(groups, "auroc", rounds=4000)
    flat = [x for g in groups for x in g]
    point = auroc([s for s, _ in flat], [y for _, y in flat])
    assert lo <= point <= hi and lo < hi

    def resampled(drawn):
        sample = [x for i in drawn for x in groups[i]]
        return auroc([s for s, _ in sample], [y for _, y in sample])

    assert (lo, hi) == exact_bootstrap(len(groups), resampled) == (0.25, 1.0)  # the 256 resamples, counted
    assert bootstrap([[(0.9, True), (0.1, False)]] * 3, "auroc") == (1.0, 1.0)  # nothing varies: no width


@given(st.lists(st.tuples(st.sampled_from([0.0, 0.25, 0.5, 0.75, 1.0]), st.booleans()), min_size=2, max_size=12))
def test_auroc_is_the_share_of_pairs_won(items):
    scores, labels = [s for s, _ in items], [y for _, y in items]
    pairs = [(a, b) for (a, ya), (b, yb) in itertools.product(items, items) if ya and not yb]
    expected = sum(1.0 if a > b else 0.5 if a == b else 0.0 for a, b in pairs) / len(pairs) if pairs else None
    got = auroc(scores, labels)
    assert got == expected if expected is None else math.isclose(got, expected)
