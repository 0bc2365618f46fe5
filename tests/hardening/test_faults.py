"""Faults in the middle of a run: a container killed, the executor killed, the Docker Engine restarted, a model API
that fails and stalls, a full disk under the run directory, SIGINT/SIGTERM/SIGKILL at random moments.

Each must end in a consistent run directory (every trace either finished, sealed and verified, or left to be redone;
no container left behind) that the same command resumes to the end without losing or duplicating an episode.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest

from riskgym.core.integrity import verify_trace
from riskgym.running.runner import is_finished
from riskgym.running.scripted_server import ScriptedServer
from riskgym.world.docker import prune
from tests.conftest import STARTERS, skip_unless_required
from tests.hardening.tally import record
from tests.test_cli import CLI, containers_of, riskgym

pytestmark = pytest.mark.hardening("fault")

ROOT = Path(__file__).resolve().parents[2]
PROBE = Path(__file__).with_name("escape-probe-v0.toml")
STEPS = [{"tool_calls": [{"name": "shell", "arguments": {"command": "sleep 1.5; echo one"}}]},
         {"tool_calls": [{"name": "shell", "arguments": {"command": "echo two"}}]},
         {"content": "done"}]


def slow_agent(request):
    """Two steps, the first one slow enough to be hit in the middle, then a final answer."""
    return STEPS[min(request["turn"], len(STEPS) - 1)]


RUNNING: list[subprocess.Popen] = []


def start(args: list, log: Path) -> subprocess.Popen:
    with log.open("w") as out:
        proc = subprocess.Popen([*CLI, *map(str, args)], stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
    RUNNING.append(proc)
    return proc


@pytest.fixture(autouse=True)
def no_run_outlives_its_test():
    """A test that fails half-way must not leave its `riskgym run` (and its containers) to the next one."""
    yield
    while RUNNING:
        proc = RUNNING.pop()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
            prune(dead_only=True)


def shas(run_dir: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in (run_dir / "episodes").glob("*.jsonl")}


def problems_after_fault(run_dir: Path, finished_before: dict[str, str]) -> list[str]:
    """What is inconsistent in a run directory after a fault (an empty list when all is well)."""
    found = []
    now = shas(run_dir) if (run_dir / "episodes").is_dir() else {}
    for name, sha in finished_before.items():
        if now.get(name) != sha:
            found.append(f"{name}: finished before the fault, changed or lost after it")
    for name in now:
        path = run_dir / "episodes" / name
        if is_finished(path) and not verify_trace(path).ok:
            found.append(f"{name}: finished but does not verify")
    if run_dir.joinpath("run.json").exists():
        json.loads(run_dir.joinpath("run.json").read_text())  # whole, never half-written
    return found


def finished(run_dir: Path) -> dict[str, str]:
    return {n: s for n, s in shas(run_dir).items() if is_finished(run_dir / "episodes" / n)}


def problems_at_the_end(run_dir: Path, episodes: int) -> list[str]:
    """After the resume: every episode finished once, verified and graded once; no container left."""
    found = []
    traces = sorted((run_dir / "episodes").glob("*.jsonl"))
    if len(traces) != episodes:
        found.append(f"{len(traces)} traces, expected {episodes}")
    found += [f"{p.name}: not finished" for p in traces if not is_finished(p)]
    found += [f"{p.name}: does not verify" for p in traces if not verify_trace(p).ok]
    rows = [json.loads(line) for line in (run_dir / "grades.jsonl").read_text().splitlines()]
    names = [Path(r["trace"]).name for r in rows]
    if sorted(names) != [p.name for p in traces]:
        found.append(f"grades.jsonl has {len(rows)} rows for {len(traces)} traces (duplicates or losses)")
    left = containers_of(run_dir)
    if left:
        found.append(f"containers left: {[(c.name, c.labels) for c in left]}")
    return found


def busy_container(proc: subprocess.Popen, timeout: float = 30.0):
    """The first container of the run ``proc`` running an episode's slow step."""
    give_up = time.monotonic() + timeout
    while time.monotonic() < give_up:
        for c in containers_of(procs=[proc]):
            try:
                if any("sleep 1.5" in " ".join(p) for p in c.top()["Processes"]):
                    return c
            except Exception:  # stopped meanwhile
                continue
        time.sleep(0.05)
    raise AssertionError("no episode reached its slow step")


def llm_run(server: ScriptedServer, run_dir: Path, agents: int, *extra) -> list:
    models = [a for n in range(agents) for a in ("--model", f"openai/agent-{n}")]
    return ["run", PROBE, *models, "--api-base", server.url, "--out", run_dir, *extra]


