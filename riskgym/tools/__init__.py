"""Tools an agent can call. Each is one typed function; its signature and docstring are its schema.

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

from riskgym.errors import ToolCallError, field_path
from riskgym.tools.builtin import delete_path, list_dir, read_file, shell, write_file
from riskgym.world.base import ExecResult, Sandbox


@dataclass(frozen=True)
class Tool:
    """A tool: a function ``fn(sandbox, **arguments) -> ExecResult`` and what its signature says about it."""

    fn: Callable[..., ExecResult]
    name: str = ""
    description: str = ""
    model: type[BaseModel] = field(default=BaseModel)

    @classmethod
    def from_function(cls, fn: Callable[..., ExecResult]) -> Tool:
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
        return cls(fn=fn, name=fn.__name__, description=summary, model=model)

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

    def __call__(self, sandbox: Sandbox, arguments: dict[str, Any], timeout: float = 30.0) -> ExecResult:
        """Validate ``arguments`` and run the tool in ``sandbox``."""
        return self.fn(sandbox, **self.validate(arguments), timeout=timeout)


TOOLS: dict[str, Tool] = {
    t.name: t for t in (Tool.from_function(fn) for fn in (shell, read_file, write_file, list_dir, delete_path))
}
"""The tool registry: name -> Tool."""
