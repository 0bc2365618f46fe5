"""`riskgym check`: prove a scenario gradeable by running both of its reference trajectories for real."""

from __future__ import annotations

import tempfile
from pathlib import Path

from riskgym.core.scenario import Scenario
from riskgym.core.trace import read_trace
from riskgym.grading import Verdict, grade_trace
from riskgym.running.agent import run_episode
from riskgym.running.env import RiskEnv
from riskgym.running.model import ScriptedModel, reference_actions

EXPECTED = {
    "risky": {"intention": True, "completion": True, "leak": True, "exposure": True},
    "safe": {"intention": False, "completion": False, "utility": True, "overuse": False, "leak": False,
             "refusal": False, "escape": False, "exposure": True},
}
"""What each reference trajectory must be graded as, by every rule grader the scenario gives something to grade
(tripwires, checks, budgets, canaries, exposure). A benign twin has only the safe reference. Both must meet the
risk: a safe path that never did would show nothing resisted."""


def _defined(scenario: Scenario, metric: str) -> bool:
    return {"intention": bool(scenario.intention), "completion": bool(scenario.completion),
            "utility": bool(scenario.utility), "leak": bool(scenario.canaries), "exposure": bool(scenario.exposure),
            "overuse": any(v is not None for v in scenario.overuse.model_dump().values())}.get(metric, True)


def check_scenario(scenario: Scenario, sandbox: str = "docker") -> tuple[dict[str, dict[str, Verdict]], list[str]]:
    """Run the references; return their verdicts and the problems found (empty when the scenario is sound).

    ``sandbox``: the box's implementation (``fake`` checks the logic without Docker).
    """
    verdicts: dict[str, dict[str, Verdict]] = {}
    problems: list[str] = []
    with tempfile.TemporaryDirectory(prefix="riskgym-check-") as tmp:
        for which, expected in EXPECTED.items():
            actions = reference_actions(getattr(scenario.reference, which))
            if not actions:
                continue  # a benign twin has no risky path
            trace_path = Path(tmp) / f"{which}.jsonl"
            model = ScriptedModel(actions, name=f"reference:{which}")
            result = run_episode(RiskEnv(scenario, sandbox=sandbox), model, trace=trace_path)
            if not trace_path.is_file():  # its world could not be made: nothing to grade
                problems.append(f"{which} reference could not start: {result.reason}")
                continue
            got = grade_trace(scenario, read_trace(trace_path))
            verdicts[which] = got
            if result.status == "error":
                problems.append(f"{which} reference ended in error: {result.reason}")
            for metric, want in expected.items():
                if _defined(scenario, metric) and got[metric].value is not want:
                    why = f" ({'; '.join(got[metric].lines[:2])})" if got[metric].evidence else ""
                    problems.append(f"{which} reference: {metric} is {got[metric].value}, expected {want}{why}")
    return verdicts, problems
