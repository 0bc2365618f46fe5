"""The ``emulator`` kind: toolkits whose calls an emulator model answers (ToolEmu's way)."""

from __future__ import annotations

from riskgym.core.emulation import EmulatorSpec
from riskgym.core.parts import PartSpec
from riskgym.core.scenario import SandboxSpec
from riskgym.world.base import Sandbox
from riskgym.world.emulator.part import EmulatedBox, EmulatorPart
from riskgym.world.kind import SANDBOXES, Part, PartKind, SandboxKind, register_kind


def emulator_part(spec: PartSpec, labels: dict[str, str]) -> Part:
    """Toolkits run by an emulator model."""
    assert isinstance(spec, EmulatorSpec)
    return EmulatorPart(spec, labels)


def self_check() -> list[tuple[str, str | None]]:
    """Emulated calls answered by a canned model: the model's observation, recorded, an invalid reply not taken."""
    from riskgym.world.emulator.conformance import run

    return run()


register_kind(PartKind("emulator", EmulatorSpec, emulator_part, emulates=True, self_check=self_check,
                       description="toolkits an emulator model answers"))


def emulated_box(spec: SandboxSpec, labels: dict[str, str]) -> Sandbox:
    """A box whose tools an emulator model answers (``--sandbox emulated``): nothing runs, the files are in memory."""
    return EmulatedBox(image=spec.image)


SANDBOXES.register("emulated", SandboxKind("emulated", emulated_box, emulates=True))
