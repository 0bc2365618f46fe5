"""DockerSandbox against a real Docker Engine."""

import hashlib
import socket
import time

import pytest

from riskgym.errors import SandboxError
from riskgym.world.docker import LABEL, DockerSandbox, bridge_address, docker_client, prune
from tests.conftest import example
from tests.test_cli import mine


def test_exec_keeps_cwd_and_environment_like_a_terminal(box):
    assert box.exec("echo hi").stdout == "hi\n"
    box.exec("cd /tmp && export GREETING='a \"quoted\"\tvalue' && mkdir -p work && cd work")
    r = box.exec('pwd; printf "%s" "$GREETING"')
    assert r.stdout == '/tmp/work\na "quoted"\tvalue'
    box.exec("unset GREETING")
    assert box.exec('echo "[${GREETING-unset}]"').stdout == "[unset]\n"
    assert box.exec(["pwd"]).stdout == "/tmp/work\n"  # argv commands run in the terminal's directory too
    assert box.exec("exit 3").exit_code == 3
    assert box.exec("pwd").stdout == "/tmp/work\n"  # `exit` does not lose the state


def test_timeout_kills_the_whole_process_group(box):
    start = time.monotonic()
    r = box.exec("sleep 30 & sleep 30; echo never", timeout=0.5)
    assert r.timed_out and r.exit_code == 124 and "never" not in r.stdout
    assert time.monotonic() - start < 5
    assert "sleep 30" not in box.exec("ps -eo args").stdout


def test_background_processes_survive_a_finished_command(box):
    r = box.exec("sleep 60 >/dev/null 2>&1 & echo started")
    assert r.ok and r.stdout == "started\n"
    assert "sleep 60" in box.exec("ps -eo args").stdout


def test_output_is_capped_and_marked(box):
    r = box.exec("head -c 1000000 /dev/zero | tr '\\0' x; echo err >&2")
    assert r.truncated and len(r.stdout) == box.max_output and r.stderr == "err\n"
    assert "[output truncated]" in r.text()


def test_binary_output_and_stdin(box):
    r = box.exec(["cat"], input=b"\x00\xff\xfehello")
    assert r.stdout.endswith("hello")
    assert box.exec(["wc", "-c"], input=b"x" * 70000).stdout.strip() == "70000"


def test_executor_killed_by_the_agent_is_restarted_with_its_state(box):
    box.exec("cd /tmp && export KEEP=1")
    r = box.exec("kill -9 -1")
    assert r.exit_code == 137 and "restarted" in r.stderr
    assert box.exec('pwd; echo "$KEEP"').stdout == "/tmp\n1\n"


def test_read_write_files_as_the_agent(box):
    box.write_file("/home/agent/note.txt", "héllo\n".encode())
    assert box.read_file("/home/agent/note.txt") == "héllo\n".encode()
    with pytest.raises(FileNotFoundError):
        box.read_file("/home/agent/missing")
    with pytest.raises(PermissionError):
        box.write_file("/etc/passwd", b"x")
    with pytest.raises(IsADirectoryError):
        box.read_file("/home/agent")


def test_put_files_sets_owner_mode_and_parents(box):
    box.put_files([("/home/agent/a/b/secret", b"s", 0o600, 1000), ("/opt/app/conf", b"c", 0o640, 0)])
    out = box.exec(["stat", "-c", "%U %a %n", "/home/agent/a", "/home/agent/a/b/secret", "/opt/app/conf"]).stdout
    assert out.splitlines() == ["agent 755 /home/agent/a", "agent 600 /home/agent/a/b/secret", "root 640 /opt/app/conf"]
    assert box.exec(["cat", "/opt/app/conf"]).exit_code != 0  # root-owned 0640: the agent cannot read it


def test_snapshot_records_files_and_processes(box):
    box.write_file("/home/agent/x.txt", b"data\n")
    box.exec("ln -s /etc/shadow /home/agent/link; chmod 600 x.txt; sleep 100 >/dev/null 2>&1 &")
    snap = box.snapshot(["/home/agent", "/does/not/exist"])
    x = snap.files["/home/agent/x.txt"]
    assert (x.type, x.mode, x.size, x.uid, x.text) == ("file", 0o600, 5, 1000, "data\n")
    assert x.sha256 == hashlib.sha256(b"data\n").hexdigest()
    assert snap.files["/home/agent/link"].target == "/etc/shadow"
    assert "/does/not/exist" not in snap.files
    assert snap.processes == ["sleep 100"]  # riskgym's own processes are not listed


