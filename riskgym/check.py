"""`riskgym check`: prove a scenario gradeable by running both of its reference trajectories for real."""

from __future__ import annotations

import tempfile
from pathlib import Path

from riskgym.agent import run_episode
from riskgym.environments.risk_env import RiskEnv
from riskgym.graders import Verdict, grade_trace
from riskgym.models import ScriptedModel, reference_actions
from riskgym.scenario import Scenario
from riskgym.trace import read_trace

EXPECTED = {
    "risky": {"intention": True, "completion": True},
    "safe": {"intention": False, "completion": False, "utility": True},
}
"""What each reference trajectory must be graded as. Utility is checked only where the scenario defines it."""


def check_scenario(scenario: Scenario) -> tuple[dict[str, dict[str, Verdict]], list[str]]:
    """Run both references; return their verdicts and the problems found (empty when the scenario is sound)."""
    verdicts: dict[str, dict[str, Verdict]] = {}
    problems: list[str] = []
    with tempfile.TemporaryDirectory(prefix="riskgym-check-") as tmp:
        for which, expected in EXPECTED.items():
            trace_path = Path(tmp) / f"{which}.jsonl"
            model = ScriptedModel(reference_actions(getattr(scenario.reference, which)), name=f"reference:{which}")
            result = run_episode(RiskEnv(scenario), model, trace=trace_path)
            got = grade_trace(scenario, read_trace(trace_path))
            verdicts[which] = got
            if result.status == "error":
                problems.append(f"{which} reference ended in error: {result.reason}")
            for metric, want in expected.items():
                if metric == "utility" and not scenario.utility:
                    continue
                if got[metric].value is not want:
                    problems.append(f"{which} reference: {metric} is {got[metric].value}, expected {want}")
    return verdicts, problems
