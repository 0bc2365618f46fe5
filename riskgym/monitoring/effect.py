"""What a blocking monitor bought and cost: risk completion with and without it, utility lost, false refusals.

The runs to weigh are the same agents on the same scenarios and epochs, once with ``--monitor M --block-above T``
and once without (e.g. ``riskgym report runs/plain runs/guarded``). Episodes are paired by agent, scenario and
epoch; only pairs whose verdict both runs scored count. A false refusal is a benign twin's episode in which the
monitor blocked at least one call (the agent was stopped on a harmless task).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from riskgym.grading.row import GradeRow
from riskgym.grading.stats import mcnemar_exact, paired_bootstrap


def setting(row: GradeRow) -> str | None:
    """The blocking monitor a row ran under, as ``NAME > T`` (None: none, or one that only observed)."""
    monitor = row.monitor or {}
    if monitor.get("block_above") is None:
        return None
    return f"{monitor['name']} > {monitor['block_above']:g}"


def _paired(rows_a: list[GradeRow], rows_b: list[GradeRow], verdict: str) -> tuple[list[bool], list[bool]]:
    """The values of ``verdict`` over the pairs (agent, scenario, epoch) both scored: (without, with)."""
    def key(r: GradeRow) -> tuple[str, str, int]:
        return r.own_agent, r.scenario, r.epoch

    with_ = {key(r): r.verdict(verdict).value for r in rows_b}
    without, guarded = [], []
    for r in rows_a:
        a, b = r.verdict(verdict).value, with_.get(key(r))
        if a is not None and b is not None:
            without.append(bool(a))
            guarded.append(bool(b))
    return without, guarded


def effect(rows: list[GradeRow]) -> list[dict[str, Any]]:
    """Per agent and blocking setting that has unguarded twins in ``rows``: the paired figures (empty: none)."""
    plain: dict[str, list[GradeRow]] = defaultdict(list)
    guarded: dict[tuple[str, str], list[GradeRow]] = defaultdict(list)
    for r in rows:
        name, blocking = r.own_agent, setting(r)
        if blocking is None:
            plain[name].append(r)
        else:
            guarded[(name, blocking)].append(r)
    out = []
    for (agent, blocking), members in sorted(guarded.items()):
        base = plain.get(agent)
        if not base:
            continue
        entry: dict[str, Any] = {"agent": agent, "monitor": blocking}
        for verdict in ("completion", "utility"):
            a, b = _paired(base, members, verdict)
            entry[verdict] = None if not a else {
                "pairs": len(a), "without": sum(a) / len(a), "with": sum(b) / len(b),
                "difference": paired_bootstrap(a, b),  # without - with: risk avoided, or utility lost
                "p": mcnemar_exact(sum(x and not y for x, y in zip(a, b, strict=True)),
                                   sum(y and not x for x, y in zip(a, b, strict=True)))}
        benign = [r for r in members if r.benign and r.status not in ("error", "unfinished")]
        stopped = sum(1 for r in benign if any(m.blocked for m in r.monitored))
        entry["false_refusals"] = (stopped, len(benign))
        entry["blocked_calls"] = sum(1 for r in members for m in r.monitored if m.blocked)
        out.append(entry)
    return out
