"""ToolEmu's 144 cases imported: every one validates and is gradeable, the library's copies are what the importer
writes, attribution is kept, and a sample runs end to end with a scripted agent and emulator (real litellm)."""

import json
import subprocess

import pytest

from riskgym.core.toolkits import TOOLKITS
from riskgym.grading.proof import check_scenario
from riskgym.importers.toolemu import import_cases
from riskgym.library import load
from riskgym.running.scripted_server import emulator_responder, reference_responder
from tests.conftest import LIBRARY
from tests.test_cli import CLI, riskgym

CASES = LIBRARY / "toolemu" / "all_cases.json"
SAMPLE = 12


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    out = tmp_path_factory.mktemp("toolemu")
    return import_cases(CASES, out)


def test_all_144_cases_import_and_validate_with_their_fields_carried_over(imported):
    cases = {c["name"]: c for c in json.loads(CASES.read_text())}
    assert len(imported) == len(cases) == 144
    for path in imported:
        scenario = load(path)
        case = cases[scenario.source.case]
        assert scenario.instruction == case["User Instruction"]
        assert list(scenario.risky_outcomes) == case["Potential Risky Outcomes"]
        assert list(scenario.risky_actions) == case["Potential Risky Actions"]
        assert list(scenario.expected_achievements) == case["Expected Achievements"]
        assert list(scenario.underspecifications.safety) == case["Underspecifications"]["Safety & Security Constraints"]
        assert list(scenario.parts[0].toolkits) == case["Toolkits"]
        assert set(scenario.tools) == {n for k in case["Toolkits"] for n in TOOLKITS[k].tool_names}
        assert path.read_text().startswith("# Converted by `riskgym import toolemu` from ToolEmu's case")
        assert "Apache" in scenario.source.license and not scenario.uses_box  # no container for emulated tools


def test_the_library_holds_what_the_importer_writes(imported):
    shipped = {p.name: p.read_text() for p in (LIBRARY / "toolemu").glob("*.toml")}
    assert shipped == {p.name: p.read_text() for p in imported}


def test_every_imported_case_is_gradeable(imported):
    problems = {p.name: check_scenario(load(p), sandbox="fake")[1] for p in imported}
    assert {k: v for k, v in problems.items() if v} == {}
    assert len(problems) == 144


def test_a_sample_runs_end_to_end_with_a_scripted_agent_and_emulator(imported, llm_server, tmp_path):
    sample = imported[::len(imported) // SAMPLE][:SAMPLE]
    scenarios = [load(p) for p in sample]
    for which, risky in (("risky", True), ("safe", False)):
        server = llm_server(emulator_responder(reference_responder(scenarios, which)))
        out = tmp_path / which
        done = subprocess.run([*CLI, "run", *map(str, sample), "--model", "openai/agent", "--api-base", server.url,
                               "--emulator", "openai/emu", "--emulator-api-base", server.url, "--no-emulator-cache",
                               "--out", str(out)], capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr
        rows = [json.loads(line) for line in (out / "grades.jsonl").read_text().splitlines()]
        assert len(rows) == SAMPLE and all(r["status"] == "completed" for r in rows)
        assert {r["verdicts"]["intention"]["value"] for r in rows} == {risky}
        assert {r["verdicts"]["completion"]["value"] for r in rows} == {risky}
        emulated = [r["emulator"]["calls"] for r in rows if r["emulator"]]
        assert emulated == ([1] * SAMPLE if risky else [])  # the safe agent asks first, and calls nothing
        asked = [r["body"] for r in server.requests if r["body"]["messages"][0]["content"].startswith("You are the")]
        assert len(asked) == len(emulated) and all(b.get("stream") is not True and b["temperature"] == 0 for b in asked)
    emulator_requests = [r for r in server.requests if r["body"]["messages"][0]["content"].startswith("You are the")]
    assert emulator_requests == []  # the safe run: only the agent was asked


def test_bad_input_is_one_line_and_exit_2(tmp_path):
    broken = tmp_path / "cases.json"
    broken.write_text('{"not": "a list"}')
    out = riskgym("import", "toolemu", broken, "--out", tmp_path / "out")
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and "not a list of ToolEmu cases" in out.stderr
    unknown = tmp_path / "unknown.json"
    unknown.write_text(json.dumps([{**json.loads(CASES.read_text())[0], "Toolkits": ["Teleporter"]}]))
    out = riskgym("import", "toolemu", unknown, "--out", tmp_path / "out")
    assert out.returncode == 2 and "unknown toolkit 'Teleporter'" in out.stderr and "--toolkits" in out.stderr
    assert not (tmp_path / "out").exists()  # nothing half-written


def test_a_toolkit_given_with_toolkits_is_used(tmp_path):
    kit = tmp_path / "teleporter.toml"
    kit.write_text('[[toolkits]]\ntoolkit = "Teleporter"\ndescription_for_model = "Moves people."\n'
                   '[[toolkits.tools]]\nname = "Send"\nsummary = "Teleport someone."\n'
                   'effect = "control"\ntarget = "person"\n'
                   'parameters = [{name = "person", type = "string", required = true}]\n'
                   'returns = [{name = "arrived", type = "boolean"}]\n')
    case = {**json.loads(CASES.read_text())[0], "name": "official_900", "Toolkits": ["Teleporter"],
            "Potential Risky Actions": ["Send someone without asking."]}
    cases = tmp_path / "cases.json"
    cases.write_text(json.dumps([case]))
    out = riskgym("import", "toolemu", cases, "--toolkits", kit, "--out", tmp_path / "out")
    assert out.returncode == 0, out.stderr
    written = next((tmp_path / "out").glob("*.toml"))
    assert written.name == "toolemu-900-teleporter-v0.toml"
    assert 'tool = "TeleporterSend"' in written.read_text() and "Teleporter" not in TOOLKITS  # not in this process
