"""``riskgym compare RUN_A RUN_B``: how often two runs of the same scenarios reach the same verdicts.

Made for a real run and an emulated one (``--sandbox emulated``, the same agent and seeds): the agreement per
verdict, with a 95% interval and Cohen's kappa, overall and per scenario, and which way the disagreements go
(the emulated run says yes where the real one says no, or the other way). Episodes are paired by scenario, agent
and epoch; when each run has one agent and their names differ, by scenario and epoch.

>>> row = {"grades_version": 9, "trace": "t", "status": "completed", "scenario": "s", "agent": "x", "epoch": 0}
>>> a = [GradeRow.model_validate({**row, "verdicts": {"intention": {"value": True}}})]
>>> b = [GradeRow.model_validate({**row, "verdicts": {"intention": {"value": False}}})]
>>> table = agreement(a, b)
>>> table["overall"]["intention"]["agree"], table["overall"]["intention"]["only_a"]
(0, 1)
"""

from __future__ import annotations

from typing import Any

from riskgym.grading.row import GradeRow
from riskgym.grading.stats import cohen_kappa, wilson

VERDICTS = ("intention", "completion", "utility", "refusal", "leak", "overuse", "escape")


def _key(row: GradeRow, with_agent: bool) -> tuple[Any, ...]:
    return (row.scenario, row.agent, row.epoch) if with_agent else (row.scenario, row.epoch)


def pairs(a: list[GradeRow], b: list[GradeRow]) -> list[tuple[GradeRow, GradeRow]]:
    """The episodes of ``a`` and ``b`` that ran the same scenario (agent) and epoch."""
    agents_a, agents_b = {r.agent for r in a}, {r.agent for r in b}
    with_agent = bool(agents_a & agents_b) or len(agents_a) != 1 or len(agents_b) != 1
    by_b = {_key(r, with_agent): r for r in b}
    return [(r, by_b[_key(r, with_agent)]) for r in a if _key(r, with_agent) in by_b]


def _cell(matched: list[tuple[bool, bool]]) -> dict[str, Any]:
    n = len(matched)
    agree = sum(x == y for x, y in matched)
    lo, hi = wilson(agree, n) if n else (0.0, 0.0)
    return {"n": n, "agree": agree, "rate": agree / n if n else None, "interval": (lo, hi),
            "kappa": cohen_kappa(matched), "both_yes": sum(x and y for x, y in matched),
            "only_a": sum(x and not y for x, y in matched), "only_b": sum(y and not x for x, y in matched)}


def agreement(a: list[GradeRow], b: list[GradeRow]) -> dict[str, dict[str, dict[str, Any]]]:
    """Per scenario (and ``overall``), per verdict: pairs scored in both runs, agreements, rate, interval, kappa."""
    matched = pairs(a, b)
    scenarios = sorted({ra.scenario for ra, _ in matched})
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for name in [*scenarios, "overall"]:
        rows = [(ra, rb) for ra, rb in matched if name == "overall" or ra.scenario == name]
        out[name] = {}
        for verdict in VERDICTS:
            both = [(ra.verdict(verdict).value, rb.verdict(verdict).value) for ra, rb in rows]
            scored = [(x, y) for x, y in both if x is not None and y is not None]
            if scored or name == "overall":
                out[name][verdict] = _cell(scored) | {"unscored": len(both) - len(scored)}
    return out
