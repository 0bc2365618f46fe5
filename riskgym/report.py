"""Grade a run directory (without re-running anything) and summarise it per agent, with Wilson intervals."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from riskgym.environments import library_dir
from riskgym.errors import TraceError
from riskgym.graders import GRADERS, GRADES_VERSION, grade_trace
from riskgym.runner import trace_files
from riskgym.scenario import Scenario, load_scenario
from riskgym.trace import read_trace

METRICS = ("intention", "completion", "utility", "overuse")


def _manifest_scenarios(run_dir: Path) -> dict[str, Scenario]:
    """The scenarios the run's manifest names, by gymnasium id."""
    manifest = run_dir / "run.json"
    if not manifest.is_file():
        return {}
    scenarios = (load_scenario(s["file"]) for s in json.loads(manifest.read_text()).get("scenarios", [])
                 if Path(s["file"]).is_file())
    return {s.env_id: s for s in scenarios}


def grade_run(run_dir: Path, graders: list[str] | None = None) -> list[dict[str, Any]]:
    """Grade every trace of ``run_dir``; write ``grades.jsonl`` beside the traces; return the rows.

    Traces are only read, never changed.
    """
    unknown = [g for g in graders or [] if g not in GRADERS]
    if unknown:
        raise TraceError(f"--graders: unknown grader {unknown[0]!r}; choose from {', '.join(GRADERS)}")
    scenarios = _manifest_scenarios(run_dir if run_dir.is_dir() else run_dir.parent.parent)
    rows = []
    for path in trace_files(run_dir):
        trace = read_trace(path)
        h = trace.header
        key = h.env_id.removeprefix("riskgym/")  # also the library's file name, <id>-v<version>
        if h.env_id not in scenarios and (library_dir() / f"{key}.toml").is_file():
            scenarios[h.env_id] = load_scenario(library_dir() / f"{key}.toml")
        scenario = scenarios.get(h.env_id)
        if scenario is None:
            raise TraceError(f"{path}: scenario {key!r} is not in the run's manifest nor in the library")
        verdicts = grade_trace(scenario, trace, graders)
        end = trace.end
        rows.append({
            "grades_version": GRADES_VERSION, "trace": path.name, "scenario": key, "category": scenario.category,
            "agent": h.agent, "epoch": h.epoch, "status": end.status if end else "unfinished",
            "steps": len(trace.steps), "scenario_changed": scenario.content_hash != h.scenario_hash,
            "usage": trace.usage,
            "verdicts": {k: v.model_dump() for k, v in verdicts.items()},
        })
    if run_dir.is_dir():
        tmp = run_dir / "grades.jsonl.tmp"
        tmp.write_text("".join(json.dumps(r) + "\n" for r in rows))
        tmp.replace(run_dir / "grades.jsonl")
    return rows


def load_grades(run_dir: Path) -> list[dict[str, Any]]:
    """The run's grades, grading it first when it has none or traces are newer than the grades."""
    grades = run_dir / "grades.jsonl"
    traces = trace_files(run_dir)
    if grades.is_file() and all(t.stat().st_mtime <= grades.stat().st_mtime for t in traces):
        return [json.loads(line) for line in grades.read_text().splitlines() if line.strip()]
    return grade_run(run_dir)


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval for k successes in n trials (95% by default).

    >>> [round(x, 3) for x in wilson(0, 10)]
    [0.0, 0.278]
    """
    if n == 0:
        return (0.0, 1.0)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def summarise(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per agent: episodes, errors, model turns, tokens, cost, and for each metric k of n scored."""
    out: dict[str, dict[str, Any]] = {}
    for row in rows:
        agent = out.setdefault(row["agent"], {"episodes": 0, "errors": 0, "turns": 0, "tokens": 0, "cost": None,
                                              **{m: [0, 0] for m in METRICS}})
        agent["episodes"] += 1
        usage = row.get("usage") or {}
        agent["turns"] += usage.get("turns", 0)
        agent["tokens"] += usage.get("prompt_tokens", 0) + usage.get("completion_tokens", 0)
        if usage.get("cost") is not None:
            agent["cost"] = (agent["cost"] or 0.0) + usage["cost"]
        agent["errors"] += row["status"] in ("error", "unfinished", "interrupted")
        for metric in METRICS:
            value = row["verdicts"].get(metric, {}).get("value")
            if value is not None:
                agent[metric][0] += bool(value)
                agent[metric][1] += 1
    return out


def _mark(verdict: dict[str, Any]) -> str:
    value = verdict.get("value")
    mark = "-" if value is None else "yes" if value else "no"
    steps = verdict.get("steps") or []
    return f"{mark}: step {','.join(map(str, steps))}" if steps else mark


def render_episodes(rows: list[dict[str, Any]], console: Any) -> None:
    """Print one line per episode: status and each verdict, with the steps that are its evidence."""
    from rich.table import Table

    table = Table(title="episodes (evidence: the steps that tripped a wire)", title_justify="left")
    for col in ("scenario", "agent", "epoch", "end", "steps", *METRICS):
        table.add_column(col, no_wrap=True)
    for r in sorted(rows, key=lambda r: (r["scenario"], r["agent"], r["epoch"])):
        table.add_row(r["scenario"], r["agent"], str(r["epoch"]), r["status"], str(r["steps"]),
                      *(_mark(r["verdicts"].get(m, {})) for m in METRICS))
    console.print(table)


def render(rows: list[dict[str, Any]], title: str = "", episodes: bool = True) -> None:
    """Print the per-episode table (up to 40 episodes, or when asked) and the per-agent table."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title or None, caption="rate [95% Wilson interval] k/n scored. Higher intention, "
                  "completion and overuse are worse; higher utility is better.")
    table.add_column("agent", no_wrap=True)
    table.add_column("episodes", justify="right", no_wrap=True)
    for metric in METRICS:
        table.add_column(metric, justify="right", no_wrap=True)
    summary = summarise(rows)
    llm = any(s["tokens"] or s["cost"] is not None for s in summary.values())  # scripted agents use none
    if llm:
        table.add_column("tokens", justify="right", no_wrap=True)
        table.add_column("cost", justify="right", no_wrap=True)
    for agent, s in sorted(summary.items()):
        cells = []
        for metric in METRICS:
            k, n = s[metric]
            if n == 0:
                cells.append("-")
                continue
            lo, hi = wilson(k, n)
            cells.append(f"{k / n:.0%} [{lo * 100:.0f}-{hi * 100:.0f}] {k}/{n}")
        errors = f" ({s['errors']} err)" if s["errors"] else ""
        if llm:
            cells += [f"{s['tokens']:,}", "-" if s["cost"] is None else f"${s['cost']:.4f}"]
        table.add_row(agent, f"{s['episodes']}{errors}", *cells)
    console = Console()
    console.width = max(console.width, 130)
    if episodes and len(rows) <= 40:
        render_episodes(rows, console)
    console.print(table)
