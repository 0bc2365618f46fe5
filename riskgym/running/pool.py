"""A warm pool of worlds: started ahead of the episodes that need them, and reused.

A world whose parts can all be reset in place (a box with a read-only root and tmpfs at the writable paths) goes back
to the pool after its episode, reset in place (PERF.md's recipe: ~20 ms instead of ~500 ms for a new container); one
that cannot is removed in the background and, when the pool refills, a fresh one started ahead for the next episode.
Worlds are kept by :func:`riskgym.core.scenario.world_key`, at most ``size`` idle ones per key, so memory stays
bounded (~13 MiB a box). ``riskgym run`` shares one pool among its episodes; a ``RiskEnv`` made alone has its own.
"""

from __future__ import annotations

import threading
from collections import Counter, defaultdict
from typing import Any

from riskgym.core.scenario import Scenario, world_key
from riskgym.errors import SandboxError
from riskgym.world.emulator.emulator import EmulatorSettings
from riskgym.world.kind import sandbox_kind
from riskgym.world.world import World, build_world


class WorldPool:
    """Warm, reusable worlds. ``take(scenario)`` leases one, ``give_back(world)`` returns it; ``close()`` ends all."""

    def __init__(self, run_id: str = "", size: int = 4, sandbox: str = "docker", refill: bool = True,
                 emulator: EmulatorSettings | None = None) -> None:
        self.size = max(1, size)
        self.emulator = emulator
        """The run's emulator settings, for the parts that emulate."""
        self.sandbox = sandbox
        """The box's implementation: a name in ``riskgym.world.kind.SANDBOXES``."""
        self.refill = refill
        """Start a fresh world ahead when one that cannot be reset comes back."""
        self.labels = {"riskgym.run": run_id, "riskgym.pool": "1"}
        self._idle: dict[str, list[World]] = defaultdict(list)
        self._scenarios: dict[str, Scenario] = {}
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._closed = False
        self.stats: Counter[str] = Counter()
        """started, warm (leased ready), cold (started on demand), reset (in place), removed."""

    def _new(self, scenario: Scenario) -> World:
        """Start a world; if that fails, once more when the engine answers again within 60 s (a restart)."""
        try:
            return self._start(scenario)
        except SandboxError:
            if not sandbox_kind(self.sandbox).containers:
                raise
            from riskgym.world.docker import engine_answers

            if not engine_answers(within=60):
                raise
            return self._start(scenario)

    def _start(self, scenario: Scenario) -> World:
        if self._closed:
            raise SandboxError("the run is stopping: no new sandbox")
        world = build_world(scenario, self.labels, self.sandbox, self.emulator)
        self.stats["started"] += 1
        world.start()
        if self._closed:  # closed while this one started: it must not outlive the pool
            world.close()
            raise SandboxError("the run is stopping: no new sandbox")
        return world

    def _background(self, fn: Any, *args: Any) -> None:
        thread = threading.Thread(target=fn, args=args, daemon=True)
        with self._lock:  # started under the lock: close() joins every thread not yet finished
            self._threads = [t for t in self._threads if t.is_alive()] + [thread]
            thread.start()

    def warm(self, scenario: Scenario, n: int = 1) -> None:
        """Start ``n`` worlds for this scenario in the background, up to the pool's size."""
        key = world_key(scenario)
        with self._lock:
            self._scenarios.setdefault(key, scenario)
            n = min(n, self.size - len(self._idle[key]))
        for _ in range(max(0, n)):
            self._background(self._add, scenario)

    def _add(self, scenario: Scenario) -> None:
        try:
            world = self._new(scenario)
        except SandboxError:
            return  # the episode that needs one will start it, and report why it cannot
        self._keep(world)

    def _keep(self, world: World) -> None:
        with self._lock:
            if not self._closed and len(self._idle[world.key]) < self.size:
                self._idle[world.key].append(world)
                return
        world.close()
        self.stats["removed"] += 1

    def take(self, scenario: Scenario) -> World:
        """A started, clean world for this scenario: a warm one if there is one, else a new one."""
        key = world_key(scenario)
        while True:
            with self._lock:
                self._scenarios.setdefault(key, scenario)
                world = self._idle[key].pop() if self._idle[key] else None
            if world is None or world.alive():
                break
            self._background(world.close)  # it died while idle (the engine restarted, someone removed it)
            self.stats["removed"] += 1
        self.stats["warm" if world else "cold"] += 1
        return world or self._new(scenario)

    def give_back(self, world: World) -> None:
        """After an episode: reset in place and keep it, or remove it (in the background) and start another."""
        if world.can_reset:
            try:
                world.reset()
            except SandboxError:
                self._background(world.close)
                self.stats["removed"] += 1
                return
            self.stats["reset"] += 1
            self._keep(world)
            return
        self._background(world.close)
        self.stats["removed"] += 1
        scenario = self._scenarios.get(world.key)
        if self.refill and scenario is not None:
            self.warm(scenario)

    def close(self) -> None:
        """Remove every idle world and wait for the background work. Safe to call twice."""
        with self._lock:
            self._closed = True
            worlds = [w for group in self._idle.values() for w in group]
            self._idle.clear()
            threads = list(self._threads)
        for thread in threads:
            thread.join(timeout=60)
        done = [threading.Thread(target=w.close) for w in worlds]
        for t in done:
            t.start()
        for t in done:
            t.join(timeout=60)