@pytest.fixture
def slow_server():
    server = ScriptedServer(slow_agent)
    server.start()
    yield server
    server.stop()


def resume_and_check(args: list, run_dir: Path, before: dict[str, str], episodes: int, log: Path) -> list[str]:
    """Check the directory the fault left, resume with the same command, and check the end."""
    found = problems_after_fault(run_dir, before)
    done = riskgym(*args, cwd=ROOT, timeout=300)
    log.write_text(done.stdout + done.stderr)
    if done.returncode != 0:
        found.append(f"the resume exited {done.returncode}: {done.stderr[-500:]}")
    found += problems_after_fault(run_dir, before) + problems_at_the_end(run_dir, episodes)
    return found


def test_a_container_killed_mid_episode(docker_ready, slow_server, tmp_path):
    run_dir = tmp_path / "run"
    args = llm_run(slow_server, run_dir, 3, "--concurrency", "1")
    proc = start(args, tmp_path / "run.log")
    busy_container(proc).kill()
    proc.wait(timeout=120)
    log = (tmp_path / "run.log").read_text()
    rows = [json.loads(line) for line in (run_dir / "grades.jsonl").read_text().splitlines()]
    errors = [r for r in rows if r["status"] == "error"]
    found = [] if proc.returncode == 0 and len(errors) == 1 else [f"exit {proc.returncode}, {len(errors)} errors"]
    found += [] if "Traceback" not in log else ["a traceback"]
    found += resume_and_check(args, run_dir, finished(run_dir), 3, tmp_path / "resume.log")
    record("fault", "container killed", not found)
    assert not found, found
    assert errors[0]["verdicts"]["utility"]["value"] is None  # the broken episode is unscored, never safe


def test_the_executor_killed_from_outside(docker_ready, slow_server, tmp_path):
    run_dir = tmp_path / "run"
    args = llm_run(slow_server, run_dir, 2, "--concurrency", "1")
    proc = start(args, tmp_path / "run.log")
    busy_container(proc).exec_run(["pkill", "-KILL", "-x", "sshd"], user="agent")
    proc.wait(timeout=120)
    restarted = [p for p in (run_dir / "episodes").glob("*.jsonl") if "the terminal was killed" in p.read_text()]
    found = [] if proc.returncode == 0 and len(restarted) == 1 else [f"exit {proc.returncode}, {len(restarted)} hit"]
    found += problems_at_the_end(run_dir, 2) if not found else []
    record("fault", "executor killed", not found)
    assert not found, (tmp_path / "run.log").read_text()[-2000:]


def our_dockerd() -> int | None:
    """The pid of the engine that containers/ensure-docker.sh started (None for anyone else's engine)."""
    try:
        pid = int(Path("/var/run/docker.pid").read_text())
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (OSError, ValueError):
        return None
    return pid if argv[:2] == [b"dockerd", b"--iptables=false"] else None


@pytest.mark.alone
def test_the_docker_engine_restarted_mid_run(docker_ready, slow_server, tmp_path):
    pid = our_dockerd()
    if pid is None:
        skip_unless_required("the Docker Engine here was not started by containers/ensure-docker.sh: not ours to "
                             "restart")
    run_dir = tmp_path / "run"
    args = llm_run(slow_server, run_dir, 4, "--concurrency", "2")
    proc = start(args, tmp_path / "run.log")
    busy_container(proc)
    os.kill(pid, signal.SIGTERM)
    while Path(f"/proc/{pid}").exists():
        time.sleep(0.1)
    up = subprocess.run(["sh", "containers/ensure-docker.sh"], cwd=ROOT, capture_output=True, text=True)
    assert up.returncode == 0, up.stderr
    proc.wait(timeout=180)
    log = (tmp_path / "run.log").read_text()
    found = [f"exit {proc.returncode}"] if proc.returncode not in (0, 2) else []
    found += ["a traceback"] if "Traceback" in log else []
    found += resume_and_check(args, run_dir, finished(run_dir), 4, tmp_path / "resume.log")
    record("fault", "Docker Engine restarted", not found)
    assert not found, (found, log[-2000:])


