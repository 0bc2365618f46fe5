"""The tool runtime: a tool is a spec (name, typed arguments, description) bound to the part of the world that runs it.

A built-in tool is one typed function ``fn(part, **arguments)``; its signature and docstring are its spec, and it
runs on the part its ``backend`` names (``box``, the agent's container, for all of them today). A scenario may
declare tools of its own (spec only, ``[[tool_specs]]``): the part named as their backend runs them
(``call_tool``). A call returns a :class:`ToolResult`: content parts (text now; images next), exec details when a
command ran, and which backend produced it.

>>> schema = TOOLS["delete_path"].schema
>>> schema["function"]["parameters"]["required"]
['path']
"""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from riskgym.core.kinds import Effect, declared_effects
from riskgym.core.registry import Registry
from riskgym.core.results import ExecInfo, ToolResult
from riskgym.core.scenario import Scenario, ToolSpec
from riskgym.errors import ToolCallError, field_path
from riskgym.tools.builtin import delete_path, list_dir, read_file, shell, write_file
from riskgym.tools.commands import Shell, effects_of_command
from riskgym.world.base import ExecResult

EffectsOf = Callable[[dict[str, Any], Shell], list[Effect]]
"""What a call does, from its arguments and where the terminal is (``Tool.effects``)."""


@dataclass(frozen=True)
class Tool:
    """A tool: its spec (name, description, argument model), the backend part that runs it, and how.

    ``fn(part, **arguments, timeout=...)`` returns an ExecResult, a ToolResult or text; with no ``fn`` the part runs
    the call itself (``part.call_tool(name, arguments, timeout)``). ``effects(arguments, shell)``, when given, tells
    the graders what a call does; ``shell`` is where the terminal is (a relative path's folder, the home, the user).
    """

    fn: Callable[..., Any] | None
    name: str = ""
    description: str = ""
    model: type[BaseModel] = field(default=BaseModel)
    backend: str = "box"
    effects: EffectsOf | None = None

    @classmethod
    def from_function(cls, fn: Callable[..., Any], backend: str = "box", effects: EffectsOf | None = None) -> Tool:
        """Build the tool's name, description and argument model from ``fn``'s signature and docstring."""
        doc = inspect.getdoc(fn) or ""
        summary = doc.split("\n\n")[0].replace("\n", " ")
        args_section = doc.split("Args:")[-1] if "Args:" in doc else ""
        arg_docs = dict(re.findall(r"^\s{4}(\w+)(?: \([^)]*\))?: (.+)$", args_section, re.M))
        fields: dict[str, Any] = {}
        # the first parameter is the sandbox; keyword-only ones (timeout) are set by riskgym, not the agent
        params = list(inspect.signature(fn, eval_str=True).parameters.values())[1:]
        for p in params:
            if p.kind is inspect.Parameter.KEYWORD_ONLY:
                continue
            default = ... if p.default is inspect.Parameter.empty else p.default
            fields[p.name] = (p.annotation, Field(default, description=arg_docs.get(p.name, "")))
        config = ConfigDict(extra="forbid", title=fn.__name__)
        model = create_model(f"{fn.__name__}_arguments", __config__=config, **fields)
        return cls(fn=fn, name=fn.__name__, description=summary, model=model, backend=backend, effects=effects)

    @classmethod
    def from_spec(cls, spec: ToolSpec) -> Tool:
        """A tool a scenario declares: its JSON Schema parameters as an argument model, run by its backend part."""
        props = spec.parameters.get("properties", {})
        required = set(spec.parameters.get("required", []))
        fields: dict[str, Any] = {}
        for key, prop in props.items():
            kind = JSON_TYPES.get(str(prop.get("type", "string")), Any)
            default = ... if key in required else prop.get("default")
            fields[key] = (kind if key in required else kind | None, Field(default, description=prop.get("description",
                                                                                                          "")))
        config = ConfigDict(extra="forbid", title=spec.name)
        model = create_model(f"{spec.name}_arguments", __config__=config, **fields)
        declared = declared_effects(spec.effect, spec.target) if spec.effect else None
        return cls(fn=None, name=spec.name, description=spec.description, model=model, backend=spec.backend,
                   effects=(lambda arguments, _: declared(arguments)) if declared else None)

    @property
    def schema(self) -> dict[str, Any]:
        """The tool in the OpenAI function-calling format."""
        params = self.model.model_json_schema()
        params.pop("title", None)
        for prop in params.get("properties", {}).values():
            prop.pop("title", None)
        return {"type": "function", "function": {"name": self.name, "description": self.description,
                                                 "parameters": params}}

    def validate(self, arguments: Any) -> dict[str, Any]:
        """Check ``arguments`` against the signature; return them with defaults filled in. Raises ToolCallError.

        ``arguments`` is a dict, or a JSON object in a string (as the OpenAI API gives tool-call arguments).
        """
        if isinstance(arguments, str):
            try:
                arguments = json.loads(arguments)
            except json.JSONDecodeError as exc:
                msg = f"{self.name}: arguments are not valid JSON ({exc.msg} at column {exc.colno})"
                raise ToolCallError(msg) from None
        if not isinstance(arguments, dict):
            raise ToolCallError(f"{self.name}: arguments must be a JSON object, got {type(arguments).__name__}")
        known = self.model.model_fields
        arguments = {k: v for k, v in arguments.items() if k in known or v not in ("", None, [], {})}  # an argument
        # the tool does not take, left empty, says nothing: a model that adds one ("account": "") is not refused
        try:
            values = self.model.model_validate(arguments).model_dump()
        except ValidationError as exc:
            err = exc.errors()[0]
            where = field_path(err["loc"]) or "arguments"
            raise ToolCallError(f"{self.name}: argument {where}: {err['msg']}") from None
        for key, value in values.items():
            if isinstance(value, str):
                self._check_text(key, value)
        return values

    def _check_text(self, key: str, value: str) -> None:
        """Refuse text that no command line, path or file can carry: a NUL byte, a lone surrogate (not Unicode)."""
        if "\0" in value and key != "content":  # a file's content may hold NULs; a path or command cannot
            raise ToolCallError(f"{self.name}: argument {key}: holds a NUL byte, which no path or command can")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ToolCallError(f"{self.name}: argument {key}: not valid Unicode ({exc.reason} at "
                                f"character {exc.start})") from None

    def __call__(self, part: Any, arguments: dict[str, Any], timeout: float = 30.0) -> ToolResult:
        """Validate ``arguments`` and run the tool on ``part`` (its backend)."""
        values = self.validate(arguments)
        if self.fn is None or part.answers_tools:  # an emulated box answers its tools' calls itself
            out = part.call_tool(self.name, values, timeout=timeout)
        else:
            out = self.fn(part, **values, timeout=timeout)
        result = as_result(out, self.backend)
        if self.effects is not None and self.fn is None and not result.effects:  # a declared tool's, as it declares
            result = result.model_copy(update={"effects": self.effects(values, Shell())})
        return result


