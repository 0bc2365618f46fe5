"""The ``emulator`` kind: toolkits whose calls an emulator model answers (ToolEmu's way)."""

from __future__ import annotations

from riskgym.core.emulation import EmulatorSpec
from riskgym.core.parts import PartSpec
from riskgym.world.emulator.part import EmulatorPart
from riskgym.world.kind import Part, PartKind, register_kind


def emulator_part(spec: PartSpec, labels: dict[str, str]) -> Part:
    """Toolkits run by an emulator model."""
    assert isinstance(spec, EmulatorSpec)
    return EmulatorPart(spec, labels)


register_kind(PartKind("emulator", EmulatorSpec, emulator_part, emulates=True,
                       description="toolkits an emulator model answers"))
