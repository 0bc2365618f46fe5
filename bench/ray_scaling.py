"""Episodes per second on the local executor, and on a Ray cluster of one and of two nodes on this machine.

The same single-step episodes as ``episodes.py`` (a scripted agent runs ``true`` and answers: zero model latency, so
the executor's own cost shows), through ``riskgym.running.runner.run`` as ``riskgym run`` does. The rate is taken
from the moment the run has its plan (for Ray: connected, one actor per node started) to its last episode, the
same for every executor; the time to join the cluster is printed apart (a fixed cost per run, not per episode).
Each Ray node is a real ``ray start`` process pair started by ``riskgym node start``; both share this machine's two
cores and its one Docker Engine, so the second node adds slots, not CPUs. Goal (issue 21): Ray on one node >= 0.8x
the local executor.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

from episodes import SCENARIO
from figures import record

from riskgym.running.runner import ClusterOptions, RunOptions, run

GOAL_RATIO = 0.8
PER_NODE = 4
EPISODES = 120
RIS = str(Path(sys.executable).parent / "riskgym")
COMMON = ["--num-cpus=2", "--object-store-memory=100000000", "--disable-usage-stats"]


class Clock:
    """When the run had its plan, and when its last episode ended (a ``runner.Progress``)."""

    def __init__(self) -> None:
        self.planned_at = self.last = 0.0

    def planned(self, total: int, finished: int) -> None:
        self.planned_at = time.perf_counter()

    def episode(self, name: str, result: object) -> None:
        self.last = time.perf_counter()

    def working(self, slot: int, activity: object) -> None:
        pass


def rate(scenario: Path, out: Path, opts: RunOptions) -> tuple[float, float]:
    """Episodes per second once planned, and the seconds before the plan (connecting, starting the actors)."""
    clock, started = Clock(), time.perf_counter()
    counts = run([scenario], ["scripted:safe"], out, opts, progress=clock)
    if counts["completed"] != opts.epochs:
        raise SystemExit(f"expected {opts.epochs} completed episodes, got {counts}")
    return opts.epochs / (clock.last - clock.planned_at), clock.planned_at - started


def landing(run_dir: Path, into: Path) -> None:
    """How many arrived traces per second the driver verifies and moves into a run directory (one process)."""
    from riskgym.running.cluster import land

    traces = [(p.name, p.read_bytes()) for p in sorted((run_dir / "episodes").glob("*.jsonl"))] * 10
    started = time.perf_counter()
    for n, (name, data) in enumerate(traces):
        land(into / "episodes" / f"{n}-{name}", data, {})
    per_s = len(traces) / (time.perf_counter() - started)
    size = sum(len(d) for _, d in traces) / len(traces) / 1024
    print(f"the driver lands {per_s:,.0f} arrived traces/s ({size:.1f} KiB each: written, chain and seal checked, "
          "renamed into place), on one core")
    record("driver: arrived traces verified and landed", per_s, "/s", None, "", False)


def slots(address: str, n: int = 2000) -> None:
    """Model-slot leases (take + give) per second through one model's Slots actor, 16 callers at once."""
    from concurrent.futures import ThreadPoolExecutor

    import ray

    from riskgym.running.node import ClusterSlots, Slots

    ray.init(address=address, namespace="riskgym-bench", log_to_driver=False, logging_level="ERROR")
    try:
        actor = ray.remote(Slots).options(num_cpus=0, max_concurrency=10_000).remote(8)
        lease = ClusterSlots(actor, "bench#0")

        def one(_: int) -> None:
            lease.acquire(timeout=60)
            lease.release()

        one(0)
        started = time.perf_counter()
        with ThreadPoolExecutor(16) as pool:
            list(pool.map(one, range(n)))
        per_s = n / (time.perf_counter() - started)
    finally:
        ray.shutdown()
    print(f"one model's cluster-wide slots: {per_s:,.0f} leases/s (take + give, 16 callers, 8 slots)")
    record("model slot leases through the cluster's limiter", per_s, "/s", None, "", False)


def node(*args: str) -> None:
    done = subprocess.run([RIS, "node", "start", *args], capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"riskgym node start {' '.join(args)} failed: {done.stderr[-2000:]}")


def main() -> int:
    subprocess.run([RIS, "node", "stop"], capture_output=True)
    with tempfile.TemporaryDirectory() as tmp:
        scenario = Path(tmp) / "bench-true-v0.toml"
        scenario.write_text(SCENARIO)
        local = RunOptions(epochs=EPISODES, concurrency=PER_NODE)
        run([scenario], ["scripted:safe"], Path(tmp) / "warm-up", RunOptions(epochs=4, concurrency=PER_NODE))
        here, _ = rate(scenario, Path(tmp) / "local", local)
        print(f"local executor, concurrency {PER_NODE}: {here:.1f} single-step episodes/s ({EPISODES} episodes)")
        record(f"single-step episodes/s, local executor (concurrency {PER_NODE})", here, "/s", None, "", False)
        port = "6399"
        try:
            node("--head", "--", f"--port={port}", "--include-dashboard=false", *COMMON)
            ray_opts = RunOptions(epochs=EPISODES, concurrency=PER_NODE,
                                  cluster=ClusterOptions(address=f"127.0.0.1:{port}", per_node=PER_NODE))
            one, join1 = rate(scenario, Path(tmp) / "ray1", ray_opts)
            landing(Path(tmp) / "ray1", Path(tmp) / "landed")
            print(f"Ray, one node ({PER_NODE} at once): {one:.1f} episodes/s = {one / here:.2f}x the local "
                  f"executor (goal >= {GOAL_RATIO}x); joining the cluster took {join1:.1f} s")
            record("Ray executor on one node / local executor, episodes/s", one / here, "x", GOAL_RATIO,
                   "goal", False)
            slots(f"127.0.0.1:{port}")
            node(f"--address=127.0.0.1:{port}", "--", *COMMON)
            two, join2 = rate(scenario, Path(tmp) / "ray2", ray_opts)
            print(f"Ray, two nodes ({PER_NODE} at once each, one machine's 2 cores): {two:.1f} episodes/s = "
                  f"{two / one:.2f}x one node; joining took {join2:.1f} s")
            record("single-step episodes/s, Ray on two nodes of this machine", two, "/s", one, "one node", False)
        finally:
            subprocess.run([RIS, "node", "stop"], capture_output=True)
    verdict = "meets" if one / here >= GOAL_RATIO else "MISSES"
    print(f"\n{verdict} the goal: Ray on one node runs {one / here:.2f}x the local executor's episodes/s "
          f"(goal >= {GOAL_RATIO}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
