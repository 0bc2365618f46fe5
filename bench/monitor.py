"""The monitors' cost. Goals (issue 20): the rules monitor in observe mode adds <= 1 ms to a step; offline scoring
of 10,000 traces runs at >= 1,000 traces/s on 2 cores.

Observe mode: the same shell steps through ``RiskEnv.step`` (trace written, in-memory sandbox so that the monitor's
share is not lost in a container's noise), in alternating blocks with and without the rules monitor; the figure
is the difference of the mean step times, and the monitor's own time as the trace records it. Offline:
``score_run`` of the rules monitor over 10,000 synthetic traces (``grading_throughput.synthetic``), cache empty.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from figures import record
from grading_throughput import COMMANDS, synthetic

from riskgym.library import library_dir
from riskgym.monitoring.monitors import RulesMonitor
from riskgym.monitoring.offline import score_run
from riskgym.running.env import RiskEnv

STEP_GOAL_MS = 1.0
N = 10_000
RATE_GOAL = 1_000.0
BLOCKS, EPISODES, STEPS = 6, 10, 30


def observe_mode(tmp: Path) -> tuple[float, float]:
    """(added ms per step, the monitor's own median ms per step)."""
    times: dict[bool, list[float]] = {True: [], False: []}
    own: list[float] = []
    scenario = library_dir() / "free-disk-space-v0.toml"
    plain = RiskEnv(scenario, sandbox="fake")
    watched = RiskEnv(scenario, sandbox="fake", monitor=RulesMonitor())
    for env in (plain, watched):
        env.scenario.limits.__dict__["max_steps"] = 10**6  # a bench-only override of the step limit
    for block in range(2 * BLOCKS):
        monitored = block % 2 == 1
        env = watched if monitored else plain
        for e in range(EPISODES):
            env.reset(options={"trace": tmp / f"b{block}e{e}.jsonl"})
            t = time.perf_counter()
            for i in range(STEPS):
                _, _, _, _, info = env.step({"tool": "shell", "arguments": {"command": COMMANDS[i % len(COMMANDS)]}})
                if monitored:
                    own.append(info["event"]["monitor"]["seconds"] * 1000)
            times[monitored].append((time.perf_counter() - t) * 1000 / STEPS)
    plain.close()
    watched.close()
    return statistics.mean(times[True]) - statistics.mean(times[False]), statistics.median(own)


def offline(tmp: Path) -> float:
    synthetic(tmp)
    started = time.perf_counter()
    scores = score_run(tmp, RulesMonitor())
    took = time.perf_counter() - started
    assert len(scores) == N and sum(len(s) for s in scores.values()) > 2 * N
    return N / took


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        added, own = observe_mode(Path(tmp))
    print(f"rules monitor, observe mode: +{added:.3f} ms a step ({own:.3f} ms median in the monitor itself) over "
          f"{BLOCKS * EPISODES * STEPS:,} steps; goal <= {STEP_GOAL_MS} ms: "
          f"{'meets' if added <= STEP_GOAL_MS else 'MISSES'} ({added / STEP_GOAL_MS:.2f}x the goal)")
    record("rules monitor, observe mode, added per step", added, "ms", STEP_GOAL_MS, "issue 20 goal")
    with tempfile.TemporaryDirectory() as tmp:
        rate = offline(Path(tmp))
    print(f"rules monitor, offline: {rate:,.0f} traces/s on {os.cpu_count()} cores over {N:,} traces; goal >= "
          f"{RATE_GOAL:,.0f}: {'meets' if rate >= RATE_GOAL else 'MISSES'} ({rate / RATE_GOAL:.2f}x the goal)")
    record(f"rules monitor, offline, {os.cpu_count()} processes", rate, "traces/s", RATE_GOAL, "issue 20 goal",
           lower_is_better=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
