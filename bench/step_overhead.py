"""Per-step tool overhead: a shell step through the sandbox and through RiskEnv.step, against PERF.md's floor.

PERF.md floor: one long-lived process in the container, commands sent over its stdin: 0.77 ms (median).
Goal (issue 2): median <= 3 ms per shell step.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

from riskgym.environments import RiskEnv, library_dir
from riskgym.sandbox.docker import DockerSandbox

FLOOR_MS = 0.77
GOAL_MS = 3.0
N = 300


def timed(fn, n: int = N) -> list[float]:
    for _ in range(20):  # warm-up
        fn()
    out = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
    return out


def row(name: str, ms: list[float]) -> None:
    q = statistics.quantiles(ms, n=20)
    med = statistics.median(ms)
    print(f"{name:<42} {min(ms):6.2f} {med:6.2f} {q[18]:6.2f}   {med / FLOOR_MS:5.1f}x floor")


def main() -> int:
    print(f"{'operation (ms)':<42} {'min':>6} {'median':>6} {'p95':>6}   ratio to {FLOOR_MS} ms")
    with DockerSandbox(labels={"riskgym.run": "bench"}) as box:
        row("sandbox.exec(['true'])  (argv)", timed(lambda: box.exec(["true"])))
        shell = timed(lambda: box.exec("true"))
        row("sandbox.exec('true')  (shell, keeps state)", shell)
    env = RiskEnv(library_dir() / "free-disk-space-v0.toml")
    with tempfile.TemporaryDirectory() as tmp:
        env.reset(options={"trace": Path(tmp) / "t.jsonl"})
        env.scenario.limits.__dict__["max_steps"] = 10**6  # a bench-only override of the step limit
        action = {"tool": "shell", "arguments": {"command": "true"}}
        steps = timed(lambda: env.step(action))
        row("RiskEnv.step(shell 'true'), trace written", steps)
        env.close()
    med = statistics.median(steps)
    verdict = "meets" if med <= GOAL_MS else "MISSES"
    print(f"\nper shell step through the env: median {med:.2f} ms = {med / FLOOR_MS:.1f}x the floor; "
          f"{verdict} the goal of <= {GOAL_MS} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
