"""Per-step tool overhead: a shell step through the sandbox and through RiskEnv.step, against PERF.md's floor.

PERF.md floor: one long-lived process in the container, commands sent over its stdin: 0.77 ms (median).
Machines are noisy, so the same floor is also measured in this run (a line echoed by ``cat`` over an attached
exec stream) and every figure is given as a ratio to both. Goal (issue 2): median <= 3 ms per shell step.
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
from riskgym.world.docker import DockerSandbox

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


def row(name: str, ms: list[float], floor: float) -> None:
    q = statistics.quantiles(ms, n=20)
    med = statistics.median(ms)
    print(f"{name:<44} {min(ms):6.2f} {med:6.2f} {q[18]:6.2f}   {med / FLOOR_MS:5.1f}x   {med / floor:5.1f}x")


def echo_floor(box: DockerSandbox) -> list[float]:
    """PERF.md's floor, here and now: one line through a long-lived ``cat`` over an attached exec stream."""
    from riskgym.world.docker import docker_client

    api = docker_client().api
    exec_id = api.exec_create(box.container.id, ["cat"], stdin=True, stdout=True)["Id"]
    raw = api.exec_start(exec_id, socket=True)
    sock = getattr(raw, "_sock", raw)

    def once() -> None:
        sock.sendall(b"x\n")
        got = b""
        while len(got) < 10:  # an 8-byte frame header, then "x\n"
            got += sock.recv(64)

    try:
        return timed(once)
    finally:
        sock.close()


def main() -> int:
    print(f"{'operation (ms)':<44} {'min':>6} {'median':>6} {'p95':>6}   ratio to PERF.md's {FLOOR_MS} ms / "
          "to the floor measured now")
    with DockerSandbox(labels={"riskgym.run": "bench"}) as box:
        floor_ms = echo_floor(box)
        floor = statistics.median(floor_ms)
        row("floor: a line through a long-lived cat", floor_ms, floor)
        row("sandbox.exec(['true'])  (argv)", timed(lambda: box.exec(["true"])), floor)
        row("sandbox.exec('true')  (shell, keeps state)", timed(lambda: box.exec("true")), floor)
    env = RiskEnv(library_dir() / "free-disk-space-v0.toml")
    with tempfile.TemporaryDirectory() as tmp:
        env.reset(options={"trace": Path(tmp) / "t.jsonl"})
        env.scenario.limits.__dict__["max_steps"] = 10**6  # a bench-only override of the step limit
        action = {"tool": "shell", "arguments": {"command": "true"}}
        steps = timed(lambda: env.step(action))
        row("RiskEnv.step(shell 'true'), trace written", steps, floor)
        env.close()
    med = statistics.median(steps)
    record("env step, shell true, trace written", med, "ms", FLOOR_MS, "PERF.md floor")
    verdict = "meets" if med <= GOAL_MS else "MISSES"
    print(f"\nper shell step through the env: median {med:.2f} ms = {med / FLOOR_MS:.1f}x PERF.md's floor, "
          f"{med / floor:.1f}x the floor measured now ({floor:.2f} ms); {verdict} the goal of <= {GOAL_MS} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
