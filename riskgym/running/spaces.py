"""Spaces that really check: an action is a call of an offered tool with arguments its signature accepts."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gymnasium import spaces

from riskgym.errors import ToolCallError
from riskgym.tools import TOOLS, Tool

WORDS = ("notes", "tmp", "data", "readme.txt", "cache", "old", "src", "report.md")


class TextSpace(spaces.Space[str]):
    """Any string of at most ``max_length`` characters (unlike ``spaces.Text``, any Unicode character)."""

    def __init__(self, max_length: int = 1_000_000, seed: int | None = None) -> None:
        super().__init__(shape=None, dtype=None, seed=seed)
        self.max_length = max_length

    @property
    def is_np_flattenable(self) -> bool:
        """Text is not flattenable to a numpy array."""
        return False

    def sample(self, mask: Any = None, probability: Any = None) -> str:
        """A short random word."""
        return str(self.np_random.choice(WORDS))

    def contains(self, x: Any) -> bool:
        """True for a string no longer than ``max_length``."""
        return isinstance(x, str) and len(x) <= self.max_length

    def __repr__(self) -> str:
        return f"TextSpace(max_length={self.max_length})"


class ToolCallSpace(spaces.Space[dict[str, Any]]):
    """Actions: ``{"tool": name, "arguments": {...}}`` for an offered tool, or ``{"final": "answer"}``.

    A tool call may also carry ``"id"``: the model's id for the call, recorded in the trace.
    """

    def __init__(self, tools: Mapping[str, Tool] | tuple[str, ...], seed: int | None = None) -> None:
        super().__init__(shape=None, dtype=None, seed=seed)
        self.offered: dict[str, Tool] = dict(tools) if isinstance(tools, Mapping) else {n: TOOLS[n] for n in tools}
        """The offered tools (names alone are looked up in the registry)."""
        self.tools = tuple(self.offered)

    @property
    def is_np_flattenable(self) -> bool:
        """Tool calls are not flattenable to a numpy array."""
        return False

    def check(self, action: Any) -> tuple[str, dict[str, Any]]:
        """Return (tool, validated arguments), or ("final", {"answer": ...}). Raises ToolCallError naming the fix."""
        if not isinstance(action, dict):
            raise ToolCallError(f"an action must be a dict, got {type(action).__name__}")
        if set(action) == {"final"} and isinstance(action["final"], str):
            return "final", {"answer": action["final"]}
        if set(action) - {"tool", "arguments", "id"} or "tool" not in action:
            raise ToolCallError(f'an action is {{"tool": ..., "arguments": {{...}}}} or {{"final": "..."}}, got '
                                f"keys {sorted(action)}")
        name = action["tool"]
        if name not in self.tools:
            raise ToolCallError(f"unknown tool {name!r}; the tools offered are {', '.join(self.tools)}")
        return name, self.offered[name].validate(action.get("arguments", {}))

    def contains(self, x: Any) -> bool:
        """True for a call of an offered tool with valid arguments, or a final answer."""
        try:
            self.check(x)
        except ToolCallError:
            return False
        return True

    def sample(self, mask: Any = None, probability: Any = None) -> dict[str, Any]:
        """A random call of an offered tool, with random harmless-looking arguments its schema allows.

        The required arguments, and each optional one half of the time: a choice of its ``enum``, a number in its
        bounds, a list of its ``minItems`` items, or a word.
        """
        name = str(self.np_random.choice(self.tools))
        params = self.offered[name].schema["function"]["parameters"]
        required = set(params.get("required", []))
        return {"tool": name, "arguments": {key: self._value(prop) for key, prop in params["properties"].items()
                                            if key in required or self.np_random.integers(2)}}

    def _value(self, prop: dict[str, Any]) -> Any:
        branch: dict[str, Any] = next((p for p in prop.get("anyOf", []) if p.get("type") != "null"), {})
        prop = {**branch, **{k: v for k, v in prop.items() if k != "anyOf"}}
        kind = prop.get("type", "string")
        if "enum" in prop:
            return prop["enum"][int(self.np_random.integers(len(prop["enum"])))]
        if kind == "boolean":
            return bool(self.np_random.integers(2))
        if kind in ("integer", "number"):
            low, high = int(prop.get("minimum", 0)), int(prop.get("maximum", 99))
            return int(self.np_random.integers(low, high + 1))
        if kind == "array":
            return [self._value(prop.get("items", {})) for _ in range(int(prop.get("minItems", 0)))]
        if kind == "object":
            return {}
        return "missing-" + str(self.np_random.choice(WORDS))

    def __repr__(self) -> str:
        return f"ToolCallSpace({', '.join(self.tools)})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ToolCallSpace) and other.tools == self.tools

    __hash__ = spaces.Space.__hash__
