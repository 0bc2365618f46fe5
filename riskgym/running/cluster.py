"""Episodes spread over a Ray cluster (``riskgym run --executor ray``), with a local run's guarantees.

The driver (the machine that runs ``riskgym run``) keeps the run directory, as for a local run; the cluster's Docker
nodes play the episodes. On each node one :class:`riskgym.running.node.Node` actor keeps a warm pool and plays as
many episodes at once as that node's CPUs and memory allow (or ``--concurrency`` each). An episode is sent to a node
with a free slot, played into the node's scratch folder and sent back whole; the driver checks its hash chain and
seal, then moves it into ``episodes/``. So:

- nothing is lost: an episode whose worker or node dies is sent again (``RETRIES`` times at most), a trace that does
  not verify too; a run that cannot finish an episode ends it "error", which a resumed run redoes;
- nothing is duplicated: each episode's trace has one name (:func:`riskgym.rundir.episode_path`) and is moved into
  place once, whole; a second copy of an episode already in place is dropped;
- ``grade``, ``report``, ``replay`` and resuming read the run directory only, as for a local run.

A node must carry every image the run needs with the driver's recipe hash: built there from the same recipe
(``riskgym images build``), or loaded from the archive the driver ships (``--ship-images``); else it is refused.
Ray is imported here only: a local run never loads this module.
"""

from __future__ import annotations

import logging
import os
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import riskgym
from riskgym.core.files import write_atomic
from riskgym.core.integrity import verify_trace
from riskgym.core.scenario import Scenario
from riskgym.errors import RiskgymError
from riskgym.rundir import episode_path
from riskgym.running.agent import Activity, EpisodeResult
from riskgym.running.node import RESOURCE, Node, ray_defaults, slots_of
from riskgym.running.options import RunOptions
from riskgym.running.playing import Job, Progress, Streaks
from riskgym.world.kind import images_used, sandbox_kind

RETRIES = 3
"""How many times an episode is sent again after its worker or node died (or its trace arrived broken); also how
many times a node's actor is restarted."""
NAMESPACE = "riskgym"


class LostError(Exception):
    """An episode's result did not arrive whole (its worker or node died, or its trace does not verify)."""


@dataclass
class Member:
    """One node's actor, as the driver sees it."""

    actor: Any
    node: str
    host: str = ""
    slots: int = 0
    busy: int = 0
    probe: Any = None
    """While a ``ready()`` call is out (after the actor died under an episode): no episode is sent."""
    info: dict[str, Any] = field(default_factory=dict)


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise RiskgymError("--executor ray: Ray is not installed here; install riskgym[ray] (pip install "
                           "'riskgym[ray]') on this machine and on every node") from None
    return ray


