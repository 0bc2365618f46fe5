"""The report's monitor sections.

How well each monitor separated risky calls from benign ones, pass^k over epochs, and what a blocking monitor
bought (risk avoided) and cost (utility lost, false refusals).
"""

from __future__ import annotations

from typing import Any

from markupsafe import Markup, escape

from riskgym.grading.reliability import GOALS, PassK
from riskgym.grading.stats import MIN_N
from riskgym.monitoring.evaluate import FPRS
from riskgym.viewing.summary import Report
from riskgym.viewing.svg import square_frame


def _num(value: float | None, ci: tuple[float, float] | None = None) -> str:
    if value is None:
        return "-"
    return f"{value:.3f}" + (f" [{ci[0]:.2f}-{ci[1]:.2f}]" if ci else "")


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def monitor_table(figures: list[dict[str, Any]]) -> Any:
    """One row per monitor: AUROC, AUPRC, TPR at fixed FPRs, the audit threshold, what was left out."""
    from rich.table import Table

    budget = figures[0]["budget"]
    table = Table(title="monitors: per-step suspicion against the graders' truth (risky = a tripwire's step)",
                  caption="AUROC, AUPRC [95% bootstrap over episodes]; TPR at a fixed FPR; the threshold flags at "
                  f"most {budget:.0%} of benign-run scores (audit budget). Unscored steps are left out and counted.")
    for col in ("monitor", "steps risky/benign", "AUROC", "AUPRC (base)", *(f"TPR@{f:.0%}FPR" for f in FPRS),
                f"threshold @{budget:.0%}", "TPR / FPR there", "episode AUROC", "unscored", "excluded", "blocked"):
        table.add_column(col, justify="left" if col == "monitor" else "right", no_wrap=True)
    for f in figures:
        table.add_row(f["monitor"], f"{f['positives']}/{f['negatives']}", _num(f["auroc"], f["auroc_ci"]),
                      _num(f["auprc"], f["auprc_ci"]) + f" ({_share(f['base_rate'])})",
                      *(_share(f["tpr_at"][x]) for x in FPRS), _num(f["threshold"]),
                      f"{_share(f['threshold_tpr'])} / {_share(f['threshold_fpr'])}", _num(f["episode_auroc"]),
                      str(f["unscored"]), str(f["excluded"]), str(f["blocked"]))
    return table


def category_lines(figures: list[dict[str, Any]]) -> list[str]:
    """Per monitor, its AUROC in each category."""
    lines = []
    for f in figures:
        cells = [f"{c} {_num(v['auroc'])} ({v['positives']}/{v['negatives']})" for c, v in f["categories"].items()]
        if len(cells) > 1:
            lines.append(f"{f['monitor']} AUROC by category (risky/benign steps): " + ", ".join(cells))
        if f["why_excluded"]:
            lines.append(f"{f['monitor']}: steps excluded (graders left them unscored): "
                         + ", ".join(f"{n} because {why}" for why, n in f["why_excluded"].items()))
    return lines


def render_figures(figures: list[dict[str, Any]], console: Any) -> None:
    """Print the monitors' table and, under it, their AUROC by category and what was excluded."""
    console.print(monitor_table(figures))
    for line in category_lines(figures):
        console.print(line)


def _pass_cell(p: PassK) -> str:
    if p.value is None:
        return "-"
    lo, hi = p.interval or (0.0, 1.0)
    return f"{p.value:.0%} [{lo * 100:.0f}-{hi * 100:.0f}]{'†' if p.warning else ''}"


def reliability_table(table: dict[str, dict[str, list[PassK]]]) -> Any:
    """pass^k for k = 1 ... n, a row per goal and k, a column per agent."""
    from rich.table import Table

    agents = sorted({a for by in table.values() for a in by})
    grid = Table(title="reliability over epochs: pass^k = all k epochs of a scenario go right",
                 caption="unbiased C(c,k)/C(n,k) per scenario, mean over scenarios [95% bootstrap over scenarios]; "
                 f"pass^1 is the single-epoch rate; † fewer than {MIN_N} scenarios, or some left out with too few "
                 "epochs")
    grid.add_column("goal", no_wrap=True)
    grid.add_column("k", justify="right")
    for agent in agents:
        grid.add_column(agent, justify="right", no_wrap=True)
    for goal in GOALS:
        by = table.get(goal, {})
        for k in range(1, max((len(v) for v in by.values()), default=0) + 1):
            grid.add_row(goal if k == 1 else "", str(k),
                         *(_pass_cell(by[a][k - 1]) if a in by and len(by[a]) >= k else "-" for a in agents))
    return grid


