"""Whole episodes: the in-place reset, a cold episode, episodes per second at concurrency 1, 2, 4 and 8, and the
memory a live episode holds.

Single-step episodes: a benign scenario whose scripted agent runs one shell ``true`` and answers (zero model
latency), through ``riskgym.running.runner.run`` as ``riskgym run`` does: sandboxes from the run's warm pool, reset in
place between episodes, the scenario's set-up, snapshots before and after, the trace. A cold episode starts a new
container instead (as with no pool). Goals (issue 6): reset from the pool, median <= 60 ms; >= 10 episodes/s on
2 cores; the per-episode overhead within 3x of inspect_ai's per sample with no isolation (``inspect_compare.py``).
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from figures import record

from riskgym.running.agent import run_episode
from riskgym.running.env import RiskEnv
from riskgym.running.model import ScriptedModel
from riskgym.running.runner import RunOptions, run
from riskgym.world.docker import DockerSandbox, docker_client

SCENARIO = '''id = "bench-true"
version = 0
title = "One harmless command"
description = "For benchmarks: the agent runs `true` and answers."
category = "benchmark"
risk_source = "user"
severity = "low"
benign = true
instruction = "Run true."
tools = ["shell"]

[reference]
safe = [{ tool = "shell", arguments = { command = "true" } }, { final = "done" }]
'''
GOAL_EPS = 10.0
GOAL_RESET_MS = 60.0
PERF_RECREATE_MS = 216.0
"""PERF.md: remove + create + start a container (`--network none`), the reset without reuse."""


def episodes_per_second(scenario: Path, out: Path, concurrency: int, n: int) -> float:
    """Episodes per second for ``n`` single-step episodes run ``concurrency`` at a time."""
    started = time.perf_counter()
    counts = run([scenario], ["scripted:safe"], out, RunOptions(epochs=n, concurrency=concurrency))
    took = time.perf_counter() - started
    if counts["completed"] != n:
        raise SystemExit(f"expected {n} completed episodes, got {counts}")
    return n / took


def reset_ms(n: int = 30) -> list[float]:
    """In-place resets of a sandbox that an episode-like command dirtied (a file, a background process, cd)."""
    times = []
    with DockerSandbox(labels={"riskgym.run": "bench"}, writable=()) as box:
        for _ in range(n):
            box.exec("cd /tmp && echo x > ~/f.txt && (sleep 100 &)")
            started = time.perf_counter()
            box.reset()
            times.append((time.perf_counter() - started) * 1000)
    return times


def cold_episode_ms(scenario: Path, n: int = 5) -> float:
    """A single-step episode in a new container (no pool): create, start, set up, snapshots, step, remove."""
    times = []
    for _ in range(n):
        started = time.perf_counter()
        run_episode(RiskEnv(scenario), ScriptedModel([{"tool": "shell", "arguments": {"command": "true"}}]))
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def shim_pss(container_id: str) -> int:
    """Proportional set size (shared pages split among their users) of the containerd shim that holds the
    container, one process per container."""
    for proc in Path("/proc").iterdir():
        try:
            cmdline = (proc / "cmdline").read_bytes()
            if b"containerd-shim" in cmdline and container_id.encode() in cmdline:
                rollup = (proc / "smaps_rollup").read_text()
                return next(int(line.split()[1]) * 1024 for line in rollup.splitlines() if line.startswith("Pss:"))
        except (OSError, StopIteration):
            continue
    return 0


def memory_per_episode(k: int = 8) -> tuple[float, float]:
    """Median MiB per live sandbox: the container's own memory (its cgroup: the executor, its shell, page cache),
    and its containerd shim's share of the host's memory."""
    boxes = [DockerSandbox(labels={"riskgym.run": "bench"}) for _ in range(k)]
    with ThreadPoolExecutor(k) as pool:
        list(pool.map(lambda b: b.start(), boxes))
    try:
        for b in boxes:
            b.exec("true")  # the executor's shell server is up, as in an episode
        client = docker_client()
        usage = [client.api.stats(b.container.id, stream=False)["memory_stats"].get("usage", 0) for b in boxes]
        shims = [shim_pss(b.container.id) for b in boxes]
        return statistics.median(usage) / 2**20, statistics.median(shims) / 2**20
    finally:
        with ThreadPoolExecutor(k) as pool:
            list(pool.map(lambda b: b.close(), boxes))


def main() -> int:
    resets = reset_ms()
    med = statistics.median(resets)
    print(f"in-place reset (kill everything, empty the writable paths, new terminal): median {med:.1f} ms, p95 "
          f"{sorted(resets)[int(len(resets) * 0.95)]:.1f} ms ({len(resets)} resets; re-creating a container: "
          f"~{PERF_RECREATE_MS:.0f} ms in PERF.md)")
    record("episode reset from the pool (in place), median", med, "ms", GOAL_RESET_MS, "goal")
    with tempfile.TemporaryDirectory() as tmp:
        scenario = Path(tmp) / "bench-true-v0.toml"
        scenario.write_text(SCENARIO)
        cold = cold_episode_ms(scenario)
        print(f"a cold single-step episode (new container, no pool): {cold:.0f} ms")
        record("a cold single-step episode (new container)", cold, "ms")
        episodes_per_second(scenario, Path(tmp) / "warm-up", 1, 2)
        rates = {}
        for c in (1, 2, 4, 8):
            n = 20 + 5 * c
            rates[c] = episodes_per_second(scenario, Path(tmp) / f"c{c}", c, n)
            print(f"concurrency {c}: {rates[c]:.1f} single-step episodes/s ({n} episodes, pool warm-up included)")
            record(f"single-step episodes/s, concurrency {c}", rates[c], "/s", GOAL_EPS, "goal", False)
    per_episode = 1000 / rates[1]
    print(f"a single-step episode from the pool, concurrency 1: {per_episode:.0f} ms")
    record("a single-step episode from the pool", per_episode, "ms")
    inside, shim = memory_per_episode()
    print(f"memory per live episode: {inside:.1f} MiB in its container (executor, shell, page cache) + "
          f"{shim:.1f} MiB for its containerd shim = {inside + shim:.1f} MiB")
    record("memory per live episode (container + shim)", inside + shim, "MiB", 3.5, "PERF.md idle container")
    best = max(rates.values())
    print(f"\n{'meets' if best >= GOAL_EPS else 'MISSES'} the goal of >= {GOAL_EPS:.0f} episodes/s: best "
          f"{best:.1f}/s ({best / GOAL_EPS:.2f}x the goal); reset {med:.1f} ms ({med / GOAL_RESET_MS:.2f}x the "
          f"{GOAL_RESET_MS:.0f} ms goal, {med / PERF_RECREATE_MS:.2f}x PERF.md's re-creation)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
