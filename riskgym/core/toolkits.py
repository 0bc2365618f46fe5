"""Toolkit specifications: tools an LM emulator runs, with typed parameters, returns and exceptions (ToolEmu's).

The emulator is :mod:`riskgym.world.emulator`.
A toolkit is read from ToolEmu's JSON as it is (a list of toolkits, or one), or from TOML (``[[toolkits]]`` tables
with the same fields). The agent sees each tool by its full name, the toolkit's name and the tool's
(``TodoistDeleteTask``), as in ToolEmu. A tool may declare the effect it has (``effect = "delete"``, ``target`` the
parameter that names what it acts on), so that intention tripwires and the leak graph work on emulated calls;
ToolEmu's files have none, so ``scenarios/toolkits/toolemu-effects.toml`` adds them to its 38 toolkits.

>>> kit = TOOLKITS["Todoist"]
>>> tool = kit.tool("TodoistDeleteTask")
>>> tool.effect, tool.target, [p.name for p in tool.parameters]
('delete', 'task_id', ['task_id'])
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from riskgym.core.registry import Registry
from riskgym.errors import ScenarioError, field_path

JsonType = Literal["string", "integer", "number", "boolean", "array", "object"]


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Param(_Spec):
    """One parameter of a tool."""

    name: str
    type: JsonType
    description: str = ""
    required: bool = False


class Return(_Spec):
    """One field of a tool's output."""

    name: str
    type: JsonType
    description: str = ""


class ToolException(_Spec):
    """An exception a tool raises, and when (a call that violates it returns ``{"error": ...}``)."""

    name: str
    description: str = ""


class KitTool(_Spec):
    """One tool of a toolkit."""

    name: str
    summary: str
    parameters: tuple[Param, ...] = ()
    returns: tuple[Return, ...] = ()
    exceptions: tuple[ToolException, ...] = ()
    effect: str | None = None
    """What a call does (a name in :data:`riskgym.core.kinds.EFFECTS`): delete, email, transfer, control, ..."""
    target: str | None = None
    """The parameter whose value names what the effect acts on (``task_id``, ``to``)."""

    def arguments_schema(self) -> dict[str, Any]:
        """The parameters as a JSON Schema object (the agent's tool spec)."""
        props = {p.name: {"type": p.type, "description": p.description} for p in self.parameters}
        return {"type": "object", "properties": props, "required": [p.name for p in self.parameters if p.required]}


class Toolkit(_Spec):
    """A toolkit: its tools, and what it is for (ToolEmu's fields; ``*_for_human`` ones are kept as they are)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    name: str = Field(alias="toolkit")
    category: str = ""
    name_for_model: str = ""
    description_for_model: str = ""
    name_for_human: str = ""
    description_for_human: str = ""
    tools: tuple[KitTool, ...]
    source: str = ""
    """Where it comes from (its file), for attribution."""

    def full_name(self, tool: KitTool) -> str:
        """The name the agent calls: the toolkit's and the tool's (``TerminalExecute``)."""
        return f"{self.name_for_model or self.name}{tool.name}"

    def tool(self, full_name: str) -> KitTool:
        """One tool by its full name. Raises KeyError."""
        for t in self.tools:
            if self.full_name(t) == full_name:
                return t
        raise KeyError(f"toolkit {self.name} has no tool {full_name!r}")

    @property
    def tool_names(self) -> list[str]:
        """Every tool's full name."""
        return [self.full_name(t) for t in self.tools]

    @property
    def digest(self) -> str:
        """A hash of the spec (the emulator's cache key has it: a changed spec is emulated again)."""
        return hashlib.sha256(self.model_dump_json().encode()).hexdigest()[:16]


PLAIN = {"string": "ok", "integer": 1, "number": 1.0, "boolean": True, "array": [], "object": {}}
"""A plain value of each JSON type: what fills a tool's output where nobody wrote one."""


def plain_output(returns: list[dict[str, Any]]) -> dict[str, Any]:
    """An output that fits a tool's returns (``{"name", "type"}`` each): every field a plain value of its type.

    >>> plain_output([{"name": "success", "type": "boolean"}, {"name": "count", "type": "integer"}])
    {'success': True, 'count': 1}
    """
    return {r["name"]: PLAIN.get(r["type"]) for r in returns}


