"""Runs: scenarios x agents x epochs into a run directory, resumable, then graded.

The run directory's layout: :mod:`riskgym.rundir`.
"""

from __future__ import annotations

import json
import os
import platform
import queue
import signal
import sys
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import riskgym
from riskgym.core.files import check_folder, write_atomic
from riskgym.core.monitor import settings as monitor_settings
from riskgym.core.scenario import Scenario
from riskgym.core.trace import Seal, read_trace
from riskgym.errors import RiskgymError, TraceError
from riskgym.library import load as load_scenario
from riskgym.rundir import EPISODES, LOCK, MANIFEST, episode_path
from riskgym.running.agent import Activity, EpisodeResult
from riskgym.running.options import ClusterOptions, RunOptions, default_concurrency, emulator_settings
from riskgym.running.playing import Job, Progress, Streaks, play
from riskgym.world.emulator.emulator import EmulatorSettings
from riskgym.world.kind import KINDS, images_used, sandbox_kind

__all__ = ["ClusterOptions", "Progress", "RunOptions", "default_concurrency", "emulator_settings", "is_finished", "run"]

if TYPE_CHECKING:
    from riskgym.running.pool import WorldPool


def is_finished(path: Path) -> bool:
    """True when the trace records an episode that ended completed or truncated, and is sealed.

    Interrupted and unfinished episodes are redone by a resumed run, and so are those that ended in error (an API
    that failed, a sandbox that broke): they are neither safe nor risky, and may go through next time. So is one
    whose writer was killed between its end and its seal: `riskgym verify` would not pass it.
    """
    try:
        trace = read_trace(path)
    except TraceError:
        return False
    end = trace.end
    sealed = trace.header.schema_version < 3 or (bool(trace.events) and isinstance(trace.events[-1], Seal))
    return end is not None and end.status in ("completed", "truncated") and sealed


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


def check_together(scenarios: list[Scenario], files: list[Path], sandbox: str) -> None:
    """RiskgymError for scenarios that cannot run together, or not in ``sandbox``, naming the files.

    Two files with one id and version would write one trace; a part that needs a real box cannot run in the fake.
    """
    first: dict[str, Path] = {}
    for scenario, path in zip(scenarios, files, strict=True):
        if scenario.env_id in first:
            raise RiskgymError(f"{path}: id {scenario.id!r} version {scenario.version} is also "
                               f"{first[scenario.env_id]}'s; their traces would be one: give one of them another id "
                               "or version")
        first[scenario.env_id] = path
        part = next((p for p in scenario.parts if KINDS[p.kind].real_box), None)
        if part is not None and not sandbox_kind(sandbox).containers:
            raise RiskgymError(f"{path}: part {part.name!r} ({part.kind}) runs only in a real box, not --sandbox "
                               f"{sandbox}: run it with --sandbox docker")


def run(scenario_files: list[Path], agents: list[str], out: Path, options: RunOptions | None = None,
        progress: Progress | None = None) -> dict[str, int]:
    """Run every episode that the run directory does not already hold finished; return counts by status.

    Episodes run ``options.concurrency`` at a time. Raises RiskgymError for bad input before anything is
    written, and KeyboardInterrupt after a Ctrl-C (the episodes in flight are recorded as interrupted).
    """
    from riskgym.running.factory import check_model, resolve_model
    from riskgym.world.docker import prune, require_image

    opts = options or RunOptions()
    # every check of the user's input comes before anything is written
    if opts.epochs < 1:
        raise RiskgymError(f"--epochs {opts.epochs}: give at least 1")
    if opts.concurrency < 1:
        raise RiskgymError(f"--concurrency {opts.concurrency}: give at least 1")
    if not scenario_files:
        raise RiskgymError("no scenario files given or found in the library")
    check_folder(out, "--out", "a run's to resume it")
    if len(set(agents)) != len(agents):
        raise RiskgymError(f"--model: {sorted(a for a in agents if agents.count(a) > 1)[0]!r} is given twice")
    scenarios = [load_scenario(p) for p in scenario_files]
    check_together(scenarios, scenario_files, opts.sandbox)
    configs = {}
    for agent in agents:
        config = resolve_model(agent, opts.models, opts.overrides)
        if config is not None:
            check_model(agent, config)
        configs[agent] = {"kind": "scripted"} if config is None else {"kind": "litellm", **config.public()}
    emulator = emulator_settings(scenarios, opts)
    docker = sandbox_kind(opts.sandbox).containers
    if docker:
        prune(dead_only=True)  # containers left by runs whose process died
        for image, users in images_used(scenarios).items():
            require_image(image, used_by=", ".join(users))
    run_id = uuid.uuid4().hex[:12]
    cluster = None
    if opts.cluster is not None:  # before anything is written: a cluster that is not there, or has no fit node
        from riskgym.running.cluster import Cluster

        cluster = Cluster.join(scenarios, opts, run_id, say=lambda line: print(line, file=sys.stderr))
    try:
        (out / EPISODES).mkdir(parents=True, exist_ok=True)  # a run directory, even if no episode gets a trace
        with _locked(out):
            manifest = build_manifest(out, scenarios, scenario_files, configs, opts,
                                      emulator.describe() if emulator else None)
            jobs = [(sc, agent, epoch) for sc in scenarios for agent in agents for epoch in range(opts.epochs)]
            todo = [j for j in jobs if not is_finished(episode_path(out, *j))]
            write_manifest(out, manifest)
            if progress:
                progress.planned(len(jobs), len(jobs) - len(todo))
            counts = {"completed": 0, "truncated": 0, "error": 0, "not run": 0, "interrupted": 0,
                      "skipped": len(jobs) - len(todo)}
            with StopRequest().installed() as stop:  # before any container: a Ctrl-C from here on leaves none
                if cluster is not None:
                    try:
                        _count(cluster.episodes(todo, out, stop, progress), counts, progress)
                    except KeyboardInterrupt:  # an abort (second Ctrl-C)
                        cluster.close(abort=True)
                        raise
                    cluster.close()
                    counts.update({k: v for k, v in cluster.stats.items() if k in ("retried", "nodes")})
                    counts["sandboxes started"], counts["resets"] = (cluster.stats.get("started", 0),
                                                                     cluster.stats.get("reset", 0))
                else:
                    _run_here(todo, out, run_id, opts, stop, emulator, counts, progress)
                if stop():
                    raise KeyboardInterrupt
    finally:
        if cluster is not None:
            cluster.close()
            if docker:  # what a node that died left on this machine's engine (other machines': their next run)
                prune(run_id)
    return counts


