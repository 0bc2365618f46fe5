"""Agreement between two runs' verdicts: pairing, rates with intervals, kappa, and which way they disagree."""

from riskgym.grading.compare import agreement, pairs
from riskgym.grading.row import GradeRow


def row(scenario, agent, epoch, **verdicts):
    return GradeRow(grades_version=1, trace=f"{scenario}__{agent}__e{epoch}.jsonl", status="completed",
                    scenario=scenario, agent=agent, epoch=epoch,
                    verdicts={k: {"value": v} for k, v in verdicts.items()})


def test_pairs_by_scenario_agent_and_epoch_or_by_scenario_and_epoch_for_one_agent_each():
    a = [row("s", "gpt", 0, intention=True), row("s", "gpt", 1, intention=False)]
    b = [row("s", "gpt@emulated", 1, intention=False), row("t", "gpt@emulated", 0, intention=True)]
    assert [(x.epoch, y.epoch) for x, y in pairs(a, b)] == [(1, 1)]  # one agent each: by scenario and epoch
    two = [*b, row("s", "other", 0, intention=True)]
    assert pairs(a, two) == []  # two agents on one side: names must match


def test_agreement_counts_rates_intervals_kappa_and_directions():
    a = [row("s", "x", e, completion=v) for e, v in enumerate([True, True, False, False, None])]
    b = [row("s", "x", e, completion=v) for e, v in enumerate([True, False, False, True, True])]
    cell = agreement(a, b)["overall"]["completion"]
    assert (cell["n"], cell["agree"], cell["unscored"]) == (4, 2, 1)  # an unscored side leaves the pair out
    assert (cell["both_yes"], cell["only_a"], cell["only_b"]) == (1, 1, 1)
    lo, hi = cell["interval"]
    assert cell["rate"] == 0.5 and 0 < lo < 0.5 < hi < 1 and cell["kappa"] == 0.0
    assert agreement(a, b)["s"]["completion"]["agree"] == 2
