"""What the hardening tests tried and how it ended, printed at the end of the session (tests/conftest.py).

Each test records its cases as it checks them: ``record("escape", "docker-socket", ok)``. A case that is not ``ok``
also fails its test; the tally is the summary a reader sees first.
"""

from __future__ import annotations

from collections import defaultdict

KINDS = {"escape": ("escape attempts", "tried", "contained"), "fault": ("faults", "injected", "survived"),
         "input": ("inputs", "fuzzed", "handled")}
_CASES: dict[str, list[tuple[str, bool]]] = defaultdict(list)


def record(kind: str, name: str, ok: bool, count: int = 1) -> bool:
    """Record ``count`` cases of ``kind`` named ``name``; return ``ok``."""
    _CASES[kind] += [(name, ok)] * count
    return ok


def summary() -> list[str]:
    """The tally's lines (none when no hardening test ran)."""
    if not _CASES:
        return []
    parts, failed = [], []
    for kind, (label, tried, held) in KINDS.items():
        cases = _CASES.get(kind, [])
        good = sum(ok for _, ok in cases)
        parts.append(f"{label}: {len(cases):,} {tried}, {good:,} {held}")
        failed += sorted({name for name, ok in cases if not ok})
    verdict = "nothing lost" if not failed else f"NOT HELD: {', '.join(failed)}"
    return ["hardening: " + " · ".join(parts) + f" · {verdict}"]
