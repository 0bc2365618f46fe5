"""An episode's world: named parts, built by factories registered by kind, reset in place where they can be.

A world has the part ``box`` (the agent's sandbox, :class:`riskgym.world.base.Sandbox`) and those the scenario's
``[[parts]]`` name, each made by its kind (:mod:`riskgym.world.kind`); with web services, the world's ``web`` (their
host names, the browser's session). A part is anything with the :class:`~riskgym.world.kind.Part` methods.
Worlds are pooled by :func:`riskgym.core.scenario.world_key`, a hash of their description
(:mod:`riskgym.running.pool`).
"""

from __future__ import annotations

import threading
from typing import Any

from riskgym.core.kinds import Effect
from riskgym.core.scenario import Scenario, world_key
from riskgym.core.state import JsonState, Snapshot
from riskgym.errors import SandboxError
from riskgym.world.base import Sandbox
from riskgym.world.emulator.emulator import EmulatorSettings
from riskgym.world.kind import KINDS, SANDBOXES, Part, PartKind, SandboxKind, load_kinds, sandbox_kind
from riskgym.world.services.web import Web

__all__ = ["KINDS", "SANDBOXES", "Part", "PartKind", "SandboxKind", "World", "build_world", "needs_emulator"]


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

    def part_for(self, backend: str) -> Part | None:
        """The part a tool of ``backend`` runs on: the part of that name, else the one part of that kind."""
        if backend in self.parts:
            return self.parts[backend]
        of_kind = [p for p in self.parts.values() if p.kind == backend]
        return of_kind[0] if len(of_kind) == 1 else None

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
        joining = [p for name, p in self.parts.items() if name != "box" and p.joins_network]
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
        return [e for name, part in self.parts.items() if name != besides for e in part.happened()]

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

    Each part is made by its kind's factory and given what its kind says it needs (:class:`PartKind`): the box, an
    address and host names in the box's network, the run's emulator settings. ``emulator``: those settings.
    """
    load_kinds()
    if sandbox not in SANDBOXES:
        raise SandboxError(SANDBOXES.unknown(sandbox))
    beside_real = any(KINDS[p.kind].real_box for p in scenario.parts if p.kind in KINDS)
    if not scenario.uses_box and sandbox_kind(sandbox).containers and not beside_real:
        sandbox = "fake"  # nothing runs in it and nothing reads it (and no part lives beside it): no container
    box = sandbox_kind(sandbox).factory(scenario.sandbox, labels)
    parts: dict[str, Part] = {"box": box}
    kinds: dict[str, PartKind] = {}
    for spec in scenario.parts:
        if spec.kind not in KINDS:
            raise SandboxError(f"scenario {scenario.id}: parts: {KINDS.unknown(spec.kind)}; register it "
                               "(riskgym.world.kind.register_kind) or load its module (riskgym run --plugin MODULE)")
        kind = kinds[spec.name] = KINDS[spec.kind]
        part = kind.factory(spec, labels)
        part.name = spec.name
        if kind.beside_box:
            part.box = box  # type: ignore[attr-defined]
        parts[spec.name] = part
    serving = [p for name, p in parts.items() if name in kinds and kinds[name].serves]
    for n, part in enumerate(serving):  # each at an address of its own in the box's network, named in its hosts
        part.address = f"127.0.0.{FIRST_ADDRESS + n}"  # type: ignore[attr-defined]
    box.hosts = {host: p.address for p in serving for host in p.hosts}  # type: ignore[attr-defined]
    services = [p for name, p in parts.items() if name in kinds and kinds[name].web]
    if services:  # the web tools' backend: URLs to the services
        if "web" in parts:
            raise SandboxError(f"scenario {scenario.id}: parts: \"web\" is the name of the world's web; rename it")
        parts["web"] = Web(services, box)  # type: ignore[arg-type]
    if sandbox_kind(sandbox).containers and not scenario.sandbox.network:
        from riskgym.world.sinkhole.part import RESOLVER, SinkholePart, refused

        why = refused()
        if not why:
            sinkhole = SinkholePart(labels)
            sinkhole.box = box
            parts["sinkhole"] = sinkhole
            box.resolver = RESOLVER  # type: ignore[attr-defined]
        box.outside = why or f"its nameserver {RESOLVER} answers every name"  # type: ignore[attr-defined]
    for name in [n for n in kinds if kinds[n].prepared_last]:  # seeded after the parts whose pages it opens
        parts[name] = parts.pop(name)
    if emulator is not None:
        for name, part in parts.items():
            if (name in kinds and kinds[name].emulates) or part.answers_tools:
                part.configure(emulator)  # type: ignore[attr-defined]
    return World(parts, key=world_key(scenario))


def needs_emulator(scenario: Scenario, sandbox: str) -> bool:
    """Whether the scenario's world, with this box, has tools that an emulator model answers."""
    load_kinds()
    return sandbox_kind(sandbox).emulates or any(KINDS[p.kind].emulates for p in scenario.parts if p.kind in KINDS)


FIRST_ADDRESS = 2
"""The parts that serve get 127.0.0.2, .3, ... in the box's network namespace."""
