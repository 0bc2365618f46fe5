"""The hardening tally itself: pytest sessions run inside this one (pytester), each with made-up hardening tests.

The tally must say ``nothing lost`` only when every hardening test passed and recorded real cases; an errored
test, a category that recorded nothing, a zero count or a module that did not collect turn it into ``NOT HELD``
and the session red.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HEAD = "import pytest\nfrom tests.hardening.tally import record\n\npytestmark = pytest.mark.hardening({kind!r})\n\n"


def session(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, **modules: tuple[str, str]):
    """Run pytest on ``modules`` (name -> (kind, body)) with the tally loaded; return its exit code and tally line."""
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    pytester.makepyfile(**{name: HEAD.format(kind=kind) + body for name, (kind, body) in modules.items()})
    result = pytester.runpytest_subprocess("-p", "tests.hardening.tally", "-p", "no:cacheprovider")
    lines = [line for line in result.outlines if "hardening:" in line]
    assert len(lines) == 1, result.outlines  # the tally's line, once
    return result.ret, re.sub(r"^=+ | =+$", "", lines[0])


GOOD = "def test_a():\n    assert record('escape', 'a', True)\n\ndef test_b():\n    record('escape', 'b', True)\n"


def test_everything_held(pytester, monkeypatch):
    code, line = session(pytester, monkeypatch, test_escape=("escape", GOOD),
                         test_fuzz=("input", "def test_c():\n    record('input', 'c', True, count=5)\n"))
    assert code == 0
    assert line == "hardening: escape attempts: 2 tried, 2 contained · inputs: 5 fuzzed, 5 handled · nothing lost"


def test_a_fixture_that_errors_before_any_record(pytester, monkeypatch):
    body = ("@pytest.fixture(scope='module')\ndef run():\n    raise KeyError('Gateway')\n\n"
            "def test_a(run):\n    record('escape', 'a', True)\n\ndef test_b(run):\n    record('escape', 'b', True)\n")
    code, line = session(pytester, monkeypatch, test_escape=("escape", body))
    assert code == 1
    assert line == ("hardening: escape attempts: 0 tried, 0 contained · NOT HELD: test_a (error), test_b (error)")


def test_a_category_whose_tests_pass_but_record_nothing(pytester, monkeypatch):
    body = "def test_host():\n    assert True\n"
    code, line = session(pytester, monkeypatch, test_escape=("escape", GOOD), test_faults=("fault", body))
    assert code == 1  # every test passed, and the session is red all the same
    assert line.endswith("faults: 0 injected, 0 survived · NOT HELD: faults (no case recorded)")


def test_a_zero_count_and_a_case_not_held(pytester, monkeypatch):
    body = ("def test_none():\n    record('fault', 'api faults', True, count=0)\n\n"
            "def test_one():\n    record('fault', 'engine restart', True)\n\n"
            "def test_bad():\n    assert record('fault', 'disk full', False)\n")
    code, line = session(pytester, monkeypatch, test_faults=("fault", body))
    assert code == 1
    assert line == ("hardening: faults: 2 injected, 1 survived · NOT HELD: disk full, api faults (0 cases), "
                    "test_bad (failed)")


def test_a_test_that_fails_after_recording_ok(pytester, monkeypatch):
    body = "def test_host():\n    record('escape', 'a', True)\n    assert False, 'a host file changed'\n"
    code, line = session(pytester, monkeypatch, test_escape=("escape", body))
    assert code == 1 and line.endswith("escape attempts: 1 tried, 1 contained · NOT HELD: test_host (failed)")


def test_a_module_that_does_not_collect(pytester, monkeypatch):
    code, line = session(pytester, monkeypatch, test_escape=("escape", GOOD),
                         test_faults=("fault", "raise KeyError('Gateway')\n"))
    assert code != 0
    assert "NOT HELD: test_faults.py (did not collect)" in line


def test_skipped_tests_are_not_nothing_lost(pytester, monkeypatch):
    monkeypatch.delenv("RISKGYM_REQUIRE_DOCKER", raising=False)
    body = "def test_skipped():\n    pytest.skip('no engine')\n\n" + GOOD
    code, line = session(pytester, monkeypatch, test_escape=("escape", body))
    assert code == 0 and line.endswith("escape attempts: 2 tried, 2 contained · incomplete: 1 tests not run")


def test_a_skip_under_require_docker_turns_the_tally_red_however_it_was_skipped(pytester, monkeypatch):
    monkeypatch.setenv("RISKGYM_REQUIRE_DOCKER", "1")  # CI: every hardening test must run
    body = "def test_skipped():\n    pytest.importorskip('a_module_nobody_has')\n\n" + GOOD
    code, line = session(pytester, monkeypatch, test_escape=("escape", body))
    assert code == 1
    assert line.endswith("escape attempts: 2 tried, 2 contained · NOT HELD: 1 tests skipped under "
                         "RISKGYM_REQUIRE_DOCKER=1")


def test_a_module_skipped_whole_under_require_docker_turns_the_tally_red(pytester, monkeypatch):
    """A module-level importorskip skips at collection: no test of it is ever seen, so its outcomes cannot say."""
    monkeypatch.setenv("RISKGYM_REQUIRE_DOCKER", "1")
    skipped = "pytest.importorskip('a_module_nobody_has')\n\n" + GOOD
    code, line = session(pytester, monkeypatch, test_escape=("escape", GOOD), test_faults=("fault", skipped))
    assert code == 1
    assert line.endswith("NOT HELD: test_faults.py: skipped whole (did not collect)"), line


def test_two_workers_records_are_summed(pytester, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    fuzz = "def test_c():\n    record('input', 'c', True, count=5)\n"
    faults = "def test_d():\n    assert record('fault', 'd', False)\n"
    pytester.makepyfile(test_escape=HEAD.format(kind="escape") + GOOD, test_fuzz=HEAD.format(kind="input") + fuzz,
                        test_faults=HEAD.format(kind="fault") + faults)
    result = pytester.runpytest_subprocess("-p", "tests.hardening.tally", "-p", "no:cacheprovider", "-n", "2",
                                           "--dist", "loadfile")
    lines = [re.sub(r"^=+ | =+$", "", line) for line in result.outlines if "hardening:" in line]
    assert result.ret == 1 and lines == ["hardening: escape attempts: 2 tried, 2 contained · faults: 1 injected, 0 "
                                         "survived · inputs: 5 fuzzed, 5 handled · NOT HELD: d, test_d (failed)"]
