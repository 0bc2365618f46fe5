"""An episode's world: named parts, built by factories registered by kind, reset in place where they can be.

A world has the part ``box`` (the agent's sandbox, :class:`riskgym.world.base.Sandbox`) and those the scenario's
``[[parts]]`` name: web services (:mod:`riskgym.world.services`), which join the box's network, and with them the
world's ``web`` (their host names, the browser's session). A part is anything with the :class:`Part` methods.
Worlds are pooled by :func:`riskgym.core.scenario.world_key`, a hash of their description
(:mod:`riskgym.running.pool`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Protocol

from riskgym.core.desktop import DesktopSpec
from riskgym.core.emulation import EmulatorSpec
from riskgym.core.kinds import Effect
from riskgym.core.parts import SERVICES, ServiceSpec
from riskgym.core.registry import Registry
from riskgym.core.scenario import PartSpec, SandboxSpec, Scenario, world_key
from riskgym.core.state import JsonState, Snapshot
from riskgym.errors import SandboxError
from riskgym.world.base import Sandbox
from riskgym.world.emulator.emulator import EmulatorSettings
from riskgym.world.emulator.part import EmulatedBox, EmulatorPart
from riskgym.world.services.part import ServicePart
from riskgym.world.services.web import Web


class Part(Protocol):
    """One part of a world (the box, a service, an emulator)."""

    name: str
    kind: str
    replayable: bool

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

    def describe(self) -> dict[str, Any]:
        """What it is (kind, image and id ...), for the trace's header."""
        ...

    def destinations(self) -> list[str]:
        """Network destinations it serves (host names, addresses): the scenario's own, not an escape."""
        ...

    def close(self) -> None:
        """Stop and remove it. Safe to call twice."""


SandboxFactory = Callable[[SandboxSpec, dict[str, str]], Sandbox]
SANDBOXES: Registry[SandboxFactory] = Registry("sandbox")
"""Sandbox implementations for the box: ``docker`` (real, hardened) and ``fake`` (in memory, for tests)."""

PartFactory = Callable[[PartSpec, dict[str, str]], Part]
PART_FACTORIES: Registry[PartFactory] = Registry("world part kind")
"""Part kind -> factory. An environment registers one beside its kind's spec (``riskgym.core.scenario.PARTS``)."""


def docker_box(spec: SandboxSpec, labels: dict[str, str]) -> Sandbox:
    """The real box: a hardened DockerSandbox for the spec's image."""
    from riskgym.world.docker import DockerSandbox  # the docker SDK costs ~0.25 s to import

    return DockerSandbox(spec.image, network=spec.network, labels=labels, memory=spec.memory, pids=spec.pids,
                         cpus=spec.cpus, writable=spec.writable if spec.in_place else None)


def fake_box(spec: SandboxSpec, labels: dict[str, str]) -> Sandbox:
    """An in-memory box (no Docker): a tiny command set over in-memory files."""
    from riskgym.world.fake import FakeSandbox

    return FakeSandbox(image=spec.image)


def emulated_box(spec: SandboxSpec, labels: dict[str, str]) -> Sandbox:
    """A box whose tools an emulator model answers (``--sandbox emulated``): nothing runs, the files are in memory."""
    return EmulatedBox(image=spec.image)


SANDBOXES.register("docker", docker_box)
SANDBOXES.register("fake", fake_box)
SANDBOXES.register("emulated", emulated_box)


class World:
    """The parts of one episode's world, by name; ``box`` is the agent's."""

    def __init__(self, parts: dict[str, Part], key: str = "") -> None:
        self.parts = parts
        self.key = key
        """The description's hash: worlds with the same key are interchangeable."""

    @property
    def box(self) -> Sandbox:
        """The agent's box."""
        return self.parts["box"]  # type: ignore[return-value]

    @property
    def can_reset(self) -> bool:
        """Whether every part can be reset in place."""
        return all(p.can_reset for p in self.parts.values())

    def start(self) -> None:
        """Start every part; if one fails, the started ones are removed.

        The parts that join the box's network (``joins_network``: the services, the sinkhole) start in threads as
        soon as the box's container runs, while its executor starts (a box that does not say when: after it); the
        others after the box, in order.
        """
        box = self.parts["box"]
        joining = [p for name, p in self.parts.items() if name != "box" and getattr(p, "joins_network", False)]
        started: list[Part] = []
        failed: list[BaseException] = []

        def start(part: Part) -> None:
            try:
                part.start()
                started.append(part)
            except BaseException as exc:  # raised in the caller's thread below
                failed.append(exc)

        threads = [threading.Thread(target=start, args=(p,), name=f"riskgym-start-{p.name}") for p in joining]

        def running() -> None:
            for t in threads:
                t.start()

        box.on_running = running  # type: ignore[attr-defined]
        try:
            try:
                box.start()
                started.insert(0, box)
            finally:
                box.on_running = None  # type: ignore[attr-defined]
                for t in threads:
                    if t.ident is None and box in started:
                        t.start()
                    if t.ident is not None:
                        t.join()
            if failed:
                raise failed[0]
            for part in self.parts.values():
                if part is not box and part not in joining:
                    part.start()
                    started.append(part)
        except BaseException:
            for part in started:
                part.close()
            raise

    def reset(self) -> None:
        """Reset every part in place. Raises SandboxError when one cannot be."""
        for part in self.parts.values():
            part.reset()

    def alive(self) -> bool:
        """Whether every part still runs."""
        return all(p.alive() for p in self.parts.values())

    def prepare(self, scenario: Scenario) -> None:
        """Seed every part for an episode of ``scenario``."""
        for part in self.parts.values():
            part.prepare(scenario)

    def capture(self, scenario: Scenario) -> dict[str, Snapshot | JsonState]:
        """Every part's state, by name."""
        return {name: part.capture(scenario) for name, part in self.parts.items()}

    def happened(self, besides: str) -> list[Effect]:
        """What the parts other than ``besides`` saw done on them during a step of its tool.

        A desktop's clicks sent by the shell's ``xdotool``: the parts record what is done on them, whoever did it.
        """
        return [e for name, part in self.parts.items() if name != besides and hasattr(part, "happened")
                for e in part.happened()]

    def describe(self) -> dict[str, dict[str, Any]]:
        """Every part's description, by name (the trace's header records it)."""
        return {name: part.describe() | {"destinations": part.destinations()} for name, part in self.parts.items()}

    def close(self) -> None:
        """Remove every part (each, even when another fails)."""
        errors = []
        for part in reversed(self.parts.values()):  # services before the box whose network they share
            try:
                part.close()
            except Exception as exc:
                errors.append(exc)
        if errors:
            raise errors[0]