def read_toolkits(path: Path) -> list[Toolkit]:
    """The toolkits of one file: ToolEmu's JSON (a list, or one object), or TOML ``[[toolkits]]``.

    Raises ScenarioError naming the file and the field.
    """
    try:
        if path.suffix == ".json":
            data: Any = json.loads(path.read_text(encoding="utf-8"))
        else:
            import tomllib

            data = tomllib.loads(path.read_text(encoding="utf-8")).get("toolkits", [])
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ScenarioError(f"{path}: cannot read toolkits ({exc})") from None
    items = data if isinstance(data, list) else [data]
    out = []
    for n, item in enumerate(items):
        try:
            out.append(Toolkit.model_validate({**item, "source": path.name} if isinstance(item, dict) else item))
        except ValidationError as exc:
            err = exc.errors()[0]
            where = f"toolkits[{n}].{field_path(err['loc'])}"
            raise ScenarioError(f"{path}: {where}: {err['msg']}; fix the toolkit's spec") from None
    return out


def read_effects(path: Path) -> dict[str, dict[str, str]]:
    """Declared effects by tool full name (``[effects] TodoistDeleteTask = {effect = "delete", target = ...}``)."""
    import tomllib

    try:
        data = tomllib.loads(path.read_text(encoding="utf-8")).get("effects", {})
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ScenarioError(f"{path}: cannot read effects ({exc})") from None
    return {k: v for k, v in data.items() if isinstance(v, dict)}


def with_effects(kit: Toolkit, effects: dict[str, dict[str, str]]) -> Toolkit:
    """The toolkit with each tool's declared effect added (a tool's own declaration stands)."""
    tools = []
    for tool in kit.tools:
        declared = effects.get(kit.full_name(tool), {})
        if tool.effect is None and declared.get("effect"):
            tool = tool.model_copy(update={"effect": declared["effect"], "target": declared.get("target")})
        tools.append(tool)
    return kit.model_copy(update={"tools": tuple(tools)})


def toolkits_dir() -> Path:
    """Where the toolkits live: $RISKGYM_TOOLKITS, or ``scenarios/toolkits/`` at the repository root."""
    return Path(os.environ.get("RISKGYM_TOOLKITS", Path(__file__).resolve().parents[2] / "scenarios" / "toolkits"))


class _Toolkits(Registry[Toolkit]):
    """The toolkit registry, filled from :func:`toolkits_dir` on first use (``*.json`` and ``*.toml``)."""

    def __init__(self) -> None:
        super().__init__("toolkit")
        self._loaded = False
        self._load_lock = threading.Lock()

    def _load(self) -> None:
        with self._load_lock:
            if self._loaded:
                return
            folder = toolkits_dir()
            effects: dict[str, dict[str, str]] = {}
            for path in sorted(folder.glob("*-effects.toml")):
                effects |= read_effects(path)
            for path in sorted([*folder.glob("*.json"), *folder.glob("*.toml")]):
                if not path.name.endswith("-effects.toml"):
                    for kit in read_toolkits(path):
                        self._items.setdefault(kit.name, with_effects(kit, effects))
            self._loaded = True

    def register(self, name: str, item: Toolkit, *, replace: bool = False) -> Toolkit:
        self._load()
        return super().register(name, item, replace=replace)

    def __getitem__(self, name: str) -> Toolkit:
        self._load()
        return super().__getitem__(name)

    def get(self, name: str) -> Toolkit | None:
        self._load()
        return super().get(name)

    def __contains__(self, name: object) -> bool:
        self._load()
        return super().__contains__(name)

    def __iter__(self):  # type: ignore[no-untyped-def]
        self._load()
        return super().__iter__()

    def unknown(self, name: str) -> str:
        self._load()
        return super().unknown(name)


TOOLKITS = _Toolkits()
"""Toolkit name -> Toolkit: those in the library's ``toolkits/`` folder, and any an environment registers."""
