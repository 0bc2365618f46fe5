"""Bad input, fuzzed with hypothesis: scenario and model files, tool-call arguments (in the validator and in a real
sandbox), and trace files (truncated, corrupted) read, verified, graded and reported.

Every input either works or gets a clear error: the library's own error type, one line naming the file; never a
crash, and nothing half-written.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from riskgym.core.integrity import verify_trace
from riskgym.core.scenario import load_scenario
from riskgym.core.trace import read_trace
from riskgym.errors import RiskgymError, ScenarioError, ToolCallError, TraceError
from riskgym.grading import grade_trace
from riskgym.running.runner import is_finished
from riskgym.tools import TOOLS
from tests.conftest import LIBRARY
from tests.hardening.tally import record
from tests.test_cli import riskgym

pytestmark = pytest.mark.hardening("input")

SCENARIOS = sorted(LIBRARY.glob("*.toml"))
PROBE = Path(__file__).with_name("escape-probe-v0.toml")
TOKENS = ['"', "'", '"""', "[", "]", "[[", "]]", "{", "}", "=", ",", "\n", "#", ".", "-1", "0o7777", "nan", "inf",
          "99999999999999999999", "true", "1979-05-27", "\\", "\\u0000", "\x00", "\t", "é", "🙂", "\u2028", "\udcff",
          "id", "version", "tools",
          "[sandbox]", "[[intention]]", "path", "mode", "regex", "(", "*", "/", "../", "{{", "%s"]
NASTY_TEXT = st.text(alphabet=st.characters(codec="utf-8"), max_size=40) | st.sampled_from(TOKENS)
JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | NASTY_TEXT | st.text(max_size=2000),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(NASTY_TEXT, inner, max_size=4), max_leaves=12)


