"""The sandbox interface: where every agent action runs. Nothing an agent asks for runs on the host."""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

from riskgym.core.observation import Observation
from riskgym.core.state import FileState, Snapshot
from riskgym.errors import SandboxError

if TYPE_CHECKING:
    from riskgym.core.kinds import Effect
    from riskgym.core.scenario import Scenario

__all__ = ["UIDS", "ExecResult", "FileState", "Sandbox", "Snapshot"]

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
    observed: Observation | None = None
    """What the command's processes did, as the observer saw it; None where no observer ran."""

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


class Sandbox(abc.ABC):
    """An isolated place to run an agent's actions: the world's part named ``box``.

    Implementations raise :class:`riskgym.errors.SandboxError` when the sandbox cannot be created or reached.
    ``exec`` never raises for a command that fails, times out or is killed: that is in the :class:`ExecResult`.
    Every implementation must pass the conformance suite (:mod:`riskgym.tools.conformance`,
    ``riskgym sandbox self-check KIND``).
    """

    user: str = "agent"
    """Who the agent's commands run as."""
    name: str = "box"
    """Its name in the world."""
    kind: str = "box"
    replayable: bool = True
    """A replay runs its tools again (an emulator's recorded outputs are reused instead)."""
    answers_tools: bool = False
    """It answers every tool call itself (an emulated box), not through the tool's function."""
    joins_network: bool = False
    image: str = ""
    image_id: str = ""
    hosts: dict[str, str] = {}  # noqa: RUF012 - replaced per instance, never changed in place
    """Host name -> address, for the box's /etc/hosts: the world's services (set before it starts)."""

    @property
    def can_reset(self) -> bool:
        """Whether :meth:`reset` can make it clean for the next episode (else it is recreated)."""
        return False

    def reset(self) -> None:
        """Make it as it started, in place: kill every process, empty the writable paths, a new terminal."""
        raise SandboxError(f"{type(self).__name__} cannot be reset in place")

    def alive(self) -> bool:
        """Whether it still runs (an idle pooled one may have been removed)."""
        return True

    def happened(self) -> list[Effect]:
        """Nothing besides its tools' own effects (the observer's are theirs)."""
        return []

    def offer(self, tools: list[dict[str, Any]]) -> None:
        """It does not need to know the agent's tools (an emulated box does)."""
        return None

    def configure(self, settings: Any) -> None:
        """No emulator settings to take (an emulated box takes them)."""
        return None

    def prepare(self, scenario: Scenario) -> None:
        """Give it the scenario's starting files and run its set-up commands (before the episode)."""
        spec = scenario.sandbox
        if spec.files:
            self.put_files([(f.path, f.content.encode(), f.mode, UIDS[f.owner]) for f in spec.files],
                           times={f.path: t for f in spec.files if (t := f.modified_at()) is not None})
        for n, step in enumerate(spec.setup):
            result = self.exec(["bash", "-c", step.run], user=step.user, timeout=scenario.limits.command_timeout)
            if not result.ok:
                said = (result.stderr or result.stdout).strip()[-300:]
                fix = ("add the path it writes to [sandbox] writable, or set [sandbox] reset = \"recreate\""
                       if "Read-only file system" in said else "fix the command")
                raise SandboxError(f"scenario {scenario.id}: sandbox.setup[{n}] failed (exit {result.exit_code}): "
                                   f"{said}; {fix}")

    def capture(self, scenario: Scenario) -> Snapshot:
        """Its state for the graders: the scenario's watched paths and the processes."""
        return self.snapshot(list(scenario.sandbox.watch), needles=scenario.needles())

    def describe(self) -> dict[str, Any]:
        """What it is, for the trace's header: kind, implementation, image and image id."""
        return {"kind": self.kind, "sandbox": type(self).__name__, "image": self.image, "image_id": self.image_id}

    def destinations(self) -> list[str]:
        """Network destinations that are the scenario's own (none: a box serves nothing to itself)."""
        return []

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
    def put_files(self, files: list[tuple[str, bytes, int, int]], times: dict[str, float] | None = None) -> None:
        """Create files with an exact mode and owner, (path, content, mode, uid) each, parents included.

        ``times``: a file's time of last change (seconds since the epoch); by default a realistic one.
        """

    @abc.abstractmethod
    def snapshot(self, paths: list[str], needles: list[str] | None = None) -> Snapshot:
        """Record the state of ``paths`` (recursively) and the running processes, without running agent code.

        ``needles``: texts to look for in each file, inside packed ones too (``FileState.found``).
        """

    @abc.abstractmethod
    def close(self) -> None:
        """Stop and remove the sandbox. Safe to call twice."""

    def __enter__(self) -> Sandbox:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

