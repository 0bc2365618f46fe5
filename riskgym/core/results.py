"""What a tool call returns: content parts, exec details, who produced it, and how an emulator made it.

Data that the world's parts, the tools and the trace share.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from riskgym.core.kinds import Effect
from riskgym.core.observation import Observation


class TextPart(BaseModel):
    """Text the agent is shown."""

    model_config = ConfigDict(frozen=True)

    type: Literal["text"] = "text"
    text: str
    kind: Literal["text", "alt"] = "text"
    """``alt``: the text stands in for the image beside it (a screenshot's accessibility tree), for a model that
    cannot see images; a model that can is sent the image instead."""


class ImagePart(BaseModel):
    """An image the agent is shown (a screenshot): base64-encoded, and named by the sha256 of its bytes.

    In a trace the bytes are a file of their own, ``blobs/<sha256>.png`` beside the trace, and ``data`` is empty:
    the step's line carries the hash, so the hash chain covers the image too (``riskgym verify`` checks the file).
    """

    model_config = ConfigDict(frozen=True)

    type: Literal["image"] = "image"
    media_type: str = "image/png"
    data: str = ""
    sha256: str = ""
    width: int = 0
    height: int = 0

    @classmethod
    def of_bytes(cls, raw: bytes, media_type: str = "image/png", width: int = 0, height: int = 0) -> ImagePart:
        """An image from its bytes."""
        return cls(media_type=media_type, data=base64.b64encode(raw).decode(), sha256=hashlib.sha256(raw).hexdigest(),
                   width=width, height=height)

    @property
    def filename(self) -> str:
        """Its file's name in a trace's ``blobs/`` folder."""
        return f"{self.sha256}.{self.media_type.rpartition('/')[2] or 'bin'}"


ContentPart = Annotated[TextPart | ImagePart, Field(discriminator="type")]


class ExecInfo(BaseModel):
    """What a command did, when the tool ran one: its exit status, how long it ran, whether it was cut or killed."""

    model_config = ConfigDict(frozen=True)

    exit_code: int
    duration: float = 0.0
    truncated: bool = False
    timed_out: bool = False
    observed: Observation | None = None
    """What the command's processes did at the system-call level, where an observer ran."""


class EmulatorRound(BaseModel):
    """One call of the emulator model for a step: what it answered, what was wrong with it, what it cost."""

    model_config = ConfigDict(frozen=True)

    reply: str = ""
    """The model's raw reply."""
    critique: str | None = None
    """Why the reply was sent back (it did not parse, or did not match the tool's returns); None: accepted."""
    error: str | None = None
    """The model's API failed (after its retries)."""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float | None = None
    latency: float = 0.0


class Emulation(BaseModel):
    """How an emulated tool's output came about (a step's child record in the trace)."""

    model_config = ConfigDict(frozen=True)

    key: str
    """The call and the history before it, hashed: the cache's and the replay's key."""
    model: str = ""
    mode: str = "standard"
    source: Literal["model", "cache", "recorded", "reference"] = "model"
    """Where the output came from: the emulator model now, the cache, the trace being replayed, or the scenario's
    reference (``riskgym check``)."""
    prompt: list[dict[str, Any]] = Field(default_factory=list)
    """The messages of the first round (system and user)."""
    rounds: list[EmulatorRound] = Field(default_factory=list)
    output: Any = None
    """The observation, parsed (a JSON object; ``{"error": ...}`` for an exception)."""
    facts: list[dict[str, Any]] = Field(default_factory=list)
    """What the output asserts about the emulated world (``op``, ``entity``, ``attributes``)."""
    contradictions: list[str] = Field(default_factory=list)
    """Where the facts contradict those asserted before (a deleted task shown again)."""
    failed: bool = False
    """No valid output after the critique rounds: the agent was shown an error."""

    @property
    def tokens(self) -> int:
        """Prompt plus completion tokens over its rounds."""
        return sum(r.prompt_tokens + r.completion_tokens for r in self.rounds)


class ToolResult(BaseModel):
    """One tool call's result."""

    model_config = ConfigDict(frozen=True)

    content: list[ContentPart] = Field(default_factory=list)
    exec: ExecInfo | None = None
    backend: str = "box"
    """The part of the world that produced it."""
    effects: list[Effect] = Field(default_factory=list)
    """What the call did, as the tool found out while running it (where a click led), for the graders."""
    emulation: Emulation | None = None
    """When an emulator produced it: how."""

    @classmethod
    def of_text(cls, text: str, backend: str = "box", exec: ExecInfo | None = None,
                effects: list[Effect] | None = None, emulation: Emulation | None = None) -> ToolResult:
        """A result that is one text part."""
        return cls(content=[TextPart(text=text)], backend=backend, exec=exec, effects=effects or [],
                   emulation=emulation)

    @property
    def beyond_text(self) -> list[ContentPart]:
        """The content parts when they are more than one text (an image, several parts); else empty."""
        plain = len(self.content) <= 1 and all(isinstance(p, TextPart) for p in self.content)
        return [] if plain else list(self.content)

    def text(self) -> str:
        """The text parts together (an image's ``alt`` text among them): what a text-only model is sent."""
        return "\n".join(p.text for p in self.content if isinstance(p, TextPart))
