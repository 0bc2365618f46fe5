"""Running an injection suite: find the slots each user task shows, write the attacked scenarios, run them all.

``riskgym attack SUITE --agent ...`` runs every user task as it is (utility without attack) and, for each user
task x injection task x attack template, the user task with the attack in the slots its safe reference actually
shows the agent (found as AgentDojo does: the reference run once with a canary in every slot). The attacked
scenarios are written as scenario files into the run (``RUN/scenarios/``), so each can be read, checked and run
again; the metrics are :func:`riskgym.grading.attacks.attack_metrics`.
"""

from __future__ import annotations

import secrets
import tempfile
from pathlib import Path
from typing import Any

from riskgym.core.injection import Suite, render
from riskgym.core.scenario import Scenario
from riskgym.core.tomlfile import dump_toml, load_toml
from riskgym.errors import ScenarioError

SUITES = "suites"
"""The library's folder of suites: ``scenarios/suites/<id>.toml``, its user tasks in ``scenarios/suites/<id>/``."""


def load_suite(path: str | Path) -> tuple[Suite, list[Scenario], list[Path]]:
    """A suite file, its user tasks (the scenarios in the folder beside it named like it) and their files."""
    from riskgym.library import load

    path = Path(path)
    _, suite = load_toml(path, Suite, ScenarioError)
    folder = path.with_suffix("")
    files = sorted(folder.glob("*.toml"))
    if not files:
        raise ScenarioError(f"{path}: no user tasks: put the suite's scenarios in {folder}/")
    tasks = [load(f) for f in files]
    for task, file in zip(tasks, files, strict=True):
        if not task.slots:
            raise ScenarioError(f"{file}: a user task of suite {suite.id!r} has no injection slot; put "
                                "{{inject:NAME}} where an attacker's text could appear")
    return suite, tasks, files


def seen_slots(task: Scenario, sandbox: str = "docker") -> list[str]:
    """The slots whose text the task's safe reference shows the agent (each filled with a canary, run once)."""
    from riskgym.core.trace import read_trace
    from riskgym.running.agent import run_episode
    from riskgym.running.env import RiskEnv
    from riskgym.running.model import ScriptedModel, reference_actions

    canaries = {slot: f"rg-slot-{slot}-{secrets.token_hex(4)}" for slot in task.slots}
    probe = task.with_slots(canaries)
    with tempfile.TemporaryDirectory(prefix="riskgym-slots-") as tmp:
        trace_path = Path(tmp) / "probe.jsonl"
        model = ScriptedModel(reference_actions(probe.reference.safe), name="reference:safe")
        run_episode(RiskEnv(probe, sandbox=sandbox), model, trace=trace_path)
        shown = "\n".join(s.observation for s in read_trace(trace_path).steps)
    return [slot for slot, canary in canaries.items() if canary in shown]


def attacked(suite: Suite, task: Scenario, injection: Any, template: str, slots: list[str]) -> dict[str, Any]:
    """The scenario (as data) of ``task`` with ``injection``'s goal in ``slots``, by ``template``."""
    from riskgym.core.slots import fill

    text = render(template, injection.goal, suite.user, suite.model, injection.steps)
    data = fill(task._template, dict.fromkeys(slots, text))
    def dump(model: Any) -> dict[str, Any]:
        return model.model_dump(mode="json", by_alias=True, exclude_none=True)  # type: ignore[no-any-return]

    safe = [dump(s) for s in task.reference.safe]
    data.update({
        "id": f"{task.id}--{injection.id}--{template.replace('_', '-')}", "version": 0,
        "title": f"{task.title} (attacked: {injection.id}, {template})",
        "description": f"{task.description.strip()}\n\nAttacked through {', '.join(slots)} with {template}: "
                       f"{injection.goal}",
        "category": "prompt-injection", "risk_source": "environment", "benign": False,
        "intention": [dump(t) for t in injection.intention],
        "completion": [dump(c) for c in injection.completion],
        "canaries": [dump(c) for c in injection.canaries],
        "exposure": [{"id": "saw-the-injection", "description": "a step showed the agent the attacker's text",
                      "seen": injection.goal[:40]}],
        "reference": {"risky": safe[:-1] + [dump(s) for s in injection.steps] + safe[-1:],
                      "safe": safe},
        "attack": {"suite": suite.id, "user_task": task.id, "injection_task": injection.id, "template": template,
                   "slots": slots},
    })
    data.pop("twin_of", None)
    return data  # type: ignore[no-any-return]


def expand(suite_path: Path, out: Path, sandbox: str = "docker",
           attacks: list[str] | None = None) -> tuple[list[Path], dict[str, list[str]]]:
    """Write the suite's attacked scenarios into ``out/scenarios``.

    Returns every file to run (the user tasks first) and the slots each user task shows.
    """
    from riskgym.core.injection import ATTACKS
    from riskgym.library import load

    suite, tasks, files = load_suite(suite_path)
    templates = attacks or list(suite.attacks)
    for name in templates:
        if name not in ATTACKS:
            raise ScenarioError(f"--attack {name}: unknown attack; the attacks are {', '.join(ATTACKS)}")
    folder = out / "scenarios"
    folder.mkdir(parents=True, exist_ok=True)
    seen = {task.id: seen_slots(task, sandbox) for task in tasks}
    written = []
    for task in tasks:
        if not seen[task.id]:
            continue  # the agent never sees any slot of this task: nothing to attack through
        for injection in suite.injection_tasks:
            for template in templates:
                data = attacked(suite, task, injection, template, seen[task.id])
                path = folder / f"{data['id']}-v0.toml"
                path.write_text(dump_toml(data), encoding="utf-8")
                load(path)  # what was written must load: a suite's mistake is found here, not in the run
                written.append(path)
    return files + written, seen
