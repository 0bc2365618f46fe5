"""Per-episode results as CSV and JSONL, and a Markdown leaderboard, from a run's grades."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from riskgym.grading.row import GradeRow
from riskgym.grading.stats import MIN_N
from riskgym.rundir import EPISODES
from riskgym.viewing.report import LABELS, rate_cell
from riskgym.viewing.summary import METRICS, Report

EPISODE = ("trace", "scenario", "category", "benign", "agent", "epoch", "status", "steps", "outcome", "observer",
           "verified")
VERDICTS = METRICS
COLUMNS = (*EPISODE, *VERDICTS, "overuse_amount", "intention_steps", "tokens", "cost", "tools", "turns",
           "model_seconds", "retries")
"""The CSV's columns. A verdict is yes, no or empty (unscored)."""
TURN_COLUMNS = ("trace", "scenario", "agent", "epoch", "turn", "seconds", "prompt_tokens", "completion_tokens",
                "tokens_estimated", "cost", "attempts", "retried", "finish_reason", "calls", "error")
"""The per-turn CSV's columns: one line per model call."""


def _flat(row: GradeRow) -> dict[str, Any]:
    usage = row.usage

    def word(name: str) -> str:
        value = row.verdict(name).value
        return "" if value is None else "yes" if value else "no"

    return {**{k: getattr(row, k) for k in EPISODE}, **{m: word(m) for m in VERDICTS},
            "overuse_amount": row.verdict("overuse").amount or "",
            "intention_steps": " ".join(map(str, row.verdict("intention").steps)),
            "tokens": usage.tokens, "cost": "" if usage.cost is None else usage.cost, "tools": " ".join(row.tools),
            "turns": usage.turns, "model_seconds": usage.model_seconds, "retries": usage.retries}


def to_csv(rows: list[GradeRow]) -> str:
    """One line per episode, the columns of ``COLUMNS``."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(_flat(r) for r in rows)
    return out.getvalue()


def to_turns_csv(rows: list[GradeRow], run_dir: Path) -> str:
    """One line per model call of every episode: latency, tokens, cost, attempts and why they were retried."""
    from riskgym.core.trace import read_trace

    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=TURN_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        for t in read_trace(run_dir / EPISODES / row.trace).turns:
            writer.writerow({"trace": row.trace, "scenario": row.scenario, "agent": row.agent,
                             "epoch": row.epoch, "turn": t.turn, "seconds": round(t.latency, 3),
                             "prompt_tokens": t.prompt_tokens, "completion_tokens": t.completion_tokens,
                             "tokens_estimated": "yes" if t.tokens_estimated else "",
                             "cost": "" if t.cost is None else t.cost, "attempts": t.attempts,
                             "retried": " | ".join(t.retried), "finish_reason": t.finish_reason or "",
                             "calls": " ".join(c.get("tool", "") for c in t.calls), "error": t.error or ""})
    return out.getvalue()


def to_jsonl(rows: list[GradeRow]) -> str:
    """One JSON object per episode: the full grades row (verdicts with their evidence)."""
    return "".join(json.dumps(r.model_dump(mode="json"), sort_keys=True) + "\n" for r in rows)


LEADERBOARD = ("intention", "completion", "utility", "refusal", "false_refusal", "overuse", "leak", "escape")


def to_markdown(report: Report, title: str = "") -> str:
    """A leaderboard: one row per agent, safest first (lowest risk completion, then intention)."""
    summary = report.agents
    shown = [m for m in LEADERBOARD if any(s.kn(m)[1] for s in summary.values())]

    def rank(agent: str) -> tuple[float, float, str]:
        s = summary[agent]
        return s.share("completion"), s.share("intention"), agent

    lines = [f"## {title}", ""] if title else []
    lines += ["| # | agent | episodes | " + " | ".join(LABELS[m] for m in shown) + " |",
              "|---|---|---:|" + "---:|" * len(shown)]
    for n, agent in enumerate(sorted(summary, key=rank), 1):
        s = summary[agent]
        cells = [rate_cell(*s.kn(m)) for m in shown]
        lines.append(f"| {n} | {agent.replace('|', '/')} | {s.episodes} | " + " | ".join(cells) + " |")
    lines += ["", f"Rate [95% Wilson interval] k/n scored; † fewer than {MIN_N} scored: too few to conclude. "
              "Lower is better except for utility. Ranked by risk completion, then risk intention."]
    return "\n".join(lines) + "\n"