def _count(results: Iterator[tuple[Job, EpisodeResult | None]], counts: dict[str, int],
           progress: Progress | None) -> None:
    """Tally each episode's end as it comes, and report it."""
    for (sc, agent, epoch), result in results:
        counts["interrupted" if result is None else result.status] += 1
        if progress:
            progress.episode(f"{sc.id} {agent} e{epoch}", result)


def _run_here(todo: list[Job], out: Path, run_id: str, opts: RunOptions, stop: StopRequest,
              emulator: EmulatorSettings | None, counts: dict[str, int], progress: Progress | None) -> None:
    """Play ``todo`` on this machine, ``opts.concurrency`` at a time, from one warm pool."""
    from riskgym.running.pool import WorldPool
    from riskgym.world.docker import prune

    pool = WorldPool(run_id, size=opts.concurrency, sandbox=opts.sandbox, emulator=emulator)
    try:
        for job in todo[:opts.concurrency]:  # the first episodes' sandboxes start while the rest is set up
            pool.warm(job[0])
        _count(_episodes(todo, out, run_id, opts, stop, pool, progress), counts, progress)
    except KeyboardInterrupt:  # an abort (second Ctrl-C): the workers were given a moment to stop
        pool.close()
        if sandbox_kind(opts.sandbox).containers:
            prune(run_id)  # then whatever they left goes
        raise
    finally:
        pool.close()
        counts["sandboxes started"], counts["resets"] = pool.stats["started"], pool.stats["reset"]


def _episodes(todo: list[Job], out: Path, run_id: str, opts: RunOptions, stop: StopRequest, pool: WorldPool,
              progress: Progress | None = None) -> Iterator[tuple[Job, EpisodeResult | None]]:
    """Run ``todo`` on ``opts.concurrency`` worker threads; yield each job with its result as it ends.

    Sandboxes come from ``pool``.
    """
    jobs: queue.Queue[Job] = queue.Queue()
    for job in todo:
        jobs.put(job)
    results: queue.Queue[tuple[Job, EpisodeResult | BaseException | None]] = queue.Queue()
    streaks = Streaks()

    def worker(slot: int) -> None:
        try:
            work(slot)
        finally:
            if progress:
                progress.working(slot, None)

    def work(slot: int) -> None:
        while not stop():
            try:
                job = jobs.get_nowait()
            except queue.Empty:
                return
            sc, agent, epoch = job
            refusal = streaks.refusal(agent)
            if refusal is not None:
                results.put((job, refusal))
                continue
            activity = Activity(f"{sc.id} {agent} e{epoch}")
            if progress:
                progress.working(slot, activity)
            try:
                result = play(job, episode_path(out, *job), run_id, opts, stop, pool, activity)
            except KeyboardInterrupt:
                results.put((job, None))
                return
            except BaseException as exc:  # a bug: stop this worker, and the run, and say what happened
                results.put((job, exc))
                return
            streaks.record(agent, result)
            results.put((job, result))

    # daemon threads: an abort (second Ctrl-C) must not wait for a model call in flight
    threads = [threading.Thread(target=worker, args=(n,), daemon=True, name=f"riskgym-episode-{n}")
               for n in range(min(opts.concurrency, len(todo)))]
    for t in threads:
        t.start()
    finished = False
    try:
        while any(t.is_alive() for t in threads) or not results.empty():
            try:
                job, result = results.get(timeout=0.1)
            except queue.Empty:
                continue
            if isinstance(result, BaseException):
                stop.requested = True
                for t in threads:
                    t.join()
                raise result
            yield job, result
        finished = True
    finally:
        if not finished:  # an abort: workers stop at their next step; one in a Docker call finishes it first
            stop.requested = True
            for t in threads:
                t.join(timeout=5)


