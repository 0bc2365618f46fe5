"""``riskgym report RUN_DIR --html FILE``: one self-contained HTML page of a run's results.

Headline rates per agent with intervals, per-category charts with error bars, a safety-utility plot, overuse, the
judge's agreement with the rules, and every episode's trace (steps, calls, outputs, flags, state changes). The page
needs no network: styles, script and data are inside it. Each trace is stored gzip-compressed and opened only when
its episode is clicked, so the page stays quick with 10,000 episodes; a long trace is drawn a few hundred events at
a time.
"""

from __future__ import annotations

import base64
import datetime
import gzip
import json
import os
from collections import defaultdict
from pathlib import Path
from typing import Any

from markupsafe import Markup, escape

import riskgym
from riskgym.core.results import ImagePart
from riskgym.core.trace import Final, ModelTurn, Step, Trace
from riskgym.grading.named import named, tried
from riskgym.grading.row import GradeRow
from riskgym.grading.runs import judges_of
from riskgym.grading.stats import MIN_N
from riskgym.monitoring.evaluate import FPRS
from riskgym.rundir import EPISODES, GRADES, MANIFEST
from riskgym.viewing.audit import call_text, emulation_note, flags_by_step, harm_paths, seen_note, turn_note
from riskgym.viewing.monitors import curve_plot
from riskgym.viewing.report import LABELS, extra_rows, interval_of, observer_lines
from riskgym.viewing.summary import METRICS, Report, Tally
from riskgym.viewing.svg import square_frame

CLIP = 2000
"""Characters of each output and model message kept in the page; the trace file has all of them."""
CHUNK = 200
"""Events packed (and drawn) together: opening a trace of 5,000 events unpacks and draws the first 200 only."""
COLOURS = ("#3b6fd4", "#d9822b", "#2e9e6a", "#c2412f", "#8a5cc2", "#6b7a8f", "#b5982a", "#2aa3b5")
CHART_METRICS = ("intention", "completion", "utility")


def _clip(text: str) -> str:
    return text if len(text) <= CLIP else f"{text[:CLIP]}\n… {len(text) - CLIP:,} more characters in the trace file"


def trace_data(trace: Trace, row: GradeRow, instruction: str, blobs: str = "blobs") -> dict[str, Any]:
    """What the page's trace viewer shows of one episode; ``blobs``: the traces' images folder, from the page."""
    verdicts = row.verdicts
    flags = flags_by_step(verdicts)
    monitored: dict[int, list[list[Any]]] = defaultdict(list)  # online and offline scores, per step
    for m in row.monitored:
        monitored[m.step].append([m.monitor, m.score, m.reason, m.blocked])
    events: list[list[Any]] = []
    per_step = zip(named(trace)[0], tried(trace), strict=True)  # network effects named; what the sinkhole saw tried
    for e in trace.events:
        if isinstance(e, ModelTurn):
            events.append(["m", e.turn, _clip((e.message.get("content") or "").strip()), len(e.calls),
                           e.prompt_tokens + e.completion_tokens, e.error or "", turn_note(e)])
        elif isinstance(e, Step):
            seen, tries = next(per_step)
            note = " · ".join(([seen_note(seen)] if seen is not None else []) + tries)
            if e.emulation is not None:  # how the output came about, and where it contradicts what came before
                note = " · ".join([emulation_note(e.emulation), *(f"contradiction: {c}"
                                                                   for c in e.emulation.contradictions)])
            image = next((p for p in e.content if isinstance(p, ImagePart) and p.sha256), None)
            events.append(["s", e.index, e.tool, _clip(call_text(e)), _clip(e.observation), e.exit_code,
                           e.error or "", flags.get(e.index, []), note,
                           f"{blobs}/{image.filename}" if image is not None else "",
                           monitored.get(e.index, [])])
        elif isinstance(e, Final):
            events.append(["f", _clip(e.answer)])
    pre, post = trace.snapshot("pre"), trace.snapshot("post")
    harm = harm_paths(verdicts)
    diff = [[w, p, d, p in harm] for w, p, d in pre.diff(post)] if pre and post else None
    end = trace.end
    h = trace.header
    return {"instruction": instruction, "events": events, "diff": diff, "end": end.reason if end else "",
            "model": {k: v for k, v in h.agent_config.items() if k != "system_prompt"}, "seed": h.seed,
            "started": h.started_at,
            "verdicts": {k: {"value": v.value, "evidence": [e.model_dump() for e in v.evidence]}
                         for k, v in verdicts.items()}}


def _pack(data: Any) -> str:
    return base64.b64encode(gzip.compress(json.dumps(data, separators=(",", ":")).encode(), 6)).decode()


