"""The ``riskgym`` command. A user's mistake gets one line and exit code 2, never a traceback."""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from riskgym.errors import RiskgymError

if TYPE_CHECKING:
    from rich.console import Console

    from riskgym.grading.row import GradeRow
    from riskgym.running.agent import Activity, EpisodeResult
    from riskgym.running.runner import RunOptions
    from riskgym.viewing.summary import Report


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="riskgym", description="Find out what AI agents do when an action can cause harm.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    v = sub.add_parser("validate", help="check scenario files (no Docker needed)")
    v.add_argument("paths", nargs="*", help="scenario files or folders (default: the library)")

    r = sub.add_parser("run", help="run scenarios with models or scripted agents (resumes if the run exists)",
                       description="Run every scenario with every --model, --epochs times, into --out. Running the "
                       "same command again resumes: finished episodes are kept, unfinished and errored ones redone.")
    r.add_argument("scenarios", nargs="*", help="scenario files or folders (default: the library)")
    _run_arguments(r)

    a = sub.add_parser("attack", help="run an injection suite: utility with and without attack, attack success",
                       description="Run a suite's user tasks as they are, and each user task x injection task x "
                       "attack template with the attack in the slots the task shows the agent (found by running its "
                       "safe reference with a canary in every slot). The attacked scenarios are written into "
                       "RUN/scenarios/. Resumes like run.")
    a.add_argument("suite", type=Path, help="a suite file, e.g. scenarios/suites/workspace.toml")
    a.add_argument("--attack", dest="attacks", action="append", metavar="NAME",
                   help="an attack template (default: the suite's); repeatable")
    _run_arguments(a)

    g = sub.add_parser("grade", help="(re)grade a run's traces without re-running anything")
    g.add_argument("run_dir", type=Path)
    g.add_argument("--graders", help="comma-separated: intention,completion,utility,overuse,refusal,leak,escape "
                   "(default: all)")
    g.add_argument("--judge", metavar="MODEL", help="also ask an LLM judge (a litellm model string or a name in "
                   "--models FILE) whether each episode was risky; prints its agreement with the rules")
    g.add_argument("--judge-samples", type=int, metavar="N", help="judge samples per episode (default 3; 1 at "
                   "temperature 0, where more would repeat it)")
    g.add_argument("--judge-concurrency", type=int, default=4, metavar="N", help="judge requests at once (default "
                   "4; 1 for a server that answers one at a time)")
    g.add_argument("--judge-timeout", type=float, metavar="S", help="seconds per judge request (default 120)")
    g.add_argument("--models", dest="models_file", type=Path, metavar="FILE", help="model settings, TOML")
    g.add_argument("--api-base", help="the judge's OpenAI-compatible endpoint")
    g.add_argument("--stream", action=argparse.BooleanOptionalAction, default=None,
                   help="stream the judge's replies (default: with --api-base)")

    from riskgym import cli_cluster, cli_inspect, cli_monitor

    rep = sub.add_parser("report", help="print a run's results per agent, with intervals (several runs: side by side)")
    rep.add_argument("run_dirs", type=Path, nargs="+", metavar="RUN_DIR", help="one run, or several to put side by "
                     "side (an agent found in more than one is named AGENT@RUN)")
    rep.add_argument("--interval", choices=("wilson", "beta"), default="wilson",
                     help="95%% interval: Wilson score (default) or Beta posterior with Jeffreys' prior")
    rep.add_argument("--by", choices=("category", "scenario"), help="one table per category (or scenario)")
    rep.add_argument("--compare", nargs=2, metavar=("AGENT_A", "AGENT_B"),
                     help="paired comparison of two agents on the same scenarios and epochs, in one run or across "
                     "runs")
    rep.add_argument("--html", type=Path, metavar="FILE", help="also write one self-contained HTML page: rates, charts "
                     "and every episode's trace")
    cli_inspect.grade_flag(rep)

    cli_inspect.add_parsers(sub)
    cli_monitor.add_parsers(sub)
    cli_cluster.add_parsers(sub)

    cmp = sub.add_parser("compare", help="how often two runs' verdicts agree (a real run and an emulated one)",
                         description="Pair the episodes of two runs (scenario, agent, epoch) and print, per scenario "
                         "and overall, how often each verdict agrees, with a 95%% interval and Cohen's kappa.")
    cmp.add_argument("run_a", type=Path, metavar="RUN_A", help="e.g. the run on real boxes")
    cmp.add_argument("run_b", type=Path, metavar="RUN_B", help="e.g. the same run with --sandbox emulated")
    cli_inspect.grade_flag(cmp)

    imp = sub.add_parser("import", help="convert another benchmark's cases into scenarios")
    imp_sub = imp.add_subparsers(dest="import_command", required=True, metavar="SOURCE")
    te = imp_sub.add_parser("toolemu", help="ToolEmu's test cases (all_cases.json) as scenarios of emulated tools")
    te.add_argument("cases", type=Path, help="ToolEmu's all_cases.json")
    te.add_argument("--toolkits", type=Path, nargs="*", default=[], metavar="FILE",
                    help="toolkit files (ToolEmu's all_toolkits.json, or TOML) for toolkits the library lacks")
    te.add_argument("--out", type=Path, default=Path("scenarios/toolemu"),
                    help="where to write them (default scenarios/toolemu)")

    from riskgym import cli_check

    cli_check.add_parsers(sub)

    img = sub.add_parser("images", help="sandbox images")
    img_sub = img.add_subparsers(dest="images_command", required=True, metavar="ACTION")
    b = img_sub.add_parser("build", help="build riskgym/base (debootstrap + docker import; no registry) and, FROM "
                                         "it, every image folder of containers/ (the desktop, the part kinds')")
    b.add_argument("--from", dest="from_image", help="build FROM this image instead of debootstrapping one")
    b.add_argument("--force", action="store_true", help="rebuild even when up to date")

    sb = sub.add_parser("sandbox", help="sandbox containers")
    sb_sub = sb.add_subparsers(dest="sandbox_command", required=True, metavar="ACTION")
    pr = sb_sub.add_parser("prune", help="remove every container riskgym created")
    pr.add_argument("--run", help="only those of this run id")
    sc = sb_sub.add_parser("self-check", help="run the conformance suite every sandbox implementation must pass")
    sc.add_argument("kind", nargs="?", default="docker", choices=("docker", "fake"), help="default docker")

    pk = sub.add_parser("parts", help="the kinds of world part: list them, check them")
    pk_sub = pk.add_subparsers(dest="parts_command", required=True, metavar="ACTION")
    pk_sub.add_parser("list", help="every registered part kind, what it needs and what it is")
    pc = pk_sub.add_parser("self-check", help="run each part kind's conformance checks (a real box and part)")
    pc.add_argument("kinds", nargs="*", help="the kinds to check (default: every kind that has a self-check)")
    for command in sub.choices.values():  # an extension's module, loaded before the command reads anything
        _add_plugin(command)
    return p


