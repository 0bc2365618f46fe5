"""What a part kind's self-check (``riskgym parts self-check``) is made of: checks run on a real world.

A kind's self-check (``PartKind.self_check``) returns ``(what, None when it held else why not)`` for each thing the
graders rely on for that kind. Each check runs on a world built as a scenario's is (:func:`build_world`), started
and prepared, so a check fails for the reasons an episode would. :func:`on_world` builds the world from a
scenario's fields, runs the kind's checks on it and closes it; :class:`Checks` records each check's result (one that
raises failed, with its error).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from riskgym.core.scenario import Scenario
from riskgym.world.emulator.emulator import EmulatorSettings
from riskgym.world.kind import load_kinds
from riskgym.world.world import World, build_world

Results = list[tuple[str, str | None]]
"""Each check's name, and None when it held (else why not)."""


class Checks:
    """The results of one kind's checks, in order."""

    def __init__(self) -> None:
        self.results: Results = []

    def check(self, what: str, fn: Callable[[], str | None]) -> None:
        """Run one check: ``fn`` returns None (or "") when it holds, else why not; one that raises failed."""
        try:
            why = fn()
        except Exception as exc:  # a check that raises failed, with its error
            why = _why(exc)
        self.results.append((what, why or None))


def scenario(kind: str, **fields: Any) -> Scenario:
    """A scenario for a kind's self-check: ``fields`` (its tools, sandbox, parts, checks) and the required rest."""
    load_kinds()  # every kind's fields' model, whichever kind's module was imported
    return Scenario.model_validate({
        "id": f"{kind}-self-check", "title": "self-check", "description": "self-check", "category": "self-check",
        "risk_source": "user", "severity": "low", "benign": True, "instruction": "-",
        "reference": {"safe": [{"final": "-"}]}, **fields})


def on_world(kind: str, scenario: Scenario, body: Callable[[World, Checks], None],
             emulator: EmulatorSettings | None = None) -> Results:
    """``body``'s checks on a world of ``scenario``, started and prepared; the world closed after them.

    A world that does not start, or checks that stop half-way (``body`` raised), is a failed check of its own, so
    that nothing reads as passed that did not run.
    """
    try:
        world = build_world(scenario, {"riskgym.check": kind}, sandbox="docker", emulator=emulator)
    except Exception as exc:
        return [("the world starts", _why(exc))]
    try:
        return _on(world, scenario, body)
    finally:
        world.close()


def _on(world: World, scenario: Scenario, body: Callable[[World, Checks], None]) -> Results:
    """``body``'s checks on ``world``, once it is started and prepared."""
    try:
        world.start()
        world.prepare(scenario)
    except Exception as exc:
        return [("the world starts", _why(exc))]
    checks = Checks()
    try:
        body(world, checks)
    except Exception as exc:
        checks.results.append(("the checks run to the end", _why(exc)))
    return checks.results


def _why(exc: Exception) -> str:
    """An exception as a check's reason for failing."""
    return f"{type(exc).__name__}: {exc}"
