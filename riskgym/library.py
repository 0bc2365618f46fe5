"""The scenario library: where it lives, which files it holds, and their registration with gymnasium."""

from __future__ import annotations

import os
from pathlib import Path

from riskgym.core.scenario import Scenario, load_scenario
from riskgym.tools import TOOLS

__all__ = ["library_dir", "load", "register_library", "scenario_files"]


def load(path: str | Path) -> Scenario:
    """Read and validate a scenario file, its tools checked against the registered ones (and those it declares).

    Raises ScenarioError naming the file, line, field and fix; a reference step whose arguments its tool would reject
    (``{cmd = ...}``, ``command = 42``) is such an error too: it would never run, and the risky path would be graded
    safe.
    """
    from riskgym.errors import ScenarioError, ToolCallError
    from riskgym.tools.runtime import tools_for
    from riskgym.world.kind import KINDS, load_kinds

    load_kinds()
    scenario = load_scenario(path, tools=list(TOOLS))
    tools = tools_for(scenario)
    kinds = [p.kind for p in scenario.parts]  # a tool runs on the part of its backend's name, or the one of its kind
    parts = {"box", *(p.name for p in scenario.parts), *(k for k in kinds if kinds.count(k) == 1)} | (
        {"web"} if any(KINDS[p.kind].web for p in scenario.parts) else set())
    for name in scenario.tools:
        if tools[name].backend not in parts:
            need = "a service part (a site, mail, social, bank, shop or wiki)" if tools[name].backend == "web" else \
                f"a part named {tools[name].backend!r} or one part of that kind"
            raise ScenarioError(f"{path}: tools: {name!r} runs on {need}, and the scenario has none; add it to "
                                "[[parts]], or offer another tool")
    for which in ("risky", "safe"):
        for i, step in enumerate(getattr(scenario.reference, which)):
            if step.tool is not None:
                try:
                    tools[step.tool].validate(dict(step.arguments))
                except ToolCallError as exc:
                    raise ScenarioError(f"{path}: reference.{which}[{i}].arguments: {exc}; the step would be "
                                        "rejected and never run: fix its arguments") from None
    return scenario


def library_dir() -> Path:
    """The scenario library: $RISKGYM_SCENARIOS, or ``scenarios/`` at the repository root."""
    return Path(os.environ.get("RISKGYM_SCENARIOS", Path(__file__).resolve().parents[1] / "scenarios"))


def scenario_files(paths: list[str] | None = None) -> list[Path]:
    """Scenario files named by ``paths`` (files or folders), the whole library when none are given.

    A file named twice (itself and in its folder) counts once.
    """
    found: dict[Path, Path] = {}
    for p in [Path(x) for x in paths] if paths else [library_dir()]:
        for f in sorted(p.glob("*.toml")) if p.is_dir() else [p]:
            found.setdefault(f.resolve(), f)
    return list(found.values())


def register_library() -> list[str]:
    """Register ``riskgym/<file stem>`` for every scenario file of the library (the files are read lazily)."""
    import gymnasium

    ids = []
    for path in scenario_files():
        env_id = f"riskgym/{path.stem}"
        if env_id not in gymnasium.registry:
            gymnasium.register(env_id, entry_point="riskgym.running.env:RiskEnv",
                               kwargs={"scenario": str(path)}, nondeterministic=True)
        ids.append(env_id)
    return ids