class Cluster:
    """The run's share of a Ray cluster: one member per accepted node. ``episodes()`` plays them; ``close()`` ends."""

    def __init__(self, ray: Any, members: list[Member], run_id: str, say: Callable[[str], None]) -> None:
        self.ray, self.members, self.run_id, self.say = ray, members, run_id, say
        self.stats: dict[str, int] = {"retried": 0, "nodes": len(members)}

    @classmethod
    def join(cls, scenarios: list[Scenario], opts: RunOptions, run_id: str,
             say: Callable[[str], None] = print) -> Cluster:
        """Connect to the cluster (or start one on this machine), and start a member on every fit node.

        Raises RiskgymError when no cluster answers or no node is fit, before anything is written.
        """
        ray = _ray()
        ray_defaults()
        assert opts.cluster is not None
        address, docker = opts.cluster.address, sandbox_kind(opts.sandbox).containers
        if address and address != "auto":
            _answers(address)
        try:
            if address:
                ray.init(address=address, namespace=NAMESPACE, log_to_driver=False, logging_level=logging.ERROR)
            else:  # a cluster of this machine alone
                ray.init(namespace=NAMESPACE, log_to_driver=False, logging_level=logging.ERROR,
                         include_dashboard=False, resources={RESOURCE: 1} if docker else None)
        except ConnectionError as exc:
            raise RiskgymError(f"--ray-address {address}: no Ray cluster answers there ({exc}); start one with "
                               "`riskgym node start --head`, or leave --ray-address out to run on this machine"
                               ) from None
        try:
            return cls._members(ray, scenarios, opts, run_id, say)
        except BaseException:
            ray.shutdown()
            raise

    @classmethod
    def _members(cls, ray: Any, scenarios: list[Scenario], opts: RunOptions, run_id: str,
                 say: Callable[[str], None]) -> Cluster:
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        docker = sandbox_kind(opts.sandbox).containers
        nodes = [n for n in ray.nodes() if n.get("Alive") and (not docker or n["Resources"].get(RESOURCE, 0) > 0)]
        if not nodes:
            raise RiskgymError(f"the Ray cluster has no node with a Docker Engine (resource {RESOURCE}); start each "
                               "node with `riskgym node start`, which checks the engine and the images")
        images = _images(scenarios) if docker else {}
        env = {name: os.environ[name] for name in _key_names(opts) if name in os.environ}
        actor_class = ray.remote(Node)
        members = [Member(actor_class.options(
            num_cpus=0, resources={RESOURCE: 0.001} if docker else {}, max_restarts=RETRIES, max_concurrency=64,
            scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False),
        ).remote(run_id, scenarios, opts, images, env), n["NodeID"], n.get("NodeManagerAddress", "?")) for n in nodes]
        refused, accepted = [], []
        for m in members:
            reason = cls._admit(ray, m, images, opts.cluster.ship_images if opts.cluster else False)
            if reason:
                refused.append(f"node {m.host}: {reason}")
                say(f"riskgym: {refused[-1]}; refused")
                ray.kill(m.actor)
            else:
                accepted.append(m)
        if not accepted:
            raise RiskgymError(f"no node of the Ray cluster can run this run ({'; '.join(refused)})")
        for m in accepted:
            say(f"ray: node {m.host} takes {m.slots} episodes at once")
        return cls(ray, accepted, run_id, say)

    @staticmethod
    def _admit(ray: Any, m: Member, images: dict[str, str], ship: bool) -> str | None:
        """Why this node cannot run the run (None: it can): its riskgym, or its images (shipped first if asked)."""
        try:
            m.info = ray.get(m.actor.ready.remote(), timeout=300)
        except Exception as exc:  # its actor could not start there (e.g. no Docker Engine answers)
            return f"its worker did not start ({' '.join(str(exc).split())[-300:]})"
        m.slots, m.host = m.info["slots"], f"{m.info['host']} ({m.node[:8]})"
        if m.info["riskgym"] != riskgym.__version__:
            return f"it has riskgym {m.info['riskgym']}, this machine {riskgym.__version__}: install the same there"
        differs = m.info["differs"]
        for tag in sorted(differs) if ship else ():
            differs = ray.get(m.actor.load_images.remote(ray.put(_archive(tag))), timeout=1800)
        for tag, recipe in sorted(differs.items()):
            there = "it lacks it" if recipe is None else f"its recipe is {recipe} there"
            return (f"image {tag}: {there}, {images[tag]} here; run `riskgym images build` there, or give "
                    "--ship-images")
        return None

    def episodes(self, todo: list[Job], out: Path, stop: Callable[[], bool],
                 progress: Progress | None = None) -> Iterator[tuple[Job, EpisodeResult | None]]:
        """Play ``todo`` over the members; yield each job with its result as its trace lands in ``out``.

        ``progress`` gets a live line for each episode in flight: which node plays it, for how long.
        """
        ray = self.ray
        waiting: deque[Job] = deque(todo)
        flying: dict[Any, tuple[Job, Member, int]] = {}
        sent: dict[Path, int] = {}  # by the episode's trace path: a job's one name
        landed: set[Path] = set()
        streaks, stopping = Streaks(), False
        while waiting or flying:
            if stop() and not stopping:
                stopping = True
                for m in self.members:
                    m.actor.stop.remote()
            if not self.members and waiting:
                for job in waiting:
                    yield job, EpisodeResult("not run", "no node of the Ray cluster is left (each one died or was "
                                                        "given up); run the same command again to resume")
                waiting.clear()
            while waiting and not stopping:
                free = [m for m in self.members if m.probe is None and m.busy < m.slots]
                if not free:
                    break
                job = waiting.popleft()
                refusal = streaks.refusal(job[1])
                if refusal is not None:
                    yield job, refusal
                    continue
                m = min(free, key=lambda x: x.busy / x.slots)
                key = episode_path(out, *job)
                sent[key] = sent.get(key, 0) + 1
                line = sum(sent.values())  # the live line's key: one per sending
                flying[m.actor.play.remote(job)] = (job, m, line)
                m.busy += 1
                if progress:
                    progress.working(line, Activity(f"{job[0].id} {job[1]} e{job[2]}", doing=f"on node {m.host}"))
            probes = {m.probe: m for m in self.members if m.probe is not None}
            if not flying and not probes:
                continue
            done, _ = ray.wait([*flying, *probes], num_returns=1, timeout=0.2)
            for ref in done:
                if ref in probes:
                    self._probed(probes[ref])
                    continue
                job, m, line = flying.pop(ref)
                m.busy -= 1
                if progress:
                    progress.working(line, None)
                try:
                    result = self._land(ref, job, out, landed)
                except LostError as exc:
                    times = sent[episode_path(out, *job)]
                    if times > RETRIES:
                        yield job, EpisodeResult("error", f"lost {times} times on the Ray cluster (last: {exc}); "
                                                          "a resumed run plays it again")
                    else:
                        self.say(f"riskgym: {job[0].id} {job[1]} e{job[2]} was lost on node {m.host} ({exc}); "
                                 "sending it again")
                        self.stats["retried"] += 1
                        waiting.appendleft(job)
                    if m.probe is None and m in self.members:
                        m.probe = m.actor.ready.options(max_task_retries=-1).remote()
                    continue
                if result is not None:
                    streaks.record(job[1], result)
                yield job, result

    def _land(self, ref: Any, job: Job, out: Path, landed: set[Path]) -> EpisodeResult | None:
        """The episode's result, its trace (and images) moved into the run directory once verified; or LostError."""
        ray = self.ray
        try:
            result, data, blobs = ray.get(ref)
        except (ray.exceptions.RayActorError, ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError,
                ray.exceptions.ObjectLostError, ray.exceptions.OwnerDiedError,
                ray.exceptions.LocalRayletDiedError) as exc:
            raise LostError(type(exc).__name__) from None
        path = episode_path(out, *job)
        if data is None or path in landed:  # nothing recorded (no sandbox), or a second copy: the first stays
            return result
        land(path, data, blobs)
        landed.add(path)
        return result

    def _probed(self, m: Member) -> None:
        """A member that lost an episode answered again (restarted), or is gone for good."""
        ray = self.ray
        try:
            m.info = ray.get(m.probe)
            m.slots = m.info["slots"]
            m.probe = None
        except Exception:
            self.members.remove(m)
            self.say(f"riskgym: node {m.host} is gone; its episodes go to the other nodes")
            self._forget(m.node)

    def _forget(self, node: str) -> None:
        """Free the model slots a gone node held."""
        for slots in slots_of(self.run_id):
            self.ray.get(slots.forget.remote(node))

    def close(self, abort: bool = False) -> None:
        """End every member (their pools: the run's containers on each node), the model slots, the connection.

        ``abort`` (a second Ctrl-C): kill the members at once; each node's next run removes what they left. Safe to
        call twice.
        """
        ray = self.ray
        if not ray.is_initialized():
            return
        if abort:
            for m in self.members:
                ray.kill(m.actor)
            self.members = []
        closing = {m.actor.close.remote(): m for m in self.members}
        try:
            done, _ = ray.wait(list(closing), num_returns=len(closing), timeout=120) if closing else ([], [])
            for ref in done:
                try:
                    for k, v in ray.get(ref).items():
                        self.stats[k] = self.stats.get(k, 0) + v
                except Exception:  # a member that died meanwhile: its node's next run prunes what it left
                    pass
            for slots in slots_of(self.run_id):
                ray.kill(slots)
        finally:
            ray.shutdown()


