"""Runs: scenarios x agents x epochs into a run directory, resumable, then graded.

Layout of ``runs/NAME``::

    run.json                          the manifest: command, scenarios (with hashes), agents, versions
    episodes/<scenario>-v<k>__<agent>__e<epoch>.jsonl   one trace per episode
    grades.jsonl                      one line of verdicts per episode (rewritten by `riskgym grade`)
"""

from __future__ import annotations

import json
import platform
import re
import signal
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import riskgym
from riskgym.errors import RiskgymError, TraceError
from riskgym.scenario import Scenario, load_scenario
from riskgym.trace import read_trace


def episode_path(run_dir: Path, scenario: Scenario, agent: str, epoch: int) -> Path:
    """Where one episode's trace goes."""
    safe_agent = re.sub(r"[^A-Za-z0-9_.-]+", "-", agent)
    return run_dir / "episodes" / f"{scenario.id}-v{scenario.version}__{safe_agent}__e{epoch}.jsonl"


def is_finished(path: Path) -> bool:
    """True when the trace exists and records the end of its episode (not interrupted)."""
    try:
        end = read_trace(path).end
    except TraceError:
        return False
    return end is not None and end.status != "interrupted"


class StopRequest:
    """The first Ctrl-C (or SIGTERM) asks the run to stop after the current step; the second one aborts at once.

    Stopping between steps, not in the middle of a Docker call, is what guarantees that no container is left.
    """

    def __init__(self) -> None:
        self.requested = False

    def __call__(self) -> bool:
        """True once a stop was asked for."""
        return self.requested

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        print("riskgym: stopping after the current step (press Ctrl-C again to abort now)", file=sys.stderr)

    @contextmanager
    def installed(self) -> Iterator[StopRequest]:
        """Install the handlers for SIGINT and SIGTERM for the duration of the block."""
        old = {sig: signal.signal(sig, self._handle) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield self
        finally:
            for sig, handler in old.items():
                signal.signal(sig, handler)


def run(scenario_files: list[Path], agents: list[str], out: Path, *, epochs: int = 1, seed: int = 0,
        progress: Callable[[str, str], None] | None = None) -> dict[str, int]:
    """Run every episode that the run directory does not already hold finished; return counts by status.

    Raises RiskgymError for bad input before anything is written.
    """
    from riskgym.agent import run_episode
    from riskgym.environments.risk_env import RiskEnv
    from riskgym.models import make_model
    from riskgym.sandbox.docker import prune, require_image

    # every check of the user's input comes before anything is written
    if epochs < 1:
        raise RiskgymError(f"--epochs {epochs}: give at least 1")
    if not scenario_files:
        raise RiskgymError("no scenario files given or found in the library")
    scenarios = [load_scenario(p) for p in scenario_files]
    for agent in agents:
        make_model(agent, scenarios[0])
    prune(dead_only=True)  # containers left by runs whose process died
    for image in sorted({s.sandbox.image for s in scenarios}):
        require_image(image, used_by=", ".join(s.id for s in scenarios if s.sandbox.image == image))
    run_id = uuid.uuid4().hex[:12]
    out.mkdir(parents=True, exist_ok=True)
    write_manifest(out, scenarios, scenario_files, agents, epochs, seed)
    counts = {"completed": 0, "truncated": 0, "error": 0, "skipped": 0}
    with StopRequest().installed() as stop:
        for scenario in scenarios:
            env = RiskEnv(scenario, run_id=run_id)
            for agent in agents:
                for epoch in range(epochs):
                    path = episode_path(out, scenario, agent, epoch)
                    if is_finished(path):
                        counts["skipped"] += 1
                        continue
                    if stop():
                        raise KeyboardInterrupt
                    status = run_episode(env, make_model(agent, scenario), trace=path, seed=seed + epoch,
                                         epoch=epoch, should_stop=stop)
                    counts[status] += 1
                    if progress:
                        progress(f"{scenario.id} {agent} e{epoch}", status)
    return counts


def write_manifest(out: Path, scenarios: list[Scenario], files: list[Path], agents: list[str], epochs: int,
                   seed: int) -> None:
    """Write ``run.json``: what is needed to run the same thing again."""
    from importlib.metadata import PackageNotFoundError, version

    versions: dict[str, str | None] = {}
    for pkg in ("riskgym", "gymnasium", "docker", "pydantic", "litellm"):
        try:
            versions[pkg] = version(pkg)
        except PackageNotFoundError:
            versions[pkg] = None
    manifest = {
        "riskgym_version": riskgym.__version__, "python": platform.python_version(), "packages": versions,
        "command": sys.argv, "agents": agents, "epochs": epochs, "seed": seed,
        "scenarios": [{"id": s.id, "version": s.version, "file": str(f), "sha256": s.content_hash}
                      for s, f in zip(scenarios, files, strict=True)],
    }
    tmp = out / "run.json.tmp"
    tmp.write_text(json.dumps(manifest, indent=2) + "\n")
    tmp.replace(out / "run.json")


def trace_files(run_dir: Path) -> list[Path]:
    """Every episode trace of a run directory (or the one trace file given)."""
    if run_dir.is_file():
        return [run_dir]
    if not (run_dir / "episodes").is_dir():
        raise TraceError(f"{run_dir}: not a run directory (no episodes/ inside); give the --out of `riskgym run`")
    return sorted((run_dir / "episodes").glob("*.jsonl"))
