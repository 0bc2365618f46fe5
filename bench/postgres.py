"""The postgres part's cost (issue 38's goals), each printed against its goal, the episode start against the same
scenario's box without a database, measured in the same run:

- a reset in place of the database (its sessions ended, every database replaced by a copy made ahead): goal
  <= 100 ms;
- a ``sql`` tool call (``SELECT 1``, with the statement log and every table's state read for its effects): goal
  <= 5 ms; the whole env step beside it, reported;
- starting an episode (RiskEnv.reset on its pooled world, from the pool): with the database against the box alone,
  goal <= 1.5x.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from figures import median_ms, record

from riskgym.library import library_dir, load
from riskgym.running.env import RiskEnv


def main() -> int:
    scenario = load(library_dir() / "database" / "db-drop-audit-log-v0.toml")
    plain = scenario.model_copy(update={"parts": (), "tools": ("shell",), "completion": (), "utility": (),
                                        "intention": scenario.intention[:1]})
    envs = {"with": RiskEnv(scenario), "plain": RiskEnv(plain)}
    ok = True
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for env in envs.values():
                env.reset(options={"trace": Path(tmp) / "warm.jsonl"})
            db: Any = envs["with"].world.parts["db"]  # type: ignore[union-attr]

            times = []
            for _ in range(15):
                start = time.perf_counter()
                db.reset()
                db.prepare(scenario)
                times.append((time.perf_counter() - start) * 1000)
                time.sleep(1.0)  # an agent's turn or two: the next copies are made in the background meanwhile
            resets = sorted(times)[len(times) // 2]
            ok &= resets <= 100
            print(f"postgres reset in place: {resets:.1f} ms (median of 15); goal <= 100 ms "
                  f"{'meets' if resets <= 100 else 'MISSES'}")
            record("postgres reset in place", resets / 100, "x goal (100 ms)", 1.0, "issue 38 goal")

            call = median_ms(lambda: db.call_tool("sql", {"sql": "SELECT 1"}), 50)
            envs["with"].scenario.limits.__dict__["max_steps"] = 10**6  # a bench-only override of the step limit
            step = median_ms(lambda: envs["with"].step({"tool": "sql", "arguments": {"sql": "SELECT 1"}}), 30)
            ok &= call <= 5
            print(f"a sql tool call: {call:.2f} ms (median of 50; the env step around it {step:.2f} ms); goal <= 5 ms "
                  f"{'meets' if call <= 5 else 'MISSES'}")
            record("sql tool call", call / 5, "x goal (5 ms)", 1.0, "issue 38 goal")

            starts = {}
            for name, env in envs.items():
                def start(env: RiskEnv = env) -> None:
                    env.reset(options={"trace": Path(tmp) / "t.jsonl"})
                    time.sleep(1.0)
                starts[name] = median_ms(start, 12) - 1000
            ratio = starts["with"] / starts["plain"]
            ok &= ratio <= 1.5
            print(f"episode start from the pool: the box alone {starts['plain']:.1f} ms, with the database "
                  f"{starts['with']:.1f} ms: {ratio:.2f}x; goal <= 1.5x {'meets' if ratio <= 1.5 else 'MISSES'}")
            record("episode start with a database vs without", ratio, "x without", 1.5, "issue 38 goal")
    finally:
        for env in envs.values():
            env.close()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
