"""What a command's processes really did, as the observer in the box saw it at the system-call level.

A box runs the agent's shell under an observer (strace, following every process it starts). Each step that ran a
command carries an :class:`Observation`: the processes that appeared (who started them, what they run) and each
system call that matters (a file deleted, opened for writing or reading, renamed, a mode changed, a signal sent, a
connection made, data passed through a pipe), with its outcome: done, or the errno that refused it. The intention
grader reads attempts from it (a refused delete is still an attempt); the leak grader follows data through it.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Observed(BaseModel):
    """One system call that matters: an effect (``kind`` to ``target``) by process ``pid``, done or refused."""

    model_config = ConfigDict(frozen=True)

    pid: int
    call: str
    """The system call (``unlinkat``, ``openat``, ``renameat2``...)."""
    kind: str
    """An effect kind (``delete``, ``write``, ``read``, ``move``, ``chmod``, ``chown``, ``kill``, ``exec``,
    ``network``), ``pipe`` (data into or out of a pipe: ``detail`` says ``in``, ``out`` or ``made``), ``output`` (a
    program started with its output going to a file: ``target``, a descriptor it inherited) or ``spawn`` (a fork the
    box refused: ``error`` says why, EAGAIN at the process limit)."""
    target: str
    """An absolute path, ``pipe:N``, ``host:port``, or a process (``-1``, or its command line)."""
    detail: str = ""
    """A mode (``0777``), a move's destination (``-> /x``), a signal, a program's arguments."""
    error: str = ""
    """The errno name when the call was refused (``EROFS``, ``EACCES``); empty when it was done."""
    port: int = 0
    """A ``network`` effect's own end: its socket's local port, as the host observer read it when the call ended (0:
    not known). The sinkhole records the same port for each attempt: the two are joined by it."""

    @property
    def done(self) -> bool:
        """The call succeeded."""
        return not self.error

    def __str__(self) -> str:
        extra = f" {self.detail}" if self.detail and self.kind not in ("exec", "pipe") else ""
        return f"{self.kind} {self.target}{extra}" + (f" (refused: {self.error})" if self.error else "")


class Proc(BaseModel):
    """A process that appeared during the step (or that started another program)."""

    model_config = ConfigDict(frozen=True)

    pid: int
    parent: int | None = None
    argv: list[str] = []


class Observation(BaseModel):
    """What one command's processes did. ``observer`` says which observer ran and whether it saw it all."""

    model_config = ConfigDict(frozen=True)

    observer: str = "strace"
    """``kernel`` (the host observer), ``strace`` (in the box); ``lost`` when the in-box observer died during the
    command (killed by the agent, say): what it saw before is here, what came after is not, and the graders fall
    back to reading the command line too."""
    root: int | None = None
    """The command's own process (the subshell that ran it)."""
    processes: list[Proc] = []
    effects: list[Observed] = []
    cut: bool = False
    """The report went past its size limit and was cut."""
    lost: int = 0
    """Events the kernel's buffers dropped while this was observed (the host observer)."""
    gaps: list[str] = []
    """What the observer could not see or read, each in words (events dropped, a path cut, a 32-bit call)."""

    @property
    def complete(self) -> bool:
        """The observer saw the whole command."""
        return self.observer in ("strace", "kernel") and not self.cut and not self.lost and not self.gaps

    @property
    def missing(self) -> str:
        """Why it is not complete, in words ("" when it is)."""
        if self.complete:
            return ""
        said = list(self.gaps) or ([f"{self.lost} events dropped"] if self.lost else [])
        if self.observer == "lost":
            said.append("the in-box observer was killed")
        if self.cut:
            said.append("the report was cut at its size limit")
        return "; ".join(said) or f"observer {self.observer}"
