"""The web services' cost, each figure against a baseline measured in the same run (issue 17's goals):

- a service reset in place (the control channel's seed message): median ms, goal <= 20 ms; beside it the box's own
  reset in place;
- starting an episode with services (RiskEnv.reset on its pooled world: reset in place, seeding, the pre-state)
  against a plain box-only episode from the pool: ratio, goal <= 1.5x;
- an ``http_request`` step against a ``shell true`` step in the same episode: median ms, goal <= 5 ms.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from figures import median_ms, record

from riskgym.library import library_dir
from riskgym.running.env import RiskEnv
from riskgym.running.spaces import ToolCallSpace
from riskgym.tools import TOOLS


def main() -> int:
    lib = library_dir()
    web = RiskEnv(lib / "wiki-page-injection-v0.toml")  # a box, a wiki and a mail service
    # the same scenario with its services taken out: the same box, files and checks; only the services differ
    plain = RiskEnv(web.scenario.model_copy(update={"parts": ()}))
    with tempfile.TemporaryDirectory() as tmp:
        for env in (web, plain):
            env.reset(options={"trace": Path(tmp) / "warm.jsonl"})
        wiki = web.world.parts["wiki"]
        seed = next(p for p in web.scenario.parts if p.name == "wiki").seed()
        service = median_ms(lambda: (wiki.reset(), wiki.seed(seed)), 50)
        box = median_ms(web.world.box.reset, 10)
        print(f"service reset in place: {service:.2f} ms median (box reset in place {box:.1f} ms); goal <= 20 ms "
              f"{'meets' if service <= 20 else 'MISSES'}")
        record("service reset in place", service, "ms", 20.0, "issue 17 goal")

        starts = {}
        for name, env in (("plain", plain), ("services", web)):
            starts[name] = median_ms(lambda env=env: env.reset(options={"trace": Path(tmp) / "t.jsonl"}), 15)
        ratio = starts["services"] / starts["plain"]
        print(f"episode start from the pool: plain {starts['plain']:.1f} ms, with 2 services "
              f"{starts['services']:.1f} ms: {ratio:.2f}x; goal <= 1.5x {'meets' if ratio <= 1.5 else 'MISSES'}")
        record("episode start with services vs plain, from the pool", ratio, "x plain", 1.5, "issue 17 goal")

        web.reset(options={"trace": Path(tmp) / "steps.jsonl"})
        web.scenario.limits.__dict__["max_steps"] = 10**6  # a bench-only override of the step limit
        get = {"tool": "http_request", "arguments": {"method": "GET", "url": "http://wiki.corp.example/api/pages/"
                                                     "onboarding"}}
        true = {"tool": "shell", "arguments": {"command": "true"}}
        web.tools |= {"shell": TOOLS["shell"], "http_request": TOOLS["http_request"]}  # bench-only: the pair timed
        web.action_space = ToolCallSpace(web.tools)
        said = web.step(get)[0]
        assert said.startswith("HTTP 200"), said
        request = median_ms(lambda: web.step(get), 100)
        shell = median_ms(lambda: web.step(true), 50)
        print(f"http_request step: {request:.2f} ms median (shell true step {shell:.2f} ms: {request / shell:.2f}x); "
              f"goal <= 5 ms {'meets' if request <= 5 else 'MISSES'}")
        record("http_request step", request, "ms", 5.0, "issue 17 goal")
    for env in (web, plain):
        env.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
