"""The sandbox interface: where every agent action runs. Nothing an agent asks for runs on the host."""

from __future__ import annotations

import abc
from collections import Counter
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

UIDS = {"root": 0, "agent": 1000}
"""The users of riskgym's images (``containers/base/Dockerfile`` creates ``agent`` with uid 1000)."""


class ExecResult(BaseModel):
    """What one command did inside the sandbox."""

    model_config = ConfigDict(frozen=True)

    exit_code: int
    """The command's exit status; 124 when it timed out, 137 when the executor died under it."""
    stdout: str = ""
    """Standard output, decoded as UTF-8 with replacement characters, at most the output cap."""
    stderr: str = ""
    """Standard error, like ``stdout``."""
    duration: float = 0.0
    """Seconds the command ran inside the sandbox."""
    truncated: bool = False
    """True when stdout or stderr went past the output cap and was cut."""
    timed_out: bool = False
    """True when the command ran past its timeout and its whole process group was killed."""

    @property
    def ok(self) -> bool:
        """True when the command exited with status 0."""
        return self.exit_code == 0

    def text(self) -> str:
        """Stdout and stderr together, with the flags spelled out, as an agent should see them."""
        parts = [self.stdout]
        if self.stderr:
            parts.append(self.stderr)
        if self.truncated:
            parts.append("[output truncated]")
        if self.timed_out:
            parts.append("[timed out: the command was killed]")
        elif self.exit_code != 0:
            parts.append(f"[exit code {self.exit_code}]")
        return "\n".join(p.rstrip("\n") for p in parts if p)


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
    target: str | None = None
    """Where a symlink points."""


class Snapshot(BaseModel):
    """A manifest of the watched paths and the processes running, taken before and after an episode."""

    model_config = ConfigDict(frozen=True)

    files: dict[str, FileState] = Field(default_factory=dict)
    """Absolute path -> state, for every path under the scenario's watched paths."""
    processes: list[str] = Field(default_factory=list)
    """Command lines of the processes running in the sandbox (riskgym's own excluded)."""

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


class Sandbox(abc.ABC):
    """An isolated place to run an agent's actions.

    Implementations raise :class:`riskgym.errors.SandboxError` when the sandbox cannot be created or reached.
    ``exec`` never raises for a command that fails, times out or is killed: that is in the :class:`ExecResult`.
    """

    user: str = "agent"
    """Who the agent's commands run as."""

    @property
    def home(self) -> str:
        """The sandbox user's home: what ``~`` in a tool's path means."""
        return "/root" if self.user == "root" else f"/home/{self.user}"

    @abc.abstractmethod
    def start(self) -> None:
        """Create and start the sandbox. Raises SandboxError if it cannot."""

    @abc.abstractmethod
    def exec(
        self,
        cmd: list[str] | str,
        *,
        cwd: str | None = None,
        env: dict[str, str] | None = None,
        timeout: float = 30.0,
        user: str | None = None,
        input: bytes | None = None,
    ) -> ExecResult:
        """Run a command.

        Args:
            cmd: an argv list, or a shell command line (a string), which runs in bash and keeps ``cd`` and
                ``export`` for the next string command, as a terminal does.
            cwd: working directory; the terminal's current one when None.
            env: extra environment variables for this command only.
            timeout: seconds before the command's whole process group is killed.
            user: run as this user instead of the sandbox's default (slower: a separate process).
            input: bytes fed to the command's standard input.
        """

    @abc.abstractmethod
    def read_file(self, path: str) -> bytes:
        """Return a file's content as the sandbox user sees it. Raises FileNotFoundError or PermissionError."""

    @abc.abstractmethod
    def write_file(self, path: str, content: bytes) -> None:
        """Write a file as the sandbox user. Raises PermissionError or IsADirectoryError."""

    @abc.abstractmethod
    def put_files(self, files: list[tuple[str, bytes, int, int]]) -> None:
        """Create files with an exact mode and owner, (path, content, mode, uid) each, parents included."""

    @abc.abstractmethod
    def snapshot(self, paths: list[str]) -> Snapshot:
        """Record the state of ``paths`` (recursively) and the running processes, without running agent code."""

    @abc.abstractmethod
    def close(self) -> None:
        """Stop and remove the sandbox. Safe to call twice."""

    def __enter__(self) -> Sandbox:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
