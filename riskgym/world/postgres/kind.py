"""The ``postgres`` kind's record: Debian's PostgreSQL beside the box, reachable by its host name."""

from __future__ import annotations

from riskgym.core.parts import PartSpec
from riskgym.world.kind import Part, PartKind, register_kind
from riskgym.world.postgres.spec import PostgresSpec


def postgres_part(spec: PartSpec, labels: dict[str, str]) -> Part:
    """A PostgreSQL server beside the box."""
    from riskgym.world.postgres.part import PostgresPart

    assert isinstance(spec, PostgresSpec)
    return PostgresPart(spec, labels)


def self_check() -> list[tuple[str, str | None]]:
    """A server seeded, reached from the box by psql and the sql tool, its changes seen, and reset in place."""
    from riskgym.world.postgres.conformance import run

    return run()


register_kind(PartKind("postgres", PostgresSpec, postgres_part, serves=True, beside_box=True, real_box=True,
                       image="riskgym/postgres", self_check=self_check,
                       description="Debian's PostgreSQL beside the box (psql in the box, the sql tool)"))
