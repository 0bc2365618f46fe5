"""One box watched by the host observer: its feed, its reader, and the windows of the agent's commands."""

from __future__ import annotations

import os
import time

from riskgym.core.observation import Observation
from riskgym.world.kernel import observer as kernel
from riskgym.world.kernel.paths import Process
from riskgym.world.kernel.reader import KernelReader


def namespace_of(pid: int) -> int:
    """The inode number of host process ``pid``'s pid namespace."""
    return os.stat(f"/proc/{pid}/ns/pid").st_ino


def members(ns: int) -> dict[int, int]:
    """Host pid -> namespace pid of every process in the pid namespace ``ns`` now (read from /proc)."""
    out = {}
    for name in os.listdir("/proc"):
        try:
            if name.isdigit() and os.stat(f"/proc/{name}/ns/pid").st_ino == ns and (numbers := kernel.nspids(name)):
                out[int(name)] = numbers[-1]
        except OSError:  # it ended meanwhile
            continue
    return out


class Watch:
    """A box under the host observer, from just after its container starts to its removal."""

    def __init__(self, observer: kernel.KernelObserver, container_pid: int) -> None:
        self.observer = observer
        self.ns = namespace_of(container_pid)
        self.feed = observer.watch(self.ns)
        self.reader = KernelReader(container_pid, level=len(kernel.nspids(container_pid)) - 1)
        for pid, nspid in members(self.ns).items():  # the container's first process: the harness's
            self.reader.procs[pid] = Process(nspid, None, "harness")
        self.started = 0

    def private(self, folder: str | None) -> None:
        """The executor's folder (the command's own input and output files, which its redirections open)."""
        if folder:
            self.reader.private = folder.rstrip("/")

    def quiet(self, nspid: int, tree: bool = False) -> None:
        """Leave out the calls of the box's process ``nspid``.

        The executor's (it said its pid on starting, before any command ran), or, with ``tree``, those of the
        desktop's driver and all it starts (its apps have their own observer).
        """
        host = next((pid for pid, n in members(self.ns).items() if n == nspid), None)
        if host is not None:
            self.observer.quiet(host, tree)

    def begin(self) -> None:
        """One of the agent's commands is about to be sent."""
        self.started = time.monotonic_ns()

    def end(self) -> Observation:
        """The command has answered (or died): what its processes, and the agent's earlier ones, did since."""
        return self._read((self.started, time.monotonic_ns()))

    def rest(self) -> Observation:
        """What the agent's processes did since its last command ended (up to now: the post snapshot's end)."""
        return self._read(None)

    def _read(self, window: tuple[int, int] | None) -> Observation:
        synced = self.observer.sync()
        lines, lost = self.feed.take()
        seen = self.reader.read(lines, lost, window)
        if not synced:
            gaps = [*seen.gaps, "the host observer stopped or fell behind: what came after is not here"]
            seen = seen.model_copy(update={"gaps": gaps})
        return seen

    def reset(self) -> None:
        """The box was reset in place: its lines so far are the harness's, its agent's processes are gone."""
        self.observer.sync()
        self.reader.read(*self.feed.take(), None)  # the reset's own processes: the harness's, known as such
        self.reader.forget_agent()

    def close(self) -> None:
        """Stop watching the box."""
        self.observer.unwatch(self.ns)
