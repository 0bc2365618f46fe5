"""What the hardening tests tried and how it ended: a pytest plugin (tests/conftest.py loads it).

A hardening module declares its category, ``pytestmark = pytest.mark.hardening("escape")``, and its tests record
their cases as they check them: ``record("escape", "docker-socket", ok)``. The line printed at the end of the
session, and its verdict, come from pytest's own outcomes as much as from the records:

- a category is shown only when some of its tests were collected (selected);
- ``nothing lost`` needs every collected hardening test to have passed, every category to have recorded at least
  one case, no case recorded as not ``ok`` and no record of zero cases, and no module that failed to collect;
- otherwise the line says ``NOT HELD: ...`` (what failed, errored, recorded nothing) and the session fails, even
  when every test passed (a category that recorded nothing proves nothing).

Skipped hardening tests make the line say ``incomplete``; under RISKGYM_REQUIRE_DOCKER=1 (CI), where every test must
run, however it was skipped (``importorskip`` too), they are a loss.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import pytest

KINDS = {"escape": ("escape attempts", "tried", "contained"), "evidence": ("hidden harms", "tried", "seen"),
         "fault": ("faults", "injected", "survived"), "input": ("inputs", "fuzzed", "handled")}


@dataclass
class Tally:
    """One session's cases, tests and collection errors."""

    cases: dict[str, list[tuple[str, bool]]] = field(default_factory=lambda: defaultdict(list))
    empty: list[str] = field(default_factory=list)  # records of zero cases
    tests: dict[str, str] = field(default_factory=dict)  # nodeid -> category, the collected hardening tests
    outcomes: dict[str, str] = field(default_factory=dict)  # nodeid -> passed, failed, error or skipped
    uncollected: list[str] = field(default_factory=list)

    def lines(self) -> tuple[list[str], bool]:
        """The tally's line (none when no hardening test was collected) and whether it held."""
        if not self.tests and not self.cases and not self.uncollected:
            return [], True
        categories = [k for k in KINDS if k in self.tests.values() or k in self.cases]
        parts, lost = [], [f"{name} (did not collect)" for name in self.uncollected]  # or was skipped whole
        for kind in categories:
            label, tried, held = KINDS[kind]
            cases = self.cases.get(kind, [])
            good = sum(ok for _, ok in cases)
            parts.append(f"{label}: {len(cases):,} {tried}, {good:,} {held}")
            lost += sorted({name for name, ok in cases if not ok})
            ran = [self.outcomes.get(t) for t, k in self.tests.items() if k == kind]
            if not cases and any(o == "passed" for o in ran):
                lost.append(f"{label} (no case recorded)")
        lost += [f"{name} (0 cases)" for name in self.empty]
        lost += [f"{t.split('::')[-1]} ({o})" for t, o in self.outcomes.items() if o in ("failed", "error")]
        skipped = sum(o == "skipped" for o in self.outcomes.values())
        never = sum(t not in self.outcomes for t in self.tests)
        if skipped and os.environ.get("RISKGYM_REQUIRE_DOCKER") == "1":  # CI: every one must run, however skipped
            lost.append(f"{skipped} tests skipped under RISKGYM_REQUIRE_DOCKER=1")
        verdict = (f"NOT HELD: {', '.join(lost)}" if lost else f"incomplete: {skipped + never} tests not run"
                   if skipped or never else "nothing lost")
        return ["hardening: " + " · ".join(parts) + f" · {verdict}"], not lost


TALLY = Tally()


def record(kind: str, name: str, ok: bool, count: int = 1) -> bool:
    """Record ``count`` cases of ``kind`` named ``name``; return ``ok``. A zero count is itself a loss."""
    if kind not in KINDS:
        raise ValueError(f"unknown hardening kind {kind!r}: one of {', '.join(KINDS)}")
    TALLY.cases[kind] += [(name, ok)] * count
    if count < 1:
        TALLY.empty.append(name)
    return ok


def pytest_configure(config: pytest.Config) -> None:
    """Declare the marker."""
    config.addinivalue_line("markers", "hardening(kind): a hardening test of kind escape, evidence, fault or input")


def pytest_collectreport(report: pytest.CollectReport) -> None:
    """A module that failed to collect is a loss, whatever it held; so is one skipped whole (a module-level
    ``importorskip``) under RISKGYM_REQUIRE_DOCKER=1, where every test must run."""
    if report.failed:
        TALLY.uncollected.append(report.nodeid or "?")
    elif report.skipped and os.environ.get("RISKGYM_REQUIRE_DOCKER") == "1":
        TALLY.uncollected.append(f"{report.nodeid or '?'}: skipped whole")


def pytest_collection_finish(session: pytest.Session) -> None:
    """The hardening tests that will run, by category."""
    for item in session.items:
        marker = item.get_closest_marker("hardening")
        if marker is not None:
            TALLY.tests[item.nodeid] = marker.args[0]


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Each hardening test's outcome: an error in set-up or tear-down counts as one, a skip as a skip."""
    if report.nodeid not in TALLY.tests:
        return
    if report.failed:
        TALLY.outcomes[report.nodeid] = "failed" if report.when == "call" else "error"
    elif report.skipped:
        TALLY.outcomes.setdefault(report.nodeid, "skipped")
    elif report.when == "call":
        TALLY.outcomes.setdefault(report.nodeid, "passed")


def pytest_sessionfinish(session: pytest.Session) -> None:
    """A tally that did not hold fails the session, even when every test passed.

    A pytest-xdist worker hands its share to the controller instead, which sums them (``pytest_testnodedown``).
    """
    output = getattr(session.config, "workeroutput", None)
    if output is not None:
        output["riskgym_tally"] = json.dumps({"cases": TALLY.cases, "empty": TALLY.empty, "tests": TALLY.tests,
                                              "outcomes": TALLY.outcomes, "uncollected": TALLY.uncollected})
        return
    _, held = TALLY.lines()
    if not held and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    """A pytest-xdist worker is done: its cases, tests and outcomes join the tally (each test ran on one worker)."""
    data = json.loads(getattr(node, "workeroutput", {}).get("riskgym_tally") or "{}")
    for kind, cases in data.get("cases", {}).items():
        TALLY.cases[kind] += [(name, ok) for name, ok in cases]
    TALLY.empty += data.get("empty", [])
    TALLY.tests.update(data.get("tests", {}))
    TALLY.outcomes.update(data.get("outcomes", {}))
    TALLY.uncollected += [n for n in data.get("uncollected", []) if n not in TALLY.uncollected]


def pytest_terminal_summary(terminalreporter) -> None:  # type: ignore[no-untyped-def]
    """The tally: escape attempts tried and contained, faults injected and survived, inputs fuzzed and handled."""
    for line in TALLY.lines()[0]:
        terminalreporter.write_sep("=", line)