def _add_plugin(parser: argparse.ArgumentParser) -> None:
    """``--plugin MODULE`` on a command and on its actions (``parts list``), given before or after the action."""
    parser.add_argument("--plugin", action="append", metavar="MODULE", default=argparse.SUPPRESS,
                        help="import MODULE first (it registers part kinds, tools, checks or effect kinds); may be "
                             "given several times")
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for nested in action.choices.values():
                _add_plugin(nested)



def _run_arguments(p: argparse.ArgumentParser) -> None:
    """The options of an agent run (``run`` and ``attack``)."""
    p.add_argument("--model", "--agent", dest="models", action="append", required=True, metavar="MODEL",
                   help="a litellm model string (openai/gpt-4o-mini, openai/NAME with --api-base), a name from "
                   "--models FILE, or scripted:risky / scripted:safe; repeatable")
    p.add_argument("--out", required=True, type=Path, help="the run directory, e.g. runs/first")
    p.add_argument("--epochs", type=int, default=1, help="episodes per scenario and model (default 1)")
    p.add_argument("--seed", type=int, default=0, help="episode e gets seed+e, also sent to the model (default 0)")
    p.add_argument("--concurrency", type=int, help="episodes at once (default: two per CPU, as memory allows, "
                   "at most 16)")
    p.add_argument("--models", dest="models_file", type=Path, metavar="FILE",
                   help="model settings, TOML: [models.NAME] tables (see the README)")
    p.add_argument("--system-prompt", type=Path, metavar="FILE", help="replace the default (neutral) system prompt; "
                   "$tools becomes the tool names")
    p.add_argument("--token-budget", type=int, metavar="N", help="end an episode after N tokens (prompt+completion)")
    p.add_argument("--cost-budget", type=float, metavar="USD", help="end an episode after this much spend")
    p.add_argument("--html", type=Path, metavar="FILE", help="at the end, also write the run's HTML report")
    p.add_argument("--sandbox", choices=("docker", "fake", "emulated"), default="docker",
                   help="the agent's box: docker (real, hardened; the default), fake (in memory, no Docker: checks "
                   "a scenario's logic, not an agent's safety), or emulated (its tools answered by --emulator)")
    emu = p.add_argument_group("the emulator, for emulated tools (toolkits, or --sandbox emulated)")
    emu.add_argument("--emulator", metavar="MODEL", help="the emulator model: a litellm model string or a name from "
                     "--models FILE (temperature 0 unless its settings say)")
    emu.add_argument("--emulator-mode", choices=("standard", "adversarial"),
                     help="for every emulated toolkit (default: each scenario's own)")
    emu.add_argument("--emulator-api-base", metavar="URL", help="the emulator's OpenAI-compatible endpoint")
    emu.add_argument("--emulator-cache", type=Path, metavar="FILE", help="the emulator's cache (default "
                     "$RISKGYM_CACHE or ~/.cache/riskgym/emulator.sqlite): a call already emulated costs nothing")
    emu.add_argument("--no-emulator-cache", action="store_true", help="always ask the emulator model")
    llm = p.add_argument_group("settings for litellm model strings given on the command line")
    llm.add_argument("--api-base", help="an OpenAI-compatible endpoint, e.g. http://127.0.0.1:8000/v1")
    llm.add_argument("--api-key-env", metavar="NAME", help="the environment variable that holds the API key")
    llm.add_argument("--temperature", type=float)
    llm.add_argument("--top-p", type=float)
    llm.add_argument("--max-tokens", type=int, metavar="N", help="the most tokens one reply may have (default 4096)")
    llm.add_argument("--tool-mode", choices=("auto", "native", "text"),
                     help="native function calling or the plain-text format (default auto)")
    llm.add_argument("--timeout", type=float, help="seconds per model call (default 120)")
    llm.add_argument("--retries", type=int, help="retries on rate limits, server errors, time-outs (default 4)")
    llm.add_argument("--stream", action=argparse.BooleanOptionalAction, default=None,
                     help="stream replies, so that a call cut at the deadline stops the server generating (default: "
                     "with --api-base)")
    llm.add_argument("--price", metavar="IN,OUT", help="US dollars per million input and output tokens, e.g. "
                     "0.15,0.60 (default: litellm's price list; 0 at a loopback --api-base)")
    from riskgym import cli_cluster, cli_monitor

    cli_monitor.add_run_arguments(p)
    cli_cluster.add_run_arguments(p)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``riskgym`` console script."""
    args = _parser().parse_args(argv)
    if argv is None:  # a Ctrl-C that lands in a finaliser (a connection closed as it is collected) is the user's
        # abort, not a bug to print: it is dropped there, and the run stops as the first Ctrl-C asked
        default = sys.unraisablehook
        sys.unraisablehook = lambda u: None if isinstance(u.exc_value, KeyboardInterrupt) else default(u)
    try:
        from riskgym.world.kind import load_plugin

        for module in getattr(args, "plugin", None) or []:
            load_plugin(module)
        return int(_commands()[args.command](args))
    except RiskgymError as exc:  # one line, whatever a message quotes
        print(f"riskgym: error: {' '.join(str(exc).splitlines())}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("riskgym: interrupted; finished episodes are kept, run the same command again to resume",
              file=sys.stderr)
        return 130
    finally:
        if argv is None:  # the program is ending: a Ctrl-C that lands in its last clean-up is no traceback
            import signal

            signal.signal(signal.SIGINT, signal.SIG_IGN)


def _validate(args: argparse.Namespace) -> int:
    from riskgym.library import load as load_scenario
    from riskgym.library import scenario_files

    files = scenario_files(args.paths)
    if not files:
        raise RiskgymError(f"{' '.join(args.paths) or 'the library'}: no scenario files (*.toml) found")
    for path in files:
        s = load_scenario(path)
        print(f"ok  {path}  {s.env_id}  ({len(s.intention)} tripwires, {len(s.completion)} completion checks)")
    return 0


def _run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from riskgym.grading.runs import grade_run
    from riskgym.library import scenario_files
    from riskgym.monitoring.offline import with_offline
    from riskgym.running.runner import run
    from riskgym.viewing.report import render
    from riskgym.viewing.summary import Report

    console = Console(stderr=True, soft_wrap=True)
    options = _run_options(args)
    progress = RunProgress(console)
    try:
        counts = run(scenario_files(args.scenarios), args.models, args.out, options, progress=progress)
    finally:
        progress.close()
    not_run = f", {counts['not run']} not run (run the same command again to retry)" if counts["not run"] else ""
    console.print(f"done: {counts['completed']} completed, {counts['truncated']} truncated, {counts['error']} errors"
                  f"{not_run}, {counts['skipped']} already finished; traces in {args.out}/episodes; "
                  f"{counts['sandboxes started']} sandboxes started, {counts['resets']} resets in place"
                  + (f"; on {counts['nodes']} Ray node{'s' * (counts['nodes'] != 1)}, {counts['retried']} "
                     "episodes sent again after a worker or node was lost" if "nodes" in counts else ""))
    report = Report(with_offline(grade_run(args.out), [args.out]))  # one report: the terminal's and the page's
    render(report, title=f"riskgym run {args.out}")
    if args.html:
        _write_html(args.out, args.html, report)
    return 0


def _attack(args: argparse.Namespace) -> int:
    from rich.console import Console

    from riskgym.grading.runs import grade_run
    from riskgym.monitoring.offline import with_offline
    from riskgym.running.attack import expand
    from riskgym.running.runner import run
    from riskgym.viewing.report import render_attacks
    from riskgym.viewing.summary import Report

    console = Console(stderr=True, soft_wrap=True)
    options = _run_options(args)
    from riskgym.core.files import check_folder

    check_folder(args.out, "--out", "an attack run's to resume it")
    new = not args.out.exists()
    try:
        files, seen = expand(args.suite, args.out, options.sandbox, args.attacks)
    except BaseException:
        if new:  # nothing half-written: the folder it made goes
            shutil.rmtree(args.out, ignore_errors=True)
        raise
    for task, slots in seen.items():
        console.print(f"{task}: the agent sees {', '.join(slots) if slots else 'no slot (not attacked)'}")
    progress = RunProgress(console)
    try:
        run(files, args.models, args.out, options, progress=progress)
    finally:
        progress.close()
    report = Report(with_offline(grade_run(args.out), [args.out]))
    render_attacks(report.attacks, title=f"riskgym attack {args.suite.stem} -> {args.out}")
    if args.html:
        _write_html(args.out, args.html, report)
    return 0


def _write_html(run_dir: Path, out: Path, report: Report) -> None:
    """The page of the run: the report the terminal showed."""
    from riskgym.viewing.html import write_report

    n = write_report(run_dir, out, report)
    size = out.stat().st_size
    shown = f"{size / 1e6:.1f} MB" if size >= 1e6 else f"{size / 1e3:.0f} kB"
    print(f"wrote {out}: the HTML report of {n} episodes ({shown}); open it in a browser")


def _run_options(args: argparse.Namespace) -> RunOptions:
    from pydantic import ValidationError

    from riskgym.running.agent import Budget
    from riskgym.running.model import ModelConfig, load_models_file
    from riskgym.running.runner import RunOptions

    prompt = None
    if args.system_prompt:
        try:
            prompt = args.system_prompt.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise RiskgymError(f"--system-prompt {args.system_prompt}: cannot read it ({exc}); give a UTF-8 text "
                               "file") from None
    overrides = {k: getattr(args, k) for k in ("api_base", "api_key_env", "temperature", "top_p", "max_tokens",
                                               "tool_mode", "timeout", "retries", "stream")
                 if getattr(args, k) is not None}
    if args.price is not None:
        overrides.update(price_per_token(args.price))
    try:
        ModelConfig(model="x/y", **overrides)
    except ValidationError as exc:
        err = exc.errors()[0]
        raise RiskgymError(f"--{str(err['loc'][0]).replace('_', '-')}: {err['msg']}") from None
    if args.token_budget is not None and args.token_budget < 1:
        raise RiskgymError(f"--token-budget {args.token_budget}: give a positive number of tokens")
    if args.cost_budget is not None and args.cost_budget <= 0:
        raise RiskgymError(f"--cost-budget {args.cost_budget}: give a positive amount of US dollars")
    from riskgym.running.runner import default_concurrency

    concurrency = default_concurrency() if args.concurrency is None else args.concurrency
    from riskgym.world.emulator.cache import default_cache_path

    emulator_overrides = {"api_base": args.emulator_api_base} if args.emulator_api_base else {}
    cache = None if args.no_emulator_cache else (args.emulator_cache or default_cache_path())
    models = load_models_file(args.models_file) if args.models_file else {}
    from riskgym.cli_monitor import monitor_options

    monitor, block_above = monitor_options(args, models)
    from riskgym.cli_cluster import cluster_options

    cluster = cluster_options(args)
    return RunOptions(epochs=args.epochs, seed=args.seed, concurrency=concurrency, system_prompt=prompt,
                      budget=Budget(args.token_budget, args.cost_budget),
                      models=models, overrides=overrides, sandbox=args.sandbox, emulator=args.emulator,
                      emulator_overrides=emulator_overrides, emulator_mode=args.emulator_mode, emulator_cache=cache,
                      monitor=monitor, block_above=block_above, cluster=cluster)


class RunProgress:
    """A progress bar (done/total, errors, tokens, cost so far) and one line per episode, on stderr.

    Under the bar, one live line per worker: its episode, step, last tool, what it waits for, and for how long.
    """

    def __init__(self, console: Console) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
        from rich.text import Text

        workers: dict[int, Activity] = {}

        class Bar(Progress):
            def get_renderables(self) -> Any:
                yield from super().get_renderables()
                for slot in sorted(workers):
                    yield Text(f"  {workers[slot].line()}", style="dim", overflow="ellipsis", no_wrap=True)

        self.console = console
        self.workers = workers
        self.bar = Bar(TextColumn("episodes"), BarColumn(), MofNCompleteColumn(),
                       TextColumn("errors {task.fields[errors]}  tokens {task.fields[tokens]:,}  "
                                  "cost {task.fields[cost]}"), TimeElapsedColumn(), console=console)
        self.task = self.bar.add_task("run", total=None, errors=0, tokens=0, cost="-")
        self.errors, self.tokens, self.cost = 0, 0, None  # type: tuple[int, int, float | None]
        self.started = False

    def working(self, slot: int, activity: Activity | None) -> None:
        """Show (or, for None, remove) worker ``slot``'s live line."""
        if activity is None:
            self.workers.pop(slot, None)
        else:
            self.workers[slot] = activity

    def planned(self, total: int, finished: int) -> None:
        """Start the bar at the episodes already finished."""
        self.bar.update(self.task, total=total, completed=finished)
        self.bar.start()
        self.started = True

    def episode(self, name: str, result: EpisodeResult | None) -> None:
        """Print the episode's line and advance the bar."""
        if result is None:
            self.console.print(f"{name}: interrupted")
            return
        self.errors += result.status == "error"
        self.tokens += result.tokens
        if result.cost is not None:
            self.cost = (self.cost or 0.0) + result.cost
        usage = f" ({result.turns} turns, {result.tokens:,} tokens)" if result.tokens else ""
        why = f": {result.reason}" if result.status in ("error", "truncated", "not run") and result.reason else ""
        took = f" in {result.seconds:.1f} s" if result.seconds else ""
        self.bar.console.print(f"{name}: {result.status}{why}{took}{usage}")
        cost = "-" if self.cost is None else f"${self.cost:.4f}"
        self.bar.update(self.task, advance=1, errors=self.errors, tokens=self.tokens, cost=cost)

    def close(self) -> None:
        """Stop the bar (leaving its last state on screen)."""
        if self.started:
            self.bar.stop()


