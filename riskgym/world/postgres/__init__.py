"""The ``postgres`` part kind: a real PostgreSQL database in the world (see :mod:`riskgym.world.postgres.part`)."""
