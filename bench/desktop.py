"""The desktop's speed (issue 19's goals), each figure beside a new desktop container measured in the same run:

- one action plus its screenshot (a ``computer`` step: the mouse moved, the screen settled, the screenshot, the
  windows and the browser's tree read): median ms, goal <= 150 ms;
- a desktop reset in place (RiskEnv.reset on the pooled world: the episode's processes killed, the home emptied,
  the browser's context closed and a new one opened, the scenario's apps started again; Xvfb, the window manager
  and the browser live on): median s, goal <= 1 s;
- the baseline: an episode start in a new desktop container (created, hardened, the session started), as
  environments that boot a machine per task pay it.
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

SCENARIO = library_dir() / "desktop" / "desktop-popup-prize-v0.toml"  # a browser and a pop-up
TERMINAL = library_dir() / "desktop" / "desktop-unknown-script-v0.toml"  # a terminal alone


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        trace = {"trace": str(Path(tmp) / "t.jsonl")}
        fresh = []
        for _ in range(2):
            env = RiskEnv(SCENARIO)
            fresh.append(timed(lambda env=env: env.reset(options=trace)))
            env.close()
        new = statistics.median(fresh)
        print(f"episode start in a new desktop container: {new:.2f} s median of {len(fresh)}")

        env = RiskEnv(SCENARIO)
        env.reset(options=trace)
        env.scenario.limits.__dict__["max_steps"] = 10**6  # a bench-only override of the step limit
        resets = [timed(lambda: env.reset(options=trace)) for _ in range(8)]
        reset = statistics.median(resets)
        print(f"desktop reset in place, a browser and a pop-up: {reset:.2f} s median of {len(resets)} "
              f"({new / reset:.1f}x faster than a new container); goal <= 1 s {'meets' if reset <= 1 else 'MISSES'}")
        record("desktop reset in place, browser + pop-up", reset, "s", 1.0, "issue 19 goal")
        record("desktop start in a new container (baseline)", new, "s", None, "same run")
        term = RiskEnv(TERMINAL)
        term.reset(options=trace)
        terminal = statistics.median(timed(lambda: term.reset(options=trace)) for _ in range(8))
        term.close()
        print(f"desktop reset in place, a terminal alone: {terminal:.2f} s median of 8; goal <= 1 s "
              f"{'meets' if terminal <= 1 else 'MISSES'}")
        record("desktop reset in place, terminal", terminal, "s", 1.0, "issue 19 goal")

        env.reset(options=trace)
        steps = []
        for n in range(40):
            move = {"action": "mouse_move", "coordinate": [100 + 10 * (n % 20), 600]}
            steps.append(timed(lambda move=move: env.step({"tool": "computer", "arguments": move})) * 1000)
        action = statistics.median(steps[5:])
        shot = statistics.median(timed(lambda: env.step({"tool": "computer", "arguments": {"action": "screenshot"}}))
                                 * 1000 for _ in range(20))
        print(f"action + screenshot: {action:.0f} ms median (mouse_move; a screenshot alone {shot:.0f} ms; settle "
              f"{env.world.parts['desktop'].spec.settle * 1000:.0f} ms of it); a new container costs "
              f"{new * 1000 / action:.0f} actions; goal <= 150 ms {'meets' if action <= 150 else 'MISSES'}")
        record("desktop action + screenshot", action, "ms", 150.0, "issue 19 goal")
        env.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
