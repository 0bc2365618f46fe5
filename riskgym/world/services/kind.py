"""The web service kinds: ``mail``, ``social``, ``bank``, ``shop``, ``wiki``, ``site``.

Each is a hardened container beside the box, at an address of its own in the box's network, that the web tools
reach through the world's web.
"""

from __future__ import annotations

from collections.abc import Callable

from riskgym.core.parts import SERVICES, PartSpec, ServiceSpec
from riskgym.world.kind import Part, PartKind, register_kind
from riskgym.world.services.part import ServicePart


def service(spec: PartSpec, labels: dict[str, str]) -> Part:
    """A web service (mail, social, bank, shop, wiki, site) beside the box."""
    assert isinstance(spec, ServiceSpec)
    return ServicePart(spec, labels)


def self_check(kind: str) -> Callable[[], list[tuple[str, str | None]]]:
    """The kind's self-check: a service of that kind beside a box, reached by name, its records read, reset."""

    def check() -> list[tuple[str, str | None]]:
        from riskgym.world.services.conformance import run

        return run(kind)

    return check


for _kind, _spec in SERVICES.items():
    register_kind(PartKind(_kind, _spec, service, serves=True, web=True, beside_box=True,
                           self_check=self_check(_kind), description=(_spec.__doc__ or "").split("\n")[0]))