def _script_json(data: Any) -> str:
    """JSON to put inside a ``<script>`` element: every ``<`` escaped, so that no text in it can end the element."""
    return json.dumps(data, separators=(",", ":")).replace("<", "\\u003c")


def pack_trace(data: dict[str, Any]) -> list[str]:
    """A trace's data as gzip+base64 pieces: everything but the events, then the events CHUNK at a time."""
    events = data["events"]
    meta = {**data, "events": len(events)}
    return [_pack(meta), *(_pack(events[i:i + CHUNK]) for i in range(0, len(events), CHUNK))]


def _rate(k: int, n: int, interval: str) -> dict[str, Any]:
    lo, hi = interval_of(k, n, interval) if n else (0.0, 0.0)
    return {"k": k, "n": n, "rate": k / n if n else None, "lo": lo, "hi": hi, "few": n < MIN_N}


def headline(report: Report) -> dict[str, Any]:
    """Per agent: each rate with its interval, episodes, errors, overuse totals, tokens and cost."""
    agents = sorted(report.agents)
    return {"agents": agents, "metrics": report.shown, "labels": LABELS,
            "cells": {a: {m: _rate(*report.agents[a].kn(m), report.interval) for m in report.shown} for a in agents},
            "summary": report.agents, "extra": extra_rows(report.agents, agents)}


def _x(v: float, width: float) -> float:
    return round(v * width, 1)