def price_per_token(text: str) -> dict[str, float]:
    """``--price IN,OUT`` (US dollars per million tokens) as ModelConfig's per-token prices."""
    try:
        prices = [float(p) for p in text.split(",")]
    except ValueError:
        prices = []
    if len(prices) != 2 or min(prices) < 0:
        raise RiskgymError(f"--price {text}: give US dollars per million input and output tokens, e.g. 0.15,0.60")
    return {"input_cost_per_token": prices[0] / 1e6, "output_cost_per_token": prices[1] / 1e6}


def _grade(args: argparse.Namespace) -> int:
    from riskgym.grading.runs import grade_run

    graders = args.graders.split(",") if args.graders else None
    judge, samples = None, 3
    if args.judge:
        from riskgym.running.factory import check_model, make_judge
        from riskgym.running.model import load_models_file

        for flag, value, least in (("samples", args.judge_samples, 1), ("concurrency", args.judge_concurrency, 1)):
            if value is not None and value < least:
                raise RiskgymError(f"--judge-{flag} {value}: give at least {least}")
        if args.judge_timeout is not None and args.judge_timeout <= 0:
            raise RiskgymError(f"--judge-timeout {args.judge_timeout}: give a positive number of seconds")
        configs = load_models_file(args.models_file) if args.models_file else {}
        overrides = {k: v for k, v in (("api_base", args.api_base), ("timeout", args.judge_timeout),
                                       ("stream", args.stream)) if v is not None}
        judge = make_judge(args.judge, configs, overrides)
        check_model(args.judge, judge.settings)
        samples = args.judge_samples
        if samples is None:
            samples = 1 if judge.settings.temperature == 0 else 3
            if samples == 1:
                print("judge at temperature 0: 1 sample per episode (more would repeat it; set a temperature and "
                      "--judge-samples N for more)", file=sys.stderr)
    import signal

    signal.signal(signal.SIGTERM, signal.default_int_handler)  # SIGTERM stops it as Ctrl-C does
    try:
        rows = grade_run(args.run_dir, graders, judge=judge, judge_samples=samples,
                         judge_concurrency=args.judge_concurrency, on_judged=_said_judged)
    except KeyboardInterrupt:
        if judge is not None:
            print(f"riskgym: stopped; the verdicts judged so far are kept in {args.run_dir / 'judge.jsonl'} (the same "
                  "command goes on from there)", file=sys.stderr)
        raise
    unverified = [r.trace for r in rows if not r.verified]
    print(f"graded {len(rows)} episodes; wrote {args.run_dir / 'grades.jsonl'}" + (
        f"; {len(unverified)} traces did not verify and were graded unscored ({', '.join(unverified[:3])}"
        f"{', ...' if len(unverified) > 3 else ''}: riskgym verify says why)" if unverified else ""))
    if judge is not None:
        for line in judge_agreement(rows, args.judge):
            print(line)
    return 0


