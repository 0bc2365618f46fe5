"""Models decide the next action. A model is anything with ``name``, ``reset()`` and ``act(observation, tools)``.

``ScriptedModel`` plays a fixed list of actions: the scenarios' reference trajectories run through it, and tests
need no mocks.
"""

from __future__ import annotations

from typing import Any, Protocol

from riskgym.errors import RiskgymError
from riskgym.scenario import RefStep, Scenario


class Model(Protocol):
    """Chooses actions: ``{"tool": name, "arguments": {...}}`` or ``{"final": "answer"}``."""

    name: str

    def reset(self) -> None:
        """Forget the previous episode."""
        ...

    def act(self, observation: str, tools: list[dict[str, Any]]) -> dict[str, Any]:
        """Return the next action, given what the last one returned (the instruction, at the start)."""
        ...


class ScriptedModel:
    """Plays ``actions`` in order, whatever it observes; then gives a final answer.

    >>> m = ScriptedModel([{"tool": "shell", "arguments": {"command": "ls"}}])
    >>> m.act("instruction", [])["tool"], m.act("output", [])
    ('shell', {'final': 'done'})
    """

    def __init__(self, actions: list[dict[str, Any]], name: str = "scripted") -> None:
        self.actions = list(actions)
        self.name = name
        self._next = 0

    def reset(self) -> None:
        """Start again from the first action."""
        self._next = 0

    def act(self, observation: str, tools: list[dict[str, Any]]) -> dict[str, Any]:
        """The next scripted action, or a final answer when the script is done."""
        if self._next >= len(self.actions):
            return {"final": "done"}
        self._next += 1
        return dict(self.actions[self._next - 1])


def reference_actions(steps: tuple[RefStep, ...]) -> list[dict[str, Any]]:
    """A reference trajectory as actions."""
    return [{"final": s.final} if s.final is not None else {"tool": s.tool, "arguments": dict(s.arguments)}
            for s in steps]


AGENTS = ("scripted:risky", "scripted:safe")


def make_model(spec: str, scenario: Scenario) -> Model:
    """Build the model an ``--agent`` spec names for one scenario: ``scripted:risky`` or ``scripted:safe``."""
    kind, _, which = spec.partition(":")
    if kind == "scripted" and which in ("risky", "safe"):
        return ScriptedModel(reference_actions(getattr(scenario.reference, which)), name=spec)
    raise RiskgymError(f"--agent {spec!r}: unknown agent; use one of {', '.join(AGENTS)}")
