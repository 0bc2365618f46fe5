"""``riskgym check``: prove scenarios gradeable by running their references (or their variants) for real."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from riskgym.errors import RiskgymError


def add_parsers(sub: Any) -> None:
    """Add the ``check`` command's parser."""
    c = sub.add_parser("check", help="run both reference trajectories of each scenario and check their grades")
    c.add_argument("scenarios", nargs="*", help="scenario files or folders (default: the library)")
    c.add_argument("--sandbox", choices=("docker", "fake"), default="docker",
                   help="run the references in a docker box (the default) or the fake, in-memory one (no Docker)")
    c.add_argument("--concurrency", type=int, metavar="N", help="scenarios checked at once (default: as for run; "
                   "the output is in file order whatever N)")
    c.add_argument("--variants", action="store_true",
                   help="run each scenario's risky and benign variants (variants/<file>) and print each grader's "
                        "recall and false positives")
    c.add_argument("--judge", metavar="MODEL", help="the judge model that decides judge checks (a litellm model "
                   "string or a name in --models FILE); each judge check's labelled examples are scored on it first")
    c.add_argument("--models", dest="models_file", type=Path, metavar="FILE", help="model settings, TOML")
    c.add_argument("--api-base", help="the judge's OpenAI-compatible endpoint")


def check(args: argparse.Namespace) -> int:
    """Exit 0 when every scenario (or variant) is as its references say, 1 when one is not."""
    from riskgym.library import load as load_scenario
    from riskgym.library import scenario_files

    files = scenario_files(args.scenarios)
    scenarios = [load_scenario(path) for path in files]  # every file read first
    from riskgym.running.runner import check_together

    check_together(scenarios, files, args.sandbox)  # a desktop in the fake sandbox: one line, before anything runs
    _judge_agreement(args, scenarios)
    if args.variants:
        return _check_variants(args)
    from riskgym.grading.proof import check_scenario
    from riskgym.running.pool import WorldPool

    failed = 0
    pool = WorldPool(size=1, sandbox=args.sandbox, refill=False)  # worlds reused, reset in place between runs

    def check(scenario: Any) -> tuple[Any, Any, list[str]]:
        notes: list[str] = []
        return scenario, check_scenario(scenario, sandbox=args.sandbox, notes=notes, pool=pool), notes

    try:
        for scenario, (verdicts, problems), notes in in_order(check, scenarios, args.concurrency):
            failed += _said(scenario, verdicts, problems, notes)
    finally:
        pool.close()
    return 1 if failed else 0


def _judge_agreement(args: argparse.Namespace, scenarios: list[Any]) -> None:
    """With ``--judge``: use it for judge checks, and print its agreement with each one's labelled examples first."""
    from riskgym.grading.judged import agreement, judge_checks, use_judge

    judged = [(s, c) for s in scenarios for c in judge_checks(s)]
    model = None
    if args.judge:
        from riskgym.running.factory import check_model, make_judge
        from riskgym.running.model import load_models_file

        configs = load_models_file(args.models_file) if args.models_file else {}
        model = make_judge(args.judge, configs, {"api_base": args.api_base} if args.api_base else {})
        check_model(args.judge, model.settings)
    use_judge(model)
    for scenario, c in judged:
        if model is None:
            print(f"{scenario.env_id}\n  judge check ({c.question[:70]}): {len(c.examples.yes) + len(c.examples.no)} "
                  "labelled examples, not scored: no --judge (its verdicts are unscored)")
            continue
        right, total, wrong = agreement(model, c)
        print(f"{scenario.env_id}\n  judge {args.judge} on ({c.question[:70]}): agrees with {right}/{total} labelled "
              f"examples ({right / total:.0%})")
        errors = [line for line in wrong if "got None" in line and "(error: " in line]
        if wrong and len(errors) == len(wrong) == total:  # never answered: one line says why, not one per example
            print(f"    the judge gave no answer at all: {errors[0].split('(error: ', 1)[1][:200]}")
            continue
        for line in wrong:
            print(f"    {line}")


def in_order(fn: Any, items: list[Any], concurrency: int | None) -> Iterator[Any]:
    """``fn`` of each item, ``concurrency`` at once (default: as for run), yielded in the items' order.

    When the caller stops (an error, Ctrl-C), what has not started never does.
    """
    from concurrent.futures import ThreadPoolExecutor

    from riskgym.running.runner import default_concurrency

    if concurrency is not None and concurrency < 1:
        raise RiskgymError(f"--concurrency {concurrency}: give at least 1")
    threads = ThreadPoolExecutor(max(1, min(len(items), concurrency or default_concurrency())))

    def ordered() -> Iterator[Any]:
        try:
            yield from threads.map(fn, items)
        finally:
            threads.shutdown(wait=False, cancel_futures=True)

    return ordered()


def _said(scenario: Any, verdicts: dict[str, Any], problems: list[str], notes: list[str]) -> bool:
    """Print what checking a scenario found; True when it failed."""
    summary = "  ".join(f"{w}: " + ",".join(f"{m}={'-' if v.value is None else int(v.value)}"
                                            for m, v in verdicts[w].items()) for w in verdicts)
    print(f"{'ok  ' if not problems else 'FAIL'} {scenario.env_id}  {summary}", flush=True)
    for problem in problems:
        print(f"     {problem}")
    for note in notes:
        print(f"     note: {note}")
    return bool(problems)


def _check_variants(args: argparse.Namespace) -> int:
    from riskgym.grading.variants import Tally, check_variants, variants_for
    from riskgym.library import load as load_scenario
    from riskgym.library import scenario_files

    total = Tally()
    pairs = []
    for path in scenario_files(args.scenarios):  # every file read and found before anything runs
        scenario = load_scenario(path)
        if scenario.intention or scenario.canaries:
            pairs.append((scenario, variants_for(path)))
        else:
            print(f"{scenario.env_id}\n  nothing to measure: no tripwires, no canaries (a benign twin)")
    checked = in_order(lambda pair: check_variants(pair[0], pair[1], sandbox=args.sandbox), pairs, args.concurrency)
    for (scenario, _), (tally, notes) in zip(pairs, checked, strict=True):
        total.add(tally)
        print(f"{scenario.env_id}")
        for line in tally.lines():
            print(f"  {line}")
        for line in tally.misses + notes:
            print(f"    {line}")
    print("all scenarios")
    for line in total.lines():
        print(f"  {line}")
    return 1 if total.misses else 0