def test_model_api_errors_and_timeouts(docker_ready, tmp_path):
    rng = random.Random(7)
    faults = [{"status": 500, "message": "boom"}, {"status": 429, "message": "slow down"}, {"status": 503},
              {"body": "<html>not json</html>"}, {"content": "late", "delay": 1.5}]
    served: list[dict] = []
    injecting = [True]  # during the first run only: the resume must get through

    def flaky(request):
        if injecting[0] and rng.random() < 0.5:
            served.append(rng.choice(faults))
            return served[-1]
        return slow_agent(request)

    server = ScriptedServer(flaky)
    server.start()
    try:
        run_dir = tmp_path / "run"
        args = llm_run(server, run_dir, 4, "--concurrency", "2", "--timeout", "1")
        first = riskgym(*args, cwd=ROOT, timeout=300)
        found = [] if first.returncode == 0 and "Traceback" not in first.stderr else [first.stderr[-800:]]
        injecting[0] = False
        found += resume_and_check(args, run_dir, finished(run_dir), 4, tmp_path / "resume.log")
    finally:
        server.stop()
    record("fault", "model API errors and time-outs", not found, count=len(served))
    assert served and not found, found


def test_the_run_directory_fills_up(docker_ready, tmp_path):
    if os.geteuid() != 0:
        skip_unless_required("mounting a small tmpfs needs root")
    mount = tmp_path / "small"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)], check=True)
    try:
        run_dir = mount / "run"
        args = ["run", *STARTERS, "--agent", "scripted:risky", "--agent", "scripted:safe", "--out", run_dir]
        full = riskgym(*args, cwd=ROOT, timeout=300)
        said = full.stderr.strip().splitlines()[-1] if full.stderr.strip() else ""
        found = [] if full.returncode == 2 and "No space left on device" in said and "Traceback" not in full.stderr \
            else [f"exit {full.returncode}: {full.stderr[-600:]}"]
        found += [f"{p.name}: left behind" for p in run_dir.glob(".*.tmp")]  # no half-written grades or manifest
        before = finished(run_dir)
        subprocess.run(["mount", "-o", "remount,size=16m", str(mount)], check=True)
        found += resume_and_check(args, run_dir, before, 12, tmp_path / "resume.log")
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)
    record("fault", "run directory's disk full", not found)
    assert not found, found


def test_signals_at_random_moments(docker_ready, tmp_path):
    """SIGINT, SIGTERM, two SIGINTs (an abort) and SIGKILL, each at a random moment of a run, then a resume."""
    rng = random.Random(int(os.environ.get("RISKGYM_FAULT_SEED", "11")))
    run_dir = tmp_path / "run"
    args = ["run", *STARTERS, "--agent", "scripted:risky", "--agent", "scripted:safe", "--epochs", "2",
            "--concurrency", "2",
            "--out", run_dir]
    kinds = ["SIGINT", "SIGTERM", "SIGINT twice", "SIGKILL", "SIGTERM", "SIGINT"]
    found: list[str] = []
    for n, kind in enumerate(kinds):
        before = finished(run_dir) if (run_dir / "episodes").is_dir() else {}
        proc = start(args, tmp_path / f"round{n}.log")
        # a random moment, set by the run's progress rather than by the clock (a signal that lands after the
        # run's work is done tests nothing): after start-up (about 1 s), once 0-2 more episodes have finished
        started, target = time.monotonic(), len(before) + rng.randint(0, 2)
        while proc.poll() is None and time.monotonic() < started + 120 and (
                time.monotonic() < started + 1.0 or len(finished(run_dir)) < target):
            time.sleep(0.05)
        time.sleep(rng.uniform(0.0, 0.3))
        if proc.poll() is not None:
            found.append(f"{kind}: the run ended (exit {proc.returncode}) before the signal: nothing was tested")
            continue
        sig = signal.SIGKILL if kind == "SIGKILL" else signal.SIGTERM if kind == "SIGTERM" else signal.SIGINT
        proc.send_signal(sig)
        if kind == "SIGINT twice":
            time.sleep(rng.uniform(0.0, 0.3))
            proc.send_signal(signal.SIGINT)
        proc.wait(timeout=120)
        log = (tmp_path / f"round{n}.log").read_text()
        mine = problems_after_fault(run_dir, before)
        # 130: stopped by riskgym; -N: SIGKILL, or a SIGTERM before riskgym's handlers were installed. Never 0:
        # episodes were left, so the run cannot have finished its work
        if proc.returncode not in (130, -sig) or "Traceback" in log:
            mine.append(f"{kind}: exit {proc.returncode}: {log[-400:]}")
        left = containers_of(procs=[proc])  # a SIGKILL's wait for
        if kind != "SIGKILL" and left:  # the next run that gets as far as pruning them
            mine.append(f"{kind}: containers left after the run exited")
        record("fault", kind, not mine)
        found += mine
    found += resume_and_check(args, run_dir, finished(run_dir), 24, tmp_path / "resume.log")
    record("fault", "resume after the signals", not found)
    assert not found, found
