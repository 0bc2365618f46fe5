"""riskgym's own overhead per emulated step, beyond the emulator model's latency, as a ratio to a real box step
(issue 18's goal: <= 2x).

The emulator model is the scripted OpenAI-compatible server on 127.0.0.1 (zero latency) through the real litellm
client; the model's latency is what each round records (litellm's call, HTTP included), and the overhead is the rest
of the step: the prompt built from the toolkits, the facts and the history, the reply parsed and checked against the
tool's returns, the facts checked for contradictions, the step and its emulation written to the trace. The box step
is ``shell true`` in a real Docker box, through the same env. Episodes of 20 steps, so the history grows as it does.
Beside it: an emulated step whose output comes from the cache.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from figures import record

from riskgym.core.scenario import Scenario
from riskgym.library import library_dir
from riskgym.running.env import RiskEnv
from riskgym.running.llm import LitellmModel
from riskgym.running.model import ModelConfig
from riskgym.running.scripted_server import ScriptedServer
from riskgym.world.emulator.cache import EmulatorCache
from riskgym.world.emulator.emulator import EmulatorSettings

STEPS = 20
EPISODES = 4

TODO = {"id": "bench-todo", "title": "t", "description": "d", "category": "c", "risk_source": "user",
        "severity": "low", "benign": True, "instruction": "Find my tasks.", "tools": ["TodoistSearchTasks"],
        "parts": [{"name": "emulator", "kind": "emulator", "toolkits": ["Todoist"]}],
        "limits": {"max_steps": 10**6}, "reference": {"safe": [{"final": "ok"}]}}
REPLY = json.dumps({"thought": "ok", "observation": {"tasks": [{"task_id": "t1", "task_name": "Write report"}]},
                    "facts": [{"op": "observe", "entity": "task:t1", "attributes": {"task_name": "Write report"}}]})


def emulated_steps(settings: EmulatorSettings, tmp: Path) -> tuple[list[float], list[float]]:
    """Per step: its wall time and the model's share of it (ms), over EPISODES episodes of STEPS steps."""
    env = RiskEnv(Scenario.model_validate(TODO), sandbox="fake", emulator=settings)
    walls, model = [], []
    for e in range(EPISODES):
        env.reset(options={"trace": tmp / f"e{e}.jsonl"})
        for n in range(STEPS):
            action = {"tool": "TodoistSearchTasks", "arguments": {"keywords": f"report {n}"}}
            t = time.perf_counter()
            _, _, _, _, info = env.step(action)
            walls.append((time.perf_counter() - t) * 1000)
            rounds = (info["event"].get("emulation") or {}).get("rounds", [])
            fresh = info["event"]["emulation"]["source"] == "model"
            model.append(sum(r["latency"] for r in rounds) * 1000 if fresh else 0.0)
    env.close()
    return walls, model


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp, ScriptedServer(lambda request: {"content": REPLY}) as server:
        config = ModelConfig(model="openai/emu", api_base=server.url, temperature=0, stream=False)  # as --emulator
        settings = EmulatorSettings(model=LitellmModel("openai/emu", config), cache=None)
        emulated_steps(settings, Path(tmp))  # warm: litellm's import and first connection
        walls, model = emulated_steps(settings, Path(tmp))
        overhead = statistics.median(w - m for w, m in zip(walls, model, strict=True))
        cache = EmulatorCache(Path(tmp) / "cache.sqlite")
        cached_settings = EmulatorSettings(model=settings.model, cache=cache)
        emulated_steps(cached_settings, Path(tmp))  # fills the cache
        cached, _ = emulated_steps(cached_settings, Path(tmp))

        box = RiskEnv(library_dir() / "free-disk-space-v0.toml")
        box.scenario.limits.__dict__["max_steps"] = 10**6  # a bench-only override of the step limit
        box.reset(options={"trace": Path(tmp) / "box.jsonl"})
        true = {"tool": "shell", "arguments": {"command": "true"}}
        box.step(true)
        times = []
        for _ in range(EPISODES * STEPS):
            t = time.perf_counter()
            box.step(true)
            times.append((time.perf_counter() - t) * 1000)
        box.close()
    real = statistics.median(times)
    ratio = overhead / real
    print(f"emulated step: {statistics.median(walls):.2f} ms median, of which the emulator model (litellm + HTTP to a "
          f"zero-latency server) {statistics.median(model):.2f} ms; riskgym's own overhead {overhead:.2f} ms")
    print(f"emulated step from the cache: {statistics.median(cached):.2f} ms median; a real box step (shell true): "
          f"{real:.2f} ms")
    print(f"overhead per emulated step / real box step: {ratio:.2f}x; goal <= 2x {'meets' if ratio <= 2 else 'MISSES'}")
    record("emulated step overhead vs a real box step", ratio, "x box step", 2.0, "issue 18 goal")
    return 0


if __name__ == "__main__":
    sys.exit(main())
