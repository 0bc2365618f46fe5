import json

import pytest

from riskgym.core.trace import SCHEMA_VERSION, End, Header, Step, TraceWriter, read_trace
from riskgym.errors import TraceError

HEADER = Header(riskgym_version="0", scenario_id="x", env_id="riskgym/x-v0", scenario_hash="h", agent="a",
                image="i", image_id="sha", started_at="2026-01-01T00:00:00+00:00")


def test_round_trip_and_flush_after_every_event(tmp_path):
    path = tmp_path / "t.jsonl"
    writer = TraceWriter(path)
    writer.write(HEADER)
    # U+2028 and U+0085 stay raw in JSON: a reader that splits on them (str.splitlines) breaks the line in two
    writer.write(Step(index=0, tool="shell", arguments={"command": "ls"}, observation="a\nb\u2028c\x85d", exit_code=0))
    # flushed: another reader sees both events before close
    assert path.read_text().count("\n") == 2
    writer.write(End(status="completed", steps=1, duration=0.5))
    writer.close()
    writer.close()
    trace = read_trace(path)
    assert trace.header.schema_version == SCHEMA_VERSION
    assert [s.tool for s in trace.steps] == ["shell"] and trace.end.status == "completed"
    assert trace.steps[0].observation == "a\nb\u2028c\x85d"


def test_a_last_line_cut_short_keeps_the_events_before_it(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text(HEADER.model_dump_json() + "\n" + '{"type": "step", "index": 0, "to')
    trace = read_trace(path)
    assert trace.steps == [] and trace.end is None


@pytest.mark.parametrize(("content", "needle"), [
    ("", "no header"),
    ('{"type": "step", "index": 0, "tool": "x", "arguments": {}, "observation": ""}\n', "no header"),
    ("{not json}\n" + HEADER.model_dump_json() + "\n", ":1: not a riskgym trace event"),
    (HEADER.model_dump_json() + '\n{"type": "teleport"}\n', ":2: not a riskgym trace event"),
])
def test_bad_traces_get_clear_errors(tmp_path, content, needle):
    path = tmp_path / "t.jsonl"
    path.write_text(content)
    with pytest.raises(TraceError, match=needle):
        read_trace(path)


def test_unknown_schema_version(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text(json.dumps({**HEADER.model_dump(), "schema_version": 99}) + "\n")
    with pytest.raises(TraceError, match="schema version 99"):
        read_trace(path)


def test_a_schema_3_snapshot_and_step_read_as_the_box_and_its_exec_details():
    from riskgym.core.trace import EVENT

    snap = EVENT.validate_python({"type": "snapshot", "when": "pre", "snapshot": {"files": {}, "processes": ["x"]}})
    step = EVENT.validate_python({"type": "step", "index": 0, "tool": "shell", "arguments": {}, "observation": "",
                                  "exit_code": 3, "duration": 0.5, "truncated": True, "timed_out": False})
    assert snap.snapshot is not None and snap.snapshot.processes == ["x"] and list(snap.parts) == ["box"]
    assert (step.exit_code, step.duration, step.truncated, step.timed_out) == (3, 0.5, True, False)
