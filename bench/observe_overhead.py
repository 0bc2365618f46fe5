"""The observer's cost: the same steps with no observer, the host observer (BPF programs, from the host) and the in-box
fallback (strace), in one run.

Each command runs through ``RiskEnv.step`` (trace written) in its own box per mode, in rounds (none, host, in-box,
twice), with the observer stopped for the unobserved rounds (once running, its tracepoints cost every process on the
machine something). The figure is each mode's median against the unobserved median. Goals (issue 34): the host
observer <= 1.2x on a plain step, <= 1.5x on a heavy one (``tar`` of a 10 MB tree, ``find / -xdev``), and an
observed env step of a plain command <= 3 ms.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from figures import record

from riskgym.library import library_dir
from riskgym.running.env import RiskEnv
from riskgym.world.kernel import observer as kernel

CASES = [  # (name, command, repeats per round, goal for the host observer)
    ("plain: true", "true", 80, 1.2),
    ("plain: echo (a shell builtin)", "echo hi", 80, 1.2),
    ("plain: ls -la ~ (a program)", "ls -la ~", 60, 1.2),
    ("heavy: tar of a 10 MB tree", "tar cf /tmp/t.tar -C /tmp tree", 6, 1.5),
    ("heavy: find / -xdev", "find / -xdev >/dev/null 2>&1", 6, 1.5),
]
MODES = ("none", "kernel", "strace")
ROUNDS = 2


def one_round(mode: str, times: dict[tuple[str, str], list[float]]) -> str:
    os.environ["RISKGYM_OBSERVE"] = "0" if mode == "none" else "1"
    os.environ["RISKGYM_OBSERVER"] = "strace" if mode == "strace" else ""
    if mode == "none":
        kernel.stop_shared()
    env = RiskEnv(library_dir() / "free-disk-space-v0.toml")
    with tempfile.TemporaryDirectory() as tmp:
        env.reset(options={"trace": Path(tmp) / "t.jsonl"})
        env.scenario.limits.__dict__["max_steps"] = 10**6  # a bench-only override of the step limit
        env.sandbox.exec(["bash", "-c", "mkdir -p /tmp/tree && for i in $(seq 1000); do head -c 10240 /dev/urandom "
                         "> /tmp/tree/f$i; done"])
        observer = getattr(env.sandbox, "observer", "?")
        for name, command, n, _ in CASES:
            action = {"tool": "shell", "arguments": {"command": command}}
            env.step(action)  # warm-up: the shell server starts
            for _ in range(n):
                t = time.perf_counter()
                env.step(action)
                times[mode, name].append((time.perf_counter() - t) * 1000)
        env.close()
    return str(observer)


def main() -> int:
    if kernel.why_not():
        print(f"the host observer cannot run here ({kernel.why_not()}): run the bench as root (make setup)")
        return 2
    times: dict[tuple[str, str], list[float]] = {(m, c[0]): [] for m in MODES for c in CASES}
    for _ in range(ROUNDS):
        for mode in MODES:
            ran = one_round(mode, times)
            if ran != mode:
                print(f"the {mode} round ran with observer {ran!r}: not a fair figure")
                return 1
    print(f"{'env step (ms, median)':<32} {'none':>7} {'host':>7} {'ratio':>6} {'in-box':>7} {'ratio':>6}  goal (host)")
    for name, _, _, goal in CASES:
        base, host, inbox = (statistics.median(times[m, name]) for m in MODES)
        verdict = "meets" if host / base <= goal else "MISSES"
        print(f"{name:<32} {base:7.2f} {host:7.2f} {host / base:5.2f}x {inbox:7.2f} {inbox / base:5.2f}x  "
              f"<= {goal}x {verdict}")
        record(f"host observer, {name}", host / base, "x unobserved", goal, "issue 34 goal")
        record(f"in-box observer (fallback), {name}", inbox / base, "x unobserved", None, "for comparison")
    step = statistics.median(times["kernel", CASES[0][0]])
    print(f"observed env step of `true` (host observer): {step:.2f} ms (goal <= 3 ms) "
          f"{'meets' if step <= 3 else 'MISSES'}")
    record("observed env step, host observer", step, "ms", 3.0, "issue 34 goal")
    return 0


if __name__ == "__main__":
    sys.exit(main())