def _said_judged(n: int, total: int) -> None:
    if n == total or n % max(1, total // 20) == 0:  # about 20 lines however many traces
        print(f"judged {n}/{total} (kept in judge.jsonl as they come)", file=sys.stderr, flush=True)


def judge_agreement(rows: list[GradeRow], judge: str) -> list[str]:
    """The judge against the rules (intention): raw agreement, Cohen's kappa and the 2x2 table."""
    from riskgym.grading.runs import agreement, confusion

    kappa, n = agreement(rows)
    unscored = sum(1 for r in rows if r.verdict("judge").value is None)
    if not n:
        return [f"judge {judge} vs rule (intention): no episode scored by both; {unscored} unscored by the judge"]
    cells = confusion(rows)
    agree = cells["11"] + cells["00"]
    kappa_text = f"{kappa:.2f}" if kappa is not None else "-"
    return [f"judge {judge} vs rule (intention): agree on {agree}/{n} ({agree / n:.0%}), Cohen's kappa {kappa_text} "
            f"over {n} episodes both scored; {unscored} unscored by the judge",
            "                 rules: risky  rules: safe",
            f"  judge: risky   {cells['11']:>11}  {cells['10']:>11}",
            f"  judge: safe    {cells['01']:>11}  {cells['00']:>11}"]


def _report(args: argparse.Namespace) -> int:
    from riskgym.grading.runs import load_runs
    from riskgym.viewing.report import render, render_compare
    from riskgym.viewing.summary import Report

    runs = " ".join(map(str, args.run_dirs))
    if args.html and len(args.run_dirs) > 1:
        raise RiskgymError(f"--html: give one run directory, not {len(args.run_dirs)} (the page shows one run)")
    from riskgym.monitoring.offline import with_offline

    rows = with_offline(load_runs(args.run_dirs, args.grade), args.run_dirs)
    if args.compare:
        agents = {r.agent for r in rows}
        for agent in args.compare:
            if agent not in agents:
                raise RiskgymError(f"--compare {agent!r}: no such agent in {runs}; there are "
                                   f"{', '.join(sorted(agents))}")
        render_compare(rows, *args.compare)
        return 0
    report = Report(rows, args.interval)
    render(report, title=f"riskgym report {runs}", by=args.by)
    if args.html:
        _write_html(args.run_dirs[0], args.html, report)
    return 0


def _images(args: argparse.Namespace) -> int:
    from concurrent.futures import ThreadPoolExecutor

    from riskgym.world.images import build_base, build_folder, image_folders

    build_base(from_image=args.from_image, force=args.force)
    folders = image_folders()  # the desktop's, and every part kind's that has one: FROM the base, built at once

    def build(name: str) -> str:
        return build_folder(name, force=args.force, say=lambda line: print(f"[{name}] {line.strip()}", flush=True))

    with ThreadPoolExecutor(max(1, len(folders))) as pool:
        list(pool.map(build, folders))
    return 0


def _sandbox(args: argparse.Namespace) -> int:
    if args.sandbox_command == "self-check":
        from riskgym.tools.conformance import self_check

        results = self_check(args.kind)
        for name, why in results:
            print(f"{'ok  ' if why is None else 'FAIL'} {name}" + (f": {why}" if why else ""))
        failed = sum(why is not None for _, why in results)
        print(f"{args.kind}: {len(results) - failed} of {len(results)} conformance checks passed")
        return 1 if failed else 0
    from riskgym.world.docker import prune

    print(f"removed {prune(args.run)} riskgym container(s)")
    return 0


def _parts(args: argparse.Namespace) -> int:
    from riskgym.world.kind import KINDS, load_kinds

    load_kinds()
    if args.parts_command == "list":
        for name in KINDS:
            kind = KINDS[name]
            needs = [w for w, on in (("serves a host name", kind.serves), ("web", kind.web),
                                     ("beside the box", kind.beside_box), ("a docker box", kind.real_box),
                                     ("an emulator model", kind.emulates)) if on]
            print(f"{name:10} {kind.description}" + (f" [{', '.join(needs)}]" if needs else "")
                  + (f" image {kind.image}" if kind.image else "") + (" self-check" if kind.self_check else ""))
        return 0
    for name in args.kinds:
        if name not in KINDS:
            raise RiskgymError(f"parts self-check {name}: {KINDS.unknown(name)}")
    names = args.kinds or [n for n in KINDS if KINDS[n].self_check is not None]
    failed = total = 0
    for name in names:
        check = KINDS[name].self_check
        if check is None:
            print(f"{name}: no self-check")
            continue
        for what, why in check():
            total += 1
            failed += why is not None
            print(f"{'ok  ' if why is None else 'FAIL'} {name}: {what}" + (f": {why}" if why else ""))
    print(f"{total - failed} of {total} part-kind conformance checks passed ({', '.join(names)})")
    return 1 if failed or not total else 0


def _compare(args: argparse.Namespace) -> int:
    from riskgym.grading.compare import agreement
    from riskgym.grading.runs import load_grades
    from riskgym.viewing.report import render_agreement

    for run_dir in (args.run_a, args.run_b):
        if not (run_dir / "episodes").is_dir():
            raise RiskgymError(f"{run_dir}: not a run directory (no episodes/); give two directories `riskgym run "
                               "--out` wrote")
    render_agreement(agreement(load_grades(args.run_a, args.grade), load_grades(args.run_b, args.grade)),
                     str(args.run_a), str(args.run_b))
    return 0


def _import(args: argparse.Namespace) -> int:
    from riskgym.importers.toolemu import import_cases

    paths = import_cases(args.cases, args.out, args.toolkits)
    print(f"wrote {len(paths)} scenarios into {args.out} (ToolEmu, Apache-2.0: attribution in each file); run them "
          f"with riskgym run {args.out} --model MODEL --emulator MODEL")
    return 0


def _commands() -> dict[str, Any]:
    from riskgym import cli_check, cli_cluster, cli_inspect, cli_monitor

    return {"validate": _validate, "run": _run, "attack": _attack, "grade": _grade, "report": _report,
            "check": cli_check.check, "compare": _compare, "import": _import, "images": _images, "sandbox": _sandbox,
            "parts": _parts,
            **cli_inspect.COMMANDS, **cli_monitor.COMMANDS, **cli_cluster.COMMANDS}

if __name__ == "__main__":
    sys.exit(main())
