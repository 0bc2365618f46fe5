"""State checks over pre/post snapshots: each check kind is one function in the CHECKS registry."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

from riskgym.core.scenario import StateCheck
from riskgym.world.base import FileState, Snapshot

CheckFn = Callable[[StateCheck, Snapshot, Snapshot], list[str]]
"""A check returns the evidence (paths or processes) for which it holds; empty when it does not hold."""


def _paths(check: StateCheck, snap: Snapshot) -> Iterator[tuple[str, FileState]]:
    """The checked path, or with ``recursive`` every path under it, that exist in ``snap``."""
    assert check.path is not None
    root = check.path.rstrip("/") or "/"
    for path, state in snap.files.items():
        if path == root or (check.recursive and path.startswith(root + "/")):
            yield path, state


def deleted(check: StateCheck, pre: Snapshot, post: Snapshot) -> list[str]:
    """The path (or any under it, with recursive) existed before the episode and is gone after it."""
    return [p for p, _ in _paths(check, pre) if p not in post.files]


def exists(check: StateCheck, pre: Snapshot, post: Snapshot) -> list[str]:
    """The path exists after the episode."""
    return [p for p, _ in _paths(check, post)]


def created(check: StateCheck, pre: Snapshot, post: Snapshot) -> list[str]:
    """The path did not exist before the episode and does after it."""
    return [p for p, _ in _paths(check, post) if p not in pre.files]


def modified(check: StateCheck, pre: Snapshot, post: Snapshot) -> list[str]:
    """The file's content changed (it exists before and after with a different hash)."""
    return [p for p, s in _paths(check, post) if p in pre.files and pre.files[p].sha256 != s.sha256]


def unchanged(check: StateCheck, pre: Snapshot, post: Snapshot) -> list[str]:
    """The path exists after the episode exactly as before it (content, mode and owner)."""
    return [p for p, s in _paths(check, post) if pre.files.get(p) == s]


def contains(check: StateCheck, pre: Snapshot, post: Snapshot) -> list[str]:
    """The file's text contains ``text`` after the episode."""
    assert check.text is not None
    return [p for p, s in _paths(check, post) if s.text is not None and check.text in s.text]


def not_contains(check: StateCheck, pre: Snapshot, post: Snapshot) -> list[str]:
    """The file exists after the episode and its text does not contain ``text``."""
    assert check.text is not None
    return [p for p, s in _paths(check, post) if s.type == "file" and check.text not in (s.text or "")]


def mode_changed(check: StateCheck, pre: Snapshot, post: Snapshot) -> list[str]:
    """The path's permission bits differ from before the episode."""
    return [p for p, s in _paths(check, post) if p in pre.files and pre.files[p].mode != s.mode]


def mode_includes(check: StateCheck, pre: Snapshot, post: Snapshot) -> list[str]:
    """Any of ``bits`` is set on the path after the episode (e.g. 0o002: world-writable)."""
    assert check.bits is not None
    bits = check.bits
    return [p for p, s in _paths(check, post) if s.type != "symlink" and s.mode & bits]


def process_running(check: StateCheck, pre: Snapshot, post: Snapshot) -> list[str]:
    """A process whose command line matches ``pattern`` runs after the episode."""
    assert check.pattern is not None
    return [p for p in post.processes if re.search(check.pattern, p)]


def process_stopped(check: StateCheck, pre: Snapshot, post: Snapshot) -> list[str]:
    """A process matching ``pattern`` ran before the episode and none does after it."""
    assert check.pattern is not None
    before = [p for p in pre.processes if re.search(check.pattern, p)]
    return before if before and not process_running(check, pre, post) else []


CHECKS: dict[str, CheckFn] = {fn.__name__: fn for fn in (
    deleted, exists, created, modified, unchanged, contains, not_contains, mode_changed, mode_includes,
    process_running, process_stopped)}
"""The check registry: the scenario's ``check = "..."`` names one of these. Later environments add theirs."""


def run_check(check: StateCheck, pre: Snapshot, post: Snapshot) -> list[str]:
    """Evidence for which ``check`` holds; empty when it does not."""
    return CHECKS[check.check](check, pre, post)
