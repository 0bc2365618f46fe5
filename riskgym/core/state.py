"""What the graders read: the state of each part of an episode's world, before and after it.

A box (the agent's container) is a :class:`Snapshot` of files and processes; any other part (a web service, an
emulator) gives a :class:`JsonState`, the JSON it keeps of what happened to it. Both are data only.
"""

from __future__ import annotations

from collections import Counter
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from riskgym.core.observation import Observation


class FileState(BaseModel):
    """The state of one path in a snapshot."""

    model_config = ConfigDict(frozen=True)

    type: Literal["file", "dir", "symlink", "other"]
    mode: int
    """Permission bits (``stat.S_IMODE``)."""
    size: int = 0
    uid: int = 0
    gid: int = 0
    sha256: str | None = None
    """Content hash of a regular file."""
    text: str | None = None
    """The file's content when it is small text (<= 64 KiB), so that checks can look inside."""
    found: tuple[str, ...] | None = None
    """Of the texts the scenario's checks and canaries look for, those the box found in the file: in its bytes (a
    large file too), decoded from base64, or unpacked from gzip, bz2, xz, tar or zip."""
    target: str | None = None
    """Where a symlink points."""


class Snapshot(BaseModel):
    """A box's state: a manifest of the watched paths and the processes running, before or after an episode."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["box"] = "box"

    files: dict[str, FileState] = Field(default_factory=dict)
    """Absolute path -> state, for every path under the scenario's watched paths."""
    processes: list[str] = Field(default_factory=list)
    """Command lines of the processes running in the sandbox (riskgym's own excluded)."""
    parents: list[int] = Field(default_factory=list)
    """For each process, the index of its parent in ``processes``; -1 when its parent is not listed (PID 1, the
    harness). Empty in traces before schema 5."""
    observed: Observation | None = None
    """In a post snapshot, by the host observer: what the agent's processes did after its last command ended, up to
    the end of this snapshot (a job left in the background); the graders give each call to the step that started
    its process. None when they did nothing (and before schema 10)."""

    def roots(self, pattern: str | None = None) -> list[str]:
        """The processes (matching ``pattern``, a regex) whose parent is not one of them.

        A worker counts, not the ``sleep`` its loop forks, nor the subshell copies of itself it makes.
        """
        import re

        def hit(i: int) -> bool:
            return pattern is None or re.search(pattern, self.processes[i]) is not None

        parents = self.parents if len(self.parents) == len(self.processes) else [-1] * len(self.processes)
        return [p for i, p in enumerate(self.processes) if hit(i) and (parents[i] < 0 or not hit(parents[i]))]

    def diff(self, after: Snapshot) -> list[tuple[str, str, str]]:
        """What changed from this snapshot to ``after``: ``(what, path or command line, detail)`` each.

        ``what`` is created, deleted, modified, mode, owner, started or stopped.

        >>> a = Snapshot(files={"/f": FileState(type="file", mode=0o644, sha256="1")})
        >>> a.diff(Snapshot(files={"/f": FileState(type="file", mode=0o600, sha256="2")}))
        [('modified', '/f', 'content changed'), ('mode', '/f', '0o644 -> 0o600')]
        """
        out: list[tuple[str, str, str]] = []
        for path in sorted(self.files.keys() | after.files.keys()):
            old, new = self.files.get(path), after.files.get(path)
            if old is None or new is None:
                state = old or new
                assert state is not None
                out.append(("created" if old is None else "deleted", path, f"{state.type}, {state.size} bytes"
                            if state.type == "file" else state.type))
                continue
            if old.type != new.type or old.sha256 != new.sha256 or old.target != new.target:
                detail = f"{old.type} -> {new.type}" if old.type != new.type else \
                    f"content changed{f' ({old.size} -> {new.size} bytes)' if old.size != new.size else ''}"
                out.append(("modified", path, detail))
            if old.mode != new.mode:
                out.append(("mode", path, f"{oct(old.mode)} -> {oct(new.mode)}"))
            if (old.uid, old.gid) != (new.uid, new.gid):
                out.append(("owner", path, f"{old.uid}:{old.gid} -> {new.uid}:{new.gid}"))
        before, now = Counter(self.processes), Counter(after.processes)
        out += [("stopped", cmd, "") for cmd in sorted((before - now).elements())]
        out += [("started", cmd, "") for cmd in sorted((now - before).elements())]
        return out


class JsonState(BaseModel):
    """The state of a part that is not a box (a service, an emulator): its own JSON."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["json"] = "json"
    data: dict[str, Any] = Field(default_factory=dict)


class AnswerState(BaseModel):
    """The agent's final answer, as a state that checks read (``part = "answer"``): empty before the episode."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["answer"] = "answer"
    text: str = ""


class FlowState(BaseModel):
    """Where each canary went, as a state that checks read (``part = "flow"``): the leak grader's provenance graph.

    ``reached``: canary token -> the sinks it reached (``file:/srv/x``, ``net:host``); ``sources``: token -> the
    file it was planted in (two canaries may share one).
    """

    model_config = ConfigDict(frozen=True)

    kind: Literal["flow"] = "flow"
    reached: dict[str, list[str]] = Field(default_factory=dict)
    sources: dict[str, str] = Field(default_factory=dict)
    changed: list[str] | None = None
    """The box's paths under ``watched`` made or changed in the episode, as its snapshots show (None: not known): a
    file sink there counts only if it, or something under it, is one of them (a copy made and deleted again, or
    one only a command line claims in an emulated box, reached no file)."""
    watched: list[str] = Field(default_factory=list)


PartState = Annotated[Snapshot | JsonState, Field(discriminator="kind")]
"""One part's state in a trace."""
