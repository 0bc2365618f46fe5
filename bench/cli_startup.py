"""CLI start-up: ``riskgym --help`` and ``riskgym validate`` (the library), wall time from a fresh process; neither
may import litellm (~2.5 s). Goal (issue 6): ``riskgym --help`` under 0.3 s."""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

from figures import record

GOAL_S = 0.3
RISKGYM = [sys.executable, "-m", "riskgym.cli"]


def wall(args: list[str], n: int = 7) -> float:
    """Median seconds of ``n`` runs."""
    times = []
    for _ in range(n):
        started = time.perf_counter()
        subprocess.run([*RISKGYM, *args], check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def imports_litellm(args: list[str]) -> bool:
    """Whether the command imports litellm (from ``python -X importtime``)."""
    out = subprocess.run([sys.executable, "-X", "importtime", "-m", "riskgym.cli", *args], capture_output=True,
                         text=True)
    return any(line.rstrip().endswith(" litellm") for line in out.stderr.splitlines())


def main() -> int:
    for args in (["--help"], ["validate"]):
        took, heavy = wall(args), imports_litellm(args)
        name = f"riskgym {args[0]}"
        print(f"{name}: {took * 1000:.0f} ms (median of 7){'; IMPORTS LITELLM' if heavy else ', litellm not imported'}")
        goal = GOAL_S * 1000 if args == ["--help"] else None  # the goal names --help only
        record(f"CLI start-up: {name}" + (" (imports litellm!)" if heavy else ""), took * 1000, "ms", goal, "goal")
    return 0


if __name__ == "__main__":
    sys.exit(main())