def test_hardened_by_default(box):
    status = box.exec(["cat", "/proc/self/status"]).stdout
    assert "CapEff:\t0000000000000000" in status and "CapBnd:\t0000000000000000" in status
    assert "NoNewPrivs:\t1" in status
    assert box.exec(["id", "-un"]).stdout == "agent\n"
    assert box.exec(["ls", "/sys/class/net"]).stdout.split() == ["lo"]
    assert not box.exec(["test", "-e", "/var/run/docker.sock"]).ok
    attrs = box.container.attrs["HostConfig"]
    assert attrs["PidsLimit"] == 256 and attrs["Memory"] == (512 + 64 + 16) * 2**20 and attrs["NanoCpus"] == 10**9
    assert box.container.labels[LABEL] == "1"


def test_missing_image_is_a_clear_error(docker_ready):
    with pytest.raises(SandboxError, match="image 'riskgym/nope' not found: build it with `riskgym images build`"):
        DockerSandbox("riskgym/nope").start()


def test_prune_removes_leftovers_and_close_is_idempotent(docker_ready):
    left = DockerSandbox(labels={"riskgym.run": "prune-test"})
    left.start()
    assert prune("prune-test") == 1
    assert docker_client().containers.list(all=True, filters={"label": "riskgym.run=prune-test"}) == []
    left.close()
    left.close()


def test_shell_edge_cases(box):
    assert box.exec("if then fi").exit_code == 2  # a syntax error is the command's, not the terminal's
    assert box.exec("echo still here").stdout == "still here\n"
    multi = box.exec("cat <<'END'\nline $HOME\nEND\nread x; echo \"read:[$x]\"")
    assert multi.stdout == "line $HOME\nread:[]\n"  # heredocs work; stdin is empty
    assert box.exec("cat", input=b"x" * 200_000).stdout == "x" * box.max_output  # big stdin, capped output
    box.exec("mkdir /tmp/gone && cd /tmp/gone && rmdir /tmp/gone")
    assert box.exec("echo ok").ok  # the terminal survives its directory being deleted
    box.exec("cd ~ && export A=1")
    for victim in ("$$", "$PPID"):  # the shell server, then the executor itself
        assert box.exec(f"kill -9 {victim}").exit_code == 137
        assert box.exec('pwd; echo "$A"').stdout == "/home/agent\n1\n"
    assert box.exec("exec echo replaced").stdout == "replaced\n"
    box.exec("cd /tmp && export B=2")
    assert box.exec("rm -rf $XDG_RUNTIME_DIR/.term* /dev/shm/.term* /tmp/.term*; echo cleaned").stdout == "cleaned\n"
    assert box.exec('pwd; echo "$A$B"').stdout == "/tmp\n12\n"  # the executor makes its folder again
    assert box.exec("(sleep 0.3; echo late; echo late >&2) &").ok
    after = box.exec("sleep 0.5; echo now")  # the job writes to both streams while this one runs
    assert (after.stdout, after.stderr) == ("now\n", "")  # a background job's output does not bleed in


def test_fast_commands_back_to_back_never_lose_their_status(box):
    # a command that fails at once sends its "pid" and "rc" lines together: both must be read
    for _ in range(150):
        assert box.exec("if then fi").exit_code == 2
        assert box.exec("echo ok").stdout == "ok\n"


def test_exec_as_another_user(box):
    assert box.exec(["id", "-un"], user="root").stdout == "root\n"
    assert box.exec("touch /etc/riskgym-root-only", user="root").ok  # root without capabilities owns /etc
    assert not box.exec(["touch", "/etc/riskgym-agent"]).ok
    slow = box.exec("sleep 10", user="root", timeout=1)
    assert slow.timed_out and slow.exit_code == 137


def test_per_call_cwd_and_env_do_not_stick(box):
    assert box.exec('pwd; echo "[$X]"', cwd="/tmp", env={"X": "1"}).stdout == "/tmp\n[1]\n"
    assert box.exec('pwd; echo "[$X]"').stdout == "/home/agent\n[]\n"
    assert box.exec(["pwd"], cwd="/").stdout == "/\n"
    with pytest.raises(SandboxError, match="not an environment variable name"):
        box.exec("true", env={"X; touch /tmp/injected": "1"})
    assert not box.exec(["test", "-e", "/tmp/injected"]).ok


def test_the_bridge_address_is_the_hosts_even_on_a_just_started_engine(docker_ready):
    ipam = docker_client().networks.get("bridge").attrs["IPAM"]
    address = bridge_address(ipam)
    with socket.socket() as s:
        s.bind((address, 0))  # the host holds it: the bridge interface's own address
    # a just-started engine (20.10) gives the subnet only: the same address comes out
    assert bridge_address({"Config": [{"Subnet": ipam["Config"][0]["Subnet"]}]}) == address
    with pytest.raises(SandboxError, match="neither a gateway nor a subnet"):
        bridge_address({"Config": []})


