"""A run directory's layout, in one place: where each file of a run lives, and which scenario a trace ran.

Layout of ``runs/NAME``::

    run.json                          the manifest: command, scenarios (with hashes), agents' settings, versions
    .lock                             held while a run writes the directory
    episodes/<scenario>-v<k>__<agent>__e<epoch>.jsonl   one trace per episode
    grades.jsonl                      one line of verdicts per episode (rewritten by `riskgym grade`)
    judge.jsonl                       the LLM judge's cached answers (``riskgym grade --judge``)
    monitor.jsonl                     monitors' scores of recorded traces (``riskgym monitor``), one line a trace
    report.html                       the HTML report, when asked for (``--html``)
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from riskgym.core.scenario import Scenario
from riskgym.core.trace import Trace
from riskgym.errors import TraceError
from riskgym.library import library_dir
from riskgym.library import load as load_scenario

MANIFEST = "run.json"
LOCK = ".lock"
EPISODES = "episodes"
GRADES = "grades.jsonl"
JUDGE = "judge.jsonl"
MONITOR = "monitor.jsonl"


def cache_entries(path: Path) -> Iterator[dict[str, Any]]:
    """The JSON objects of a run's cache file (``judge.jsonl``, ``monitor.jsonl``), oldest first.

    A line cut short (a crash mid-write) is skipped: what it held is worked out again.
    """
    if not path.is_file():
        return
    for line in path.read_text().splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict):
            yield entry


def run_dir_of(trace_path: Path) -> Path:
    """The run directory an episode's trace lies in."""
    return trace_path.parent.parent


def episode_path(run_dir: Path, scenario: Scenario, agent: str, epoch: int) -> Path:
    """Where one episode's trace goes."""
    safe_agent = re.sub(r"[^A-Za-z0-9_.-]+", "-", agent)
    return run_dir / EPISODES / f"{scenario.id}-v{scenario.version}__{safe_agent}__e{epoch}.jsonl"


def trace_files(run_dir: Path) -> list[Path]:
    """Every episode trace of a run directory (or the one trace file given)."""
    if run_dir.is_file():
        return [run_dir]
    if not (run_dir / EPISODES).is_dir():
        raise TraceError(f"{run_dir}: not a run directory (no episodes/ inside); give the --out of `riskgym run`")
    return sorted((run_dir / EPISODES).glob("*.jsonl"))


_SCENARIOS: dict[str, Scenario] = {}  # shared with forked grading workers
_MANIFESTS_READ: set[Path] = set()


def _manifest_scenarios(run_dir: Path) -> dict[str, Scenario]:
    """The scenarios the run's manifest names, by gymnasium id."""
    manifest = run_dir / MANIFEST
    if not manifest.is_file():
        return {}
    scenarios = (load_scenario(s["file"]) for s in json.loads(manifest.read_text()).get("scenarios", [])
                 if Path(s["file"]).is_file())
    return {s.env_id: s for s in scenarios}


def scenario_for(path: Path, trace: Trace) -> Scenario:
    """The scenario a trace ran: as the manifest of its run names it, else the library's."""
    env_id = trace.header.env_id
    key = env_id.removeprefix("riskgym/")  # also the library's file name, <id>-v<version>
    if env_id not in _SCENARIOS and run_dir_of(path) not in _MANIFESTS_READ:
        _MANIFESTS_READ.add(run_dir_of(path))
        for found_id, found in _manifest_scenarios(run_dir_of(path)).items():
            _SCENARIOS.setdefault(found_id, found)
    if env_id not in _SCENARIOS and (library_dir() / f"{key}.toml").is_file():
        _SCENARIOS[env_id] = load_scenario(library_dir() / f"{key}.toml")
    if env_id not in _SCENARIOS:
        raise TraceError(f"{path}: scenario {key!r} is not in the run's manifest nor in the library")
    return _SCENARIOS[env_id]


def forget_scenarios() -> None:
    """Read the manifests and the library again (a new grading pass: the files may have changed)."""
    _SCENARIOS.clear()
    _MANIFESTS_READ.clear()
