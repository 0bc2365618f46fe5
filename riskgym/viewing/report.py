"""A graded run in the terminal: rates per agent (and category) with intervals, and paired comparisons.

The figures are a :class:`riskgym.viewing.summary.Report`'s; this module lays them out. Every rate is k/n over the
episodes a grader scored (unscored ones are left out, never counted as safe), with a 95% interval: Wilson's by
default, or the Beta posterior's (Jeffreys). A rate from fewer than ``MIN_N`` scored episodes is marked as too few
to conclude.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from riskgym.grading.row import GradeRow
from riskgym.grading.stats import MIN_N, beta_interval, mcnemar_exact, paired_bootstrap, wilson
from riskgym.grading.verdict import Verdict
from riskgym.viewing.monitors import render_monitoring
from riskgym.viewing.summary import METRICS, RATES, Report, Tally

LOWER_IS_BETTER = {"intention", "completion", "overuse", "refusal", "leak", "escape", "judge"}
SHORT = {"intention": "intent", "completion": "harm", "utility": "util"}
LABELS = {"intention": "risk intention", "completion": "risk completion", "utility": "utility",
          "overuse": "overuse rate", "refusal": "refusal (risky)", "false_refusal": "false refusal (benign)",
          "leak": "leak", "escape": "escape attempt", "judge": "judge: risky", "exposure": "exposed to the risk"}


def count(n: int, noun: str) -> str:
    """``n`` and the noun, plural unless n is 1.

    >>> count(1, "paired episode"), count(3, "paired episode")
    ('1 paired episode', '3 paired episodes')
    """
    return f"{n} {noun}{'s' * (n != 1)}"


def interval_of(k: int, n: int, interval: str = "wilson") -> tuple[float, float]:
    """The 95% interval of k/n: Wilson's score interval, or (``beta``) the Beta posterior's with Jeffreys' prior."""
    return (beta_interval if interval == "beta" else wilson)(k, n)


def rate_cell(k: int, n: int, interval: str = "wilson") -> str:
    """``40% [12-77] 2/5``, with a dagger when n is too small to conclude."""
    if n == 0:
        return "-"
    lo, hi = interval_of(k, n, interval)
    return f"{k / n:.0%} [{lo * 100:.0f}-{hi * 100:.0f}] {k}/{n}{'†' if n < MIN_N else ''}"


def wide_console() -> Any:
    """A rich console at least 150 columns wide: tables of rates do not fit in fewer.

    Into a file or pipe it is 240 wide, as nothing is gained there by cutting cells short.
    """
    from rich.console import Console

    console = Console(highlight=False)
    console.width = max(console.width, 150 if console.is_terminal else 240)
    return console


def render_episodes(rows: list[GradeRow], console: Any) -> None:
    """One line per episode: status, outcome and each verdict, with the steps that are its evidence."""
    from rich.table import Table

    shown = [m for m in METRICS if any(r.verdict(m).value is not None for r in rows)]
    table = Table(title="episodes (yes@N: step N is the evidence)", title_justify="left")
    for col in ("scenario", "agent", "ep", "end", "steps", "outcome", *(SHORT.get(m, m) for m in shown)):
        table.add_column(col, no_wrap=True)
    for r in sorted(rows, key=lambda r: (r.scenario, r.agent, r.epoch)):
        table.add_row(r.scenario, r.agent, str(r.epoch), r.status, str(r.steps), r.outcome,
                      *(_mark(r.verdict(m)) for m in shown))
    console.print(table)


def _mark(verdict: Verdict) -> str:
    value, steps = verdict.value, verdict.steps
    mark = "-" if value is None else "yes" if value else "no"
    return f"{mark}@{','.join(map(str, steps[:4]))}" if steps and value else mark


def render(report: Report, title: str = "", episodes: bool = True, by: str | None = None) -> None:
    """Print the per-episode table (up to 40 episodes) and the rates per agent (or per category and agent).

    Where the rows have them, also the monitors' figures, pass^k over epochs and what blocking did.
    """
    console = wide_console()
    if episodes and len(report.rows) <= 40:
        render_episodes(report.rows, console)
    groups = report.by(by) if by else {"": report.agents}
    for group, agents in groups.items():
        console.print(_rates_table(agents, f"{title} — {by} {group}" if by else title, report.interval))
    if report.kappa_n and report.kappa is not None:
        console.print(f"judge vs rule (intention): Cohen's kappa {report.kappa:.2f} over {report.kappa_n} episodes "
                      "both scored")
    for line in observer_lines(report.rows):
        console.print(line)
    render_monitoring(report, console)


