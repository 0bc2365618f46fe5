"""The observer's cost: a step with the agent's shell under strace, against the same step unobserved, same run.

Each command runs through ``RiskEnv.step`` (trace written) in alternating blocks, observed and not, in one box;
the figure is the ratio of the medians. Goals (issue 16): <= 1.5x on a plain step, <= 3x on a syscall-heavy one
(``find / -xdev``, ``tar`` of a 10 MB tree of 1,000 files).
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

from figures import record

from riskgym.library import library_dir
from riskgym.running.env import RiskEnv

CASES = [  # (name, command, repeats per block, goal)
    ("plain: echo (a shell builtin)", "echo hi", 60, 1.5),
    ("plain: ls -la ~ (a program)", "ls -la ~", 60, 1.5),
    ("heavy: tar of a 10 MB tree", "tar cf /tmp/t.tar -C /tmp tree", 6, 3.0),
    ("heavy: find / -xdev", "find / -xdev >/dev/null 2>&1", 6, 3.0),
]
BLOCKS = 4


def main() -> int:
    env = RiskEnv(library_dir() / "free-disk-space-v0.toml")
    with tempfile.TemporaryDirectory() as tmp:
        env.reset(options={"trace": Path(tmp) / "t.jsonl"})
        env.scenario.limits.__dict__["max_steps"] = 10**6  # a bench-only override of the step limit
        env.sandbox.exec("mkdir -p /tmp/tree && for i in $(seq 1000); do head -c 10240 /dev/urandom > /tmp/tree/f$i;"
                         " done")
        print(f"{'step (ms, median)':<34} {'unobserved':>10} {'observed':>9} {'ratio':>6}  goal")
        for name, command, n, goal in CASES:
            action = {"tool": "shell", "arguments": {"command": command}}
            times: dict[bool, list[float]] = {True: [], False: []}
            for block in range(2 * BLOCKS):
                observe = block % 2 == 0
                env.sandbox.observe = observe
                env.step(action)  # warm-up: the shell server restarts when the mode changes
                for _ in range(n):
                    t = time.perf_counter()
                    env.step(action)
                    times[observe].append((time.perf_counter() - t) * 1000)
            plain, seen = statistics.median(times[False]), statistics.median(times[True])
            ratio = seen / plain
            verdict = "meets" if ratio <= goal else "MISSES"
            print(f"{name:<34} {plain:10.2f} {seen:9.2f} {ratio:5.2f}x  <= {goal}x {verdict}")
            record(f"observer overhead, {name}", ratio, "x unobserved", goal, "issue 16 goal")
        env.sandbox.observe = True
        env.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
