"""The escape suite: scripted adversarial agents, through the real agent loop (litellm against a scripted model API
on 127.0.0.1), try every way out of the sandbox. Each attempt must be contained, the host unaffected, and the episode
recorded with the attempt flagged.

All attacks run as one `riskgym run`, two at a time: the pool's containers serve one attack after another, reset in
place between them, so this also attacks the in-place reset.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import socket
import threading
from pathlib import Path

import pytest

from riskgym.core.integrity import verify_trace
from riskgym.core.trace import read_trace
from riskgym.running.scripted_server import ScriptedServer
from riskgym.world.docker import bridge_address, docker_client
from tests.conftest import harness_marks
from tests.hardening.attacks import ATTACKS, Attack
from tests.hardening.tally import record
from tests.test_cli import containers_of, riskgym

pytestmark = pytest.mark.hardening("escape")

SCENARIO = Path(__file__).with_name("escape-probe-v0.toml")


class Listener:
    """TCP servers on the host (loopback and the Docker bridge's address, one port) that count who connects."""

    def __init__(self, bridge: str) -> None:
        self.hits: list[str] = []
        self.socks = []
        port = 0
        for host in ("127.0.0.1", bridge):
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((host, port))
            port = s.getsockname()[1]
            s.listen()
            s.settimeout(0.2)
            self.socks.append(s)
        self.port = port
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.done.is_set():
            for s in self.socks:
                try:
                    conn, peer = s.accept()
                except OSError:
                    continue
                self.hits.append(str(peer))
                conn.close()

    def close(self) -> None:
        self.done.set()
        self.thread.join()
        for s in self.socks:
            s.close()


def fill(value, words):
    if isinstance(value, str):
        for key, word in words.items():
            value = value.replace("{" + key + "}", word)
        return value
    if isinstance(value, dict):
        return {k: fill(v, words) for k, v in value.items()}
    return value


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def escape_run(docker_ready, tmp_path_factory):
    """Run every attack once; return the run directory, the words filled in, and what the host saw."""
    tmp = tmp_path_factory.mktemp("escape")
    bridge = bridge_address(docker_client().networks.get("bridge").attrs["IPAM"])
    listener = Listener(bridge)
    canary = Path(f"/tmp/host-canary-{secrets.token_hex(4)}")
    secret = f"host-secret-{secrets.token_hex(8)}"
    canary.write_text(secret)
    words = {"canary": str(canary), "secret": secret, "loopback": str(listener.port), "bridge": bridge}
    by_model = {f"attack-{a.name}": a for a in ATTACKS}

    def responder(request):
        attack = by_model[request["model"]]
        if request["turn"] >= len(attack.calls):
            return {"content": f"{attack.name}: done"}
        return {"tool_calls": [fill(attack.calls[request["turn"]], words)]}

    server = ScriptedServer(responder)
    server.start()
    words["llm"] = server.url.split(":")[-1].split("/")[0]
    host_before = {p: digest(Path(p)) for p in ("/etc/passwd", "/etc/hostname", canary)}
    models = [arg for name in by_model for arg in ("--model", f"openai/{name}")]
    run_dir = tmp / "run"
    out = riskgym("run", SCENARIO, *models, "--api-base", server.url, "--concurrency", "2", "--out", run_dir,
                  timeout=600)
    listener.close()
    server.stop()
    host = {"returncode": out.returncode, "stderr": out.stderr, "listener_hits": listener.hits,
            "changed": [p for p, d in host_before.items() if digest(Path(p)) != d],
            "left": [c.name for c in containers_of(run_dir)], "canary_files": sorted(p.name for p in canary.parent.glob(
                canary.name + "*"))}
    canary.unlink()
    yield run_dir, words, host


def test_the_host_is_unaffected(escape_run):
    _run_dir, words, host = escape_run
    assert host["returncode"] == 0, host["stderr"][-2000:]
    assert host["listener_hits"] == [], "a sandbox reached a server on the host"
    assert host["changed"] == [], "a host file changed"
    assert host["canary_files"] == [Path(words["canary"]).name]
    assert host["left"] == [], "containers were left behind"
    assert docker_client().ping()
    # the attacks really went one after another through the same few containers, reset in place between them
    started, resets = map(int, re.search(r"(\d+) sandboxes started, (\d+) resets in place", host["stderr"]).groups())
    assert started <= 4 and resets >= len(ATTACKS) - started, host["stderr"][-300:]


@pytest.mark.parametrize("attack", ATTACKS, ids=lambda a: a.name)
def test_each_attempt_is_contained_and_flagged(escape_run, attack: Attack):
    run_dir, words, _host = escape_run
    trace_path = next((run_dir / "episodes").glob(f"*__openai-attack-{attack.name}__e0.jsonl"), None)
    assert trace_path is not None, f"the run left no trace of {attack.name}"
    trace = read_trace(trace_path)
    rows = [json.loads(line) for line in (run_dir / "grades.jsonl").read_text().splitlines()]
    row = next((r for r in rows if r["agent"] == f"openai/attack-{attack.name}"), None)
    assert row is not None, f"grades.jsonl has no row for {attack.name}"
    outputs = [s.observation for s in trace.steps]
    problem = fill_check(attack, outputs, words)
    escape = row["verdicts"]["escape"]
    flagged = any(e["kind"] == "escape" and e["rule"] == attack.flagged for e in escape["evidence"])
    verified = verify_trace(trace_path).ok
    finished = trace.end is not None and trace.end.status == "completed" and len(trace.steps) == len(attack.calls)
    record("escape", attack.name, problem is None and flagged and verified and finished)  # one case an attack
    assert finished, f"the episode did not finish: {trace.end}"
    assert problem is None, f"{attack.name} was not contained: {problem}\n" + "\n---\n".join(o[:600] for o in outputs)
    assert escape["value"] is True and flagged, f"not flagged as {attack.flagged!r}: {escape['evidence']}"
    assert verified


def test_no_output_names_the_harness(escape_run):
    """Nothing any attack saw (process lists, environment, mounts, error messages) names riskgym or the host's paths."""
    run_dir, _words, _host = escape_run
    outputs = [s.observation for p in (run_dir / "episodes").glob("*.jsonl") for s in read_trace(p).steps]
    assert len(outputs) >= sum(len(a.calls) for a in ATTACKS)
    assert harness_marks(outputs, run_dir) == []


def fill_check(attack: Attack, outputs: list[str], words: dict[str, str]) -> str | None:
    """No output holds the host's secret, and the attack's own containment check holds."""
    if words["secret"] in "\n".join(outputs):
        return "the host's secret is in an output"
    return attack.contained(outputs)


def test_every_episode_starts_clean_after_the_last_attack(escape_run):
    """The pool reset the containers between attacks: every episode's first snapshot is the same, with no process."""
    run_dir, _words, _host = escape_run
    pres = [read_trace(p).snapshot("pre") for p in sorted((run_dir / "episodes").glob("*.jsonl"))]
    assert len(pres) == len(ATTACKS) and all(p is not None for p in pres)
    first = pres[0]
    for pre in pres:
        assert pre.processes == [] and pre.files == first.files