def observer_lines(rows: list[GradeRow]) -> list[str]:
    """Which observer's evidence the results rest on, and what it could not see; marked where it was in the box."""
    by = Counter(r.observer for r in rows if r.status != "unreadable")
    out = []
    if by:
        names = {"kernel": "from the host (kernel)", "strace": "in the box (strace) ‡", "none": "none"}
        out.append("observer: " + ", ".join(f"{names.get(k, k)} {n}" for k, n in sorted(by.items())))
    if by.get("strace"):
        out.append("‡ evidence from inside the box: an agent there can reach its observer (see docs/observer.md)")
    blind = sum(1 for r in rows if any(e.kind == "observation" for v in r.verdicts.values() for e in v.evidence))
    if blind:
        out.append(f"{blind} episode(s) with verdicts unscored because the observer did not see everything")
    unverified = [r for r in rows if not r.verified]
    if unverified:
        first = next((v.detail for v in unverified[0].verdicts.values()), "")
        out.append(f"{len(unverified)} trace(s) did not verify and were graded unscored (riskgym verify says why)"
                   + (f"; {unverified[0].trace}: {first}" if first else ""))
    return out


def _rates_table(summary: dict[str, Tally], title: str, interval: str) -> Any:
    from rich.table import Table

    agents = sorted(summary)
    name = "Wilson" if interval == "wilson" else "Beta posterior (Jeffreys)"
    table = Table(title=title or None, caption=f"rate [95% {name} interval] k/n scored; † fewer than {MIN_N}: "
                  "too few to conclude. Lower is better except for utility; exposure says how often the risk was met.")
    table.add_column("metric", no_wrap=True)
    for agent in agents:
        table.add_column(agent, justify="right", no_wrap=True)
    table.add_row("episodes", *(f"{summary[a].episodes}" + (f" ({summary[a].errors} err)" if summary[a].errors else "")
                                for a in agents))
    for metric in RATES:
        if any(summary[a].kn(metric)[1] for a in agents):
            table.add_row(LABELS[metric], *(rate_cell(*summary[a].kn(metric), interval)
                                            for a in agents))
    if any(summary[a].kn("overuse")[1] for a in agents):
        table.add_row("overuse: aggregate count", *(f"{summary[a].aoc:g}" for a in agents))
        means = (summary[a].normalized / max(summary[a].kn("overuse")[1], 1) for a in agents)
        table.add_row("overuse: normalised, mean", *(f"{m:.2f}" for m in means))
    for label, cells in extra_rows(summary, agents):
        table.add_row(label, *cells)
    table.add_row("outcomes", *(", ".join(f"{k} {v}" for k, v in sorted(summary[a].outcomes.items()))
                                for a in agents))
    if any(summary[a].tokens or summary[a].cost is not None for a in agents):  # scripted agents use none
        table.add_row("tokens", *(f"{summary[a].tokens:,}" for a in agents))
        table.add_row("cost", *("-" if (c := summary[a].cost) is None else f"${c:.4f}" for a in agents))
    return table


def extra_rows(summary: dict[str, Tally], agents: list[str]) -> list[tuple[str, list[str]]]:
    """The headline's rows beyond the rates, where the run has them: the judge's ToolEmu scores, the emulated calls."""
    rows = [(f"judge: ToolEmu {scale} (0-3)", [_mean(summary[a].scores.get(scale, [])) for a in agents])
            for scale in ("safety", "helpfulness") if any(summary[a].scores.get(scale) for a in agents)]
    if any(summary[a].emulator for a in agents):
        rows.append(("emulated calls", [_emulated(summary[a].emulator) for a in agents]))
    return rows


def _mean(scores: list[float]) -> str:
    return f"{sum(scores) / len(scores):.2f} (n={len(scores)})" if scores else "-"


def _emulated(totals: dict[str, float]) -> str:
    """``41 (2 failed, 1 contradiction, 12 reused), 9,200 tokens``."""
    if not totals:
        return "-"
    parts = [f"{totals['failed']:g} failed", count(int(totals["contradictions"]), "contradiction"),
             f"{totals['reused']:g} reused"]
    return f"{totals['calls']:g} ({', '.join(parts)}), {totals['tokens']:,.0f} tokens"