JSON_TYPES: dict[str, Any] = {"string": str, "integer": int, "number": float, "boolean": bool, "array": list,
                              "object": dict}


def as_result(out: ExecResult | ToolResult | str, backend: str) -> ToolResult:
    """What a tool's implementation returned, as a ToolResult."""
    if isinstance(out, ToolResult):
        return out if out.backend == backend else out.model_copy(update={"backend": backend})
    if isinstance(out, ExecResult):
        info = ExecInfo(exit_code=out.exit_code, duration=out.duration, truncated=out.truncated,
                        timed_out=out.timed_out, observed=out.observed)
        return ToolResult.of_text(out.text(), backend=backend, exec=info)
    return ToolResult.of_text(str(out), backend=backend)


TOOLS: Registry[Tool] = Registry("tool")
"""The tool registry: name -> Tool. Environments add theirs with :func:`register_tool`."""


def register_tool(tool: Tool | Callable[..., Any]) -> Tool:
    """Add a tool (a Tool, or a typed function that becomes one, run on the box)."""
    tool = tool if isinstance(tool, Tool) else Tool.from_function(tool)
    return TOOLS.register(tool.name, tool)


def _path(arguments: dict[str, Any], at: Shell) -> str:
    return at.path(str(arguments.get("path", ".")))


for _fn, _effects in (
        (shell, lambda a, at: effects_of_command(str(a.get("command", "")), at)),
        (read_file, lambda a, at: [Effect("read", _path(a, at))]),
        (list_dir, lambda a, at: [Effect("read", _path(a, at))]),
        (write_file, lambda a, at: [Effect("write", _path(a, at))]),
        (delete_path, lambda a, at: [Effect("delete", _path(a, at), recursive=bool(a.get("recursive")))])):
    register_tool(Tool.from_function(_fn, effects=_effects))


def tools_for(scenario: Scenario) -> dict[str, Tool]:
    """The tools a scenario offers, by name: registered ones, and those it declares (``[[tool_specs]]``)."""
    declared = {spec.name: Tool.from_spec(spec) for spec in scenario.declared_tools}
    out = {}
    for name in scenario.tools:
        tool = declared.get(name) or TOOLS.get(name)
        if tool is None:
            raise ToolCallError(f"scenario {scenario.id}: {TOOLS.unknown(name)}; register it or declare it in "
                                "[[tool_specs]]")
        out[name] = tool
    return out
