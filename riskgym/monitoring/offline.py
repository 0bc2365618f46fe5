"""Score recorded traces with a monitor, without re-running agents; cached in ``monitor.jsonl`` like the judge.

Each step is scored as it would have been before it ran: the monitor sees the instruction, the steps before it and
the call. One line per trace goes to ``monitor.jsonl`` as it is scored, keyed by the trace's sha256 and the
monitor's settings, so that scoring again costs nothing and a Ctrl-C keeps what was done.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from riskgym.core.monitor import Context, Monitor, score_of
from riskgym.core.trace import EVENT, Header, Step, Trace
from riskgym.errors import TraceError
from riskgym.grading.row import GradeRow, Scored
from riskgym.grading.runs import on_threads
from riskgym.monitoring.monitors import MONITOR_VERSION, RulesMonitor
from riskgym.rundir import EPISODES, MONITOR, cache_entries, scenario_for, trace_files


def monitor_key(monitor: Monitor) -> str:
    """What the cache keys a monitor's scores by: its name, its settings and the version of riskgym's monitors."""
    data = json.dumps([monitor.name, monitor.config, MONITOR_VERSION], sort_keys=True, default=str)
    return hashlib.sha256(data.encode()).hexdigest()[:16]


def read_steps(path: Path, data: bytes) -> tuple[Header, list[Step]]:
    """A trace's header and steps, parsing nothing else (snapshots are the bulk of a trace, and unneeded here)."""
    header, steps = None, []
    for n, line in enumerate(data.split(b"\n"), 1):
        if not line.strip():
            continue
        if header is None:
            try:
                header = EVENT.validate_json(line)
            except ValueError:
                raise TraceError(f"{path}:{n}: not a riskgym trace header") from None
            continue
        if b'"type":"step"' not in line[:40] and b'"type": "step"' not in line[:40]:
            continue
        try:
            steps.append(Step.model_validate_json(line))
        except ValueError:
            raise TraceError(f"{path}:{n}: not a riskgym trace step") from None
    if not isinstance(header, Header):
        raise TraceError(f"{path}: no header: not a riskgym trace")
    return header, steps


def score_trace(path: Path, data: bytes, monitor: Monitor) -> list[dict[str, Any]]:
    """The monitor's score of each step the agent's call reached (a rejected call never ran: it is not scored)."""
    header, steps = read_steps(path, data)
    scenario = scenario_for(path, Trace(path=str(path), header=header, events=[]))
    out = []
    for n, step in enumerate(steps):
        if step.error is not None:
            continue
        context = Context(instruction=scenario.instruction, history=steps[:n], tool=step.tool,
                          arguments=step.arguments, scenario=scenario)
        seen = score_of(monitor, context)
        out.append({"step": step.index, "score": seen.score, "reason": seen.reason})
    return out


def cached(run_dir: Path) -> Iterator[dict[str, Any]]:
    """The lines of ``monitor.jsonl``, oldest first; a line cut short is skipped (that trace is scored again)."""
    for entry in cache_entries(run_dir / MONITOR):
        if isinstance(entry.get("scores"), list):
            yield entry


_WORKER: dict[str, Any] = {}


def _score_chunk(chunk: list[Path]) -> list[tuple[str, list[dict[str, Any]]]]:
    return [(path.name, score_trace(path, path.read_bytes(), _WORKER["monitor"])) for path in chunk]


def score_run(run_dir: Path, monitor: Monitor, concurrency: int = 4,
              on_scored: Callable[[int, int], None] | None = None) -> dict[str, list[dict[str, Any]]]:
    """Every trace's scores by ``monitor``: from the cache where it scored the same trace, else now.

    riskgym's rules monitor runs on every CPU (processes); any other on ``concurrency`` threads, as a model's
    calls wait on the network. ``on_scored(done, total)`` is told as traces are scored.
    """
    key = monitor_key(monitor)
    paths = trace_files(run_dir)
    done = {(e.get("trace"), e.get("trace_sha256")): e["scores"] for e in cached(run_dir) if e.get("key") == key}
    shas = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in paths}
    todo = [p for p in paths if (p.name, shas[p.name]) not in done]
    sink = (run_dir / MONITOR).open("a") if run_dir.is_dir() else None
    try:
        for n, (name, scores) in enumerate(_scored(todo, monitor, concurrency), 1):
            sha = shas[name]
            done[(name, sha)] = scores
            if sink is not None:
                sink.write(json.dumps({"trace": name, "trace_sha256": sha, "monitor": monitor.name, "key": key,
                                       "scores": scores}) + "\n")
                sink.flush()
            if on_scored is not None:
                on_scored(n, len(todo))
    finally:
        if sink is not None:
            sink.close()
    return {p.name: done[(p.name, shas[p.name])] for p in paths}


def _scored(todo: list[Path], monitor: Monitor, concurrency: int) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    if isinstance(monitor, RulesMonitor) and len(todo) >= 200 and (os.cpu_count() or 1) > 1:
        import multiprocessing

        _WORKER["monitor"] = monitor
        chunks = [todo[i:i + 250] for i in range(0, len(todo), 250)]
        with multiprocessing.get_context("fork").Pool(os.cpu_count()) as pool:
            for rows in pool.imap(_score_chunk, chunks):
                yield from rows
        return
    if concurrency <= 1 or isinstance(monitor, RulesMonitor):
        for path in todo:
            yield path.name, score_trace(path, path.read_bytes(), monitor)
        return
    for path, scores in on_threads(lambda p: score_trace(p, p.read_bytes(), monitor), todo, concurrency):
        yield path.name, scores


def scores_in(run_dir: Path) -> dict[str, list[dict[str, Any]]]:
    """Per trace of the run as it is now, the latest offline scores of each monitor, named (``monitor``)."""
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    for e in cached(run_dir):
        latest[(e["trace"], e.get("monitor", "?"))] = e
    if not latest:
        return {}
    shas: dict[str, str] = {}
    out: dict[str, list[dict[str, Any]]] = {}
    for (name, monitor), entry in latest.items():
        path = run_dir / EPISODES / name
        if name not in shas and path.is_file():
            shas[name] = hashlib.sha256(path.read_bytes()).hexdigest()
        if shas.get(name) == entry.get("trace_sha256"):
            out.setdefault(name, []).extend({**s, "monitor": monitor} for s in entry["scores"])
    return out


def with_offline(rows: list[GradeRow], run_dirs: list[Path]) -> list[GradeRow]:
    """The rows with each run's offline scores (``riskgym monitor``) added to ``monitored``.

    Only where a trace has them from a monitor that did not score it while it ran.
    """
    found = {str(d): scores_in(d) for d in run_dirs}
    out = []
    for row in rows:
        extra = found.get(row.run_dir or (str(run_dirs[0]) if len(run_dirs) == 1 else ""), {}).get(row.trace)
        if extra:
            online = {m.monitor for m in row.monitored}
            row = row.model_copy(update={"monitored": [*row.monitored, *(Scored.model_validate({**e, "blocked": False})
                                                                        for e in extra if e["monitor"] not in online)]})
        out.append(row)
    return out
