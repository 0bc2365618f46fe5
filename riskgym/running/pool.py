"""A warm pool of sandboxes for a run: containers started ahead of the episodes that need them, and reused.

An in-place sandbox (read-only root, tmpfs at the writable paths) goes back to the pool after its episode, reset
in place (PERF.md's recipe: ~20 ms instead of ~500 ms for a new container); one with a writable root is removed
in the background and a fresh one started ahead for the next episode. The pool holds at most ``size`` idle
containers per kind (image, network, writable paths), so its memory stays bounded: ~13 MiB each.
"""

from __future__ import annotations

import threading
from collections import Counter, defaultdict
from typing import Any

from riskgym.errors import SandboxError
from riskgym.world.base import ExecResult, Sandbox, Snapshot
from riskgym.world.docker import DockerSandbox, engine_answers

Key = tuple[str, bool, "tuple[str, ...] | None"]


def key_of(scenario: Any) -> Key:
    """The kind of sandbox a scenario needs: its image, network, and writable paths (None: a writable root)."""
    spec = scenario.sandbox
    return spec.image, spec.network, spec.writable if spec.in_place else None


class SandboxPool:
    """Warm, reusable sandboxes. ``pool.factory`` is a ``RiskEnv`` sandbox factory; ``close()`` removes them all."""

    def __init__(self, run_id: str = "", size: int = 4) -> None:
        self.size = max(1, size)
        self.labels = {"riskgym.run": run_id, "riskgym.pool": "1"}
        self._idle: dict[Key, list[DockerSandbox]] = defaultdict(list)
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._closed = False
        self.stats: Counter[str] = Counter()
        """started, warm (leased ready), cold (started on demand), reset (in place), removed."""

    def _new(self, key: Key) -> DockerSandbox:
        """Start a sandbox; if that fails, once more when the engine answers again within 60 s (a restart)."""
        try:
            return self._start(key)
        except SandboxError:
            if not engine_answers(within=60):
                raise
            return self._start(key)

    def _start(self, key: Key) -> DockerSandbox:
        if self._closed:
            raise SandboxError("the run is stopping: no new sandbox")
        image, network, writable = key
        box = DockerSandbox(image, network=network, labels=self.labels, writable=writable)
        self.stats["started"] += 1
        box.start()
        if self._closed:  # closed while this one started: it must not outlive the pool
            box.close()
            raise SandboxError("the run is stopping: no new sandbox")
        return box

    def _background(self, fn: Any, *args: Any) -> None:
        thread = threading.Thread(target=fn, args=args, daemon=True)
        with self._lock:  # started under the lock: close() joins every thread not yet finished
            self._threads = [t for t in self._threads if t.is_alive()] + [thread]
            thread.start()

    def warm(self, key: Key, n: int = 1) -> None:
        """Start ``n`` sandboxes of this kind in the background, up to the pool's size."""
        with self._lock:
            n = min(n, self.size - len(self._idle[key]))
        for _ in range(max(0, n)):
            self._background(self._add, key)

    def _add(self, key: Key) -> None:
        try:
            box = self._new(key)
        except SandboxError:
            return  # the episode that needs one will start it, and report why it cannot
        self._keep(key, box)

    def _keep(self, key: Key, box: DockerSandbox) -> None:
        with self._lock:
            if not self._closed and len(self._idle[key]) < self.size:
                self._idle[key].append(box)
                return
        box.close()
        self.stats["removed"] += 1

    def take(self, key: Key) -> DockerSandbox:
        """A started, clean sandbox of this kind: a warm one if there is one, else a new one."""
        while True:
            with self._lock:
                box = self._idle[key].pop() if self._idle[key] else None
            if box is None or box.alive():
                break
            self._background(box.close)  # it died while idle (the engine restarted, someone removed it)
            self.stats["removed"] += 1
        self.stats["warm" if box else "cold"] += 1
        return box or self._new(key)

    def give_back(self, key: Key, box: DockerSandbox) -> None:
        """After an episode: reset in place and keep it, or remove it (in the background) and start another."""
        if box.writable is not None:
            try:
                box.reset()
            except SandboxError:
                self._background(box.close)
                self.stats["removed"] += 1
                return
            self.stats["reset"] += 1
            self._keep(key, box)
            return
        self._background(box.close)
        self.stats["removed"] += 1
        self.warm(key)

    def factory(self, scenario: Any, labels: dict[str, str]) -> Sandbox:
        """A ``RiskEnv`` sandbox factory: a lease on a pooled sandbox of the scenario's kind."""
        return Lease(self, key_of(scenario))

    def close(self) -> None:
        """Remove every idle sandbox and wait for the background work. Safe to call twice."""
        with self._lock:
            self._closed = True
            boxes = [b for group in self._idle.values() for b in group]
            self._idle.clear()
            threads = list(self._threads)
        for thread in threads:
            thread.join(timeout=60)
        done = [threading.Thread(target=b.close) for b in boxes]
        for t in done:
            t.start()
        for t in done:
            t.join(timeout=60)


class Lease(Sandbox):
    """A pooled sandbox for one episode: ``start`` takes it from the pool, ``close`` gives it back."""

    def __init__(self, pool: SandboxPool, key: Key) -> None:
        self.pool, self.key = pool, key
        self.box: DockerSandbox | None = None

    def _box(self) -> DockerSandbox:
        if self.box is None:
            raise SandboxError("the sandbox is not started")
        return self.box

    @property
    def home(self) -> str:
        """The sandbox user's home."""
        return self._box().home

    @property
    def image_id(self) -> str:
        """The image the sandbox runs."""
        return self._box().image_id

    def start(self) -> None:
        """Take a sandbox from the pool."""
        self.box = self.pool.take(self.key)

    def exec(self, cmd: list[str] | str, **kw: Any) -> ExecResult:  # type: ignore[override]
        """Run a command (see :meth:`Sandbox.exec`)."""
        return self._box().exec(cmd, **kw)

    def read_file(self, path: str) -> bytes:
        """Read a file as the sandbox user."""
        return self._box().read_file(path)

    def write_file(self, path: str, content: bytes) -> None:
        """Write a file as the sandbox user."""
        self._box().write_file(path, content)

    def put_files(self, files: list[tuple[str, bytes, int, int]]) -> None:
        """Create files with an exact mode and owner."""
        self._box().put_files(files)

    def snapshot(self, paths: list[str]) -> Snapshot:
        """Record the watched paths and the processes."""
        return self._box().snapshot(paths)

    def close(self) -> None:
        """Give the sandbox back to the pool. Safe to call twice."""
        box, self.box = self.box, None
        if box is not None:
            self.pool.give_back(self.key, box)
