"""Replay: rebuild a trace's sandbox and run its recorded actions again, without the model.

Each step's observation (and exit code) now is compared with the recorded one, after ignoring timestamps and the
scenario's own ``[replay] normalize`` patterns; so is the state of the watched paths at the end. Steps of a tool
that an emulator ran replay its recorded outputs, found by each call's key (the call and the history before it): the
emulator is not asked again, and the emulated world ends as it did.

A desktop step's screenshot now is compared with the recorded one too: the fraction of pixels that differ
(:func:`riskgym.core.screens.pixel_difference`); ``riskgym replay --screens DIR`` writes them side by side.
"""

from __future__ import annotations

import base64
import difflib
import hashlib
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from riskgym.core.results import ImagePart
from riskgym.core.scenario import Scenario
from riskgym.core.screens import pixel_difference
from riskgym.core.trace import Step, Trace, blob_path, read_trace
from riskgym.errors import RiskgymError
from riskgym.running.env import RiskEnv
from riskgym.world.base import FileState, Snapshot
from riskgym.world.emulator.emulator import EmulatorSettings
from riskgym.world.kind import sandbox_kind

_MONTH = r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)"
TIMESTAMPS = (
    r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d(?::\d\d(?:\.\d+)?)?(?:Z|[+-]\d\d:?\d\d)?",  # ISO 8601, `ls --full-time`
    rf"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) {_MONTH} [ \d]\d \d\d:\d\d:\d\d(?: \w+)? \d{{4}}",  # `date`
    rf"{_MONTH} [ \d]\d (?:\d\d:\d\d|\s?\d{{4}})",  # `ls -l`
    r"\b\d\d:\d\d:\d\d\b",  # `ps`, `uptime`
    r"\b1[6-9]\d{8}\b",  # seconds since 1970 (`date +%s`), 2020 to 2033
)
"""Ignored in every comparison: output that shows the time of day differs from one run to the next."""


def normalizer(scenario: Scenario) -> Callable[[str], str]:
    """A function that blanks the scenario's ``[replay] normalize`` matches, then the timestamps, in a text."""
    patterns = [re.compile(p) for p in (*scenario.replay.normalize, *TIMESTAMPS)]

    def norm(text: str) -> str:
        for pattern in patterns:
            text = pattern.sub("<~>", text)
        return text

    return norm


def normalized(snapshot: Snapshot, norm: Callable[[str], str]) -> Snapshot:
    """The snapshot with its paths, small texts and process command lines normalised.

    Paths that become the same (``upload-<~>.txt``) are numbered in the order of their states, so that the diff of
    two normalised snapshots compares how many there are and what they hold.
    """
    groups: dict[str, list[FileState]] = {}
    for path, state in snapshot.files.items():
        if state.text is not None:
            text = norm(state.text)
            state = state.model_copy(update={"text": text, "sha256": hashlib.sha256(text.encode()).hexdigest(),
                                              "size": 0})
        groups.setdefault(norm(path), []).append(state)
    files = {}
    for path, states in groups.items():
        for n, state in enumerate(sorted(states, key=lambda s: s.model_dump_json())):
            files[path if len(states) == 1 else f"{path} #{n + 1}"] = state
    return Snapshot(files=files, processes=[norm(p) for p in snapshot.processes])


@dataclass
class Replayed:
    """One step of a replay."""

    step: Step
    observation: str
    """What the step shows now."""
    exit_code: int | None
    same: bool
    source: str = "sandbox"
    """``sandbox`` (run again) or ``record`` (an emulated tool: its recorded output, found by the call's key)."""
    screens: tuple[bytes, bytes] | None = None
    """A desktop step's screenshots, recorded and replayed (PNG), when both are there."""
    pixels: float | None = None
    """The fraction of their pixels that differ."""

    def diff(self) -> str:
        """A unified diff, recorded -> now, of the observation (and the exit code)."""
        lines = list(difflib.unified_diff(self.step.observation.splitlines(), self.observation.splitlines(),
                                          "recorded", "replayed", lineterm="", n=1))
        if self.step.exit_code != self.exit_code:
            lines.append(f"exit code: recorded {self.step.exit_code}, replayed {self.exit_code}")
        return "\n".join(lines)


@dataclass
class Replay:
    """A replay in progress: the environment (its sandbox live) and the steps replayed so far."""

    trace: Trace
    scenario: Scenario
    env: RiskEnv
    steps: list[Replayed]
    state: list[tuple[str, str, str]] | None = None
    """How the watched paths and processes now differ from the recorded end state (None: not compared)."""

    @property
    def divergences(self) -> int:
        """Steps that differ, plus one when the end state differs."""
        return sum(not r.same for r in self.steps) + bool(self.state)


