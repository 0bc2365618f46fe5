"""Replay: every starter scenario's recorded traces re-run with no divergence; divergences made on purpose show."""

import json
import re

import pytest

from riskgym.core.scenario import load_scenario
from riskgym.core.trace import read_trace
from riskgym.rundir import scenario_for
from riskgym.running.replay import normalizer, replay
from tests.conftest import LIBRARY, STARTERS, harness_marks
from tests.test_cli import mine, riskgym


def test_every_starter_scenario_replays_with_no_divergence(library_run):
    traces = sorted((library_run / "episodes").glob("*.jsonl"))
    assert len(traces) == 2 * len(STARTERS)
    for path in traces:
        with replay(path) as done:
            assert len(done.steps) == len(done.trace.steps) > 0
            assert [r for r in done.steps if not r.same] == [], path.name
            assert done.state == [], path.name  # the end state is the recorded one too
            assert done.divergences == 0
    assert mine("replay") == []


def test_no_observation_of_the_starter_runs_names_the_harness(library_run):
    outputs = [s.observation for p in (library_run / "episodes").glob("*.jsonl") for s in read_trace(p).steps]
    assert len(outputs) > 12
    assert harness_marks(outputs, library_run) == []


def test_a_changed_sandbox_diverges_at_the_step_and_in_the_end_state(library_run):
    path = library_run / "episodes" / "free-disk-space-v0__scripted-safe__e0.jsonl"
    scenario = scenario_for(path, read_trace(path))
    no_photos = scenario.model_copy(update={"sandbox": scenario.sandbox.model_copy(update={"setup": ()})})
    with replay(path, scenario=no_photos) as done:
        first = done.steps[0]
        assert not first.same and "8.1M\t/home/agent/backup" in first.step.observation
        diff = first.diff()
        assert "-8.1M\t/home/agent/backup" in diff.splitlines()
        now = re.findall(r"^\+(\S+)\t/home/agent/backup$", diff, re.M)  # the replayed size: no photos in it
        assert len(now) == 1 and now[0] != "8.1M" and now[0].endswith("K"), diff
        assert ("deleted", "/home/agent/backup/photos-2019.tar", "file, 8388608 bytes") in done.state
        assert done.divergences == 2  # step 0 (du) and the end state; the deletes show the same text


def test_replay_command_reports_an_edited_observation(library_run, tmp_path):
    source = library_run / "episodes" / "ticket-injection-v0__scripted-risky__e0.jsonl"
    (tmp_path / "episodes").mkdir()
    edited = tmp_path / "episodes" / source.name
    events = [json.loads(line) for line in source.read_text().splitlines()]
    step = next(e for e in events if e["type"] == "step")
    step["observation"] = step["observation"].replace("Export to CSV", "Export to XLS", 1)
    assert "Export to XLS" in step["observation"]
    edited.write_text("".join(json.dumps(e) + "\n" for e in events))
    out = riskgym("replay", edited)
    assert out.returncode == 1, out.stdout + out.stderr
    assert f"step   {step['index']}" in out.stdout and "DIFFERS" in out.stdout
    assert re.search(r"^-.*Export to XLS", out.stdout, re.M) and re.search(r"^\+.*Export to CSV", out.stdout, re.M)
    assert "replayed 3 steps: 1 divergence" in out.stdout
    assert riskgym("verify", edited).returncode == 1  # and the chain says it was edited
    same = riskgym("replay", source)
    assert same.returncode == 0 and "no divergences" in same.stdout and "end state: same" in same.stdout


def test_replay_until_a_step_opens_a_shell_in_that_state(library_run):
    path = library_run / "episodes" / "free-disk-space-v0__scripted-risky__e0.jsonl"
    before = riskgym("replay", path, "--until", "0", "--shell", input="ls ~/backup; id -un; pwd\n")
    assert before.returncode == 0, before.stderr
    assert "photos-2019.tar" in before.stdout and "agent\n/home/agent" in before.stdout
    after = riskgym("replay", path, "--until", "1", "--shell", input="ls ~/backup || echo gone\n")
    assert "gone" in after.stdout and "replayed 2 steps" in after.stdout
    assert mine("replay") == []


def test_replay_mistakes_get_one_line(library_run, tmp_path):
    path = library_run / "episodes" / "free-disk-space-v0__scripted-risky__e0.jsonl"
    for args, needle in (((path, "--until", "9"), "has steps 0 to 1"), ((path, "--shell"), "give --until N"),
                         ((tmp_path / "nope.jsonl",), "no such trace file")):
        out = riskgym("replay", *args)
        assert out.returncode == 2 and out.stderr.count("\n") == 1 and needle in out.stderr, out.stderr


@pytest.mark.parametrize("text, expected", [
    ("-rw-r--r-- 1 agent agent 4 Nov 23 01:15 f", "-rw-r--r-- 1 agent agent 4 <~> f"),
    ("2026-11-23T01:15:46+00:00 started", "<~> started"),
    ("Mon Nov 23 01:15:46 UTC 2026", "<~>"),
    ("stored upload-123.txt at 1763860546", "stored <~> at <~>"),
])
def test_normalisation(text, expected):
    assert normalizer(load_scenario(LIBRARY / "fix-permission-error-v0.toml"))(text) == expected


def test_a_step_of_an_emulated_tool_replays_its_recorded_output(library_run, tmp_path):
    source = library_run / "episodes" / "free-disk-space-v0__scripted-safe__e0.jsonl"
    events = [json.loads(line) for line in source.read_text().splitlines()]
    at = next(i for i, e in enumerate(events) if e["type"] == "step") + 1
    events.insert(at, {"type": "step", "index": 1, "tool": "GmailSendEmail", "arguments": {"to": "a@b.example"},
                       "observation": '{"success": true}'})
    (tmp_path / "episodes").mkdir()
    path = tmp_path / "episodes" / source.name
    path.write_text("".join(json.dumps(e) + "\n" for e in events))
    with replay(path) as done:
        emulated = [r for r in done.steps if r.source == "record"]
        assert [r.step.tool for r in emulated] == ["GmailSendEmail"]
        assert emulated[0].observation == '{"success": true}' and done.divergences == 0
