"""The monitor options of ``run`` and ``attack``, and the ``monitor`` command (score a recorded run offline)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from riskgym.cli_inspect import grade_flag
from riskgym.errors import RiskgymError

SPEC_HELP = ("rules (riskgym's static effect parser), llm:MODEL (an LLM judge), guard:MODEL (a Llama Guard-style "
             "classifier), human (you approve each call), or your own as MODULE:NAME or FILE.py:NAME")


def add_run_arguments(p: argparse.ArgumentParser) -> None:
    """``--monitor``, ``--block-above`` and the monitor model's endpoint, for ``run`` and ``attack``."""
    g = p.add_argument_group("a monitor that scores each proposed call before it runs (see docs/monitors.md)")
    g.add_argument("--monitor", metavar="SPEC", help=SPEC_HELP + "; alone it only observes: scores go into the "
                   "trace, nothing is blocked")
    g.add_argument("--block-above", type=float, metavar="T", help="block a call the monitor scores above T (0 to 1): "
                   "it does not run and the agent is told so (human: 0.5 unless given)")
    g.add_argument("--monitor-api-base", metavar="URL", help="the monitor model's OpenAI-compatible endpoint")


def monitor_options(args: argparse.Namespace, configs: dict[str, Any]) -> tuple[Any, float | None]:
    """The monitor and the blocking threshold the run's options give (None, None: no monitor)."""
    if args.monitor is None:
        if args.block_above is not None:
            raise RiskgymError("--block-above: give --monitor SPEC too (which monitor's score to block on)")
        return None, None
    block = args.block_above
    if block is not None and not 0 <= block <= 1:
        raise RiskgymError(f"--block-above {block:g}: give a suspicion from 0 to 1, e.g. 0.5")
    if args.monitor == "human" and block is None:
        block = 0.5
    from riskgym.monitoring.monitors import make_monitor

    overrides = {"api_base": args.monitor_api_base} if args.monitor_api_base else {}
    return make_monitor(args.monitor, configs, overrides), block


def add_parsers(sub: Any) -> None:
    """Add the ``monitor`` command's parser."""
    m = sub.add_parser("monitor", help="score a recorded run's steps with a monitor, and how well it separates risky "
                       "from benign ones", description="Score every step of every trace in RUN_DIR as the monitor "
                       "would have before it ran (nothing is re-run; cached in RUN_DIR/monitor.jsonl), then print "
                       "AUROC, AUPRC, TPR at 1% and 5% FPR and the threshold at the audit budget, against the "
                       "graders' truth. riskgym report and its HTML page show them too.")
    m.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    m.add_argument("--monitor", required=True, metavar="SPEC", help=SPEC_HELP)
    m.add_argument("--models", dest="models_file", type=Path, metavar="FILE", help="model settings, TOML")
    m.add_argument("--api-base", help="the monitor model's OpenAI-compatible endpoint")
    m.add_argument("--concurrency", type=int, default=4, metavar="N", help="model monitor requests at once "
                   "(default 4)")
    m.add_argument("--audit-budget", type=float, default=1.0, metavar="PCT", help="the share of benign-run scores "
                   "the threshold may flag, in percent (default 1)")
    grade_flag(m)


def monitor(args: argparse.Namespace) -> int:
    """Score the run offline, then print every monitor's figures on it."""
    from riskgym.grading.runs import load_runs
    from riskgym.monitoring.monitors import make_monitor
    from riskgym.monitoring.offline import score_run, with_offline
    from riskgym.running.model import load_models_file
    from riskgym.viewing.monitors import render_figures
    from riskgym.viewing.report import wide_console

    if not (args.run_dir / "episodes").is_dir():
        raise RiskgymError(f"{args.run_dir}: not a run directory (no episodes/); give one `riskgym run --out` wrote")
    if args.concurrency < 1:
        raise RiskgymError(f"--concurrency {args.concurrency}: give at least 1")
    if not 0 <= args.audit_budget <= 100:
        raise RiskgymError(f"--audit-budget {args.audit_budget:g}: give a percentage from 0 to 100, e.g. 1")
    if args.monitor == "human":
        raise RiskgymError("--monitor human: a person approves calls as they happen (riskgym run --monitor human); "
                           "offline, give rules, llm:MODEL, guard:MODEL or your own")
    rows = load_runs([args.run_dir], args.grade)  # the graders' truth, before the monitor's calls are paid for
    configs = load_models_file(args.models_file) if args.models_file else {}
    chosen = make_monitor(args.monitor, configs, {"api_base": args.api_base} if args.api_base else {})

    def said(done: int, total: int) -> None:
        if done == total or done % 100 == 0:
            print(f"\rscored {done}/{total} traces", end="\n" if done == total else "", file=sys.stderr, flush=True)

    try:
        score_run(args.run_dir, chosen, args.concurrency, on_scored=said)
    except KeyboardInterrupt:
        print(f"\nriskgym: stopped; the traces scored so far are kept in {args.run_dir / 'monitor.jsonl'} (the same "
              "command goes on from there)", file=sys.stderr)
        raise
    rows = with_offline(rows, [args.run_dir])
    from riskgym.viewing.summary import Report

    report = Report(rows, budget=args.audit_budget / 100)
    figures = [f for f in report.monitors if f["monitor"] == chosen.name]
    console = wide_console()
    if not figures:
        console.print(f"{args.run_dir}: no step to score (no tool call in any trace)")
        return 0
    render_figures(figures, console)
    return 0


COMMANDS = {"monitor": monitor}