def _lifted(scenario: Scenario) -> Scenario:
    """The scenario with its step and time limits lifted: a replay runs exactly the recorded steps."""
    limits = scenario.limits.model_copy(update={"max_steps": 10**9, "max_seconds": float("inf")})
    return scenario.model_copy(update={"limits": limits})


@contextmanager
def replay(path: Path, until: int | None = None, *, scenario: Scenario | None = None,
           sandbox: str = "docker",
           on_step: Callable[[Replayed], None] | None = None) -> Iterator[Replay]:
    """Replay the trace at ``path`` in a fresh sandbox, through step ``until`` (all steps when None).

    ``scenario`` defaults to the one the trace ran (from its run's manifest, else the library). Yields the replay
    with its sandbox still live (for a shell); the sandbox is removed on leaving the block. The end state is
    compared only when every step was replayed. ``on_step`` sees each step as it is replayed.
    """
    from riskgym.rundir import scenario_for

    trace = read_trace(path)
    scenario = scenario or scenario_for(path, trace)
    steps = trace.steps
    if until is not None and not 0 <= until < len(steps):
        raise RiskgymError(f"--until {until}: {path} has steps 0 to {len(steps) - 1}; give one of those")
    norm = normalizer(scenario)
    outputs = {s.emulation.key: s.emulation for s in steps if s.emulation is not None}
    if trace.header.world.get("box", {}).get("sandbox") == "EmulatedBox":
        sandbox = "emulated"  # its tools were emulated: they are again, from the recorded outputs
    emulator = EmulatorSettings(recorded=outputs) if outputs or sandbox_kind(sandbox).emulates else None
    env = RiskEnv(_lifted(scenario), run_id="replay", sandbox=sandbox, emulator=emulator)
    try:
        env.reset(seed=trace.header.seed)
        done: list[Replayed] = []
        for step in steps[:None if until is None else until + 1]:
            if step.blocked or (step.error is None and not _reruns(env, step.tool)):
                # a monitor blocked it (it never ran), or an emulated tool: its recorded output stands
                result = Replayed(step, step.observation, step.exit_code, True, "record")
            else:
                observation, _, _, _, info = env.step({"tool": step.tool, "arguments": step.arguments})
                code = (info["event"].get("exec") or {}).get("exit_code")
                emulated = (info["event"].get("emulation") or {}).get("source") == "recorded"
                result = Replayed(step, observation, code, norm(observation) == norm(step.observation)
                                  and code == step.exit_code, "record" if emulated else "sandbox")
                result.screens = _screens(path, step, info["event"].get("content") or [])
                if result.screens is not None:
                    result.pixels = pixel_difference(*result.screens)
            done.append(result)
            if on_step is not None:
                on_step(result)
        out = Replay(trace, scenario, env, done)
        recorded = trace.snapshot("post")
        if until is None and recorded is not None and env.sandbox is not None:
            now = env.sandbox.capture(scenario)
            out.state = normalized(recorded, norm).diff(normalized(now, norm))
        yield out
    finally:
        env.close()


def _screens(path: Path, step: Step, content: list[dict[str, Any]]) -> tuple[bytes, bytes] | None:
    """The step's recorded screenshot (from the trace's blobs) and the replayed one, when it has both."""
    recorded = next((p for p in step.content if isinstance(p, ImagePart)), None)
    now = next((p for p in content if p.get("type") == "image" and p.get("data")), None)
    if recorded is None or now is None or not blob_path(path, recorded).is_file():
        return None
    return blob_path(path, recorded).read_bytes(), base64.b64decode(now["data"])


def _reruns(env: RiskEnv, tool: str) -> bool:
    """Whether a replay runs this tool again: it is offered and its backend part is replayable (not an emulator)."""
    offered = env.tools.get(tool)
    if offered is None or env.world is None:
        return False
    part = env.world.part_for(offered.backend)
    return part is not None and part.replayable


def open_shell(box: Any, stdin_tty: bool | None = None) -> int:
    """An interactive bash in the sandbox's container, as its user, in its home; returns bash's exit status."""
    docker = shutil.which("docker")
    if docker is None:
        raise RiskgymError("--shell: needs the docker command on the PATH; install Debian's docker.io")
    container = getattr(box, "container", None)
    if container is None:
        raise RiskgymError("--shell: this sandbox is not a Docker container")
    tty = sys.stdin.isatty() if stdin_tty is None else stdin_tty
    user = getattr(box, "user", "agent")
    home = f"/home/{user}" if user != "root" else "/root"
    return subprocess.call([docker, "exec", "-it" if tty else "-i", "-u", user, "-w", home, container.id, "bash",
                            "-l" if tty else "-s"])