def fuzz(examples: int) -> settings:
    return settings(max_examples=examples, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def one_line(exc: Exception, *names: str) -> bool:
    """A clear error: one line, not too long, naming what it is about."""
    text = str(exc)
    return "\n" not in text and 0 < len(text) < 600 and all(n in text for n in names)


def toml_value(value) -> str:
    """A value as an inline TOML value (JSON strings are TOML basic strings)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf") if math.isinf(value) else repr(value)
    if isinstance(value, int | str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value if v is not None) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {toml_value(v)}" for k, v in value.items() if v is not None) + "}"
    return '""'


# -- scenario and model files -------------------------------------------------------------------------------------


def loads_or_says_why(load, path: Path, error: type[Exception], case: str) -> None:
    """``load(path)`` works, or raises ``error`` in one line naming the file; anything else fails the test."""
    ok = False
    try:
        load(path)
        ok = True
    except error as exc:
        ok = one_line(exc, str(path))
        assert ok, str(exc)
    finally:  # an exception of another type propagates, recorded as not handled
        record("input", case, ok)


@fuzz(300)
@given(source=st.sampled_from(SCENARIOS), edits=st.lists(st.tuples(st.floats(0, 1), st.integers(0, 40), NASTY_TEXT),
                                                         min_size=1, max_size=4), garbage=st.binary(max_size=8))
def test_mutated_scenario_files(tmp_path_factory, source, edits, garbage):
    text = source.read_bytes()
    for where, cut, insert in edits:  # replace a span with TOML-ish text
        at = int(where * len(text))
        text = text[:at] + insert.encode("utf-8", "surrogatepass") + text[at + cut:]
    if garbage:
        text += garbage
    path = tmp_path_factory.mktemp("scenario") / source.name
    path.write_bytes(text)
    loads_or_says_why(load_scenario, path, ScenarioError, "scenario file (text edits)")


@fuzz(300)
@given(source=st.sampled_from(SCENARIOS), key=st.integers(0, 100), value=JSONISH, drop=st.booleans())
def test_scenario_fields_with_any_value(tmp_path_factory, source, key, value, drop):
    import tomllib

    data = tomllib.loads(source.read_text())
    keys = sorted(data)
    field = keys[key % len(keys)]
    if drop:
        data.pop(field)
    else:
        data[field] = value
    path = tmp_path_factory.mktemp("scenario") / source.name
    path.write_text("".join(f"{json.dumps(k)} = {toml_value(v)}\n" for k, v in data.items() if v is not None))
    loads_or_says_why(load_scenario, path, ScenarioError, "scenario file (field values)")


@fuzz(150)
@given(body=st.dictionaries(NASTY_TEXT, JSONISH, max_size=4), name=NASTY_TEXT)
def test_models_files(tmp_path_factory, body, name):
    from riskgym.running.model import load_models_file

    path = tmp_path_factory.mktemp("models") / "models.toml"
    path.write_text(f"[models.{json.dumps(name)}]\n" + "".join(f"{json.dumps(k)} = {toml_value(v)}\n"
                                                                for k, v in body.items() if v is not None))
    loads_or_says_why(load_models_file, path, RiskgymError, "models file")


def test_the_cli_on_bad_scenarios_writes_nothing(tmp_path):
    """`validate` and `run` on broken files: exit 2, one line naming the file, and no run directory made."""
    cases = {"syntax": "id = \n", "type": PROBE.read_text().replace("version = 0", 'version = "zero"'),
             "nul": PROBE.read_text().replace("Please", "Ple\x00ase"), "binary": "\udcff"}
    ok = 0
    for name, text in cases.items():
        path = tmp_path / name / PROBE.name
        path.parent.mkdir()
        path.write_bytes(text.encode("utf-8", "surrogateescape"))
        for args in (["validate", path], ["run", path, "--agent", "scripted:safe", "--out", tmp_path / f"run-{name}"]):
            out = riskgym(*args)
            lines = out.stderr.strip().splitlines()
            good = (out.returncode == 2 and len(lines) == 1 and str(path) in lines[0] and "Traceback" not in out.stderr
                    and not (tmp_path / f"run-{name}").exists())
            ok += record("input", "scenario file (command line)", good)
            assert good, (name, args[0], out.returncode, out.stderr)
    assert ok == 2 * len(cases)


# -- tool-call arguments ------------------------------------------------------------------------------------------

ARGUMENTS = st.one_of(
    st.dictionaries(st.sampled_from(["command", "path", "content", "recursive", "extra"]) | NASTY_TEXT, JSONISH,
                    max_size=4),
    st.text(max_size=200),  # a raw (often malformed) JSON string, as a model may send
    JSONISH)


@fuzz(600)
@given(tool=st.sampled_from(sorted(TOOLS)), arguments=ARGUMENTS)
def test_tool_call_arguments_in_the_validator(tool, arguments):
    try:
        values = TOOLS[tool].validate(arguments)
        ok = isinstance(values, dict) and all("\0" not in v for k, v in values.items() if isinstance(v, str)
                                               and k != "content")
    except ToolCallError as exc:
        ok = one_line(exc, tool)
        assert ok, str(exc)
    record("input", "tool-call arguments", ok)
    assert ok


@pytest.fixture(scope="module")
def live_env(docker_ready, tmp_path_factory):
    """An env over the probe scenario on pooled sandboxes, recording into one trace per episode."""
    from riskgym.running.env import RiskEnv
    from riskgym.running.pool import WorldPool

    pool = WorldPool("fuzz", size=1)
    env = RiskEnv(PROBE, pool=pool)
    folder = tmp_path_factory.mktemp("fuzz-traces")
    state = {"n": 0}

    def fresh():
        state["n"] += 1
        env.reset(seed=0, options={"trace": folder / f"e{state['n']}.jsonl"})

    fresh()
    yield env, fresh, folder
    env.close()
    pool.close()


HUGE = st.sampled_from(["x" * 200_000, "é" * 50_000, "🙂" * 30_000, "/" + "a/" * 3000, "\n" * 10_000])
LIVE_TEXT = st.text(max_size=300) | HUGE | NASTY_TEXT


@fuzz(40)
@given(tool=st.sampled_from(["shell", "read_file", "write_file", "list_dir", "delete_path"]), text=LIVE_TEXT,
       other=LIVE_TEXT, flag=JSONISH)
def test_tool_call_arguments_in_a_real_sandbox(live_env, tool, text, other, flag):
    env, fresh, _folder = live_env
    arguments = {"shell": {"command": text}, "read_file": {"path": text},
                 "write_file": {"path": other, "content": text}, "list_dir": {"path": text},
                 "delete_path": {"path": "/home/agent/" + text, "recursive": flag}}[tool]
    obs, _, terminated, truncated, info = env.step({"tool": tool, "arguments": arguments})
    ok = isinstance(obs, str) and info["event"]["type"] == "step"
    if terminated or truncated:
        fresh()
    record("input", "tool-call arguments (run in a sandbox)", ok)
    assert ok


def test_every_fuzzed_episode_trace_verifies(live_env):
    """Runs after the sandbox fuzzing (same module, in order): each trace it wrote reads back and verifies."""
    _env, fresh, folder = live_env
    fresh()  # ends the episode in flight (recorded as interrupted) so that its trace is sealed
    traces = sorted(folder.glob("*.jsonl"), key=lambda p: int(p.stem[1:]))[:-1]  # e2 before e10; the last is open
    assert traces
    for path in traces:
        trace = read_trace(path)
        assert verify_trace(path).ok and trace.end is not None


# -- trace files --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sample_run(library_run, tmp_path_factory) -> Path:
    """A copy of the library run (12 graded episodes) to corrupt."""
    copy = tmp_path_factory.mktemp("corrupt") / "run"
    shutil.copytree(library_run, copy)
    return copy


MUTATION = st.sampled_from(["truncate", "flip", "insert", "drop-line", "dup-line", "swap-lines", "json-line", "empty"])


def corrupt(data: bytes, how: str, at: float, junk: bytes, line) -> bytes:
    lines = data.split(b"\n")
    i = int(at * (len(lines) - 1))
    pos = int(at * len(data))
    if how == "truncate":
        return data[:pos]
    if how == "flip":
        return data[:pos] + bytes([data[pos] ^ 0x20 if pos < len(data) else 0]) + data[pos + 1:]
    if how == "insert":
        return data[:pos] + junk + data[pos:]
    if how == "drop-line":
        return b"\n".join(lines[:i] + lines[i + 1:])
    if how == "dup-line":
        return b"\n".join(lines[: i + 1] + lines[i:])
    if how == "swap-lines":
        j = max(0, i - 1)
        lines[i], lines[j] = lines[j], lines[i]
        return b"\n".join(lines)
    if how == "json-line":
        lines[i] = json.dumps(line).encode()
        return b"\n".join(lines)
    return b""


@fuzz(300)
@given(pick=st.integers(0, 11), how=MUTATION, at=st.floats(0, 1), junk=st.binary(min_size=1, max_size=40),
       line=JSONISH)
def test_corrupted_traces_read_verify_and_grade(sample_run, pick, how, at, junk, line):
    source = sorted((sample_run / "episodes").glob("*.jsonl"))[pick]
    path = sample_run.parent / "one" / source.name
    path.parent.mkdir(exist_ok=True)
    original = source.read_bytes()
    path.write_bytes(corrupt(original, how, at, junk, line))
    verification = verify_trace(path)  # never raises: it reports
    changed = path.read_bytes() != original
    assert verification.ok is not changed, f"{how} at {at}: verify said ok={verification.ok}"  # a change shows
    ok = is_finished(path) in (True, False)  # a resume asks is_finished
    try:
        trace = read_trace(path)
    except TraceError as exc:
        ok = ok and one_line(exc, str(path))
        assert ok, str(exc)
    else:
        scenario = load_scenario(LIBRARY / f"{trace.header.scenario_id}-v0.toml")
        verdicts = grade_trace(scenario, trace)
        ok = ok and all(v.value in (True, False, None) for v in verdicts.values())
    record("input", "trace file", ok)
    assert ok


@pytest.mark.parametrize("how", ["truncate", "flip", "json-line", "empty", "insert"])
def test_commands_on_a_run_with_a_corrupted_trace(sample_run, tmp_path, how):
    """grade, report (and --html), verify, audit, export and replay: an exit code, at most one line of error, no
    traceback; grades.jsonl is either as it was or complete."""
    run = tmp_path / "run"
    shutil.copytree(sample_run, run)
    victim = sorted((run / "episodes").glob("*.jsonl"))[3]
    victim.write_bytes(corrupt(victim.read_bytes(), how, 0.6, b"\xff\xfe{", {"type": "step", "index": "x"}))
    before = (run / "grades.jsonl").read_bytes()
    problems = []
    for args in (["grade", run], ["report", run], ["report", run, "--html", tmp_path / "r.html"], ["verify", run],
                 ["audit", run, "--list"], ["export", run, "--csv", tmp_path / "x.csv"], ["replay", victim],
                 ["audit", victim]):
        out = riskgym(*args)
        errors = [line for line in out.stderr.splitlines() if line.startswith("riskgym: error")]
        if out.returncode not in (0, 1, 2) or "Traceback" in out.stderr or (out.returncode == 2 and len(errors) != 1):
            problems.append(f"{args[0]}: exit {out.returncode}: {out.stderr[-400:]}")
    after = (run / "grades.jsonl").read_bytes()
    if after != before:
        rows = [json.loads(line) for line in after.decode().splitlines()]
        if len(rows) != 12:
            problems.append(f"grades.jsonl rewritten with {len(rows)} rows")
    problems += [f"{p.name}: left behind" for p in run.glob(".*.tmp")]
    record("input", "run with a corrupted trace (commands)", not problems)
    assert not problems, problems
