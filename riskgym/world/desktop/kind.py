"""The ``desktop`` kind: an X session, a browser and apps in the agent's box (its image: riskgym/desktop)."""

from __future__ import annotations

from riskgym.core.desktop import DesktopSpec
from riskgym.core.parts import PartSpec
from riskgym.world.kind import Part, PartKind, register_kind


def desktop_part(spec: PartSpec, labels: dict[str, str]) -> Part:
    """A desktop (an X session, a browser, apps) in the box."""
    from riskgym.world.desktop.part import DesktopPart

    assert isinstance(spec, DesktopSpec)
    return DesktopPart(spec, labels)


def self_check() -> list[tuple[str, str | None]]:
    """A desktop and the page it opens: a screenshot of the set size, a click and typed text recorded, a reset."""
    from riskgym.world.desktop.conformance import run

    return run()


register_kind(PartKind("desktop", DesktopSpec, desktop_part, beside_box=True, prepared_last=True, real_box=True,
                       self_check=self_check, description="an X session, a browser and apps in the box"))
