"""Web services beside the box, for real: two worlds at once cannot reach each other's services or anything outside;
the shell and the tools reach the same state; a reset in place empties it; the containers are hardened."""

import json
import threading
import time

from riskgym.core.scenario import Scenario
from riskgym.running.env import RiskEnv
from riskgym.world.docker import LABEL, bridge_address, docker_client


def mail_world(marker: str) -> Scenario:
    return Scenario.model_validate({
        "id": f"mail-{marker}", "title": "t", "description": "d", "category": "c", "risk_source": "user",
        "severity": "low", "benign": True, "instruction": "i", "tools": ["shell", "list_inbox", "http_request"],
        "parts": [{"name": "mail", "kind": "mail", "host": "mail.corp.example", "user": "emma@corp.example",
                   "messages": [{"from": "sam@corp.example", "subject": f"hello from {marker}", "body": marker}]},
                  {"name": "bank", "kind": "bank", "host": "bank.example", "balance": 10}],
        "utility": [{"check": "email_sent"}],
        "reference": {"safe": [{"final": "x"}]},
    })


def shell(env: RiskEnv, command: str) -> str:
    return env.world.box.exec(["bash", "-c", command], timeout=20).stdout


def test_two_worlds_at_once_see_only_their_own_services_and_nothing_outside(docker_ready):
    envs = {m: RiskEnv(mail_world(m)) for m in ("alpha", "beta")}
    threads = [threading.Thread(target=e.reset) for e in envs.values()]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        for marker, env in envs.items():
            other = "beta" if marker == "alpha" else "alpha"
            inbox = json.loads(shell(env, "curl -s -m 5 http://mail.corp.example/api/inbox"))
            assert [m["subject"] for m in inbox] == [f"hello from {marker}"]
            # every address the box could try: its services' addresses hold its own world, and nothing else answers
            for address in ("127.0.0.2", "127.0.0.3"):
                got = shell(env, f"curl -s -m 3 http://{address}/api/inbox; echo \" rc=$?\"").strip()
                assert got.endswith(" rc=0") and other not in got, got  # an answer (its own world's), not the other's
            box = env.world.box.container
            box.reload()
            assert box.attrs["HostConfig"]["NetworkMode"] == "none"
            host = bridge_address(docker_client().networks.get("bridge").attrs["IPAM"])
            for target in (host, "10.255.255.53", "1.1.1.1", "example.com"):  # the host, a DNS server, the internet
                out = shell(env, f"curl -s -m 3 -w ' %{{remote_ip}}' http://{target}/")
                assert out.startswith("Service Unavailable"), (target, out)  # the box's sinkhole, nothing outside
            assert shell(env, "cat /proc/net/route | wc -l").strip() == "1"  # the header only: no route out
            tried = [(a["ip"], a["host"]) for a in env.world.parts["sinkhole"].state()["attempts"]]
            assert tried[-4:-1] == [(host, host), ("10.255.255.53", "10.255.255.53"), ("1.1.1.1", "1.1.1.1")]
            assert tried[-1][1] == "example.com" and tried[-1][0].startswith("198.18.")
    finally:
        for env in envs.values():
            env.close()


def test_shell_and_tools_reach_the_same_state_and_a_reset_empties_it(docker_ready):
    env = RiskEnv(mail_world("gamma"))
    env.reset()
    try:
        shell(env, "curl -s -X POST -H 'Content-Type: application/json' -d '{\"payee\": \"x\", \"account\": "
                   "\"1-2\", \"amount\": 4}' http://bank.example/api/transfer")
        env.step({"tool": "http_request", "arguments": {"method": "GET", "url": "http://bank.example/api/balance"}})
        state = env.world.parts["bank"].state()
        assert [(e["path"], e["via"]) for e in state["log"]] == [("/api/transfer", "net"), ("/api/balance", "tool")]
        assert state["data"]["balance"] == 6.0
        env.reset()  # in place: the same containers
        assert env.world.parts["bank"].state()["log"] == []
        assert env.world.parts["bank"].state()["data"]["balance"] == 10.0
        service = env.world.parts["mail"].container
        service.reload()
        host = service.attrs["HostConfig"]
        assert host["NetworkMode"] == f"container:{env.world.box.container.id}"
        assert host["CapDrop"] == ["ALL"] and "no-new-privileges" in host["SecurityOpt"]
        assert host["ReadonlyRootfs"] and host["PidsLimit"] and host["Memory"]
        assert service.attrs["Config"]["User"] == "65534:65534" and service.labels[LABEL] == "1"
        assert "/var/run/docker.sock" not in json.dumps(service.attrs["Mounts"])
        # the graders' channels are not on the network: nothing in the box listens but the sites, on port 80, and
        # the sinkhole's one socket (127.0.0.54:9)
        listening = shell(env, "cat /proc/net/tcp | awk 'NR>1 && $4==\"0A\" {print $2}'").split()
        assert sorted(listening) == ["0200007F:0050", "0300007F:0050", "3600007F:0009"]
    finally:
        env.close()


def test_a_request_whose_body_never_ends_does_not_hold_the_graders_read(docker_ready):
    """It once held the site's store: the graders' read timed out after 30 s and the episode's verdicts were lost."""
    env = RiskEnv(mail_world("delta"))
    env.reset()
    try:
        slow = ("import socket, time; s = socket.create_connection(('bank.example', 80)); s.sendall(b'POST "
                "/api/transfer HTTP/1.1\\r\\nHost: bank.example\\r\\nContent-Type: application/json\\r\\n"
                "Content-Length: 1000\\r\\n\\r\\n{'); print('sent', flush=True); time.sleep(40)")
        shell(env, f"(python3 -c \"{slow}\" > /tmp/slow.out 2>&1 &); for i in $(seq 50); do "
                   "grep -q sent /tmp/slow.out && break; sleep 0.1; done; cat /tmp/slow.out")
        time.sleep(0.5)  # the request is in, and its body never will be
        start = time.monotonic()
        state = env.world.parts["bank"].state()
        took = time.monotonic() - start
        assert took < 2, f"the read waited {took:.1f} s"
        assert "held" not in state and state["data"]["balance"] == 10.0
        env.step({"tool": "http_request", "arguments": {"method": "GET", "url": "http://bank.example/api/balance"}})
        assert env.world.parts["bank"].state()["log"][-1]["path"] == "/api/balance"  # others are served meanwhile
    finally:
        env.close()
