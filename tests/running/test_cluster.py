"""`riskgym run --executor ray` on a real Ray cluster of two nodes on this machine (a head and a second node process,
both started with `riskgym node start`), with real Docker: a killed worker, resuming, model slots over the cluster."""

import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from riskgym.core.scenario import load_scenario
from riskgym.running.scripted_server import reference_responder
from tests.conftest import LIBRARY, STARTERS, skip_unless_required
from tests.running.test_run_llm import free_port, grades
from tests.test_cli import containers_of, riskgym

TWO = [LIBRARY / "free-disk-space-v0.toml", LIBRARY / "ticket-injection-v0.toml"]


@pytest.fixture(scope="module")
def ray_cluster(docker_ready):
    """The head and a second node, each taking episodes; the address to give --ray-address."""
    if importlib.util.find_spec("ray") is None:  # the ray extra is installed by make test: CI must run these
        skip_unless_required("ray is not installed (pip install 'riskgym[ray]')")
    port, temp = free_port(), Path(f"/tmp/riskgym-ray-{os.getpid()}")
    common = ["--num-cpus=2", "--object-store-memory=100000000", "--disable-usage-stats"]
    home = temp / "home"  # the head's: a token that a cluster of one machine left (Ray would turn tokens on for it)
    (home / ".ray").mkdir(parents=True)
    (home / ".ray" / "auth_token").write_text("left-by-an-earlier-ray-init-0123456789abcdef")
    head = riskgym("node", "start", "--head", "--", f"--port={port}", f"--temp-dir={temp}",
                   "--include-dashboard=false", *common, env={**os.environ, "HOME": str(home)})
    assert head.returncode == 0, head.stdout + head.stderr
    try:
        second = riskgym("node", "start", f"--address=127.0.0.1:{port}", "--", *common)
        assert second.returncode == 0, second.stdout + second.stderr
        assert "this node plays episodes (riskgym/base:latest recipe" in second.stderr
        yield f"127.0.0.1:{port}"
    finally:
        riskgym("node", "stop", "--", "--force")
        shutil.rmtree(temp, ignore_errors=True)


def processes():
    """(pid, command line) of every process."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            found.append((int(proc.name), (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()))
        except (ValueError, OSError):
            continue
    return found


def parent(pid):
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def node_workers():
    """The pids of the Node actors' processes, busy ones (playing an episode) first."""
    found = [(args, pid) for pid, args in processes() if args.startswith("ray::Node")]
    return [pid for title, pid in sorted(found, key=lambda f: "play" not in f[0])]


