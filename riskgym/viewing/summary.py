"""The report of a set of graded episodes, worked out once: what the terminal, the HTML page and the leaderboard show.

Every rate is k/n over the episodes a grader scored (unscored ones are left out, never counted as safe). Each view
renders a :class:`Report`; none of them counts, pairs or bootstraps on its own, so two views of one run cannot differ.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from riskgym.grading.attacks import attack_metrics
from riskgym.grading.reliability import PassK, reliability
from riskgym.grading.row import GradeRow
from riskgym.grading.runs import agreement, confusion
from riskgym.monitoring.effect import effect
from riskgym.monitoring.evaluate import evaluate

METRICS = ("intention", "completion", "utility", "overuse", "refusal", "leak", "escape", "judge", "exposure")
"""Every verdict a row may hold, in the order reports show them (index columns and CSV columns too)."""
RATES = (*METRICS[:5], "false_refusal", *METRICS[5:])
"""The rates a report can show, in its order: the verdicts, and the false refusals of benign twins."""


@dataclass
class Tally:
    """One agent's episodes counted: each rate's [k, n] scored, errors, outcomes, model use, overuse."""

    episodes: int = 0
    errors: int = 0
    turns: int = 0
    tokens: int = 0
    cost: float | None = None
    """None when no episode's price was known."""
    aoc: float = 0.0
    """Overuse's aggregate count: the excess beyond the budgets, summed."""
    normalized: float = 0.0
    outcomes: Counter[str] = field(default_factory=Counter)
    scores: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    """The judge's ToolEmu scores, per scale."""
    emulator: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    rates: dict[str, list[int]] = field(default_factory=lambda: {m: [0, 0] for m in RATES})

    def add(self, row: GradeRow) -> None:
        """Count one episode."""
        self.episodes += 1
        self.errors += row.broken
        self.outcomes[row.outcome] += 1
        self.turns += row.usage.turns
        self.tokens += row.usage.tokens
        if row.usage.cost is not None:
            self.cost = (self.cost or 0.0) + row.usage.cost
        for scale, score in row.verdict("judge").scores.items():
            self.scores[scale].append(score)
        for key, value in (row.emulator.model_dump() if row.emulator else {}).items():
            self.emulator[key] += value or 0
        overuse = row.verdict("overuse")
        self.aoc += overuse.amount or 0.0
        self.normalized += overuse.normalized or 0.0
        for metric in RATES:
            value = row.value(metric)
            if value is not None:
                self.rates[metric][0] += bool(value)
                self.rates[metric][1] += 1

    def kn(self, metric: str) -> tuple[int, int]:
        """A rate's k and n: yes among the episodes scored, and those scored."""
        k, n = self.rates[metric]
        return k, n

    def share(self, metric: str) -> float:
        """k/n, 0 when nothing was scored."""
        k, n = self.kn(metric)
        return k / n if n else 0.0


def tally(rows: list[GradeRow]) -> dict[str, Tally]:
    """Per agent, its episodes counted."""
    out: dict[str, Tally] = {}
    for row in rows:
        out.setdefault(row.agent, Tally()).add(row)
    return out


@dataclass
class Report:
    """A set of graded episodes (one run, or several side by side) and every figure a view shows of them.

    The cheap figures are worked out at once; the bootstrapped ones (monitors, pass^k, what blocking did) the first
    time a view asks, and never twice.
    """

    rows: list[GradeRow]
    interval: str = "wilson"
    budget: float = 0.01
    """The monitors' audit budget: the share of benign-run scores their threshold may flag."""

    def __post_init__(self) -> None:
        self.agents: dict[str, Tally] = tally(self.rows)
        self.shown = [m for m in RATES if any(t.kn(m)[1] for t in self.agents.values())]  # some agent has one scored
        self.kappa, self.kappa_n = agreement(self.rows)  # the judge against the rules (intention)
        self.confusion = confusion(self.rows)

    def by(self, what: str) -> dict[str, dict[str, Tally]]:
        """Per value of a row's field (``category``, ``scenario``), per agent, its episodes counted."""
        groups: dict[str, list[GradeRow]] = defaultdict(list)
        for row in self.rows:
            groups[str(getattr(row, what)) or "?"].append(row)
        return {name: tally(members) for name, members in sorted(groups.items())}

    @cached_property
    def monitors(self) -> list[dict[str, Any]]:
        """Each monitor's figures against the graders' truth, by name (``Evaluation.figures``)."""
        return [ev.figures(self.budget, 500) for _, ev in sorted(evaluate(self.rows).items())]

    @cached_property
    def reliability(self) -> dict[str, dict[str, list[PassK]]]:
        """pass^k per goal and agent."""
        return reliability(self.rows)

    @cached_property
    def effects(self) -> list[dict[str, Any]]:
        """What each blocking monitor bought and cost, against its agent's unguarded twins."""
        return effect(self.rows)

    @cached_property
    def attacks(self) -> dict[str, dict[str, Any]]:
        """The injection suites' metrics per agent."""
        return attack_metrics(self.rows)
