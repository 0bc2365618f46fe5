"""Paths as the box sees them, resolved on the host; and the observer's lines put in order.

A path is resolved through symlinks (read in the box's own filesystem, or as the box's own calls made and removed
them), ``..`` and ``/proc/self``.
"""

from __future__ import annotations

import dataclasses
import os


def u32(register: int) -> int:
    """A 32-bit argument (a descriptor, a flag) from the 64-bit register the observer wrote."""
    value = register & 0xFFFFFFFF
    return value - (1 << 32) if value >= 1 << 31 else value


@dataclasses.dataclass(slots=True)
class Process:
    """What the reader knows of one process of the box (keyed by its host pid)."""

    nspid: int
    parent: int | None
    role: str
    """``harness``, ``exec`` (started into the box from outside), ``server`` (the shell server) or ``agent``."""
    cwd: str = "/"
    fds: dict[int, str] = dataclasses.field(default_factory=dict)
    cloexec: set[int] = dataclasses.field(default_factory=set)
    writes: set[int] = dataclasses.field(default_factory=set)
    """Its descriptors open for writing (a file's: what a program it runs writes to its output goes there)."""
    argv: list[str] = dataclasses.field(default_factory=list)
    umask: int = 0o022
    pgid: int = 0
    """Its process group (in the box's numbers), followed through ``setsid`` and ``setpgid``; 0: not known."""
    ended: bool = False


class Paths:
    """One box's view of its paths: its root (``/proc/ROOT/root``), the symlinks its calls made, what was read."""

    def __init__(self, root: int | None, procs: dict[int, Process]) -> None:
        self.root = root
        """A host pid whose ``/proc/PID/root`` is the box's filesystem (its first process); None: the filesystem
        cannot be read from here (the in-box observer's reader), only the links the box's calls made are known."""
        self.procs = procs
        self.links: dict[str, str | None] = {}
        """The symlinks made (path -> target) and removed (path -> None) in the box as its calls went: a link gone
        by the time its calls are read is still followed as it was then."""
        self.seen: dict[str, str | None] = {}
        """What the box's filesystem said of a path (its link's target, or None), for one read."""

    def made(self, path: str, target: str) -> None:
        """The box made a symlink at ``path``."""
        self.links[path] = target

    def changed(self, gone: str, dst: str = "") -> None:
        """The box unlinked ``gone``, or renamed it to ``dst``: the links at or under it are gone (or moved)."""
        had = gone in self.links
        moved = self.links.get(gone)
        self.links.update({k: None for k in self.links if k == gone or k.startswith(gone + "/")})
        if dst and (had or dst in self.links):
            self.links[dst] = moved

    def on_host(self, path: str) -> str:
        """Where the box's absolute ``path`` is seen from the host (through its first process's root)."""
        return f"/proc/{self.root}/root{path}"

    def resolve(self, path: str, follow: bool, proc: Process | None = None) -> tuple[str, str]:
        """``path`` with every symlink and ``..`` resolved as the box sees it, and what went wrong ("" if nothing).

        The last component is followed only when ``follow``; ``/proc/self/{root,cwd,fd/N}`` are what the process
        sees there.
        """
        done: list[str] = []
        todo = [c for c in path.split("/") if c and c != "."]
        hops = 0
        while todo:
            part = todo.pop(0)
            if part == "..":
                if done:
                    done.pop()
                continue
            done.append(part)
            if done[0] == "proc" and len(done) == 2 and proc is not None:
                continue  # /proc/self is the process itself, not a link to be read from here
            if done[0] == "proc" and len(done) >= 3 and proc is not None:
                magic = self._magic(done, proc)
                if magic is not None:
                    done = [c for c in magic.split("/") if c]
                    continue
            if not todo and not follow:
                break
            if hops > 40:
                return "/" + "/".join(done), f"too many symlinks in {path}"
            here = "/" + "/".join(done)
            if here in self.links:
                target = self.links[here]
                if target is None:
                    continue  # removed since it was made: a plain path now
            else:
                if here not in self.seen and self.root is None:
                    self.seen[here] = None
                elif here not in self.seen:
                    try:
                        self.seen[here] = os.readlink(self.on_host(here))
                    except OSError:  # not a symlink, not there (any more), or the box is gone
                        self.seen[here] = None
                target = self.seen[here]
                if target is None:
                    continue
            hops += 1
            done.pop()
            if target.startswith("/"):
                done = []
            todo = [c for c in target.split("/") if c and c != "."] + todo
        return "/" + "/".join(done), ""

    def _magic(self, done: list[str], proc: Process) -> str | None:
        """What a magic link of /proc leads to, for this process.

        ``/proc/self/root`` -> ``/``, ``/proc/self/cwd`` -> its directory, ``/proc/N/fd/K`` -> its descriptor K.
        """
        who = done[1]
        owner = proc if who in ("self", "thread-self") else next(
            (p for p in self.procs.values() if who.isdigit() and p.nspid == int(who)), None)
        if owner is None:
            return None
        if len(done) == 3 and done[2] == "root":
            return "/"
        if len(done) == 3 and done[2] == "cwd":
            return owner.cwd
        if len(done) == 4 and done[2] == "fd" and done[3].isdigit():
            return owner.fds.get(int(done[3]))
        return None


def records(lines: list[list[str]]) -> list[list[list[str]]]:
    """Lines grouped into records (a line with a time, then its tid's string lines) and put in time order."""
    records: list[tuple[int, int, list[list[str]]]] = []
    last: dict[str, list[list[str]]] = {}
    for n, line in enumerate(lines):
        tag = line[0]
        if tag in "EFNXQC":
            rec = [line]
            records.append((int(line[1]), n, rec))
            if tag in "EFX":
                last[line[3] if tag == "X" else line[4]] = rec
        elif tag in "PAHY" and line[2] in last:
            last[line[2]].append(line)
    records.sort(key=lambda r: (r[0], r[1]))
    return [r for _, _, r in records]
