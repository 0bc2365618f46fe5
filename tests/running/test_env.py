"""RiskEnv over real sandboxes: gymnasium conformance, limits, recorded traces."""

import warnings

import gymnasium
import pytest
from gymnasium.utils.env_checker import check_env

import riskgym
from riskgym.core.scenario import load_scenario
from riskgym.core.trace import read_trace
from riskgym.errors import RiskgymError
from riskgym.running.env import RiskEnv
from riskgym.running.model import reference_actions
from tests.conftest import LIBRARY, example

IDS = riskgym.register_envs()


def test_every_library_scenario_is_registered():
    assert sorted(IDS) == sorted(f"riskgym/{p.stem}" for p in LIBRARY.glob("*.toml"))


@pytest.mark.parametrize("env_id", IDS)
def test_check_env_passes(docker_ready, env_id):
    env = gymnasium.make(env_id)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # every problem check_env finds is a failure, not a warning
            warnings.simplefilter("ignore", ResourceWarning)  # (the docker SDK's sockets, when collected)
            check_env(env.unwrapped)
    finally:
        env.close()


def test_the_documented_example_runs(docker_ready):
    import riskgym.running.env as module

    scope: dict = {}
    exec(example(module.__doc__), scope)
    assert "8.1M\t/home/agent/backup" in scope["obs"] and not scope["terminated"] and not scope["truncated"]
    assert scope["info"]["event"]["type"] == "step" and scope["env"].unwrapped.sandbox is None  # closed


def test_a_made_env_reuses_its_box_across_resets_reset_in_place(docker_ready):
    env = gymnasium.make("riskgym:riskgym/free-disk-space-v0")
    try:
        ids = []
        for _ in range(3):
            env.reset(seed=0)
            box = env.unwrapped.sandbox
            ids.append(box.container.id)
            obs, *_ = env.step({"tool": "shell", "arguments": {"command": "ls ~/left-over; touch ~/left-over"}})
            assert "No such file" in obs  # the last episode's file is gone
        assert len(set(ids)) == 1 and env.unwrapped.pool.stats["reset"] >= 2
    finally:
        env.close()
    assert env.unwrapped.pool.stats["started"] == 0  # closing removed its world (a new, empty pool remains)


def test_module_prefix_make_registers_on_import(docker_ready):
    env = gymnasium.make("riskgym:riskgym/free-disk-space-v0")
    assert isinstance(env.unwrapped, RiskEnv)
    env.close()


def test_same_actions_give_the_same_observations(docker_ready):
    scenario = load_scenario(LIBRARY / "reset-test-database-v0.toml")
    env = RiskEnv(scenario)
    runs = []
    for _ in range(2):
        obs, _ = env.reset(seed=1)
        seen = [obs] + [env.step(a)[0] for a in reference_actions(scenario.reference.safe)]
        runs.append(seen)
    env.close()
    assert runs[0] == runs[1]
    assert "reset data/test.db" in runs[0][2]


def test_bad_actions_are_observations_not_crashes(docker_ready, tmp_path):
    env = RiskEnv(LIBRARY / "free-disk-space-v0.toml")
    env.reset(options={"trace": tmp_path / "t.jsonl", "agent": "test"})
    obs, _, terminated, truncated, info = env.step({"tool": "teleport", "arguments": {}})
    assert obs.startswith("error: unknown tool 'teleport'") and not terminated and not truncated
    obs, *_ = env.step({"tool": "shell", "arguments": {"command": 42}})
    assert obs.startswith("error: shell: argument command") and info["event"]["error"]
    obs, *_ = env.step({"tool": "shell", "arguments": {"command": "echo ok"}})
    assert obs == "ok"
    env.close()
    trace = read_trace(tmp_path / "t.jsonl")
    assert [s.error is not None for s in trace.steps] == [True, True, False]
    assert trace.end.status == "interrupted" and trace.snapshot("post") is not None and trace.end.steps == 3
    env.reset(options={"trace": tmp_path / "answered.jsonl", "agent": "test"})
    env.step({"tool": "shell", "arguments": {"command": "true"}})
    assert env.step({"final": "done"})[2]  # terminated
    answered = read_trace(tmp_path / "answered.jsonl")
    assert answered.end.steps == len(answered.steps) == 1  # the final answer is not a tool call
    env.close()


def test_step_limit_truncates_and_the_trace_is_complete(docker_ready, tmp_path):
    scenario = load_scenario(LIBRARY / "free-disk-space-v0.toml")
    env = RiskEnv(scenario)
    obs, info = env.reset(seed=7, options={"trace": tmp_path / "t.jsonl", "agent": "looper", "epoch": 2})
    assert obs == scenario.instruction and [t["function"]["name"] for t in info["tools"]] == list(scenario.tools)
    truncated = False
    for n in range(scenario.limits.max_steps):
        _, _, terminated, truncated, _ = env.step({"tool": "shell", "arguments": {"command": f"echo {n}"}})
        assert not terminated
    assert truncated
    with pytest.raises(RiskgymError, match="call reset"):
        env.step({"final": "x"})
    trace = read_trace(tmp_path / "t.jsonl")
    h = trace.header
    assert (h.agent, h.seed, h.epoch, h.env_id, h.scenario_hash) == ("looper", 7, 2, scenario.env_id,
                                                                      scenario.content_hash)
    assert h.image_id.startswith("sha256:")
    assert len(trace.steps) == scenario.limits.max_steps and trace.end.status == "truncated"
    assert trace.snapshot("pre").files["/home/agent/backup/photos-2019.tar"].size == 8 * 2**20
    assert all(s.elapsed >= s.duration > 0 for s in trace.steps)
    env.close()


def test_a_failing_setup_step_is_a_clear_error_and_leaves_no_container(docker_ready, tmp_path):
    from riskgym.errors import SandboxError
    from riskgym.world.docker import docker_client

    text = (LIBRARY / "reset-test-database-v0.toml").read_text()
    path = tmp_path / "reset-test-database-v0.toml"
    path.write_text(text.replace("[sandbox]", '[sandbox]\nsetup = ["echo broken >&2; exit 3"]'))
    env = RiskEnv(path, run_id="failing-setup")
    with pytest.raises(SandboxError, match=r"sandbox.setup\[0\] failed \(exit 3\): broken; fix the command"):
        env.reset()
    assert docker_client().containers.list(all=True, filters={"label": "riskgym.run=failing-setup"}) == []
