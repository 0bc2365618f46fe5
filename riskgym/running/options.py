"""A run's options (everything about it besides its scenarios and agents), and what they resolve to."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from riskgym.core.scenario import Scenario
from riskgym.errors import RiskgymError
from riskgym.running.agent import Budget
from riskgym.running.model import ModelConfig
from riskgym.world.emulator.emulator import EmulatorSettings
from riskgym.world.kind import sandbox_kind


@dataclass(frozen=True)
class RunOptions:
    """Everything about a run besides its scenarios and agents; recorded in the manifest."""

    epochs: int = 1
    seed: int = 0
    concurrency: int = 1
    system_prompt: str | None = None
    """The system prompt template's text (None: the default)."""
    budget: Budget = field(default_factory=Budget)
    models: dict[str, ModelConfig] = field(default_factory=dict)
    """Named model settings (from ``--models FILE``)."""
    overrides: dict[str, Any] = field(default_factory=dict)
    """Settings given on the command line, for litellm model strings."""
    sandbox: str = "docker"
    """The box's implementation: ``docker``, ``fake`` (in memory: a scenario's logic checked without Docker), or
    ``emulated`` (its tools answered by the emulator model)."""
    emulator: str | None = None
    """The emulator model (a litellm model string or a name in ``models``), for emulated tools."""
    emulator_overrides: dict[str, Any] = field(default_factory=dict)
    emulator_mode: str | None = None
    """``standard`` or ``adversarial`` for every emulated part (None: each scenario's own)."""
    emulator_cache: Path | None = None
    """The emulator's cache file (None: no cache)."""
    monitor: Any = None
    """A monitor (:mod:`riskgym.core.monitor`) that scores every proposed call before it runs (None: none)."""
    block_above: float | None = None
    """With a monitor: a call it scores above this is blocked, not run (None: observe only)."""
    cluster: ClusterOptions | None = None
    """Play the episodes on a Ray cluster (``--executor ray``; None: here, on ``concurrency`` threads)."""


@dataclass(frozen=True)
class ClusterOptions:
    """Where and how a ``--executor ray`` run plays its episodes (:mod:`riskgym.running.cluster`)."""

    address: str | None = None
    """The Ray cluster's address (None: start one on this machine alone)."""
    per_node: int | None = None
    """Episodes at once on each node (None: each node's own default, from its CPUs and memory)."""
    ship_images: bool = False
    """Send the images to a node whose images differ from this machine's, instead of refusing it."""



def default_concurrency() -> int:
    """Episodes at once, sized to the machine.

    Two per CPU (an episode waits on the sandbox and the model about as long as it computes), no more than the
    memory holds with every container at its limit (512 MiB), and at most 16.
    """
    try:
        with open("/proc/meminfo") as f:
            available = next(int(line.split()[1]) * 1024 for line in f if line.startswith("MemAvailable:"))
    except (OSError, StopIteration):
        available = 8 << 30
    return max(1, min(2 * (os.cpu_count() or 1), available // (512 << 20), 16))


def emulator_settings(scenarios: list[Scenario], opts: RunOptions) -> EmulatorSettings | None:
    """The run's emulator (None: no scenario needs one). Raises RiskgymError when one is needed and not given."""
    from riskgym.running.factory import make_emulator
    from riskgym.world.emulator.cache import EmulatorCache
    from riskgym.world.world import needs_emulator

    needing = [s.id for s in scenarios if needs_emulator(s, opts.sandbox)]
    if opts.emulator is None:
        if needing:
            more = f" (and {len(needing) - 1} more)" if len(needing) > 1 else ""
            why = ("--sandbox emulated" if sandbox_kind(opts.sandbox).emulates
                   else f"scenario {needing[0]}{more} has emulated tools")
            raise RiskgymError(f"{why}: give the emulator model with --emulator MODEL (a litellm model string, or a "
                               "name in --models FILE)")
        return None
    if opts.emulator_mode not in (None, "standard", "adversarial"):
        raise RiskgymError(f"--emulator-mode {opts.emulator_mode!r}: give standard or adversarial")
    model = make_emulator(opts.emulator, opts.models, opts.emulator_overrides)
    cache = EmulatorCache(opts.emulator_cache) if opts.emulator_cache is not None else None
    return EmulatorSettings(model=model, mode=opts.emulator_mode, cache=cache)
