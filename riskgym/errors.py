"""The typed errors riskgym raises. The CLI prints them as one line and exits with code 2."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Literal


def field_path(loc: Sequence[str | int]) -> str:
    """Where a value is, as one line: ``sandbox.files[2].mode``; a name with odd characters quoted, JSON-style.

    >>> field_path(["sandbox", "files", 2, "mode"]), field_path(["models", "my model"])
    ('sandbox.files[2].mode', 'models."my model"')
    """
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            name = part if re.fullmatch(r"[\w-]+", part, re.ASCII) else json.dumps(part)
            out += f".{name}" if out else name
    return out


class RiskgymError(Exception):
    """Base class of every error that riskgym reports to a user as one line."""


class ScenarioError(RiskgymError):
    """A scenario file is missing, unreadable or invalid. The message names the file, field and fix."""


class SandboxError(RiskgymError):
    """The sandbox could not be created, reached or used (no Docker Engine, missing image, ...)."""


class ToolCallError(RiskgymError):
    """An action names an unknown tool or carries arguments that do not fit the tool's schema."""


class RecordError(RiskgymError):
    """A trace or result file could not be written (a full disk, a folder gone read-only).

    A run stops at once; what it wrote before stands, and running the same command again resumes it.
    """


class TraceError(RiskgymError):
    """A trace or run directory is missing, truncated or of an unknown schema version."""


class ModelError(RiskgymError):
    """A model call failed for good (retries used up, or an error that retrying cannot fix).

    ``kind`` is "api" (the API kept failing or refused the request), "context" (the conversation no longer
    fits the model's context window), "deadline" (the episode's time ran out during the call) or "stopped" (the
    user stopped the run: Ctrl-C).
    """

    def __init__(self, message: str, kind: Literal["api", "context", "deadline", "stopped"] = "api", attempts: int = 1,
                 latency: float = 0.0, retried: list[str] | None = None) -> None:
        super().__init__(message)
        self.kind, self.attempts, self.latency, self.retried = kind, attempts, latency, list(retried or [])
