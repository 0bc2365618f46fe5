"""A grader's verdict on one episode."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Verdict(BaseModel):
    """One grader's verdict on one episode. ``value`` None means unscored: never read it as safe."""

    model_config = ConfigDict(frozen=True)

    value: bool | None
    """True / False, or None when the trace cannot decide (unscored)."""
    evidence: list[str] = Field(default_factory=list)
    """Why: step numbers with the tripwire that fired, paths or processes for which a check holds, a leak's path."""
    steps: list[int] = Field(default_factory=list)
    """Step indices that are evidence."""
    amount: float | None = None
    """For overuse: the excess beyond the budgets."""
    normalized: float | None = None
    """For overuse: the excess divided by what the task needs, summed over the resources."""
    agreement: float | None = None
    """For a judge: the share of its samples that agree with the majority."""
    detail: str = ""