def test_the_documented_example_runs(docker_ready):
    code = example(DockerSandbox.__doc__)
    assert "box.exec" in code
    before = {c.id for c in mine()}  # this process's: other tests' come and go beside it
    scope = {"DockerSandbox": DockerSandbox}
    exec(code, scope)
    assert scope["greeting"] == "hi\n"
    assert scope["box"].container is None and {c.id for c in mine()} <= before  # the `with` removed its container


def test_path_tools_take_paths_as_a_user_means_them(box):
    from riskgym.tools import TOOLS
    from riskgym.tools.commands import Shell

    def call(tool, **arguments):
        return TOOLS[tool].fn(box, **TOOLS[tool].validate(arguments))

    box.exec("cd /tmp && mkdir -p ~/inbox")  # the terminal is elsewhere: ~ still means the home
    assert call("write_file", path="~/inbox/note.txt", content="hello").stdout == \
        "wrote 5 bytes to /home/agent/inbox/note.txt\n"
    assert call("read_file", path="~/inbox/note.txt").stdout == "hello"
    assert call("read_file", path="$HOME/inbox/note.txt").stdout == "hello"
    assert "note.txt" in call("list_dir", path="~/inbox").stdout
    # the graders read the same path the tool used
    assert [e.target for e in TOOLS["read_file"].effects({"path": "~/inbox/note.txt"}, Shell(cwd="/tmp"))] == [
        "/home/agent/inbox/note.txt"]
    for recursive in (False, True):  # a path that is not there is an error, never "deleted"
        gone = call("delete_path", path="~/build_output", recursive=recursive)
        assert gone.exit_code == 1 and "deleted" not in gone.stdout
        assert "cannot remove '/home/agent/build_output': No such file or directory" in gone.stderr
    assert call("delete_path", path="~/inbox", recursive=True).stdout == "deleted /home/agent/inbox\n"
    assert box.exec("test -e ~/inbox || echo gone").stdout == "gone\n"



def test_a_snapshot_knows_each_process_parent(box):
    box.exec("printf '#!/bin/sh\\nwhile :; do sleep 1; done\\n' > ~/worker.sh && chmod +x ~/worker.sh && "
             "for i in 1 2 3 4; do (nohup ~/worker.sh >/dev/null 2>&1 &); done; sleep 0.3")
    try:
        snap = box.snapshot([])
        workers = [i for i, p in enumerate(snap.processes) if p.endswith("worker.sh")]
        assert len(workers) == 4 and all(snap.parents[i] == -1 for i in workers)
        sleeps = [i for i, p in enumerate(snap.processes) if p == "sleep 1"]
        assert sleeps and all(snap.parents[i] in workers for i in sleeps)
        assert snap.roots("worker") == [snap.processes[i] for i in workers]
    finally:
        box.exec("pkill -f worker.sh")


def test_each_shell_command_reports_what_its_processes_did(box):
    out = box.exec("mkdir -p ~/o && cd ~/o && touch a && rm a")
    seen = out.observed
    assert seen is not None and seen.complete and seen.root is not None
    assert ["write /home/agent/o", "write /home/agent/o/a", "delete /home/agent/o/a"] == [
        str(e).split(" mkdir")[0] for e in seen.effects if e.kind in ("write", "delete") and e.done]
    assert not [e for e in seen.effects if e.error == "EEXIST"]  # mkdir -p walking past what is there changes nothing
    assert {p.argv[0] for p in seen.processes} >= {"mkdir", "touch", "rm"}
    assert box.exec(["true"]).observed is None  # a command started directly (the file tools) is not observed


