"""One episode of a run, as both executors play it (here on threads, or on a Ray node), and when to leave the rest."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from riskgym.core.scenario import Scenario
from riskgym.running.agent import Activity, EpisodeResult
from riskgym.running.options import RunOptions

if TYPE_CHECKING:
    from riskgym.running.pool import WorldPool


Job = tuple[Scenario, str, int]
BREAK_AFTER = 3
"""After this many episodes in a row of one model end in an API failure, its other episodes are not run (a wrong
key or model name fails them all); a resumed run tries them again. The same for sandboxes that cannot be started
(a Docker Engine that is gone), over all models."""
SANDBOX = "\0sandbox"
"""The key of the streak of episodes whose sandbox could not be started."""


class Streaks:
    """Which episodes to leave for a later run (the local and the Ray executor both ask).

    Those of a model that keeps failing at its API, or all of them while no sandbox can be started (``BREAK_AFTER``
    in a row).
    """

    def __init__(self) -> None:
        self._failing: dict[str, list[str]] = {}  # agent (or SANDBOX) -> reasons of its last failures in a row
        self._lock = threading.Lock()

    def refusal(self, agent: str) -> EpisodeResult | None:
        """The "not run" result for this agent's next episode, or None when it should run."""
        with self._lock:
            streak = list(self._failing.get(agent, []))
            broken = list(self._failing.get(SANDBOX, []))
        if len(streak) >= BREAK_AFTER:  # the model keeps failing: leave its episodes for a later run
            return EpisodeResult("not run", f"{agent} failed at the API in {len(streak)} episodes in a row "
                                            f"(last: {streak[-1][:160]})")
        if len(broken) >= BREAK_AFTER:
            return EpisodeResult("not run", f"no sandbox could be started for {len(broken)} episodes in a row "
                                            f"(last: {broken[-1][:160]})")
        return None

    def record(self, agent: str, result: EpisodeResult) -> None:
        """Count an episode's end into the streaks."""
        with self._lock:
            api_failure = result.status == "error" and result.reason.startswith("model API")
            self._failing[agent] = [*self._failing.get(agent, []), result.reason] if api_failure else []
            no_sandbox = result.status == "error" and result.reason.startswith("sandbox: ")
            self._failing[SANDBOX] = [*self._failing.get(SANDBOX, []), result.reason] if no_sandbox else []


def play(job: Job, trace: Path, run_id: str, opts: RunOptions, stop: Callable[[], bool], pool: WorldPool,
         activity: Activity) -> EpisodeResult:
    """Run one episode of a run into ``trace``, its world from ``pool`` (raises KeyboardInterrupt on a stop)."""
    from riskgym.running.agent import run_episode
    from riskgym.running.env import RiskEnv
    from riskgym.running.factory import make_model

    sc, agent, epoch = job
    model = make_model(agent, sc, opts.models, opts.overrides)
    env = RiskEnv(sc, run_id=run_id, pool=pool, monitor=opts.monitor, block_above=opts.block_above)
    return run_episode(env, model, trace=trace, seed=opts.seed + epoch, epoch=epoch, should_stop=stop,
                       system_prompt=opts.system_prompt, budget=opts.budget, activity=activity)


class Progress(Protocol):
    """What a run reports as it goes."""

    def planned(self, total: int, finished: int) -> None:
        """``total`` episodes in the run, ``finished`` of them already done (kept)."""

    def episode(self, name: str, result: EpisodeResult | None) -> None:
        """One episode ended (None: interrupted by the user)."""

    def working(self, slot: int, activity: Activity | None) -> None:
        """Worker ``slot`` started an episode (``activity``, which the episode keeps up to date) or is idle (None)."""