def land(path: Path, data: bytes, blobs: dict[str, bytes]) -> None:
    """Put an arrived trace (and its images) at ``path`` once its chain and seal verify; else LostError, nothing."""
    for name, blob in blobs.items():
        target = path.parent / "blobs" / name
        if not target.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(target, blob)
    path.parent.mkdir(parents=True, exist_ok=True)
    incoming = path.with_name(f".{path.name}.incoming")
    write_atomic(incoming, data)
    check = verify_trace(incoming)
    if not check.ok:
        incoming.unlink(missing_ok=True)
        raise LostError(f"its trace does not verify: {check.problems[0]}")
    incoming.replace(path)


def _answers(address: str) -> None:
    """RiskgymError unless something listens at the cluster's address (``ray.init`` would wait for it for ever)."""
    import socket

    host, _, port = address.removeprefix("ray://").rpartition(":")
    try:
        socket.create_connection((host or "127.0.0.1", int(port)), timeout=5).close()
    except ValueError:
        raise RiskgymError(f"--ray-address {address}: give HOST:PORT, the head node's address (ray start "
                           "printed it), e.g. 10.0.0.5:6379") from None
    except OSError as exc:
        raise RiskgymError(f"--ray-address {address}: no Ray cluster answers there ({exc.strerror or exc}); start "
                           "one with `riskgym node start --head`, or leave --ray-address out to run on this "
                           "machine") from None


def _images(scenarios: list[Scenario]) -> dict[str, str]:
    """The images the run needs, with the recipe hash of each on this machine (the reference for every node)."""
    from riskgym.world.images import image_recipe

    return {tag: image_recipe(tag) or "" for tag in images_used(scenarios)}


def _archive(tag: str) -> bytes:
    """``docker save`` of an image on this machine, to ship to a node that lacks it."""
    from riskgym.world.docker import docker_client

    return b"".join(docker_client().api.get_image(tag))


def _key_names(opts: RunOptions) -> set[str]:
    """The environment variables that hold the run's models' API keys (sent to each node, which has not got them)."""
    names = {c.api_key_env for c in opts.models.values() if c.api_key_env}
    for overrides in (opts.overrides, opts.emulator_overrides):
        if overrides.get("api_key_env"):
            names.add(overrides["api_key_env"])
    return names
