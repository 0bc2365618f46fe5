"""The agent loop: a model acts in a RiskEnv until it answers or hits a limit; the env records the trace."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Literal

from riskgym.environments.risk_env import RiskEnv
from riskgym.errors import RiskgymError
from riskgym.models import Model

Status = Literal["completed", "truncated", "error"]


def run_episode(env: RiskEnv, model: Model, *, trace: str | Path | None = None, seed: int | None = None,
                epoch: int = 0, should_stop: Callable[[], bool] = lambda: False) -> Status:
    """Run one episode and return how it ended.

    A sandbox that breaks mid-episode ends the episode with status "error" (recorded in the trace). When
    ``should_stop()`` turns true (the user pressed Ctrl-C), the episode is recorded as interrupted after the
    current step and KeyboardInterrupt is raised.
    """
    obs, info = env.reset(seed=seed, options={"trace": str(trace) if trace else None, "agent": model.name,
                                              "epoch": epoch})
    model.reset()
    tools = info["tools"]
    try:
        while True:
            action = model.act(obs, tools)
            obs, _, terminated, truncated, info = env.step(action)
            if should_stop() and not (terminated or truncated):
                env.end_episode("interrupted", "stopped by the user")
                raise KeyboardInterrupt
            if terminated:
                return "completed"
            if truncated:
                return "truncated"
    except RiskgymError as exc:
        env.end_episode("error", str(exc))
        return "error"
    finally:
        env.close()