def started_run(address, run_dir, *extra, env=None):
    """The starter episodes of both scripted agents (and ``extra``'s) over the cluster, 2 at once a node, in a
    subprocess, once its first trace landed."""
    args = ["run", *STARTERS, "--agent", "scripted:risky", "--agent", "scripted:safe", *extra, "--executor", "ray",
            "--ray-address", address, "--concurrency", "2", "--out", run_dir]
    proc = subprocess.Popen([sys.executable, "-m", "riskgym.cli", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 120
    while not list((run_dir / "episodes").glob("*.jsonl")) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    return args, proc


def verdicts(run_dir):
    return {(r["scenario"], r["agent"], r["epoch"]): tuple(r["verdicts"][k]["value"] for k in
                                                          ("intention", "completion", "utility"))
            for r in grades(run_dir)}


def test_a_run_over_two_nodes_survives_a_killed_worker_holds_a_models_concurrency_and_resumes(
        ray_cluster, library_run, llm_server, tmp_path):
    reference = reference_responder([load_scenario(p) for p in STARTERS], "safe")
    lock, active, peak = threading.Lock(), [0], [0]

    def respond(request):
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        try:
            time.sleep(0.05)  # the slot is held for the whole call: two holders would overlap here
            return reference(request)
        finally:
            with lock:
                active[0] -= 1

    server = llm_server(respond)
    models = tmp_path / "models.toml"
    models.write_text(f'[models.local]\nmodel = "openai/m"\napi_base = "{server.url}"\nconcurrency = 1\n'
                      'api_key_env = "RISKGYM_RAY_TEST_KEY"\n')
    env = {**os.environ, "RISKGYM_RAY_TEST_KEY": "sk-ray-test-0123456789"}  # on the driver only, not the nodes
    run_dir = tmp_path / "run"
    args, proc = started_run(ray_cluster, run_dir, "--models", models, "--agent", "local", env=env)
    workers = node_workers()
    assert len(workers) == 2, workers  # one actor per node
    os.kill(workers[0], signal.SIGKILL)  # mid-run: episodes are in flight on both nodes
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert err.count("ray: node ") == 2 and "takes 2 episodes at once" in err
    sent_again = int(err.split(" episodes sent again")[0].rsplit(" ", 1)[-1])
    assert sent_again >= 1 and err.count("was lost on node") == sent_again, err
    assert "18 completed, 0 truncated, 0 errors" in err
    traces = sorted((run_dir / "episodes").glob("*.jsonl"))
    assert len(traces) == 18 and not list((run_dir / "episodes").glob(".*"))  # no partial or incoming file
    rows = grades(run_dir)
    assert len(rows) == 18 and len({(r["scenario"], r["agent"], r["epoch"]) for r in rows}) == 18  # each once
    found, local = verdicts(run_dir), verdicts(library_run)  # what a local run of the same episodes found
    assert {k: v for k, v in found.items() if k[1] != "local"} == local
    assert {k[0]: v[:2] for k, v in found.items() if k[1] == "local"} == {
        k[0]: v[:2] for k, v in local.items() if k[1] == "scripted:safe"}  # it replays the safe path: no harm
    assert len(server.requests) >= 12 and peak[0] == 1  # up to 4 episodes at once, the model's calls one at a time
    assert {r["headers"]["Authorization"] for r in server.requests} == {"Bearer sk-ray-test-0123456789"}
    assert not any("sk-ray-test" in p.read_text() for p in run_dir.rglob("*") if p.is_file())
    check = riskgym("verify", run_dir)
    assert check.returncode == 0 and "18 of 18 traces verified" in check.stdout, check.stdout
    assert not containers_of(run_dir)  # the killed actor's boxes too: its restart pruned them

    before = {p.name: p.read_bytes() for p in traces}
    again = riskgym(*args, env=env)
    assert again.returncode == 0, again.stderr
    assert "18 already finished" in again.stderr
    assert {p.name: p.read_bytes() for p in (run_dir / "episodes").glob("*.jsonl")} == before


def test_bad_cluster_options_get_one_line_and_write_nothing(tmp_path, capsys):
    from riskgym.cli import main

    run_dir = tmp_path / "run"
    for extra, says in ((["--executor", "ray", "--ray-address", "127.0.0.1:1"], "no Ray cluster answers there"),
                        (["--executor", "ray", "--ray-address", "nowhere"], "give HOST:PORT"),
                        (["--ship-images"], "--ship-images: give --executor ray too"),
                        (["--ray-address", "127.0.0.1:1"], "--ray-address: give --executor ray too"),
                        (["--executor", "ray", "--monitor", "human"], "a person answers at this terminal")):
        rc = main(["run", str(TWO[0]), "--agent", "scripted:safe", "--sandbox", "fake", *extra, "--out", str(run_dir)])
        err = capsys.readouterr().err
        assert rc == 2 and says in err, err
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
        assert not run_dir.exists()


def test_a_local_run_never_imports_ray(tmp_path):
    code = ("import sys; from riskgym.cli import main; "
            f"rc = main(['run', {str(TWO[0])!r}, '--agent', 'scripted:safe', '--sandbox', 'fake', '--out', "
            f"{str(tmp_path / 'run')!r}]); print('ray' in sys.modules, rc)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip().splitlines()[-1] == "False 0", out.stdout + out.stderr


def test_a_node_whose_image_differs_is_refused(ray_cluster):
    import io
    import tarfile

    import ray

    from riskgym.running.cluster import Cluster, Member
    from riskgym.running.node import Node
    from riskgym.running.runner import ClusterOptions, RunOptions
    from riskgym.world.docker import docker_client

    tag, theirs, ours = "riskgym/pytest-tiny:latest", "feedfacefeedface", "0123456789abcdef"
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as tar:  # an image of one file, built from this recipe "feedface..."
        tar.addfile(tarfile.TarInfo("hello"), io.BytesIO(b""))
    docker_client().api.import_image_from_data(data.getvalue(), repository=tag.split(":")[0], tag="latest",
                                               changes=[f"LABEL riskgym.recipe={theirs}"])
    ray.init(address=ray_cluster, namespace="riskgym-test", log_to_driver=False)
    try:
        opts = RunOptions(cluster=ClusterOptions(per_node=1))
        actor = ray.remote(Node).remote("pytest", [], opts, {tag: ours}, {})  # the driver says another recipe
        member = Member(actor, ray.nodes()[0]["NodeID"])
        assert ray.get(actor.ready.remote())["differs"] == {tag: theirs}
        reason = Cluster._admit(ray, member, {tag: ours}, ship=False)
        assert reason == (f"image {tag}: its recipe is {theirs} there, {ours} here; run `riskgym images build` "
                          "there, or give --ship-images")
        # shipped, the archive loads (the engine says so), and the node still refuses: its image carries the recipe
        # it was built from
        since = int(time.time()) - 1
        assert Cluster._admit(ray, member, {tag: ours}, ship=True) == reason
        image = docker_client().api.inspect_image(tag)["Id"]
        seen = docker_client().events(since=since, until=int(time.time()) + 1, decode=True, filters={"type": "image"})
        assert ("load", image) in [(e.get("Action"), e.get("id")) for e in seen]
        ray.get(actor.close.remote())
    finally:
        ray.shutdown()
        docker_client().images.remove(tag, force=True)


def test_a_node_that_dies_mid_run_leaves_its_episodes_to_the_others(ray_cluster, tmp_path):
    """Last in this file: it kills the second node."""
    run_dir = tmp_path / "run"
    _, proc = started_run(ray_cluster, run_dir)
    second = [pid for pid, args in processes() if "/raylet " in args and "sockets/raylet.1 " in args]
    assert len(second) == 1, [args for _, args in processes() if "raylet" in args]
    children = [pid for pid, _ in processes() if parent(pid) == second[0]]  # its workers, the actor among them
    assert set(children) & set(node_workers()), children
    for pid in [second[0], *children]:  # the node's death, as when its machine goes
        os.kill(pid, signal.SIGKILL)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert "was lost on node" in err and "12 completed, 0 truncated, 0 errors" in err, err
    rows = grades(run_dir)
    assert len({(r["scenario"], r["agent"], r["epoch"]) for r in rows}) == len(rows) == 12
    check = riskgym("verify", run_dir)
    assert check.returncode == 0 and "12 of 12 traces verified" in check.stdout, check.stdout
    assert not containers_of(run_dir)  # what the dead node's actor left on this engine: the driver removed it
