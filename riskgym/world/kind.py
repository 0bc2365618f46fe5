"""Part kinds: what a kind of world part is and can do, in one record registered from the kind's own folder.

A kind (``mail``, ``desktop``, ``postgres``) is a folder under ``riskgym/world/`` whose ``kind.py`` registers a
:class:`PartKind`: the model of its ``[[parts]]`` fields, the factory of its parts, and the capabilities the world
needs to know of (it serves a host name, it lives beside the box, it emulates), stated here instead of guessed from
the part's attributes. The world, the runner and the CLI read these records; nothing outside a kind's folder tests
what a part is. :func:`load_kinds` imports every folder's ``kind.py`` and the modules that the ``riskgym.kinds``
entry point group names (a package of one's own), so a new kind touches no other file.

A part is anything with the :class:`Part` methods; :class:`BasePart` gives the ones most parts need nothing for.
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from typing import TYPE_CHECKING, Any, Protocol

from riskgym.core.kinds import Effect
from riskgym.core.parts import PARTS, PartSpec
from riskgym.core.registry import Registry
from riskgym.core.scenario import SandboxSpec, Scenario
from riskgym.core.state import JsonState, Snapshot
from riskgym.errors import ScenarioError

if TYPE_CHECKING:
    from riskgym.world.base import Sandbox


class Part(Protocol):
    """One part of a world (the box, a service, an emulator, a database)."""

    name: str
    kind: str
    replayable: bool
    """A replay runs its tools again (an emulator's recorded outputs are reused instead)."""
    answers_tools: bool
    """It answers every tool call itself, whatever tool (an emulated box), not through the tool's function."""
    joins_network: bool
    """It starts as soon as the box's container runs, in the box's network namespace (beside the box's start)."""

    @property
    def can_reset(self) -> bool:
        """Whether it can be made clean in place for the next episode."""
        ...

    def start(self) -> None:
        """Create and start it. Raises SandboxError."""

    def reset(self) -> None:
        """Make it clean in place."""

    def alive(self) -> bool:
        """Whether it still runs."""
        ...

    def prepare(self, scenario: Scenario) -> None:
        """Seed it for one episode of ``scenario``."""

    def capture(self, scenario: Scenario) -> Snapshot | JsonState:
        """Its state, for the graders."""
        ...

    def happened(self) -> list[Effect]:
        """What was done on it since it was last asked, by whatever route (asked after every step)."""
        ...

    def offer(self, tools: list[dict[str, Any]]) -> None:
        """Be told the tools the agent has this episode (their schemas)."""

    def describe(self) -> dict[str, Any]:
        """What it is (kind, image and id ...), for the trace's header."""
        ...

    def destinations(self) -> list[str]:
        """Network destinations it serves (host names, addresses): the scenario's own, not an escape."""
        ...

    def close(self) -> None:
        """Stop and remove it. Safe to call twice."""


class BasePart:
    """The :class:`Part` methods most parts need nothing for: a part kind's class starts from this one."""

    name = ""
    kind = ""
    replayable = True
    answers_tools = False
    joins_network = False
    """It starts as soon as the box's container runs, in the box's network namespace (beside the box's start)."""
    can_reset = True
    box: Any = None
    """The agent's box, for a kind that lives in or beside it (set by the world before the part starts)."""
    address = ""
    """Its own address in the box's network, for a kind that serves (set by the world before the part starts)."""

    @property
    def hosts(self) -> list[str]:
        """The names it answers to in the box's network (a kind that serves)."""
        return []

    def start(self) -> None:
        """Nothing to start."""

    def reset(self) -> None:
        """Nothing to reset."""

    def alive(self) -> bool:
        """Always."""
        return True

    def prepare(self, scenario: Scenario) -> None:
        """Nothing to seed."""

    def capture(self, scenario: Scenario) -> Snapshot | JsonState:
        """No state."""
        return JsonState()

    def happened(self) -> list[Effect]:
        """Nothing is done on it but through its tools."""
        return []

    def offer(self, tools: list[dict[str, Any]]) -> None:
        """It does not need to know the agent's tools."""

    def configure(self, settings: Any) -> None:
        """No emulator settings to take (a kind that ``emulates`` overrides this)."""

    def describe(self) -> dict[str, Any]:
        """Its kind."""
        return {"kind": self.kind}

    def destinations(self) -> list[str]:
        """Its host names and address: the scenario's own."""
        return [*self.hosts, self.address] if self.address else list(self.hosts)

    def close(self) -> None:
        """Nothing to remove."""


class BesidePart(BasePart):
    """A part in a container of its own beside the box, asked over a channel (a web service, the sinkhole, a database).

    Its kind's ``start`` sets ``container`` and ``_channel`` (``riskgym.world.docker.beside``); ``about`` is how an
    error names it.
    """

    container: Any = None
    _channel: Any = None
    about = "the part"

    def _ask(self, request: dict[str, Any], timeout: float = 30.0) -> dict[str, Any]:
        """Its control loop's reply; SandboxError when it is not started or does not answer."""
        if self._channel is None:
            from riskgym.errors import SandboxError

            raise SandboxError(f"{self.about} is not started")
        return self._channel.call(request, timeout, self.about)  # type: ignore[no-any-return]

    def answers(self, request: dict[str, Any], timeout: float = 5.0) -> bool:
        """Whether its control loop answers ``request``."""
        from riskgym.errors import SandboxError

        try:
            self._ask(request, timeout)
        except SandboxError:
            return False
        return True

    def close(self) -> None:
        """Remove its container. Safe to call twice."""
        from riskgym.world.docker import remove

        remove(self._channel, self.container)
        self._channel = self.container = None


PartFactory = Callable[[PartSpec, dict[str, str]], Part]


@dataclass(frozen=True)
class PartKind:
    """One kind of world part: its fields' model, its factory, and what the world must know of it."""

    name: str
    spec: type[PartSpec]
    """The model of its ``[[parts]]`` fields (registered in :data:`riskgym.core.parts.PARTS`)."""
    factory: PartFactory
    """``factory(spec, labels)``: an unstarted part (``labels``: the run's, for every container it makes)."""
    serves: bool = False
    """It answers in the box's network at an address of its own, by the names its ``hosts`` lists (the world gives
    it the address and writes the names into the box's /etc/hosts)."""
    web: bool = False
    """A web service: the world's ``web`` part routes the web tools' URLs to it."""
    beside_box: bool = False
    """It lives in or beside the agent's box: given it (``part.box``) before it starts."""
    prepared_last: bool = False
    """Seeded after the other parts (a desktop opens their pages)."""
    emulates: bool = False
    """An emulator model answers its tools: given the run's emulator settings (``part.configure``)."""
    real_box: bool = False
    """It runs only beside a real (docker) box."""
    image: str = ""
    """The image its containers run (built from ``containers/<name>/`` by ``riskgym images build``), checked before
    a run that uses it; empty when it runs in the box's own image."""
    self_check: Callable[[], list[tuple[str, str | None]]] | None = None
    """Its conformance checks (``riskgym parts self-check``): ``(name, None when it passed else why)`` each, what the
    graders rely on for the kind, checked on a real world (:mod:`riskgym.world.selfcheck`). Every built-in kind has
    one (``tests/world/test_kind.py`` holds it)."""
    description: str = ""


KINDS: Registry[PartKind] = Registry("world part kind")
"""Every part kind, registered from its own folder (:func:`load_kinds`)."""


def register_kind(kind: PartKind, *, replace: bool = False) -> PartKind:
    """Register a part kind: its record here, its fields' model in :data:`riskgym.core.parts.PARTS`."""
    if PARTS.get(kind.name) is not kind.spec:
        PARTS.register(kind.name, kind.spec, replace=replace)
    return KINDS.register(kind.name, kind, replace=replace)


_loaded = False


def load_kinds() -> None:
    """Import every kind's folder (``riskgym/world/<folder>/kind.py``) and the ``riskgym.kinds`` entry points."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    import riskgym.world as world

    for info in pkgutil.iter_modules(world.__path__):
        if info.ispkg and importlib.util.find_spec(f"riskgym.world.{info.name}.kind") is not None:
            importlib.import_module(f"riskgym.world.{info.name}.kind")
    for entry in metadata.entry_points(group="riskgym.kinds"):
        load_plugin(entry.value.split(":")[0], f"entry point {entry.name}")


def load_plugin(module: str, where: str = "--plugin") -> None:
    """Import an extension's module (it registers its part kinds, tools, checks or monitors as it loads)."""
    try:
        importlib.import_module(module)
    except ImportError as exc:
        raise ScenarioError(f"{where}: cannot import {module!r} ({exc}); is it installed, or on PYTHONPATH?") from None


def images_used(scenarios: list[Scenario]) -> dict[str, list[str]]:
    """The images a run's worlds need (the boxes', and those their parts' kinds run), each with its scenarios."""
    out: dict[str, list[str]] = {}
    for s in scenarios:
        images = {s.sandbox.image} if s.uses_box or any(KINDS[p.kind].real_box for p in s.parts) else set()
        images |= {KINDS[p.kind].image for p in s.parts if KINDS[p.kind].image}
        for image in sorted(images):
            out.setdefault(image, []).append(s.id)
    return dict(sorted(out.items()))



SandboxFactory = Callable[[SandboxSpec, dict[str, str]], "Sandbox"]


@dataclass(frozen=True)
class SandboxKind:
    """One implementation of the agent's box, and what the rest of riskgym must know of it."""

    name: str
    factory: SandboxFactory
    containers: bool = False
    """It is a Docker container: images are checked before a run, dead containers pruned, parts may live beside it
    (a database, the sinkhole), and a cluster ships its images."""
    emulates: bool = False
    """An emulator model answers its tools (it needs the run's emulator settings)."""


SANDBOXES: Registry[SandboxKind] = Registry("sandbox")
"""Sandbox implementations for the box: ``docker`` (real, hardened), ``fake`` (in memory, for tests) and
``emulated`` (an emulator model answers; registered from the emulator's folder)."""


def docker_box(spec: SandboxSpec, labels: dict[str, str]) -> Sandbox:
    """The real box: a hardened DockerSandbox for the spec's image."""
    from riskgym.world.docker import DockerSandbox  # the docker SDK costs ~0.25 s to import

    return DockerSandbox(spec.image, network=spec.network, labels=labels, memory=spec.memory, pids=spec.pids,
                         cpus=spec.cpus, writable=spec.writable if spec.in_place else None)


def fake_box(spec: SandboxSpec, labels: dict[str, str]) -> Sandbox:
    """An in-memory box (no Docker): a tiny command set over in-memory files."""
    from riskgym.world.fake import FakeSandbox

    return FakeSandbox(image=spec.image)


SANDBOXES.register("docker", SandboxKind("docker", docker_box, containers=True))
SANDBOXES.register("fake", SandboxKind("fake", fake_box))


def sandbox_kind(name: str) -> SandboxKind:
    """The record of the sandbox named ``name`` (every kind's folder loaded first: ``emulated`` is the emulator's)."""
    load_kinds()
    return SANDBOXES[name]
