"""What runs on each Docker node of a Ray cluster: the node's warm pool, its episodes, and the model limiters.

The driver (:mod:`riskgym.running.cluster`) makes one :class:`Node` actor per node that has a Docker Engine (the
``riskgym_docker`` resource, which ``riskgym node start`` gives it). The actor keeps a :class:`WorldPool` as a
local run does, plays each episode it is sent into a trace in its own scratch folder, and sends the trace back
whole; it never writes the run directory. This module is imported only inside Ray's workers and by the driver of a
``--executor ray`` run.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import threading
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import riskgym
from riskgym.core.scenario import Scenario
from riskgym.running.agent import Activity, EpisodeResult
from riskgym.world.kind import sandbox_kind

RESOURCE = "riskgym_docker"
"""The custom resource of a node that has a Docker Engine (and riskgym's images): episodes go only there."""


def ray_defaults() -> None:
    """The settings of every Ray process riskgym starts or connects, where the user did not set them.

    No usage statistics (riskgym sends nothing anywhere unasked). Token authentication only when asked
    (``RAY_AUTH_MODE=token``): otherwise Ray turns it on for a process that finds a token in ``~/.ray`` (one that an
    earlier cluster of this machine alone left) and not for one that does not, and the nodes then refuse each other.
    """
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")


SLOTS_PREFIX = "riskgym-slots:"
"""Named actors that hold a model's concurrency slots for the whole cluster: ``riskgym-slots:<run>:<model>``."""


class Slots:
    """A model's concurrency slots, shared by every node (an asyncio Ray actor, one per model and run).

    A caller waits inside ``take`` until a slot is free (no polling, however many episodes wait). Each lease is held
    in the name of a node's incarnation, so that the slots of an actor that died mid-call are freed when it comes
    back (or when the driver gives its node up), not lost.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self.held: Counter[str] = Counter()
        self._changed: Any = None

    def _condition(self) -> Any:
        import asyncio

        if self._changed is None:  # made in the actor's event loop
            self._changed = asyncio.Condition()
        return self._changed

    async def take(self, holder: str, timeout: float | None) -> bool:
        """One slot for ``holder``, waiting ``timeout`` seconds at most (None: as long as it takes)."""
        import asyncio

        changed = self._condition()
        async with changed:
            try:
                await asyncio.wait_for(changed.wait_for(lambda: sum(self.held.values()) < self.size), timeout)
            except asyncio.TimeoutError:
                return False
            self.held[holder] += 1
            return True

    async def give(self, holder: str) -> None:
        """Give one of ``holder``'s slots back."""
        changed = self._condition()
        async with changed:
            if self.held[holder] > 0:
                self.held[holder] -= 1
            changed.notify_all()

    async def forget(self, node: str, keep: str | None = None) -> int:
        """Free every slot a past incarnation of ``node`` held (all but ``keep``'s); how many were freed."""
        changed = self._condition()
        async with changed:
            stale = [h for h in self.held if h.split("#")[0] == node and h != keep]
            freed = sum(self.held.pop(h) for h in stale)
            changed.notify_all()
        return freed


class ClusterSlots:
    """A model's slots as ``llm_bounds.limiter`` uses them (``acquire(timeout=)``, ``release()``), held cluster-wide."""

    def __init__(self, actor: Any, holder: str) -> None:
        self.actor, self.holder = actor, holder

    def acquire(self, timeout: float | None = None) -> bool:
        """Wait for a slot, ``timeout`` seconds at most (None: as long as it takes)."""
        import ray

        return bool(ray.get(self.actor.take.remote(self.holder, timeout)))

    def release(self) -> None:
        """Give the slot back."""
        import ray

        ray.get(self.actor.give.remote(self.holder))


def slots_name(run_id: str, model: str, api_base: str) -> str:
    """The name of a model's :class:`Slots` actor in one run."""
    return f"{SLOTS_PREFIX}{run_id}:{model}|{api_base}"


def slots_of(run_id: str) -> list[Any]:
    """The :class:`Slots` actors of one run (one per model that has a concurrency)."""
    import ray

    return [ray.get_actor(name) for name in ray.util.list_named_actors()
            if name.startswith(f"{SLOTS_PREFIX}{run_id}:")]


class Node:
    """One node's share of a run (a threaded Ray actor): its warm pool, and the episodes the driver sends it.

    Args:
        run_id: the run's id (its containers' label).
        scenarios: the run's scenarios (for the emulator's settings).
        opts: the run's options.
        images: the images the run needs, with the recipe hash each must carry (the driver's).
        env: environment variables to set here (the models' API keys the driver has, by name).
    """

    def __init__(self, run_id: str, scenarios: list[Scenario], opts: Any, images: dict[str, str],
                 env: dict[str, str]) -> None:
        import ray

        from riskgym.running import llm_bounds
        from riskgym.running.options import default_concurrency, emulator_settings
        from riskgym.running.pool import WorldPool

        os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
        os.environ.update(env)
        self.run_id, self.images = run_id, images
        self.key = ray.get_runtime_context().get_node_id()
        self.holder = f"{self.key}#{uuid.uuid4().hex[:8]}"
        self.sandbox = opts.sandbox
        self.slots = opts.cluster.per_node or default_concurrency()
        if sandbox_kind(self.sandbox).containers:
            from riskgym.world.docker import prune

            prune(dead_only=True)  # what an earlier incarnation of this actor left, killed mid-episode
        self.stopping = threading.Event()
        self.scratch = Path(tempfile.mkdtemp(prefix="riskgym-node-"))
        self.pool = WorldPool(run_id, size=self.slots, sandbox=opts.sandbox,
                              emulator=emulator_settings(scenarios, opts))
        self.opts = opts
        for slots in slots_of(run_id):  # the slots that an earlier incarnation held
            ray.get(slots.forget.remote(self.key, self.holder))
        llm_bounds.slots_factory = self._slots

    def _slots(self, model: str, api_base: str, size: int) -> ClusterSlots:
        import ray

        actor = ray.remote(Slots).options(name=slots_name(self.run_id, model, api_base), get_if_exists=True,
                                          lifetime="detached", num_cpus=0,
                                          max_concurrency=10_000).remote(size)
        return ClusterSlots(actor, self.holder)

    def ready(self) -> dict[str, Any]:
        """What the driver needs to know of this node: its slots, where it is, and which images differ."""
        return {"slots": self.slots, "host": socket.gethostname(), "riskgym": riskgym.__version__,
                "differs": self._differing()}

    def _differing(self) -> dict[str, str | None]:
        """The images whose recipe here is not the driver's: tag -> the recipe here (None: not here)."""
        if not sandbox_kind(self.sandbox).containers:
            return {}
        from riskgym.world.images import image_recipe

        here = {tag: image_recipe(tag) for tag in self.images}
        return {tag: recipe for tag, recipe in here.items() if recipe != self.images[tag]}

    def load_images(self, archive: bytes) -> dict[str, str | None]:
        """Load the images the driver shipped (``docker save``'s archive); the images that still differ."""
        from riskgym.world.docker import docker_client

        docker_client().images.load(archive)
        return self._differing()

    def stop(self) -> None:
        """Ask the episodes in flight to stop after their current step (they end "interrupted")."""
        self.stopping.set()

    def play(self, job: tuple[Scenario, str, int]) -> tuple[EpisodeResult | None, bytes | None, dict[str, bytes]]:
        """Play one episode; return its result (None: interrupted), its trace (None: nothing recorded), its images.

        The trace is written in this node's scratch folder and sent back whole; the driver verifies it and moves
        it into the run directory, so a trace cut short by a crash here never reaches the run.
        """
        from riskgym.rundir import episode_path
        from riskgym.running.playing import play

        folder = Path(tempfile.mkdtemp(dir=self.scratch))
        trace = episode_path(folder, *job)
        sc, agent, epoch = job
        try:
            result: EpisodeResult | None = play(job, trace, self.run_id, self.opts, self.stopping.is_set,
                                                self.pool, Activity(f"{sc.id} {agent} e{epoch}"))
        except KeyboardInterrupt:
            result = None
        try:
            data = trace.read_bytes() if trace.is_file() else None
            blobs = {p.name: p.read_bytes() for p in sorted((trace.parent / "blobs").glob("*"))}
            return result, data, blobs
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def close(self) -> dict[str, int]:
        """End the pool (every container of this run on this node) and the scratch folder; the pool's counts."""
        self.stopping.set()
        self.pool.close()
        shutil.rmtree(self.scratch, ignore_errors=True)
        return dict(self.pool.stats)
