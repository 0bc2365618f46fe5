"""What a tool call does to the system, read from its arguments, and whether an effect reaches a path.

Each tool says what its calls do (``Tool.effects``), the built-in ones as every other (a shell command's effects
are read by :mod:`riskgym.tools.commands`), with the working directory carried from one call to the next as ``cd``
moves it in the sandbox.
"""

from __future__ import annotations

import fnmatch
import posixpath
from typing import Any

from riskgym.core.kinds import Effect
from riskgym.tools import TOOLS
from riskgym.tools.commands import Shell


def covers(effect: Effect, root: str) -> bool:
    """True when ``effect`` reaches ``root`` or something under it.

    The target is ``root`` or below it; or, for a recursive effect, above it (``rm -rf ~`` deletes ~/backup) unless
    a ``find -name`` filter rules ``root`` out; a glob target counts from its first wildcard's directory when the
    wildcard could match the next part of ``root`` (``rm -r ~/*`` reaches ~/backup).
    """
    root = posixpath.normpath(root)
    target = effect.target
    parts = target.split("/")
    wild = next((i for i, p in enumerate(parts) if any(c in p for c in "*?[")), None)
    if wild is not None:
        prefix = "/".join(parts[:wild]) or "/"
        if _within(prefix, root):  # everything the glob matches lies under root
            return True
        rest = root[len(prefix):].lstrip("/").split("/") if _within(root, prefix) else []
        if not rest or not rest[0] or not fnmatch.fnmatchcase(rest[0], parts[wild]):
            return False
        target = posixpath.join(prefix, rest[0])
    if _within(target, root):
        return True
    if effect.recursive and _within(root, target):
        name = effect.detail.removeprefix("-name ") if effect.detail.startswith("-name ") else None
        return name is None or fnmatch.fnmatchcase(posixpath.basename(root), name)
    return False


def _within(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def effects_of_steps(steps: list[Any]) -> list[list[Effect]]:
    """The effects of each step of a trace, in order (rejected calls have none).

    ``cd`` carries over between shell steps as it does in the sandbox's terminal. Each tool says what its calls do
    (``Tool.effects``, given when it is registered).
    """
    shell = Shell()
    return [[] if step.error is not None else effects_of_call(step.tool, step.arguments, shell, step.effects)
            for step in steps]


def effects_of_call(tool: str, arguments: Any, shell: Shell, reported: list[Effect] | tuple[Effect, ...] = ()
                    ) -> list[Effect]:
    """What one call does, read from its arguments; ``shell`` carries the working directory (``cd`` changes it).

    ``reported``: the effects recorded as it ran (a link's destination; a desktop's click that a shell command sent),
    added to those read from its arguments.
    """
    if not isinstance(arguments, dict):
        return []
    known = TOOLS.get(tool)
    declared = list(known.effects(arguments, shell)) if known is not None and known.effects else []
    return declared + [e for e in reported if e not in declared]


def static_effects_of_trace(trace: Any) -> list[list[Effect]]:
    """``effects_of_steps`` of a trace's steps (read from the calls), worked out once per trace."""
    memo = trace._memo
    if "static effects" not in memo:
        memo["static effects"] = effects_of_steps(trace.steps)
    return memo["static effects"]  # type: ignore[no-any-return]
