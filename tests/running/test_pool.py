"""In-place reset and the warm pool: a reset leaves nothing of an episode behind; pooled sandboxes are reused."""

import uuid

from riskgym.core.scenario import load_scenario
from riskgym.running.pool import WorldPool
from riskgym.world.docker import DockerSandbox
from tests.conftest import LIBRARY
from tests.test_cli import containers

WATCH = ["/home/agent", "/tmp", "/var/tmp", "/dev/shm", "/srv/shared"]
DIRTY = r"""
export LEFTOVER=1; cd /tmp
mkdir -p ~/d/e && echo x > ~/d/e/f && chmod 000 ~/d/e ~/d
echo y > /tmp/t; echo z > /var/tmp/v; echo w > /dev/shm/s; echo q > /srv/shared/q; echo h > ~/.hidden
echo 'echo evil' >> ~/.bashrc; chmod 600 ~/.profile
ln -s / ~/rootlink; ln -s ~/loop ~/loop; mkfifo ~/fifo
nohup sleep 4001 >/dev/null 2>&1 & setsid sleep 4002 & disown
sh -c 'trap "" TERM HUP; exec sleep 4003' >/dev/null 2>&1 & disown
setsid sh -c 'sleep 4004 & kill -STOP $$' >/dev/null 2>&1 &
setsid sh -c 'while :; do sleep 4005; done' >/dev/null 2>&1 &
ipcmk -M 4096 >/dev/null; ipcmk -Q >/dev/null
chmod 000 ~
"""


def test_a_reset_leaves_nothing_of_the_episode_behind(docker_ready):
    with DockerSandbox(labels={"riskgym.run": "pytest"}, writable=("/srv/shared",)) as box:
        clean = box.snapshot(WATCH)
        assert "/home/agent/.bashrc" in clean.files and clean.processes == []
        # a scenario's set-up as root, then everything the agent can reach
        box.exec("mkdir -p /srv/shared/r && echo r > /srv/shared/r/f && chmod 1777 /srv/shared && "
                 "(nohup sleep 4000 >/dev/null 2>&1 &)", user="root")
        assert box.exec(DIRTY).exit_code == 0
        executor = box.executor_pid
        tamper = box.exec(f"python3 -c 'import ctypes; print(ctypes.CDLL(None).ptrace(16, {executor}, 0, 0))'; "
                          f"head -c 1 /proc/{executor}/mem")
        assert tamper.stdout.strip() == "-1" and "Permission denied" in tamper.stderr  # it is not dumpable
        dirty = box.snapshot(WATCH)  # the home is mode 000 now: the snapshot opens it up for a moment, and back
        assert len(dirty.processes) >= 6 and dirty.files["/home/agent"].mode == 0
        assert {"/home/agent/d/e/f", "/home/agent/.hidden", "/tmp/t", "/srv/shared/r/f"} <= set(dirty.files)

        box.reset()

        after = box.snapshot(WATCH)
        assert after.files == clean.files and after.processes == []
        assert clean.diff(after) == []
        state = box.exec("echo cwd=$PWD leftover=${LEFTOVER:-none}; ipcs -m -q | grep -c '^0x'; "
                         "stat -c %a /srv/shared; cat ~/.bashrc | grep -c evil").stdout.split()
        assert state == ["cwd=/home/agent", "leftover=none", "0", "755", "0"]
        users = box.exec("ps -eo user=,args=", user="root").stdout
        assert "sleep 40" not in users  # neither the agent's processes nor root's


def test_the_pool_reuses_in_place_sandboxes_and_recreates_the_others(docker_ready):
    run_id = f"pytest-pool-{uuid.uuid4().hex[:8]}"
    pool = WorldPool(run_id, size=2)
    in_place = load_scenario(LIBRARY / "free-disk-space-v0.toml")
    recreate = in_place.model_copy(update={"sandbox": in_place.sandbox.model_copy(update={"reset": "recreate"})})
    assert in_place.sandbox.in_place and not recreate.sandbox.in_place
    try:
        pool.warm(in_place, 1)
        ids = []
        for _ in range(3):
            world = pool.take(in_place)
            world.box.exec("echo leftover > ~/x; sleep 300 &")
            ids.append(world.box.container.id)
            pool.give_back(world)
        assert len(set(ids)) == 1  # one container, reset twice in between
        assert pool.stats["reset"] == 3 and pool.stats["cold"] <= 1
        again = pool.take(in_place)
        left = again.box.exec("test -e ~/x && echo present || echo absent; pgrep -c -x -f 'sleep 300' || true")
        assert left.stdout == "absent\n0\n"  # neither the file nor the process of the last episode
        pool.give_back(again)

        first = pool.take(recreate)
        first_id = first.box.container.id
        pool.give_back(first)
        second = pool.take(recreate)
        assert second.box.container.id != first_id
        pool.give_back(second)
    finally:
        pool.close()
    assert containers(run_id) == []


def test_the_agent_cannot_plant_code_in_a_restarted_executor(docker_ready):
    with DockerSandbox(labels={"riskgym.run": "pytest"}, writable=()) as box:
        site = box.exec("python3 -c 'import site; print(site.getusersitepackages())'").stdout.strip()
        plant = (f"mkdir -p {site} && echo 'import os; open(\"/tmp/planted\", \"w\").close()' > {site}/x.pth && "
                 "PYTHONSTARTUP=/dev/null python3 -c pass && ls /tmp/planted && rm /tmp/planted")
        assert box.exec(plant).stdout.strip() == "/tmp/planted"  # the .pth runs in the agent's own python
        box.exec(f"kill -KILL {box.executor_pid}")  # the executor dies; the next command restarts it
        assert box.exec("test -e /tmp/planted && echo planted || echo clean").stdout == "clean\n"