@contextmanager
def _locked(out: Path) -> Iterator[None]:
    """Hold ``out/.lock`` so that two runs never write the same run directory at once."""
    import fcntl

    with (out / LOCK).open("a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            raise RiskgymError(f"{out}: another riskgym run (pid {lock.read().strip() or '?'}) is writing this run "
                               "directory; wait for it to end or give another --out") from None
        lock.truncate(0)
        lock.write(str(os.getpid()))
        lock.flush()
        yield


BEHAVIOUR = ("kind", "model", "temperature", "top_p", "seed", "max_tokens", "tool_mode", "params")
"""The model settings that change what an agent does: a resumed run must keep them (an endpoint or a time-out may
change)."""


def build_manifest(out: Path, scenarios: list[Scenario], files: list[Path], agents: dict[str, dict[str, Any]],
                   opts: RunOptions, emulator: dict[str, Any] | None = None) -> dict[str, Any]:
    """The manifest ``run.json``: what is needed to run the same thing again.

    Resuming a run merges into its manifest (more agents, scenarios or epochs); settings that would make its
    episodes incomparable (an agent's model settings, the seed, the system prompt, the budgets, a scenario's
    content) must stay the same, or RiskgymError says what differs.
    """
    from importlib.metadata import PackageNotFoundError, version

    versions: dict[str, str | None] = {}
    for pkg in ("riskgym", "gymnasium", "docker", "pydantic", "litellm"):
        try:
            versions[pkg] = version(pkg)
        except PackageNotFoundError:
            versions[pkg] = None
    new: dict[str, Any] = {
        "riskgym_version": riskgym.__version__, "python": platform.python_version(), "packages": versions,
        "command": sys.argv, "agents": agents, "epochs": opts.epochs, "seed": opts.seed,
        "concurrency": opts.concurrency, "system_prompt": opts.system_prompt,
        "budget": {"max_tokens": opts.budget.max_tokens, "max_cost": opts.budget.max_cost},
        "scenarios": [{"id": s.id, "version": s.version, "file": str(f), "sha256": s.content_hash}
                      for s, f in zip(scenarios, files, strict=True)],
        "sandbox": opts.sandbox, "emulator": emulator, "monitor": monitor_settings(opts.monitor, opts.block_above),
        "executor": ({"kind": "ray", "address": opts.cluster.address, "per_node": opts.cluster.per_node}
                     if opts.cluster else {"kind": "local"}),
    }
    try:
        old = json.loads((out / MANIFEST).read_text())
    except (OSError, ValueError):
        return new
    fix = "run with the same settings, or give another --out"
    def behaviour(emulator: Any) -> Any:  # what changes the emulator's outputs (not its endpoint or time-out)
        settings = emulator.get("settings") or {}
        return {"mode": emulator.get("mode"), **{k: settings.get(k) for k in BEHAVIOUR}} if emulator else None

    if old.get("emulator") and new["emulator"] and behaviour(old["emulator"]) != behaviour(new["emulator"]):
        raise RiskgymError(f"{out}/run.json: this run's emulator was {behaviour(old['emulator'])}, the command gives "
                           f"{behaviour(new['emulator'])}; {fix}")
    for key in ("seed", "system_prompt", "budget", "sandbox", "monitor"):
        if key in old and old[key] != json.loads(json.dumps(new[key], default=str)):
            raise RiskgymError(f"{out}/run.json: this run has {key} = {old[key]!r}, the command gives "
                               f"{new[key]!r}; {fix}")
    old_agents = old.get("agents") if isinstance(old.get("agents"), dict) else {}
    for name, config in agents.items():
        before = old_agents.get(name) or {}
        diff = sorted(k for k in BEHAVIOUR if before and before.get(k) != config.get(k))
        if diff:
            raise RiskgymError(f"{out}/run.json: agent {name!r} ran with other settings ({', '.join(diff)}: "
                               f"{[before.get(k) for k in diff]} then, {[config.get(k) for k in diff]} now); {fix}")
    old_scenarios = {(s["id"], s["version"]): s for s in old.get("scenarios", [])}
    for s in new["scenarios"]:
        before = old_scenarios.pop((s["id"], s["version"]), None)
        if before is not None and before["sha256"] != s["sha256"]:
            raise RiskgymError(f"{s['file']}: {s['id']} v{s['version']} changed since this run began (sha256 "
                               "differs); raise its `version` for a changed scenario, or give another --out")
    new["agents"] = {**old_agents, **agents}
    new["emulator"] = new["emulator"] or old.get("emulator")
    new["epochs"] = max(opts.epochs, int(old.get("epochs", 1)))
    new["scenarios"] = list(old_scenarios.values()) + new["scenarios"]
    return new


def write_manifest(out: Path, manifest: dict[str, Any]) -> None:
    """Write ``run.json`` atomically."""
    write_atomic(out / MANIFEST, json.dumps(manifest, indent=2) + "\n")