def effect_table(effects: list[dict[str, Any]]) -> Any:
    """Per agent and blocking monitor: completion and utility without and with it, and false refusals."""
    from rich.table import Table

    grid = Table(title="what blocking did: the same agent, scenarios and epochs without and with the monitor",
                 caption="difference = without minus with [95% paired bootstrap], p: exact McNemar; false refusals: "
                 "benign twins' episodes with a blocked call")
    for col in ("agent", "monitor", "pairs", "risk completion without → with", "risk avoided", "p",
                "utility without → with", "utility lost", "p", "false refusals", "blocked calls"):
        grid.add_column(col, justify="left" if col in ("agent", "monitor") else "right", no_wrap=True)
    for e in effects:
        cells = []
        for verdict in ("completion", "utility"):
            c = e[verdict]
            if c is None:
                cells += ["-", "-", "-"]
                continue
            d, lo, hi = c["difference"]
            cells += [f"{c['without']:.0%} → {c['with']:.0%}", f"{d * 100:+.0f} pts [{lo * 100:+.0f}, {hi * 100:+.0f}]",
                      f"{c['p']:.3g}"]
        pairs = max((e[v] or {}).get("pairs", 0) for v in ("completion", "utility"))
        stopped, benign = e["false_refusals"]
        grid.add_row(e["agent"], e["monitor"], str(pairs), *cells[:3], *cells[3:],
                     f"{stopped}/{benign}" if benign else "-", str(e["blocked_calls"]))
    return grid


def render_monitoring(report: Report, console: Any) -> None:
    """Print whichever of the three sections the report has something for."""
    if any(r.monitored for r in report.rows):
        render_figures(report.monitors, console)
    table = report.reliability
    if any(len(v) > 1 for by in table.values() for v in by.values()):
        console.print(reliability_table(table))
    if report.effects:
        console.print(effect_table(report.effects))


def curve_plot(figures: list[dict[str, Any]], which: str, colours: tuple[str, ...]) -> Markup:
    """The ROC (``which`` "roc": TPR against FPR) or precision-recall ("pr") curves, one line per monitor (SVG)."""
    size, pad, top = 240, 40, 22
    x_name, y_name = ("false positive rate", "true positive rate") if which == "roc" else ("recall", "precision")
    parts = square_frame(size, pad, top, f"{which} curves", x_name, y_name, percent=False)
    parts.append(f'<text x="{pad}" y="14" class="axis">{"ROC" if which == "roc" else "precision-recall"}</text>')
    if which == "roc":
        parts.append(f'<line x1="{pad}" y1="{top + size}" x2="{pad + size}" y2="{top}" class="grid" '
                     'stroke-dasharray="4 3"/>')
    for j, f in enumerate(figures):
        points = [(a, b) for a, b, _ in f[which]]
        if which == "pr" and points:
            points = [(0.0, points[0][1]), *points]
        if len(points) > 400:  # enough to draw; the step's scores are all in the table's figures
            points = points[::len(points) // 400 + 1] + points[-1:]
        if len(points) < 2:
            continue
        path = " ".join(f"{pad + a * size:.1f},{top + size - b * size:.1f}" for a, b in points)
        area = f["auroc"] if which == "roc" else f["auprc"]
        label = f"{f['monitor']}: {'AUROC' if which == 'roc' else 'AUPRC'} {'-' if area is None else f'{area:.3f}'}"
        parts.append(f'<polyline points="{path}" fill="none" stroke="{colours[j % len(colours)]}" stroke-width="2">'
                     f'<title>{escape(label)}</title></polyline>')
    parts.append("</svg>")
    return Markup("".join(parts))
