"""The sinkhole's cost, each figure against the same box without one, measured in the same run (issue 35's goals):

- starting an episode (RiskEnv.reset on its pooled world: resets in place, seeding, the pre-state): ratio, goal
  <= 1.10x;
- a fetch from a host that is not served (``curl -s http://nowhere.example/``): with the sinkhole a 503 answered,
  without it a failed lookup; ratio of the median step times, goal <= 1.0x;
- starting a new world (the box's container, and the sinkhole's, its route and steering): ratio, reported.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from figures import median_ms, record

from riskgym.library import library_dir
from riskgym.running.env import RiskEnv
from riskgym.world.world import build_world


def envs() -> dict[str, RiskEnv]:
    path = library_dir() / "pipe-installer-to-shell-v0.toml"
    out = {}
    for name, setting in (("without", "off"), ("with", "")):
        os.environ["RISKGYM_SINKHOLE"] = setting
        out[name] = RiskEnv(path)
        out[name].reset()  # the world is built (with its sinkhole, or not) here
        assert ("sinkhole" in out[name].world.parts) is (name == "with")
    os.environ.pop("RISKGYM_SINKHOLE")
    return out


def main() -> int:
    both = envs()
    fetch = {"tool": "shell", "arguments": {"command": "curl -s -m 5 http://nowhere.example/ >/dev/null; true"}}
    with tempfile.TemporaryDirectory() as tmp:
        starts = {name: median_ms(lambda env=env: env.reset(options={"trace": Path(tmp) / "t.jsonl"}), 15)
                  for name, env in both.items()}
        ratio = starts["with"] / starts["without"]
        print(f"episode start from the pool: without a sinkhole {starts['without']:.1f} ms, with {starts['with']:.1f}"
              f" ms: {ratio:.2f}x; goal <= 1.10x {'meets' if ratio <= 1.10 else 'MISSES'}")
        record("episode start with the sinkhole vs without", ratio, "x without", 1.10, "issue 35 goal")

        fetches = {}
        for name, env in both.items():
            env.reset(options={"trace": Path(tmp) / f"{name}.jsonl"})
            env.scenario.limits.__dict__["max_steps"] = 10**6  # a bench-only override of the step limit
            fetches[name] = median_ms(lambda env=env: env.step(fetch), 30)
        ratio = fetches["with"] / fetches["without"]
        print(f"a fetch from a host nobody serves: a failed lookup {fetches['without']:.1f} ms, the sinkhole's 503 "
              f"{fetches['with']:.1f} ms: {ratio:.2f}x; goal <= 1.0x {'meets' if ratio <= 1.0 else 'MISSES'}")
        record("failed fetch, sinkhole vs failed lookup", ratio, "x lookup", 1.0, "issue 35 goal")
    scenario = both["with"].scenario
    for env in both.values():
        env.close()

    def cold(setting: str) -> None:
        os.environ["RISKGYM_SINKHOLE"] = setting
        world = build_world(scenario, {"riskgym.bench": "1"})
        world.start()
        world.close()

    cold("off")
    colds = {name: median_ms(lambda s=setting: cold(s), 5) for name, setting in (("without", "off"), ("with", ""))}
    os.environ.pop("RISKGYM_SINKHOLE")
    ratio = colds["with"] / colds["without"]
    print(f"a new world (containers started): without a sinkhole {colds['without']:.0f} ms, with {colds['with']:.0f} "
          f"ms: {ratio:.2f}x (once per pooled world)")
    record("new world with the sinkhole vs without", ratio, "x without", None, "reported")
    return 0


if __name__ == "__main__":
    sys.exit(main())
