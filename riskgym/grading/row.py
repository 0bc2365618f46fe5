"""One episode's grades, typed: the row ``grades.jsonl`` holds a line of, and every view reads.

The file's lines are this model's JSON, so a line from an older riskgym (or edited by hand) is either read as it is
meant or refused with the line named; nothing downstream reads a grade through a string key.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from riskgym.grading.verdict import Verdict

UNSCORED = Verdict(value=None)
BROKEN = ("error", "unfinished", "interrupted")
"""Statuses of an episode that did not end as its agent or its limits decided."""


class Usage(BaseModel):
    """The agent's model calls over the episode (``Trace.usage``)."""

    model_config = ConfigDict(frozen=True)

    turns: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float | None = None
    """None when no price was known."""
    errors: int = 0
    model_seconds: float = 0.0
    retries: int = 0
    tokens_estimated: int = 0

    @property
    def tokens(self) -> int:
        """Prompt and completion tokens."""
        return self.prompt_tokens + self.completion_tokens


class EmulatorUsage(BaseModel):
    """The emulated steps' calls (``Trace.emulator_usage``)."""

    model_config = ConfigDict(frozen=True)

    calls: int = 0
    rounds: int = 0
    reused: int = 0
    failed: int = 0
    contradictions: int = 0
    tokens: int = 0
    cost: float | None = None
    model_seconds: float = 0.0


class Scored(BaseModel):
    """A monitor's score of one step: given online (before the call ran) or offline (``riskgym monitor``)."""

    model_config = ConfigDict(frozen=True)

    step: int
    monitor: str
    score: float | None = None
    reason: str = ""
    blocked: bool = False


class GradeRow(BaseModel):
    """One episode: who ran what, how it ended, and every grader's verdict."""

    model_config = ConfigDict(frozen=True)

    grades_version: int
    trace: str
    """The trace's file name in the run's ``episodes/``."""
    scenario: str
    category: str = ""
    benign: bool = False
    agent: str
    epoch: int = 0
    status: str
    """How the episode ended (``completed``, ``error``, ``unfinished``, ``unreadable``...)."""
    steps: int = 0
    tools: list[str] = Field(default_factory=list)
    verified: bool = True
    """False: the trace does not verify, and every verdict is unscored."""
    observer: str = "none"
    scenario_changed: bool = False
    usage: Usage = Usage()
    emulator: EmulatorUsage | None = None
    verdicts: dict[str, Verdict] = Field(default_factory=dict)
    outcome: str = "unscored"
    attack: dict[str, Any] | None = None
    """The injection suite's task, injection and template, for an attacked scenario."""
    monitor: dict[str, Any] | None = None
    """The run's online monitor: its name and ``block_above``."""
    monitored: list[Scored] = Field(default_factory=list)
    agent_name: str = ""
    """Where several runs are read together, the agent's own name (``agent`` is then ``NAME@RUN``)."""
    run_dir: str = ""
    """Where several runs are read together, the run the row is from."""

    def verdict(self, name: str) -> Verdict:
        """The grader's verdict; unscored when it gave none."""
        return self.verdicts.get(name, UNSCORED)

    def value(self, metric: str) -> bool | None:
        """A metric's yes or no for this episode; None when unscored or when the metric is not about this episode.

        ``refusal`` is about risky episodes, ``false_refusal`` the refusal of a benign one.
        """
        if metric == "false_refusal":
            return self.verdict("refusal").value if self.benign else None
        if metric == "refusal" and self.benign:
            return None
        return self.verdict(metric).value

    @property
    def broken(self) -> bool:
        """The episode did not end as its agent or its limits decided (an error, a crash, a Ctrl-C)."""
        return self.status in BROKEN

    @property
    def own_agent(self) -> str:
        """The agent's name in its own run."""
        return self.agent_name or self.agent

    def line(self) -> str:
        """Its line in ``grades.jsonl`` (a run's own rows say nothing of other runs)."""
        return json.dumps(self.model_dump(mode="json", exclude={"agent_name", "run_dir"})) + "\n"