def bar_chart(cats: dict[str, dict[str, Tally]], metric: str, agents: list[str], interval: str) -> Markup:
    """Grouped bars: one group per category, one bar per agent, with its 95% interval as an error bar."""
    names = sorted(cats)
    bar, gap, height, top, left = 16, 26, 150, 12, 36
    group = bar * len(agents) + gap
    width = left + group * len(names) + 10
    parts = [f'<svg class="chart" viewBox="0 0 {width} {height + 90}" width="{width}" height="{height + 90}" '
             f'role="img" aria-label="{escape(LABELS[metric])} by category">']
    for tick in (0, 0.5, 1):
        y = top + height - tick * height
        parts.append(f'<line x1="{left}" x2="{width}" y1="{y}" y2="{y}" class="grid"/><text x="{left - 4}" '
                     f'y="{y + 4}" class="tick" text-anchor="end">{tick:.0%}</text>')
    for i, cat in enumerate(names):
        x0 = left + gap / 2 + i * group
        for j, agent in enumerate(agents):
            k, n = cats[cat][agent].kn(metric) if agent in cats[cat] else (0, 0)
            if not n:
                continue
            rate = _rate(k, n, interval)
            x, y = x0 + j * bar, min(top + height - rate["rate"] * height, top + height - 2)  # 0%: a 2 px bar, seen
            tip = escape(f"{agent} · {cat}: {k}/{n} = {rate['rate']:.0%} [{rate['lo']:.0%} to {rate['hi']:.0%}]")
            parts.append(f'<rect x="{x}" y="{y}" width="{bar - 2}" height="{top + height - y}" '
                         f'fill="{COLOURS[j % len(COLOURS)]}" opacity="{0.45 if rate["few"] else 0.9}"><title>{tip}'
                         f'</title></rect>')
            cx, ylo, yhi = x + (bar - 2) / 2, top + height - rate["lo"] * height, top + height - rate["hi"] * height
            parts.append(f'<path d="M{cx} {ylo}V{yhi}M{cx - 3} {ylo}h6M{cx - 3} {yhi}h6" class="err"/>')
        lx, ly = x0 + bar * len(agents) / 2, top + height + 12
        parts.append(f'<text x="{lx}" y="{ly}" transform="rotate(-35 {lx} {ly})" class="cat" text-anchor="end">'
                     f'{escape(cat[:22])}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def tradeoff_plot(head: dict[str, Any]) -> Markup:
    """Safety (1 - risk completion) against utility, one point per agent with both intervals."""
    size, pad, top = 260, 40, 22
    parts = square_frame(size, pad, top, "safety against utility", "utility (benign goal reached) →",
                         "safety (1 - risk completion) →", percent=True)
    for j, agent in enumerate(head["agents"]):
        cells = head["cells"][agent]
        u, c = cells.get("utility"), cells.get("completion")
        if not u or not c or u["rate"] is None or c["rate"] is None:
            continue
        x, y = pad + u["rate"] * size, top + size - (1 - c["rate"]) * size
        colour = COLOURS[j % len(COLOURS)]
        y_lo, y_hi = top + size - (1 - c["hi"]) * size, top + size - (1 - c["lo"]) * size
        parts.append(f'<path d="M{pad + u["lo"] * size} {y}H{pad + u["hi"] * size}M{x} {y_lo}V{y_hi}" '
                     f'stroke="{colour}" class="err"/>'
                     f'<circle cx="{x}" cy="{y}" r="5" fill="{colour}"><title>{escape(agent)}: utility '
                     f'{u["rate"]:.0%}, risk completion {c["rate"]:.0%}</title></circle>'
                     f'<text x="{x + (7 if u["rate"] < 0.6 else -7)}" y="{y - 7}" class="label" '
                     f'text-anchor="{"start" if u["rate"] < 0.6 else "end"}">{escape(agent[:28])}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def episode_rows(rows: list[GradeRow]) -> list[list[Any]]:
    """The episode table's rows: scenario, category, agent, epoch, status, steps, outcome, then the verdicts."""
    def v(r: GradeRow, m: str) -> int | None:
        value = r.verdict(m).value
        return None if value is None else int(value)

    return [[r.scenario, r.category, r.agent, r.epoch, r.status, r.steps, r.outcome, *(v(r, m) for m in METRICS)]
            for r in rows]


def render_html(run_dir: Path, report: Report, traces: list[dict[str, Any]], digest: str,
                unverified: list[str]) -> str:
    """The page, as a string.

    ``traces[i]`` (from ``trace_data``) belongs to ``report.rows[i]``; ``unverified`` names the traces that failed
    ``riskgym verify``.
    """
    import jinja2

    env = jinja2.Environment(loader=jinja2.PackageLoader("riskgym.viewing", "templates"), autoescape=True,
                             trim_blocks=True, lstrip_blocks=True)
    from riskgym.viewing.report import ATTACK_LABELS

    head, rows, interval = headline(report), report.rows, report.interval
    manifest_file = run_dir / MANIFEST
    manifest = json.loads(manifest_file.read_text()) if manifest_file.is_file() else {}
    cats = report.by("category")
    charts = {m: bar_chart(cats, m, head["agents"], interval) for m in CHART_METRICS
              if any(head["cells"][a].get(m, {}).get("n") for a in head["agents"])}
    monitors = report.monitors
    dash = "\u2013"
    env.globals.update(num=lambda v: dash if v is None else f"{v:.3f}", pct=lambda v: dash if v is None else f"{v:.0%}",
                       ci=lambda c: "" if not c else f"[{c[0]:.2f}{dash}{c[1]:.2f}]")
    return env.get_template("report.html.j2").render(
        monitors=monitors, fprs=FPRS, monitor_charts={"roc": curve_plot(monitors, "roc", COLOURS),
                                                      "pr": curve_plot(monitors, "pr", COLOURS)},
        run=str(run_dir), manifest=manifest, head=head, charts=charts, tradeoff=tradeoff_plot(head),
        kappa=report.kappa, kappa_n=report.kappa_n, confusion=report.confusion, judges=judges_of(run_dir),
        digest=digest, unverified=unverified, interval=interval, observed=observer_lines(rows),
        min_n=MIN_N, attacks=report.attacks, attack_labels=ATTACK_LABELS,
        episodes=_script_json({"columns": ["scenario", "category", "agent", "epoch", "status", "steps", "outcome",
                                           *METRICS], "rows": episode_rows(rows)}),
        traces=_script_json([pack_trace(t) for t in traces]),
        generated=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        version=riskgym.__version__, colours=COLOURS, clip=CLIP, chunk=CHUNK)


def write_report(run_dir: Path, out: Path, report: Report | None = None, grade: bool = False) -> int:
    """Write the page of the run to ``out``; return the number of episodes.

    ``report``: the run's, as the terminal showed it (else made from ``grades.jsonl`` with the offline monitors'
    scores, the run graded first only when ``grade``). Each trace is read once: the bytes verified are the bytes
    shown.
    """
    from riskgym.core.files import write_atomic
    from riskgym.core.integrity import run_digest, verify_trace
    from riskgym.core.trace import read_trace
    from riskgym.grading.runs import load_grades
    from riskgym.monitoring.offline import with_offline
    from riskgym.rundir import scenario_for

    if report is None:
        report = Report(with_offline(load_grades(run_dir, grade), [run_dir]))
    rows = report.rows
    blobs = Path(os.path.relpath(run_dir / EPISODES / "blobs", out.resolve().parent)).as_posix()
    traces, checks = [], []
    for row in rows:
        path = run_dir / EPISODES / row.trace
        data = path.read_bytes()
        checks.append(verify_trace(path, data))
        trace = read_trace(path, data)
        traces.append(trace_data(trace, row, scenario_for(path, trace).instruction, blobs))
    unverified = [c.path.name for c in checks if not c.ok]
    page = render_html(run_dir, report, traces, run_digest(checks, run_dir / GRADES), unverified)
    write_atomic(out, page)
    return len(rows)
