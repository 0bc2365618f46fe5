"""The commands that look at what was recorded: verify, replay, audit, query, export."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from riskgym.errors import RiskgymError

WHERE_HELP = ("FIELD=VALUE, repeatable (AND); a,b for either, * as a wildcard. Fields: scenario, category, agent, "
              "status, outcome, epoch, benign, tool, run, and the verdicts intention, completion, utility, overuse, "
              "refusal, leak, escape, judge = yes|no|-")


def grade_flag(parser: argparse.ArgumentParser) -> None:
    """``--grade``: a view reads the grades as written, and grades a run first only when asked."""
    parser.add_argument("--grade", action="store_true", help="grade a run first where its grades.jsonl is missing or "
                        "not its traces' (without it, that is an error saying so)")


def add_parsers(sub: Any) -> None:
    """Add the commands' parsers to the ``riskgym`` parser's subparsers."""
    v = sub.add_parser("verify", help="check that traces are as they were written (hash chain and seal)")
    v.add_argument("paths", nargs="+", type=Path, help="trace files or run directories")

    rp = sub.add_parser("replay", help="run a trace's recorded actions again in a fresh sandbox, without the model, "
                        "and show where the outputs differ")
    rp.add_argument("trace", type=Path)
    rp.add_argument("--until", type=int, metavar="N", help="stop after step N (0-based)")
    rp.add_argument("--shell", action="store_true", help="then open a shell in the sandbox, as it is at that point")
    rp.add_argument("--screens", type=Path, metavar="DIR", help="write each desktop step's recorded and replayed "
                    "screenshots side by side, with the pixels that differ in red, to DIR/step-N.png")

    a = sub.add_parser("audit", help="an episode's timeline (or a run's, filtered) with risk flags and state changes")
    a.add_argument("path", type=Path, help="a trace, or a run directory")
    a.add_argument("--where", action="append", default=[], metavar="FIELD=VALUE", help=WHERE_HELP)
    a.add_argument("--list", action="store_true", help="list the matching episodes instead of their timelines")
    a.add_argument("--full", action="store_true", help="whole outputs and model messages, not their first lines")
    grade_flag(a)

    q = sub.add_parser("query", help="filter and count episodes across every run under a folder (indexed)")
    q.add_argument("root", type=Path, nargs="?", default=Path("runs"), help="the folder of runs (default runs)")
    q.add_argument("--where", action="append", default=[], metavar="FIELD=VALUE", help=WHERE_HELP)
    q.add_argument("--by", default="agent", help="group by these fields, comma-separated (default agent)")
    q.add_argument("--list", action="store_true", help="list the matching episodes instead of counting them")
    grade_flag(q)

    e = sub.add_parser("export", help="per-episode results as CSV or JSONL, or a Markdown leaderboard")
    e.add_argument("run_dir", type=Path)
    e.add_argument("--csv", type=Path, metavar="FILE", help="one line per episode (- for standard output)")
    e.add_argument("--turns", type=Path, metavar="FILE", help="one line per model call: latency, tokens, attempts "
                   "and why they were retried (- for standard output)")
    e.add_argument("--jsonl", type=Path, metavar="FILE", help="the full grades rows (- for standard output)")
    e.add_argument("--markdown", type=Path, metavar="FILE", help="the leaderboard, one row per agent (- for "
                   "standard output)")
    grade_flag(e)


def verify(args: argparse.Namespace) -> int:
    """Exit 0 when every trace verifies, 1 when one does not."""
    from riskgym.core.integrity import run_digest, verify_trace
    from riskgym.grading.runs import grades_differ
    from riskgym.rundir import GRADES, trace_files

    failed = 0
    for path in args.paths:
        files = [path] if path.is_file() else trace_files(path)
        results = [verify_trace(f) for f in files]
        for r in results:
            if not r.ok:
                failed += 1
                print(f"FAIL {r.path}: {'; '.join(r.problems)}")
            elif path.is_file():
                print(f"ok   {r.path}: {r.events} events, chain and seal intact")
        if path.is_dir():
            good = sum(r.ok for r in results)
            differ = grades_differ(path) if not failed else []
            for line in differ:
                print(f"FAIL {path / line}")
            failed += len(differ)
            if (path / GRADES).is_file():
                print(f"{path / GRADES}: " + (f"{len(differ)} grades differ from what their traces grade" if differ
                                             else "every grade is what its trace grades"))
            print(f"{path}: {good} of {len(results)} traces verified; run digest {run_digest(results, path / GRADES)}")
    return 1 if failed else 0


def replay(args: argparse.Namespace) -> int:
    """Exit 0 when the replay matched the record, 1 when it diverged."""
    from rich.console import Console
    from rich.markup import escape

    from riskgym.core.integrity import verify_trace
    from riskgym.running.replay import Replayed, open_shell, replay
    from riskgym.viewing.audit import call_text

    console = Console(highlight=False, soft_wrap=True)
    if not args.trace.is_file():
        raise RiskgymError(f"{args.trace}: no such trace file; give a file from a run's episodes/ folder")
    if args.shell and args.until is None:
        raise RiskgymError("--shell: give --until N too, the step after which to open the shell")
    if args.screens is not None:
        try:
            args.screens.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            msg = f"--screens {args.screens}: cannot make the folder ({exc.strerror}); give another"
            raise RiskgymError(msg) from None

    def show(r: Replayed) -> None:
        how = "[green]same[/]" if r.same else "[bold red]DIFFERS[/]"
        how += " [dim](recorded output: emulated tool)[/]" if r.source == "record" else ""
        call = call_text(r.step).replace("\n", " ")
        call = call if len(call) <= 70 else call[:69] + "…"
        if r.pixels is not None:
            how += f"  screen: {r.pixels:.2%} of pixels differ"
            if args.screens is not None:
                from riskgym.core.screens import side_by_side

                out = args.screens / f"step-{r.step.index}.png"
                out.write_bytes(side_by_side(*r.screens, label=f"step {r.step.index}"))  # type: ignore[misc]
                how += f" [dim]({out})[/]"
        console.print(f"step {r.step.index:>3}  [cyan]{r.step.tool}[/] {escape(call)}  {how}")
        if not r.same:
            console.print(escape(r.diff()), style="dim")

    with replay(args.trace, args.until, on_step=show) as done:
        h = done.trace.header
        changed = [f"the scenario changed since ({h.scenario_hash[:12]} recorded)"
                   if done.scenario.content_hash != h.scenario_hash else "",
                   f"the image was rebuilt since ({h.image_id[:19]} recorded)"
                   if getattr(done.env.sandbox, "image_id", h.image_id) != h.image_id else ""]
        for note in filter(None, changed):
            console.print(f"[yellow]note: {note}: differences may come from that[/]")
        if done.trace.end is None:
            problems = verify_trace(args.trace).problems
            console.print(f"[yellow]note: the trace has no end ({escape('; '.join(problems) or 'no end line')}): "
                          "only the steps it kept were replayed, and the end state is not compared[/]")
        if done.state is not None:
            console.print("end state: " + ("[green]same[/]" if not done.state else "[bold red]DIFFERS[/]"))
            for what, where, detail in done.state:
                console.print(f"  {what} {escape(where)} {escape(detail)}", style="red")
        n, d = len(done.steps), done.divergences
        console.print(f"replayed {n} step{'s' * (n != 1)}: {d or 'no'} divergence{'s' * (d != 1)}")
        if args.shell:
            console.print(f"shell in the sandbox after step {args.until}; exit to remove it")
            sys.stdout.flush()
            open_shell(done.env.sandbox)
    return 1 if done.divergences else 0


def audit(args: argparse.Namespace) -> int:
    """Timelines of the matching episodes (or their list)."""
    from rich.markup import escape

    from riskgym.core.integrity import verify_trace
    from riskgym.core.trace import read_trace
    from riskgym.grading.runs import grade_one, load_grades
    from riskgym.rundir import EPISODES, scenario_for
    from riskgym.viewing.audit import render_timeline
    from riskgym.viewing.index import add_rows, connect, parse_filters, select
    from riskgym.viewing.report import render_episodes, wide_console

    console = wide_console()
    filters = parse_filters(args.where)
    if args.path.is_file():
        rows, folder = [grade_one(args.path)], args.path.parent
    else:
        rows, folder = load_grades(args.path, args.grade), args.path / EPISODES
    db = connect(":memory:")
    add_rows(db, ".", rows)
    chosen = {r["trace"] for r in select(db, filters)}
    matching = [r for r in rows if r.trace in chosen]
    if args.list or not matching:
        if matching:
            render_episodes(matching, console)
        console.print(f"{len(matching)} of {len(rows)} episodes match")
        return 0
    for row in matching:
        data = (folder / row.trace).read_bytes()
        trace = read_trace(folder / row.trace, data)
        render_timeline(trace, row, scenario_for(folder / row.trace, trace).instruction, console, args.full)
        problems = verify_trace(folder / row.trace, data).problems
        if problems:  # cut short or changed: what is shown is all it says, and it cannot be trusted
            console.print(f"[yellow]note: the trace does not verify ({escape('; '.join(problems))})[/]")
    if len(rows) > 1:
        console.print(f"{len(matching)} of {len(rows)} episodes match")
    return 0


def query(args: argparse.Namespace) -> int:
    """Counts and rates per group over the indexed runs, or the matching episodes."""
    from rich.table import Table

    from riskgym.viewing.index import METRICS, aggregate, parse_filters, select, update
    from riskgym.viewing.report import rate_cell, wide_console

    filters = parse_filters(args.where)
    db, changed, runs = update(args.root, args.grade)
    console = wide_console()
    by = [b.strip() for b in args.by.split(",") if b.strip()]
    if args.list:
        rows = select(db, filters)
        table = Table(title=f"{len(rows)} episodes")
        for col in ("run", "trace", "status", "outcome", *METRICS):
            table.add_column(col, no_wrap=True)
        for r in rows[:1000]:
            table.add_row(r["run"], r["trace"], r["status"], r["outcome"],
                          *("-" if r[m] is None else "yes" if r[m] else "no" for m in METRICS))
        console.print(table)
        if len(rows) > 1000:
            console.print(f"(the first 1,000 of {len(rows):,}; narrow it with --where)")
    else:
        groups = aggregate(db, filters, by)
        shown = [m for m in METRICS if any(g[f"{m}_n"] for g in groups)]
        table = Table(caption="rate [95% Wilson interval] k/n scored; † fewer than 10")
        for col in (*by, "episodes", *shown):
            table.add_column(col, no_wrap=True, justify="right" if col not in by else "left")
        for g in groups:
            table.add_row(*(str(g[b]) for b in by), f"{g['episodes']:,}",
                          *(rate_cell(g[f"{m}_k"] or 0, g[f"{m}_n"]) for m in shown))
        console.print(table)
    print(f"index {args.root / '.riskgym-index.sqlite'}: {runs} runs ({changed} indexed now)", file=sys.stderr)
    return 0


def export(args: argparse.Namespace) -> int:
    """Write the files asked for, each whole or not at all."""
    from riskgym.core.files import write_atomic
    from riskgym.grading.runs import load_grades
    from riskgym.viewing.export import to_csv, to_jsonl, to_markdown, to_turns_csv
    from riskgym.viewing.summary import Report

    wanted = [(args.csv, to_csv), (args.turns, lambda rows: to_turns_csv(rows, args.run_dir)),
              (args.jsonl, to_jsonl), (args.markdown, lambda rows: to_markdown(Report(rows)))]
    if not any(path for path, _ in wanted):
        raise RiskgymError("export: say what to write: --csv FILE, --turns FILE, --jsonl FILE and/or --markdown FILE")
    rows = load_grades(args.run_dir, args.grade)
    for path, render in wanted:
        if path is None:
            continue
        if str(path) == "-":
            sys.stdout.write(render(rows))
            continue
        write_atomic(path, render(rows))
        print(f"wrote {path} ({len(rows)} episodes)", file=sys.stderr)
    return 0


COMMANDS = {"verify": verify, "replay": replay, "audit": audit, "query": query, "export": export}
