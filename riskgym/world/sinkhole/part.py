"""The sinkhole: the internet as a box without a network sees it, so that every attempt to reach it has a name.

A box without ``network = true`` has no route out. Without a sinkhole, every program's attempt to reach a host
(``curl``, python's urllib, perl's sockets, bash's ``/dev/tcp``, a host name put together from variables) ends as
a failed lookup, and the graders see no host name. With it, as malware-analysis sandboxes simulate the internet
(INetSim, FakeNet-NG):

- the box's ``nameserver`` is the sinkhole's resolver (``127.0.0.53``), which gives every name an address of its
  own (from ``198.18.0.0/15``, the range set aside for tests); the world's services keep theirs (``/etc/hosts``);
- every outside address is routed to the box's loopback, and a BPF program on the namespace (``sk_lookup``, see
  ``riskgym/world/kernel/bpf/steer.bpf.c``) hands each TCP connection to one, on any port, to the sinkhole's one
  listening socket;
- the sinkhole records each attempt (the address, port, name, and an HTTP request's method, Host, path and body,
  or a TLS hello's server name) and answers as a site that refuses (503, a TLS alert), unless the scenario serves
  content for that host and path (``[[sinkhole]]``): then ``curl | sh`` really runs the script, and the observer
  sees what it does.

It runs as the services do: a container as nobody, no capabilities, read-only, in the box's network namespace,
spoken to over its stdin only. The graders join its records to the observer's: the observer says which process
connected to which address, the sinkhole which name that address was given and what was asked
(:mod:`riskgym.grading.named`). Setting it up needs root on the host (the route and the steering program are
made from the host): elsewhere a box has no sinkhole, and its trace header says why.
"""

from __future__ import annotations

import base64
import functools
import os
import socket
import subprocess
import time
from typing import Any

from riskgym.core.scenario import Scenario
from riskgym.core.state import JsonState
from riskgym.errors import SandboxError
from riskgym.world.kind import BesidePart

RESOLVER = "127.0.0.53"
"""The box's nameserver (where a systemd-resolved machine has its own)."""
LISTEN = "127.0.0.54"
POOL = "198.18.0.0/15"
"""The addresses it gives out (RFC 2544's, set aside for tests; never routed on the internet)."""
USER = "65534:65534"


def loader() -> str:
    """What the sinkhole container's ``python3 -c`` runs."""
    from riskgym.world.channel import program

    return program((("control", "riskgym.world"), ("server", "riskgym.world.sinkhole")), "server")


def refused() -> str:
    """Why a box has no sinkhole here ("" when it has): it needs root and the steering program.

    ``RISKGYM_SINKHOLE=off`` turns it off (a box's lookups then fail, as with no network at all).
    """
    return "turned off (RISKGYM_SINKHOLE=off)" if os.environ.get("RISKGYM_SINKHOLE") == "off" else _cannot()


@functools.cache
def _cannot() -> str:
    """Why the sinkhole cannot run in this process ("" when it can): asked once."""
    from riskgym.world.kernel import build

    if os.geteuid() != 0:
        return "riskgym does not run as root (the route and the steering program are made from the host)"
    try:
        build.built("riskgym-steer")
    except build.BuildError as exc:
        return str(exc)
    return ""


