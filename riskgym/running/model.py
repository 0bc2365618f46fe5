"""Models decide the next actions. A model has ``name``, ``config``, ``reset()`` and ``respond(messages, tools)``.

The agent loop keeps the conversation in the OpenAI chat format and asks the model for a ``Reply``: text, and
the tool calls it makes (none: the text is the final answer). ``ScriptedModel`` plays a fixed list of actions,
one per reply (the scenarios' reference trajectories run through it); ``LitellmModel`` (``riskgym.running.llm``) asks an
LLM. Which one an ``--model`` spec names is decided in :mod:`riskgym.running.factory`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, field_validator

from riskgym.core.scenario import RefStep
from riskgym.core.trace import ModelCall
from riskgym.errors import ModelError, RiskgymError  # noqa: F401 - ModelError: what respond raises


class ToolCall(BaseModel):
    """One tool call of a reply. ``arguments`` is a dict, or the raw string when the model's JSON was broken."""

    id: str
    tool: str
    arguments: Any


class Reply(ModelCall):
    """What the model answered, and what the answer cost (its text, and the calls read from it)."""

    text: str | None = None
    calls: list[ToolCall] = Field(default_factory=list)


class Model(Protocol):
    """Answers a conversation with a ``Reply``."""

    name: str
    config: dict[str, Any]
    """Its settings, recorded in each trace's header (never an API key)."""

    def reset(self) -> None:
        """Forget the previous episode."""
        ...

    def respond(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]], *,
                deadline: float | None = None, seed: int | None = None,
                cancel: Callable[[], bool] | None = None) -> Reply:
        """The reply to ``messages`` (OpenAI chat format), ``tools`` offered. Raises ModelError.

        ``cancel()`` turning true (Ctrl-C) may cut a call short (ModelError, kind "stopped").

        ``deadline`` is a ``time.monotonic()`` time after which the call must give up; ``seed`` is the episode's.
        """
        ...


class ScriptedModel:
    """Plays ``actions`` in order, one per reply, whatever it is told; then answers "done".

    >>> m = ScriptedModel([{"tool": "shell", "arguments": {"command": "ls"}}])
    >>> m.respond([], []).calls[0].tool, m.respond([], []).text
    ('shell', 'done')
    """

    def __init__(self, actions: list[dict[str, Any]], name: str = "scripted") -> None:
        self.actions = list(actions)
        self.name = name
        self.config: dict[str, Any] = {"kind": "scripted", "actions": len(self.actions)}
        self._next = 0

    def reset(self) -> None:
        """Start again from the first action."""
        self._next = 0

    def respond(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]], *,
                deadline: float | None = None, seed: int | None = None,
                cancel: Callable[[], bool] | None = None) -> Reply:
        """The next scripted action as a reply."""
        if self._next >= len(self.actions):
            return Reply(text="done")
        action = self.actions[self._next]
        self._next += 1
        if "final" in action:
            return Reply(text=action["final"])
        call = ToolCall(id=f"call_{self._next}", tool=action.get("tool", ""), arguments=action.get("arguments", {}))
        return Reply(calls=[call])


def reference_actions(steps: tuple[RefStep, ...]) -> list[dict[str, Any]]:
    """A reference trajectory as actions."""
    return [{"final": s.final} if s.final is not None else {"tool": s.tool, "arguments": dict(s.arguments)}
            for s in steps]


DEFAULT_MAX_TOKENS = 4096
"""A reply's cap unless a model's settings give another: room for an agent's longest reasonable turn."""


class ModelConfig(BaseModel):
    """How to call one LLM through litellm. Everything but ``model`` is optional.

    The API key is never written here: ``api_key_env`` names the environment variable that holds it (by
    default litellm's own, e.g. OPENAI_API_KEY).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str
    """A litellm model string: ``openai/gpt-4o-mini``, ``anthropic/claude-...``, ``openai/NAME`` with ``api_base``."""
    api_base: str | None = None
    """An OpenAI-compatible endpoint, e.g. a local vLLM or Ollama server: ``http://127.0.0.1:8000/v1``."""
    api_key_env: str | None = None
    temperature: float | None = Field(default=None, ge=0)
    top_p: float | None = Field(default=None, gt=0, le=1)
    seed: int | None = None
    """Sent to the API; by default the episode's seed (so that epochs differ and reruns repeat)."""
    max_tokens: int | None = Field(default=DEFAULT_MAX_TOKENS, gt=0)
    """The most tokens one reply may have (sent as ``max_tokens``): a reply that runs on (a small model repeating
    itself) is cut there instead of running the episode out of time. None sends no cap."""
    tool_mode: Literal["auto", "native", "text"] = "auto"
    """native function calling, or the text format for models without it; auto asks litellm."""
    vision: bool | None = None
    """Whether the model reads images: a desktop's screenshots are sent to it as image content (the last
    ``keep_screenshots`` of them); otherwise it gets the screen's accessibility tree as text. None: ask litellm
    (a model litellm does not know is taken to read text only)."""
    keep_screenshots: int = Field(default=3, ge=1)
    """How many of the latest screenshots stay in the conversation; older ones are replaced by a line saying so."""
    timeout: float = Field(default=120.0, gt=0)
    """Seconds per API call."""
    stream: bool | None = None
    """Stream the reply, so that a call cut short (at the episode's deadline, or by Ctrl-C) closes the connection and
    the server stops generating: llama.cpp's and vLLM's servers do. None: stream to an ``api_base`` (a server of
    your own, whose time is the run's), not to a provider's API."""
    concurrency: int | None = Field(default=None, ge=1)
    """The most calls to this model at once, across all of a run's episodes and its judge (1 for a server that
    answers one request at a time). None: no limit beyond ``--concurrency``."""
    retries: int = Field(default=4, ge=0)
    """Retries after a rate limit, a server error, a time-out or a broken connection."""
    retry_backoff: float = Field(default=1.0, ge=0)
    """Seconds before the first retry; doubled each time, at most 60, with jitter."""
    input_cost_per_token: float | None = Field(default=None, ge=0)
    output_cost_per_token: float | None = Field(default=None, ge=0)
    params: dict[str, Any] = Field(default_factory=dict)
    """Passed on to ``litellm.completion`` as they are (e.g. ``reasoning_effort``)."""

    @field_validator("api_key_env")
    @classmethod
    def _env_name(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value):
            raise ValueError(f"must be the NAME of an environment variable, not its value; got {value[:4]!r}...")
        return value

    def public(self) -> dict[str, Any]:
        """The settings as recorded in traces and manifests: no key, no credentials in the URL."""
        data = self.model_dump(exclude_defaults=False)
        if self.api_base:
            data["api_base"] = re.sub(r"//[^/@]*@", "//", self.api_base)
        return data


class ModelsFile(BaseModel):
    """A model config file: ``[models.NAME]`` tables, each a ModelConfig."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    models: dict[str, ModelConfig] = Field(default_factory=dict)


def load_models_file(path: str | Path) -> dict[str, ModelConfig]:
    """Read a model config file (TOML). Raises RiskgymError naming the file, line, field and fix."""
    from riskgym.core.tomlfile import load_toml

    _, parsed = load_toml(Path(path), ModelsFile, RiskgymError)
    return dict(parsed.models)
