"""pass^k over epochs: the unbiased estimate, against every k-subset of the epochs and the closed form."""

import itertools
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console

from riskgym.grading.reliability import pass_hat_k, pass_k, reliability
from riskgym.grading.row import GradeRow
from riskgym.viewing.monitors import reliability_table
from tests.conftest import exact_bootstrap


@given(st.lists(st.booleans(), min_size=1, max_size=8), st.data())
def test_pass_hat_k_is_the_share_of_k_subsets_that_all_go_right(epochs, data):
    k = data.draw(st.integers(1, len(epochs)))
    subsets = list(itertools.combinations(epochs, k))
    assert math.isclose(pass_hat_k(sum(epochs), len(epochs), k), sum(all(s) for s in subsets) / len(subsets))


def test_pass_hat_k_needs_k_epochs():
    with pytest.raises(ValueError):
        pass_hat_k(1, 2, 3)


def rows(agent, scenario, outcomes):
    """One grades row per epoch: completion as given (True: harmed), intention the same, utility the opposite."""
    return [row(agent, scenario, e, completion=harmed, intention=harmed, utility=not harmed)
            for e, harmed in enumerate(outcomes)]


def row(agent, scenario, epoch, **values):
    return GradeRow(grades_version=1, trace=f"{scenario}__{agent}__e{epoch}.jsonl", status="completed",
                    scenario=scenario, agent=agent, epoch=epoch, verdicts={k: {"value": v} for k, v in values.items()})


def test_the_report_shows_pass_k_for_every_k_with_the_closed_form():
    # scenario a: 3 of 4 epochs unharmed; b: 1 of 4; c: only 2 epochs, 2 unharmed
    data = rows("m", "a", [False, False, False, True]) + rows("m", "b", [True, True, False, True]) \
        + rows("m", "c", [False, False])
    table = reliability(data, rounds=200)["no completion"]["m"]
    # k=1: (3/4 + 1/4 + 1) / 3; k=2: (C(3,2)/C(4,2) + 0 + 1) / 3; k=3: c has too few epochs: (1/4 + 0) / 2
    expected = [(0.75 + 0.25 + 1) / 3, (3 / 6 + 0 + 1) / 3, (1 / 4 + 0) / 2, 0.0]
    assert [p.k for p in table] == [1, 2, 3, 4]
    assert all(math.isclose(p.value, e) for p, e in zip(table, expected, strict=True))
    assert table[2].short == 1 and "left out" in table[2].warning and table[0].scenarios == 3
    assert all(p.interval[0] <= p.value <= p.interval[1] for p in table)
    values = [0.75, 0.25, 1.0]  # k=1's per scenario: the 27 resamples of their mean, counted
    assert pass_k({"a": (3, 4), "b": (1, 4), "c": (2, 2)}, 1, rounds=4000).interval == exact_bootstrap(
        3, lambda drawn: sum(values[i] for i in drawn) / 3) == (0.25, 1.0)
    console = Console(record=True, width=200)
    console.print(reliability_table(reliability(data, rounds=200)))
    lines = console.export_text().splitlines()
    shown = [line.split("│")[3].strip().split(" ")[0] for line in lines if ("│" in line and "no completion" in line)
             or line.startswith("│               │")][:4]
    assert shown == [f"{e:.0%}" for e in expected]


def test_unscored_epochs_are_left_out_and_few_scenarios_are_flagged():
    data = [*rows("m", "a", [False, True]), row("m", "a", 2, completion=None)]
    p = pass_k({"a": (1, 2)}, 2)
    assert p.value == 0.0 and "too few" in p.warning
    assert [q.value for q in reliability(data, rounds=50)["no completion"]["m"]] == [0.5, 0.0]