def compare(rows: list[GradeRow], a: str, b: str) -> list[dict[str, Any]]:
    """Agent ``a`` against ``b`` on the same episodes (scenario and epoch), per metric.

    For each: both rates, the difference with a paired bootstrap interval, and the exact McNemar p-value.
    """
    by_key: dict[str, dict[tuple[str, int], GradeRow]] = {a: {}, b: {}}
    for row in rows:
        if row.agent in by_key:
            by_key[row.agent][(row.scenario, row.epoch)] = row
    out = []
    for metric in RATES:
        both = [(ra.value(metric), by_key[b][key].value(metric)) for key, ra in by_key[a].items()
                if key in by_key[b]]
        pairs = [(x, y) for x, y in both if x is not None and y is not None]
        if not pairs:
            continue
        xs, ys = [x for x, _ in pairs], [y for _, y in pairs]
        diff, lo, hi = paired_bootstrap(xs, ys)
        discordant = (sum(x and not y for x, y in pairs), sum(y and not x for x, y in pairs))
        out.append({"metric": metric, "n": len(pairs), "a": sum(xs) / len(xs), "b": sum(ys) / len(ys),
                    "diff": diff, "low": lo, "high": hi, "p": mcnemar_exact(*discordant),
                    "warning": f"only {count(len(pairs), 'paired episode')}: too few to conclude"
                    if len(pairs) < MIN_N else ""})
    return out


def render_compare(rows: list[GradeRow], a: str, b: str) -> None:
    """Print ``compare`` as a table."""
    from rich.table import Table

    table = Table(title=f"{a} vs {b}, paired by scenario and epoch",
                  caption="difference = rate of the first minus the second, [95% paired bootstrap]; p: exact McNemar")
    for col in ("metric", "pairs", a, b, "difference", "p", ""):
        table.add_column(col, justify="right" if col not in ("metric", "") else "left", no_wrap=True)
    for c in compare(rows, a, b):
        table.add_row(LABELS[c["metric"]], str(c["n"]), f"{c['a']:.0%}", f"{c['b']:.0%}",
                      f"{c['diff'] * 100:+.0f} pts [{c['low'] * 100:+.0f}, {c['high'] * 100:+.0f}]", f"{c['p']:.3g}",
                      c["warning"])
    wide_console().print(table)


ATTACK_LABELS = {"utility": "utility without attack", "utility_under_attack": "utility under attack",
                 "attack_success": "targeted attack success"}


def render_attacks(metrics: dict[str, dict[str, Any]], title: str = "") -> None:
    """Print an injection suite's metrics per agent (:func:`riskgym.grading.attacks.attack_metrics`)."""
    from rich.table import Table

    if not metrics:
        wide_console().print("no episode of an injection suite in this run")
        return
    agents = sorted(metrics)
    table = Table(title=title or None, caption="rate [95% Wilson interval] k/n scored; higher utility is better, "
                  "lower attack success is better")
    table.add_column("metric", no_wrap=True)
    for agent in agents:
        table.add_column(agent, justify="right", no_wrap=True)
    for key, label in ATTACK_LABELS.items():
        table.add_row(label, *(rate_cell(metrics[a][key]["k"], metrics[a][key]["n"]) for a in agents))
    for template in sorted({t for a in agents for t in metrics[a]["by_template"]}):
        cells = [metrics[a]["by_template"].get(template) for a in agents]
        table.add_row(f"  attack success: {template}", *(rate_cell(c["k"], c["n"]) if c else "-" for c in cells))
    wide_console().print(table)


def render_agreement(table: dict[str, dict[str, dict[str, Any]]], a: str, b: str) -> None:
    """Print the agreement table: a row per scenario and one overall, a column per verdict."""
    from rich.table import Table

    from riskgym.grading.compare import VERDICTS

    console = wide_console()
    verdicts = [v for v in VERDICTS if table.get("overall", {}).get(v, {}).get("n")]
    if not verdicts:
        console.print(f"no episode of {a} has a scored counterpart in {b}: nothing to compare (same scenarios, agents "
                      "and epochs?)")
        return
    grid = Table(title=f"verdicts agreeing, {a} vs {b}", title_justify="left")
    grid.add_column("scenario")
    for verdict in verdicts:
        grid.add_column(verdict, justify="right")

    def cell(c: dict[str, Any] | None, overall: bool = False) -> str:
        if not c or not c["n"]:
            return "-"
        if not overall:
            return f"{c['agree']}/{c['n']}"
        lo, hi = c["interval"]
        kappa = "-" if c["kappa"] is None else f"{c['kappa']:.2f}"
        return f"{c['rate']:.0%} [{lo * 100:.0f}-{hi * 100:.0f}] {c['agree']}/{c['n']} κ {kappa}"

    for name, row in table.items():
        if name != "overall":
            grid.add_row(name, *(cell(row.get(v)) for v in verdicts))
    grid.add_row("[bold]overall[/bold]", *(cell(table["overall"].get(v), True) for v in verdicts))
    console.print(grid)
    for verdict in verdicts:
        c = table["overall"][verdict]
        if c["only_a"] or c["only_b"]:
            console.print(f"{verdict}: {c['only_a']} yes in {a} only, {c['only_b']} yes in {b} only, "
                          f"{c['both_yes']} yes in both")
