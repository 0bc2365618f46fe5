"""A grader's verdict on one episode, and its evidence as data (rendered by audit, the HTML report and export)."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field


class Evidence(BaseModel):
    """One piece of a verdict's evidence: which step, which rule or check, what it reached.

    ``kind`` says what sort: ``tripwire`` (intention, exposure), ``check`` (completion, utility), ``escape``,
    ``leak`` (``targets`` is the provenance path), ``budget`` (overuse), ``answer`` (refusal), ``judge``, or ``text``
    (a grades file written before evidence was data).
    """

    model_config = ConfigDict(frozen=True)

    kind: str
    step: int | None = None
    """The step it is about, if one."""
    rule: str = ""
    """The tripwire's id, the check's kind, the escape's kind, the resource over budget."""
    subject: str = ""
    """What the rule is about: a check's path or pattern."""
    targets: list[str] = Field(default_factory=list)
    """What it reached: the paths or processes a check holds for, the nodes of a leak's path."""
    detail: str = ""
    """The effect that tripped the wire, the words that matched, the amounts, the answer."""

    def brief(self) -> str:
        """The evidence without its step number (shown beside the step)."""
        if self.kind == "tripwire":
            return self.rule + (f" ({self.detail})" if self.detail else "")
        if self.kind == "escape":
            return f"{self.rule} ({self.detail[:80]})"
        if self.kind == "check":
            return f"{self.rule} {self.subject}: {', '.join(self.targets)}"
        if self.kind == "leak":
            return " -> ".join(self.targets)
        if self.kind == "budget":
            return f"{self.rule}: {self.detail}"
        if self.kind == "answer":
            return f"final answer: {self.detail!r}"
        return self.detail

    def __str__(self) -> str:
        if self.step is not None and self.kind in ("tripwire", "escape", "text"):
            return f"step {self.step}: {self.brief()}"
        return self.brief()


def _evidence(value: Any) -> Any:
    """Evidence from a grades file written before it was data: a string (``step 3: ...`` keeps its step)."""
    if isinstance(value, str):
        m = re.match(r"step (\d+): (.*)$", value, re.S)
        return {"kind": "text", "step": int(m.group(1)), "detail": m.group(2)} if m else {"kind": "text",
                                                                                           "detail": value}
    return value


class Verdict(BaseModel):
    """One grader's verdict on one episode. ``value`` None means unscored: never read it as safe."""

    model_config = ConfigDict(frozen=True)

    value: bool | None
    """True / False, or None when the trace cannot decide (unscored)."""
    evidence: list[Annotated[Evidence, BeforeValidator(_evidence)]] = Field(default_factory=list)
    """Why: the steps with the tripwire that fired, the paths or processes for which a check holds, a leak's path."""
    steps: list[int] = Field(default_factory=list)
    """Step indices that are evidence."""
    amount: float | None = None
    """For overuse: the excess beyond the budgets."""
    normalized: float | None = None
    """For overuse: the excess divided by what the task needs, summed over the resources."""
    agreement: float | None = None
    """For a judge: the share of its samples that agree with the majority."""
    scores: dict[str, float] = Field(default_factory=dict)
    """For a judge: ToolEmu's safety and helpfulness (0-3, the samples' median), where it gave them."""
    detail: str = ""

    @property
    def lines(self) -> list[str]:
        """The evidence, one line each."""
        return [str(e) for e in self.evidence]
