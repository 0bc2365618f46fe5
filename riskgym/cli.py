"""The ``riskgym`` command. A user's mistake gets one line and exit code 2, never a traceback."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from riskgym.errors import RiskgymError


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="riskgym", description="Find out what AI agents do when an action can cause harm.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    v = sub.add_parser("validate", help="check scenario files (no Docker needed)")
    v.add_argument("paths", nargs="*", help="scenario files or folders (default: the library)")

    r = sub.add_parser("run", help="run scenarios with agents into a run directory (resumes if it exists)")
    r.add_argument("scenarios", nargs="*", help="scenario files or folders (default: the library)")
    r.add_argument("--agent", action="append", required=True, help="scripted:risky or scripted:safe; repeatable")
    r.add_argument("--out", required=True, type=Path, help="the run directory, e.g. runs/first")
    r.add_argument("--epochs", type=int, default=1, help="episodes per scenario and agent (default 1)")
    r.add_argument("--seed", type=int, default=0)

    g = sub.add_parser("grade", help="(re)grade a run's traces without re-running anything")
    g.add_argument("run_dir", type=Path)
    g.add_argument("--graders", help="comma-separated: intention,completion,utility,overuse (default: all)")

    rep = sub.add_parser("report", help="print a run's results per agent")
    rep.add_argument("run_dir", type=Path)

    c = sub.add_parser("check", help="run both reference trajectories of each scenario and check their grades")
    c.add_argument("scenarios", nargs="*", help="scenario files or folders (default: the library)")

    img = sub.add_parser("images", help="sandbox images")
    img_sub = img.add_subparsers(dest="images_command", required=True, metavar="ACTION")
    b = img_sub.add_parser("build", help="build riskgym/base (debootstrap + docker import; no registry)")
    b.add_argument("--from", dest="from_image", help="build FROM this image instead of debootstrapping one")
    b.add_argument("--force", action="store_true", help="rebuild even when up to date")

    sb = sub.add_parser("sandbox", help="sandbox containers")
    sb_sub = sb.add_subparsers(dest="sandbox_command", required=True, metavar="ACTION")
    pr = sb_sub.add_parser("prune", help="remove every container riskgym created")
    pr.add_argument("--run", help="only those of this run id")
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``riskgym`` console script."""
    args = _parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except RiskgymError as exc:
        print(f"riskgym: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("riskgym: interrupted; finished episodes are kept, run the same command again to resume",
              file=sys.stderr)
        return 130


def _validate(args: argparse.Namespace) -> int:
    from riskgym.environments import scenario_files
    from riskgym.scenario import load_scenario

    files = scenario_files(args.paths)
    if not files:
        raise RiskgymError(f"{' '.join(args.paths) or 'the library'}: no scenario files (*.toml) found")
    for path in files:
        s = load_scenario(path)
        print(f"ok  {path}  {s.env_id}  ({len(s.intention)} tripwires, {len(s.completion)} completion checks)")
    return 0


def _run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from riskgym.environments import scenario_files
    from riskgym.report import grade_run, render
    from riskgym.runner import run

    console = Console(stderr=True, soft_wrap=True)
    files = scenario_files(args.scenarios)
    total = len(files) * len(args.agent) * args.epochs
    done = [0]

    def progress(name: str, status: str) -> None:
        done[0] += 1
        console.print(f"[{done[0]}/{total}] {name}: {status}")

    counts = run(files, args.agent, args.out, epochs=args.epochs, seed=args.seed, progress=progress)
    console.print(f"done: {counts['completed']} completed, {counts['truncated']} truncated, {counts['error']} errors, "
                  f"{counts['skipped']} already finished; traces in {args.out}/episodes")
    render(grade_run(args.out), title=f"riskgym run {args.out}")
    return 0


def _grade(args: argparse.Namespace) -> int:
    from riskgym.report import grade_run

    graders = args.graders.split(",") if args.graders else None
    rows = grade_run(args.run_dir, graders)
    print(f"graded {len(rows)} episodes; wrote {args.run_dir / 'grades.jsonl'}")
    return 0


def _report(args: argparse.Namespace) -> int:
    from riskgym.report import load_grades, render

    render(load_grades(args.run_dir), title=f"riskgym report {args.run_dir}")
    return 0


def _check(args: argparse.Namespace) -> int:
    from riskgym.check import check_scenario
    from riskgym.environments import scenario_files
    from riskgym.scenario import load_scenario

    failed = 0
    for path in scenario_files(args.scenarios):
        scenario = load_scenario(path)
        verdicts, problems = check_scenario(scenario)
        summary = "  ".join(f"{w}: " + ",".join(f"{m}={'-' if v.value is None else int(v.value)}"
                                                for m, v in verdicts[w].items()) for w in verdicts)
        print(f"{'ok  ' if not problems else 'FAIL'} {scenario.env_id}  {summary}")
        for problem in problems:
            print(f"     {problem}")
        failed += bool(problems)
    return 1 if failed else 0


def _images(args: argparse.Namespace) -> int:
    from riskgym.sandbox.images import build_base

    build_base(from_image=args.from_image, force=args.force)
    return 0


def _sandbox(args: argparse.Namespace) -> int:
    from riskgym.sandbox.docker import prune

    print(f"removed {prune(args.run)} riskgym container(s)")
    return 0


COMMANDS = {"validate": _validate, "run": _run, "grade": _grade, "report": _report, "check": _check,
            "images": _images, "sandbox": _sandbox}

if __name__ == "__main__":
    sys.exit(main())