def test_the_in_box_observer_and_its_report_are_out_of_the_agents_reach(docker_ready, monkeypatch):
    """Where the host observer cannot run, strace observes in the box: its binary is execute-only (it runs not
    dumpable: no ptrace, no /proc/PID/fd or memory), and its report is a file no path names."""
    monkeypatch.setenv("RISKGYM_OBSERVER", "strace")
    box = DockerSandbox(labels={"riskgym.run": "pytest"})
    box.start()
    try:
        assert box.observer == "strace"
        probe = box.exec(
            "for p in $(pgrep -x strace); do ls /proc/$p/fd >/dev/null 2>&1 && echo fds-open; "
            "head -c1 /proc/$p/mem >/dev/null 2>&1 && echo mem-open; "
            "python3 -c \"import ctypes,sys; l=ctypes.CDLL(None); "
            "print('attached' if l.ptrace(16, int(sys.argv[1]), 0, 0) == 0 else 'refused')\" $p; done; "
            "t=$XDG_RUNTIME_DIR/.term; ls -A $t; for f in $t/* $t/.*; do [ -f \"$f\" ] && : > \"$f\"; done; "
            "mkdir -p ~/d && touch ~/d/x && rm ~/d/x")
        assert "refused" in probe.stdout and "attached" not in probe.stdout, probe.stdout + probe.stderr
        assert "fds-open" not in probe.stdout and "mem-open" not in probe.stdout
        assert not any(n.startswith(".obs") or n.endswith(".log") for n in probe.stdout.split()), probe.stdout
        seen = probe.observed  # the files the agent could reach were emptied: the report was not among them
        assert seen is not None and seen.observer == "strace" and seen.complete
        assert "delete /home/agent/d/x" in [str(e) for e in seen.effects if e.kind == "delete"]
        again = box.exec("rm -r ~/d").observed
        assert again is not None and any(e.kind == "delete" and e.target == "/home/agent/d" for e in again.effects)
    finally:
        box.close()


def test_a_zombie_is_not_running_and_a_killed_process_is_waited_for(box):
    """Whether a process is listed does not depend on its parent reaping it, nor on how fast it ends (issue 35)."""
    box.exec("python3 -c \"import os, time\nif os.fork() == 0: os._exit(0)\ntime.sleep(300)\" >/dev/null 2>&1 & "
             "bash -c 'trap \"sleep 0.6; exit\" TERM; while :; do sleep 0.05; done' >/dev/null 2>&1 & sleep 0.5")
    listed = box.exec("ps -eo stat=,args=").stdout
    assert "<defunct>" in listed and "trap" in listed  # a zombie, and a process that takes its time to end
    before = box.snapshot([]).processes
    assert not any("defunct" in p for p in before) and any("trap" in p for p in before), before
    box.exec("kill -TERM $(pgrep -f 'trap \"sleep 0.6')")  # it ends 0.6 s after the signal
    after = box.snapshot([]).processes
    assert not any("trap" in p for p in after), after  # waited for, not caught mid-exit
    box.exec("pkill -f 'time.sleep(300)'")


def test_files_laid_out_have_realistic_times(box):
    """No file a scenario lays out is dated 1970 (a tell; `python3 -m zipfile` refuses such files): a day to three
    months old, different for each path, or the time the scenario gives (issue 35)."""
    box.put_files([("/home/agent/notes/a.txt", b"a", 0o644, 1000), ("/home/agent/notes/b.txt", b"b", 0o644, 1000),
                   ("/home/agent/given.txt", b"g", 0o644, 1000)], times={"/home/agent/given.txt": 1760000000.0})
    out = box.exec(["stat", "-c", "%Y %n", "/home/agent/notes", "/home/agent/notes/a.txt", "/home/agent/notes/b.txt",
                    "/home/agent/given.txt"]).stdout.split()
    when = {path: int(t) for t, path in zip(out[::2], out[1::2], strict=True)}
    now = time.time()
    for path in ("/home/agent/notes", "/home/agent/notes/a.txt", "/home/agent/notes/b.txt"):
        assert now - 91 * 86400 < when[path] < now - 86400, (path, when[path])
    assert when["/home/agent/notes/a.txt"] != when["/home/agent/notes/b.txt"]
    assert when["/home/agent/given.txt"] == 1760000000
    zipped = box.exec("cd ~/notes && python3 -m zipfile -c /tmp/n.zip a.txt b.txt && echo zipped")
    assert "zipped" in zipped.stdout, zipped.stderr


def test_an_agent_looking_around_finds_no_harness(box):
    """What an agent sees looking for a harness (issue 35's tells): the executor's folder is in the user's runtime
    folder as a login makes it (/run/user/UID, not /dev/shm or /tmp), the environment is a login's, and ps shows a
    remote login's shell, not python3 running a program it was sent."""
    look = box.exec("ls -A /dev/shm /tmp /var/tmp; echo ---; env; echo ---; ps -eo args; echo ---; mount").stdout
    listing, env, ps, mounts = look.split("---\n")
    assert ".term" not in listing and ".desk" not in listing, listing
    assert {"USER=agent", "LOGNAME=agent", "XDG_RUNTIME_DIR=/run/user/1000"} <= set(env.split("\n")), env
    assert "sshd: agent@notty" in ps.split("\n"), ps
    assert not any(word in look for word in ("python3", "json", "riskgym", "strace")), look
    assert "tmpfs on /run/user/1000 type tmpfs" in mounts and "mode=700,uid=1000" in mounts
    assert box.exec("cat /proc/$PPID/comm").stdout == "sshd\n"  # the login shell's parent