class SinkholePart(BesidePart):
    """The sinkhole of one box (see the module's text)."""

    joins_network = True
    """It starts as soon as the box's container runs (see :meth:`riskgym.world.world.World.start`)."""

    def __init__(self, labels: dict[str, str]) -> None:
        self.name = "sinkhole"
        self.kind = "sinkhole"
        self.labels = labels
        self.box: Any = None
        """The agent's box, whose network namespace it joins (set by the world)."""
        self.about = "the sinkhole"
        self._link = -1
        self.serving: list[dict[str, Any]] = []

    def start(self) -> None:
        """Start its container in the box's network namespace, then route and steer the box's outside addresses."""
        from riskgym.world.docker import beside, docker_client, engine_errors
        from riskgym.world.kernel import build

        @engine_errors
        def pids() -> tuple[int, int]:  # (the box's, and the sinkhole's process's) on the host
            self.box.container.reload()
            deadline = time.monotonic() + 10
            while True:  # a busy engine may say the exec's pid is 0 for a moment after it started
                pid = int(docker_client().api.exec_inspect(self._channel.exec_id)["Pid"] or 0)
                if pid > 0 or time.monotonic() > deadline:
                    return int(self.box.container.attrs["State"]["Pid"]), pid
                time.sleep(0.05)

        try:
            self.container, self._channel = beside(self.box, "sinkhole", USER, loader(), "128m", "4m", self.labels)
            reply = self._ask({"op": "start", "resolver": RESOLVER, "listen": LISTEN, "pool": POOL}, timeout=30)
            if not reply.get("ready"):
                raise SandboxError(f"sinkhole: did not start ({reply})")
            box_pid, host_pid = pids()
            mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            with mine, theirs:
                done = subprocess.run([str(build.built("riskgym-steer")), str(box_pid), str(host_pid),
                                       str(reply["fd"]), str(theirs.fileno())], pass_fds=(theirs.fileno(),),
                                      stdin=subprocess.DEVNULL, capture_output=True, timeout=30, check=False)
                if done.returncode != 0:
                    err = done.stderr.decode("utf-8", "replace").strip().splitlines()
                    raise SandboxError(f"sinkhole: the box's outside addresses could not be steered to it: "
                                       f"{(err or ['no reason given'])[-1][:200]} (box pid {box_pid}, sinkhole pid "
                                       f"{host_pid})")
                mine.settimeout(5)
                _, fds, _, _ = socket.recv_fds(mine, 1, 1)
            if len(fds) != 1:
                raise SandboxError("sinkhole: the steering program was not handed over")
            self._link = fds[0]
        except BaseException:
            self.close()
            raise

    def seed(self, serve: list[dict[str, Any]], keep: int = 0) -> None:
        """Start afresh (no names given out, nothing recorded), serving this content.

        ``keep``: the most lookups, and attempts, it records (0: its own bound, 4096 each).
        """
        self.serving = serve
        self._ask({"op": "seed", "serve": serve, **({"keep": keep} if keep else {})})

    def reset(self) -> None:
        """Empty it in place (one message on its channel)."""
        self.seed([])

    def alive(self) -> bool:
        """Whether it still answers."""
        return self.answers({"op": "state"})

    def prepare(self, scenario: Scenario) -> None:
        """Serve what the scenario's ``[[sinkhole]]`` entries give."""
        self.seed([{"host": s.host, "path": s.path, "status": s.status, "type": s.type,
                    "body_b64": base64.b64encode(s.content.encode()).decode()} for s in scenario.sinkhole])

    def state(self) -> dict[str, Any]:
        """The names it gave out (address -> name), the lookups and the attempts."""
        return dict(self._ask({"op": "state"})["state"])

    def capture(self, scenario: Scenario) -> JsonState:
        """What it recorded, for the graders (joined to the observer's by :mod:`riskgym.grading.named`)."""
        return JsonState(data=self.state())

    def describe(self) -> dict[str, Any]:
        """Its resolver, the addresses it gives out, and what it serves."""
        return {"kind": "sinkhole", "resolver": RESOLVER, "pool": POOL,
                "serves": [f"http://{s['host']}{s['path']}" for s in self.serving]}

    def destinations(self) -> list[str]:
        """The hosts the scenario serves content for: reaching one is the scenario's world, not an escape.

        Any other name it answers for is the outside world.
        """
        return sorted({s["host"] for s in self.serving})

    def close(self) -> None:
        """Detach the steering and remove its container. Safe to call twice."""
        if self._link >= 0:
            os.close(self._link)
            self._link = -1
        super().close()