def build_world(scenario: Scenario, labels: dict[str, str], sandbox: str = "docker",
                emulator: EmulatorSettings | None = None) -> World:
    """The (unstarted) world a scenario describes: the box from ``[sandbox]``, the other parts from ``[[parts]]``.

    ``emulator``: the run's emulator settings, given to every part that emulates (an emulator, an emulated box).
    """
    if sandbox not in SANDBOXES:
        raise SandboxError(SANDBOXES.unknown(sandbox))
    if not scenario.uses_box and sandbox == "docker":
        sandbox = "fake"  # nothing runs in it and nothing reads it: no container
    box = SANDBOXES[sandbox](scenario.sandbox, labels)
    parts: dict[str, Part] = {"box": box}
    services = []
    for spec in scenario.parts:
        if spec.kind not in PART_FACTORIES:
            raise SandboxError(f"scenario {scenario.id}: parts: no factory for part kind {spec.kind!r}; register one "
                               "in riskgym.world.world.PART_FACTORIES")
        part = PART_FACTORIES[spec.kind](spec, labels)
        part.name = spec.name
        if hasattr(part, "box"):  # a part that lives in or beside the box (a service, the desktop)
            part.box = box
        parts[spec.name] = part
        if isinstance(part, ServicePart):
            services.append(part)
    if services:  # the services join the box's network: it is told their names before it starts
        if "web" in parts:
            raise SandboxError(f"scenario {scenario.id}: parts: \"web\" is the name of the world's web; rename it")
        parts["web"] = Web(services, box)
    if sandbox == "docker" and not scenario.sandbox.network:
        from riskgym.world.sinkhole.part import RESOLVER, SinkholePart, refused

        why = refused()
        if not why:
            sinkhole = SinkholePart(labels)
            sinkhole.box = box
            parts["sinkhole"] = sinkhole
            box.resolver = RESOLVER  # type: ignore[attr-defined]
        box.outside = why or f"its nameserver {RESOLVER} answers every name"  # type: ignore[attr-defined]
    # the desktop opens the services' pages: it is prepared after them
    for name in [n for n, p in parts.items() if getattr(p, "kind", "") == "desktop"]:
        parts[name] = parts.pop(name)
    for part in parts.values():
        if emulator is not None and hasattr(part, "configure"):
            part.configure(emulator)
    return World(parts, key=world_key(scenario))


def needs_emulator(scenario: Scenario, sandbox: str) -> bool:
    """Whether the scenario's world, with this box, has tools that an emulator model answers."""
    return sandbox == "emulated" or any(isinstance(p, EmulatorSpec) for p in scenario.parts)


def service(spec: PartSpec, labels: dict[str, str]) -> Part:
    """A web service (mail, social, bank, shop, wiki, site) beside the box."""
    assert isinstance(spec, ServiceSpec)
    return ServicePart(spec, labels)


def emulator_part(spec: PartSpec, labels: dict[str, str]) -> Part:
    """Toolkits run by an emulator model."""
    assert isinstance(spec, EmulatorSpec)
    return EmulatorPart(spec, labels)


for _kind in SERVICES:
    PART_FACTORIES.register(_kind, service)
PART_FACTORIES.register("emulator", emulator_part)


def desktop_part(spec: PartSpec, labels: dict[str, str]) -> Part:
    """A desktop (an X session, a browser, apps) in the box."""
    from riskgym.world.desktop.part import DesktopPart

    assert isinstance(spec, DesktopSpec)
    return DesktopPart(spec, labels)


PART_FACTORIES.register("desktop", desktop_part)
