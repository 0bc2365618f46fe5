"""`riskgym run --model` as a user runs it: a subprocess, real litellm, a scripted server on 127.0.0.1, real Docker."""

import fcntl
import json
import os
import re
import signal
import socket
import subprocess
import time

import pytest

from riskgym.core.integrity import verify_trace
from riskgym.core.scenario import load_scenario
from riskgym.core.trace import read_trace
from riskgym.running.scripted_server import Script, reference_responder
from tests.conftest import LIBRARY, STARTERS
from tests.running.test_llm import litellm_price
from tests.test_cli import CLI, containers, riskgym

SCENARIOS = STARTERS
TWO = [LIBRARY / "free-disk-space-v0.toml", LIBRARY / "ticket-injection-v0.toml"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def grades(run_dir):
    return [json.loads(line) for line in (run_dir / "grades.jsonl").read_text().splitlines()]


def test_a_local_openai_compatible_server(docker_ready, llm_server, tmp_path):
    server = llm_server(reference_responder([load_scenario(p) for p in TWO], "risky"))
    run_dir = tmp_path / "run"
    args = ["run", *TWO, "--model", "openai/my-local-model", "--api-base", server.url, "--temperature", "0",
            "--concurrency", "2", "--out", run_dir]
    out = riskgym(*args)
    assert out.returncode == 0, out.stderr
    assert "2 completed" in out.stderr and "tokens" in out.stderr
    rows = grades(run_dir)
    assert [r["verdicts"]["intention"]["value"] for r in rows] == [True, True]
    assert all(r["agent"] == "openai/my-local-model" and r["status"] == "completed" for r in rows)
    assert {r["body"]["model"] for r in server.requests} == {"my-local-model"}
    assert {r["body"]["max_tokens"] for r in server.requests} == {4096}  # a reply is capped by default
    assert len(re.findall(r"e0: completed in \d+\.\d s \(\d+ turns", out.stderr)) == 2, out.stderr  # wall time
    assert [r["usage"]["cost"] for r in rows] == [0.0, 0.0]  # a model on this machine costs nothing, not "unknown"
    manifest = json.loads((run_dir / "run.json").read_text())
    assert manifest["agents"]["openai/my-local-model"]["temperature"] == 0.0 and manifest["concurrency"] == 2

    changed = riskgym(*args[:-4], "--temperature", "0.7", "--out", run_dir)
    assert changed.returncode == 2 and "ran with other settings (temperature: [0.0] then, [0.7] now)" in changed.stderr
    capped = riskgym(*args[:-2], "--max-tokens", "64", "--out", tmp_path / "capped")
    assert capped.returncode == 0 and {r["body"]["max_tokens"] for r in server.requests[-2:]} == {64}
    assert {r["body"].get("stream") for r in server.requests} == {True}  # streamed to an api_base by default
    sent = len(server.requests)
    priced = riskgym(*args[:-2], "--price", "1000000,2000000", "--no-stream", "--out", tmp_path / "priced")
    assert priced.returncode == 0, priced.stderr
    assert {r["body"].get("stream") for r in server.requests[sent:]} == {None}
    usage = [r["usage"] for r in grades(tmp_path / "priced")]  # $1 a prompt token, $2 a completion token
    assert [u["cost"] for u in usage] == [u["prompt_tokens"] + 2 * u["completion_tokens"] for u in usage]
    with (run_dir / ".lock").open("w") as lock:  # as another run holds it
        lock.write("4242")
        lock.flush()
        fcntl.flock(lock, fcntl.LOCK_EX)
        busy = riskgym(*args)
    assert busy.returncode == 2 and "another riskgym run (pid 4242) is writing this run directory" in busy.stderr
    assert json.loads((run_dir / "run.json").read_text()) == manifest


def test_a_hosted_model_from_a_models_file(docker_ready, llm_server, tmp_path):
    server = llm_server(reference_responder([load_scenario(TWO[0])], "safe"))
    models = tmp_path / "models.toml"
    models.write_text('[models.mini]\nmodel = "openai/gpt-4o-mini"\ntemperature = 0.0\nseed = 42\n')
    env = {**os.environ, "OPENAI_API_KEY": "sk-test-hosted-0123456789", "OPENAI_BASE_URL": server.url}
    run_dir = tmp_path / "run"
    out = riskgym("run", TWO[0], "--models", models, "--model", "mini", "--out", run_dir, env=env)
    assert out.returncode == 0, out.stderr
    trace = read_trace(next((run_dir / "episodes").iterdir()))
    assert trace.header.agent == "mini" and trace.header.agent_config["model"] == "openai/gpt-4o-mini"
    price_in, price_out = litellm_price("gpt-4o-mini")
    assert trace.usage["cost"] == pytest.approx(trace.usage["prompt_tokens"] * price_in
                                                + trace.usage["completion_tokens"] * price_out)
    assert trace.usage["cost"] > 0 and "cost $" in out.stderr
    assert server.requests[0]["body"]["seed"] == 42 and server.requests[0]["body"]["temperature"] == 0.0
    row = grades(run_dir)[0]
    assert row["verdicts"]["utility"]["value"] is True and row["usage"]["cost"] == trace.usage["cost"]
    assert "tokens" in out.stdout and "$0.0" in out.stdout  # the per-agent table's usage columns
    assert not any("sk-test-hosted" in p.read_text() for p in run_dir.rglob("*") if p.is_file())


def test_a_killed_run_resumes_without_losing_or_duplicating_episodes(docker_ready, llm_server, tmp_path):
    reference = reference_responder([load_scenario(p) for p in SCENARIOS], "risky")
    server = llm_server(lambda request: {**reference(request), "delay": 0.3})
    run_dir = tmp_path / "run"
    args = [*CLI, "run", *map(str, SCENARIOS), "--model", "openai/slow", "--api-base", server.url, "--epochs", "2",
            "--concurrency", "2", "--out", str(run_dir)]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    def finished():
        paths = list((run_dir / "episodes").glob("*.jsonl")) if (run_dir / "episodes").is_dir() else []
        return {p.name: p.read_bytes() for p in paths if b'"type":"seal"' in p.read_bytes()}

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(finished()) < 3:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    before = finished()
    total = 2 * len(SCENARIOS)
    assert 3 <= len(before) < total

    resumed = subprocess.run(args, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert f"{len(before)} already finished" in resumed.stderr
    traces = sorted((run_dir / "episodes").glob("*.jsonl"))
    assert len(traces) == total
    for path in traces:
        events = [json.loads(line)["type"] for line in path.read_text().splitlines()]
        assert events.count("header") == 1 and events.count("end") == 1 and events[-2:] == ["end", "seal"]
        assert read_trace(path).end.status == "completed" and verify_trace(path).ok
    assert all(run_dir.joinpath("episodes", name).read_bytes() == data for name, data in before.items())
    rows = grades(run_dir)
    assert len(rows) == total and len({(r["scenario"], r["epoch"]) for r in rows}) == total
    assert [c for c in containers() if c.labels.get("riskgym.pid") == str(proc.pid)] == []


def test_model_mistakes_get_one_line_and_exit_2(tmp_path):
    bad = tmp_path / "models.toml"
    bad.write_text('[models.mini]\nmodel = "openai/gpt-4o-mini"\ntemprature = 0\n')
    no_key = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    cases = [
        (riskgym("run", "--models", bad, "--model", "mini", "--out", tmp_path / "r"),
         f"{bad}:3: models.mini.temprature: Extra inputs are not permitted; remove it or check its spelling"),
        (riskgym("run", "--model", "openai/gpt-4o-mini", "--out", tmp_path / "r", env=no_key),
         "openai needs OPENAI_API_KEY in the environment"),
        (riskgym("run", "--model", "openai/x", "--temperature", "-1", "--out", tmp_path / "r"),
         "--temperature: Input should be greater than or equal to 0"),
        (riskgym("run", "--model", "openai/x", "--system-prompt", tmp_path / "nope.txt", "--out", tmp_path / "r"),
         "--system-prompt"),
        (riskgym("run", "--model", "openai/x", "--price", "0.15", "--out", tmp_path / "r"),
         "--price 0.15: give US dollars per million input and output tokens, e.g. 0.15,0.60"),
        (riskgym("run", "--model", "openai/x", "--api-base", f"http://127.0.0.1:{free_port()}/v1", "--out",
                 tmp_path / "r"), "nothing answers at 127.0.0.1:"),
    ]
    for out, needle in cases:
        assert out.returncode == 2, out.stderr
        assert out.stderr.startswith("riskgym: error: ") and out.stderr.count("\n") == 1, out.stderr
        assert needle in out.stderr
    assert not (tmp_path / "r").exists()


def test_a_model_that_keeps_failing_is_left_for_a_resume(docker_ready, llm_server, tmp_path):
    risky = [p for p in SCENARIOS if "benign" not in p.name]
    reference = reference_responder([load_scenario(p) for p in risky], "safe")
    key_fixed = {"yes": False}

    def respond(request):
        if request["model"] == "broken" and not key_fixed["yes"]:
            return {"status": 401, "message": "invalid api key"}
        return reference(request)

    server = llm_server(respond)
    run_dir = tmp_path / "run"
    args = ["run", *risky, "--model", "openai/broken", "--model", "openai/good", "--api-base", server.url,
            "--retries", "0", "--concurrency", "1", "--out", run_dir]
    first = riskgym(*args)
    assert first.returncode == 0, first.stderr
    assert "5 completed, 0 truncated, 3 errors, 2 not run" in first.stderr
    assert first.stderr.count("not run: openai/broken failed at the API in 3 episodes in a row") == 2
    assert "invalid api key" in first.stderr
    key_fixed["yes"] = True  # the user fixes the key and runs the same command again
    second = riskgym(*args)
    assert second.returncode == 0, second.stderr
    assert "5 completed, 0 truncated, 0 errors, 5 already finished" in second.stderr
    rows = grades(run_dir)
    assert len(rows) == 10 and all(r["status"] == "completed" for r in rows)


def test_each_model_call_shows_its_latency_tokens_and_why_it_was_retried(docker_ready, llm_server, tmp_path):
    """audit, the HTML viewer and both CSVs give each turn's seconds, tokens and retry reasons."""
    from riskgym.grading.row import GradeRow
    from riskgym.viewing.audit import turn_note
    from riskgym.viewing.html import trace_data

    reference = reference_responder([load_scenario(TWO[0])], "safe")
    server = llm_server(lambda r: {"status": 429, "message": "slow down, please"} if r["turn"] == 0 and
                        r["attempt"] == 0 else {**reference(r), "delay": 0.2})
    run_dir = tmp_path / "run"
    assert riskgym("run", TWO[0], "--model", "openai/m", "--api-base", server.url, "--out", run_dir).returncode == 0
    trace = read_trace(next((run_dir / "episodes").iterdir()))
    first = trace.turns[0]
    assert first.attempts == 2 and first.retried == [next(r for r in first.retried if "slow down, please" in r)]
    note = turn_note(first)
    assert re.fullmatch(r"turn 0 · \d+\.\d s · [\d,]+\+[\d,]+ tokens · 2 attempts \(retried: .*slow down.*\)", note)
    assert trace.usage["retries"] == 1 and trace.usage["model_seconds"] >= 0.2 * len(trace.turns)
    audit = riskgym("audit", run_dir)
    assert audit.returncode == 0 and "model turn 0 · " in audit.stdout and "slow down, please" in audit.stdout
    events = trace_data(trace, GradeRow.model_validate(grades(run_dir)[0]), "")["events"]
    assert [e[6] for e in events if e[0] == "m"] == [turn_note(t) for t in trace.turns]
    turns = riskgym("export", run_dir, "--turns", "-").stdout.splitlines()
    assert turns[0].startswith("trace,scenario,agent,epoch,turn,seconds,prompt_tokens,completion_tokens,"
                               "tokens_estimated,cost,")
    assert len(turns) == 1 + len(trace.turns) and "slow down, please" in turns[1] and ",2," in turns[1]
    episodes = riskgym("export", run_dir, "--csv", "-").stdout.splitlines()
    assert episodes[0].endswith(",turns,model_seconds,retries") and episodes[1].endswith(",1")


def test_ctrl_c_during_a_long_model_call_stops_at_once(docker_ready, llm_server, tmp_path):
    """Ctrl-C cuts a streamed call short (the server sees the connection closed), not after the reply's minutes."""
    server = llm_server(Script([{"content": "a long think", "delay": 120}]))
    run_dir = tmp_path / "run"
    args = [*CLI, "run", TWO[0], "--model", "openai/thinker", "--api-base", server.url, "--out", str(run_dir)]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not server.streams:
        time.sleep(0.05)
    asked = time.monotonic()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and time.monotonic() - asked < 15, err
    trace = read_trace(next((run_dir / "episodes").iterdir()))
    assert trace.end.status == "interrupted" and "stopped by the user" in trace.turns[-1].error
    for _ in range(40):
        if server.streams[0]["closed_early"]:
            break
        time.sleep(0.05)
    assert server.streams[0]["closed_early"]
