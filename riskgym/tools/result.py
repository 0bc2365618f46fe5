"""What a tool call returns: content parts for the model, exec details when a command ran, and who produced it."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from riskgym.core.kinds import Effect
from riskgym.core.observation import Observation


class TextPart(BaseModel):
    """Text the agent is shown."""

    model_config = ConfigDict(frozen=True)

    type: Literal["text"] = "text"
    text: str


class ImagePart(BaseModel):
    """An image the agent is shown (a screenshot), base64-encoded."""

    model_config = ConfigDict(frozen=True)

    type: Literal["image"] = "image"
    media_type: str = "image/png"
    data: str


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


class ToolResult(BaseModel):
    """One tool call's result."""

    model_config = ConfigDict(frozen=True)

    content: list[ContentPart] = Field(default_factory=list)
    exec: ExecInfo | None = None
    backend: str = "box"
    """The part of the world that produced it."""
    effects: list[Effect] = Field(default_factory=list)
    """What the call did, as the tool found out while running it (where a click led), for the graders."""

    @classmethod
    def of_text(cls, text: str, backend: str = "box", exec: ExecInfo | None = None,
                effects: list[Effect] | None = None) -> ToolResult:
        """A result that is one text part."""
        return cls(content=[TextPart(text=text)], backend=backend, exec=exec, effects=effects or [])

    @property
    def beyond_text(self) -> list[ContentPart]:
        """The content parts when they are more than one text (an image, several parts); else empty."""
        plain = len(self.content) <= 1 and all(isinstance(p, TextPart) for p in self.content)
        return [] if plain else list(self.content)

    def text(self) -> str:
        """The text parts together (an image shows as ``[image]``): what a text-only model is sent."""
        return "\n".join(p.text if isinstance(p, TextPart) else f"[image {p.media_type}]" for p in self.content)
