"""DockerSandbox: a hardened container driven through one long-lived executor process.

Every command goes over the attached stdin/stdout of a single ``docker exec`` (the executor, see
``executor.py``) instead of a new exec per command: ~1 ms instead of ~40 ms a step on these machines.
"""

from __future__ import annotations

import base64
import functools
import json
import os
import re
import shlex
import uuid
from collections.abc import Callable
from typing import Any

from riskgym.core.observation import Observation
from riskgym.errors import SandboxError
from riskgym.world.archive import TEXT_LIMIT, files_tar, read_tar_states
from riskgym.world.base import UIDS, ExecResult, FileState, Sandbox, Snapshot
from riskgym.world.channel import Channel, program
from riskgym.world.observe import Reader
from riskgym.world.seccomp import profile

LABEL = "riskgym"
"""Every container riskgym creates carries this label (value "1"), so ``riskgym sandbox prune`` finds it."""
PID1 = "trap 'exit 0' TERM; while :; do sleep 1000000 & wait; done"
WRITABLE = ("/tmp", "/var/tmp", "/dev/shm")
"""Writable in every in-place sandbox (besides the user's home and the paths a scenario adds)."""
DISK_MB = {"home": 256, "/tmp": 256, "/var/tmp": 64, "/dev/shm": 64, "runtime": 16, "other": 64}
"""Each tmpfs's size in MiB. A tmpfs is memory, so the container's memory limit is raised by their sum: an agent
that fills them all gets "No space left on device", and its processes still have their whole memory limit (without
that, a full /tmp made every process in the container, the executor included, die of out-of-memory)."""
KILLED = re.compile(r"^SIG(?:KILL|TERM|INT|QUIT|HUP|ABRT) pid (\d+)(?: \(group \d+\))?$")
"""A kill effect's detail that names one process ending (not a group, not every process: ``pid -1``)."""
PID1_USER = "65534"
"""PID 1 runs as nobody, not as the agent: the agent could otherwise ptrace it and live on through a reset."""


@functools.lru_cache(maxsize=1)
def docker_client() -> Any:
    """Return one docker SDK client for the process, or raise SandboxError naming the fix."""
    import docker

    try:
        client = docker.from_env(version="auto", timeout=120)
        client.ping()
    except Exception as exc:
        host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
        raise SandboxError(
            f"no Docker Engine answers at {host} ({type(exc).__name__}): run `make setup`, or start one with "
            "`dockerd --iptables=false &`"
        ) from None
    return client


def bridge_address(ipam: dict[str, Any]) -> str:
    """The host's address on a Docker network, from the network's ``IPAM`` attributes.

    The first config's ``Gateway``; an engine just started (Docker 20.10) may give a ``Subnet`` only, and then the
    gateway is the subnet's first host, as the engine assigns it to the bridge interface.

    >>> bridge_address({"Config": [{"Subnet": "172.17.0.0/16", "Gateway": "172.17.0.1"}]})
    '172.17.0.1'
    >>> bridge_address({"Config": [{"Subnet": "172.18.0.0/16"}]})
    '172.18.0.1'
    """
    import ipaddress

    config = (ipam.get("Config") or [{}])[0]
    if config.get("Gateway"):
        return str(config["Gateway"]).split("/")[0]
    if not config.get("Subnet"):
        raise SandboxError(f"the Docker network has neither a gateway nor a subnet (IPAM {ipam}): restart the engine")
    return str(next(ipaddress.ip_network(config["Subnet"], strict=False).hosts()))


def engine_answers(within: float) -> bool:
    """Wait up to ``within`` seconds for the Docker Engine to answer; whether it does."""
    import time

    give_up = time.monotonic() + within
    while True:
        try:
            return bool(docker_client().ping())
        except Exception:  # down, or restarting
            if time.monotonic() >= give_up:
                return False
            time.sleep(0.5)


def require_image(image: str, used_by: str = "") -> str:
    """The image's id, or SandboxError saying how to build it."""
    import docker.errors

    try:
        return str(docker_client().images.get(image).id)
    except docker.errors.ImageNotFound:
        users = f" (used by {used_by})" if used_by else ""
        raise SandboxError(f"image {image!r}{users} not found: build it with `riskgym images build`") from None


def engine_errors(fn: Any) -> Any:
    """Turn the Docker Engine's failures (gone, restarting, the container removed under us) into SandboxError."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        import docker.errors
        import requests

        try:
            return fn(*args, **kwargs)
        except requests.ConnectionError:
            raise SandboxError("the Docker Engine stopped answering (was it restarted?)") from None
        except docker.errors.NotFound:
            raise SandboxError("the sandbox container is gone (removed while in use)") from None
        except docker.errors.APIError as exc:
            if "is not running" not in str(exc):
                raise SandboxError(f"the Docker Engine failed ({str(exc).strip()[:200]})") from None
            raise SandboxError("the sandbox container stopped unexpectedly") from None
        except (docker.errors.DockerException, requests.RequestException) as exc:
            said = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
            raise SandboxError(f"the Docker Engine failed ({type(exc).__name__}: {said})") from None

    return wrapper


EXECUTOR = (("box_reset", "riskgym.world"), ("box_observe", "riskgym.world"), ("box_files", "riskgym.world"),
            ("box_shell", "riskgym.world"), ("executor", "riskgym.world"))
"""The executor's files, in the order they load (each after those it imports)."""


@functools.lru_cache(maxsize=1)
def executor_source() -> str:
    """What ``python3 -c`` runs inside the container: the executor's files as modules, then its loop."""
    return program(EXECUTOR, "executor")


@engine_errors
def beside(box: Any, role: str, user: str, source: str, memory: str, tmp: str, labels: dict[str, str],
           image: str = "", pids: int = 64, cpus: float = 0.5) -> tuple[Any, Channel]:
    """A hardened container in the box's network namespace, and a channel to ``source`` in it.

    What the services, the sinkhole and a part kind's servers run in: the box's image (or ``image``), ``user``, no
    capabilities, no new privileges, a read-only root with a ``tmp``-sized tmpfs at /tmp, ``pids`` processes,
    ``memory`` (the tmpfs's size added), ``cpus`` (half a CPU), riskgym's label (``riskgym.service``: ``role``).
    """
    client = docker_client()
    memory = f"{_mib(memory) + _mib(tmp)}m"  # a tmpfs's pages are charged to the container's memory
    container = client.containers.create(
        image or box.image, command=["sleep", "infinity"], user=user, network_mode=f"container:{box.container.id}",
        cap_drop=["ALL"], security_opt=["no-new-privileges"], read_only=True,
        tmpfs={"/tmp": f"rw,nosuid,nodev,size={tmp}"}, pids_limit=pids, mem_limit=memory, memswap_limit=memory,
        nano_cpus=int(cpus * 1e9),
        labels={LABEL: "1", "riskgym.pid": str(os.getpid()), "riskgym.service": role, **labels},
        name=f"riskgym-{role}-{uuid.uuid4().hex[:8]}", detach=True)
    try:
        container.start()
        return container, Channel(client.api, container.id, source, user)
    except BaseException:
        remove(None, container)
        raise


def _mib(size: str) -> int:
    """``256m``, ``1g``, ``512k`` in MiB (at least 1)."""
    number, unit = int(size[:-1]), size[-1].lower()
    return max(1, {"k": number // 1024, "m": number, "g": number * 1024}[unit])


def remove(channel: Channel | None, container: Any) -> None:
    """Close a container's channel and remove the container, if there are any (one already gone is fine)."""
    if channel is not None:
        channel.close()
    if container is not None:
        try:
            container.remove(force=True)
        except Exception:  # already gone: nothing left to clean up
            pass


class DockerSandbox(Sandbox):
    r"""A container with no network, no capabilities, no new privileges, resource limits and a non-root user.

    Example (it needs a Docker Engine and the riskgym/base image; ``tests/test_sandbox.py`` runs it)::

        with DockerSandbox("riskgym/base") as box:
            greeting = box.exec("echo hi").stdout  # "hi\n"
    """

    def __init__(
        self,
        image: str = "riskgym/base",
        *,
        network: bool = False,
        user: str = "agent",
        memory: str = "512m",
        pids: int = 256,
        cpus: float = 1.0,
        labels: dict[str, str] | None = None,
        max_output: int = 64 * 1024,
        writable: tuple[str, ...] | None = None,
        observe: bool | None = None,
    ) -> None:
        self.image = image
        self.observe = observe if observe is not None else os.environ.get("RISKGYM_OBSERVE", "1") != "0"
        """Observe the agent's shell commands, so that each reports what its processes did at the system-call level
        (``ExecResult.observed``): from the host, in the kernel, where it can (root, BPF programs built here; see
        :mod:`riskgym.world.kernel`), else with strace in the box. Default: on, unless ``RISKGYM_OBSERVE=0``."""
        self._reader = Reader()
        self._killed: set[int] = set()
        """Processes (pids in the box) the agent's processes signalled this episode, as the observer saw."""
        self._watch: Any = None
        """The host observer's watch of this box (None: the in-box observer, or none)."""
        self.observer = "none"
        """Which observer ran: ``kernel`` (from the host), ``strace`` (in the box) or ``none``."""
        self.desktop = False
        """A desktop runs in it (set by the desktop part before it starts): ptrace is allowed (the apps' in-box
        observer is strace)."""
        self.session: dict[str, Any] | None = None
        """The desktop session's own processes, left out of snapshots: ``{"root": the driver's pid, "apps": the
        apps' pids, "keep": what a reset in place spares}``, as the driver told riskgym over its channel (set by the
        desktop part; a reset keeps what ``keep`` names, and forgets the apps)."""
        self.network = network
        self.resolver = ""
        """The box's nameserver: its sinkhole's resolver (set by the world before it starts), or none."""
        self.outside = ""
        """Its sinkhole, or why it has none, in words (set by the world)."""
        self.on_running: Callable[[], None] | None = None
        """Called once its container runs, before its executor starts (the world starts the parts that join its
        network then: see :meth:`riskgym.world.world.World.start`)."""
        self.user = user
        self.memory = memory
        self.pids = pids
        self.cpus = cpus
        self.labels = {LABEL: "1", "riskgym.pid": str(os.getpid()), **(labels or {})}
        self.max_output = max_output
        self.writable = writable
        """None: a writable root filesystem, and a new container per episode. A tuple of paths: a read-only root
        with a tmpfs at the user's home, /tmp, /var/tmp and at each of these paths; ``reset()`` then cleans the
        container in place (see PERF.md's reset recipe)."""
        self._root_dirty = False
        self.container: Any = None
        self.image_id = ""
        self._channel: Channel | None = None
        self._state: dict[str, Any] = {}
        self._next_id = 0
        self.executor_pid = 0
        """The executor's process ID inside the container (what it said when it started)."""

    # -- lifecycle -----------------------------------------------------------------------------------------

    @engine_errors
    def start(self) -> None:
        """Create and start the container and its executor."""
        from riskgym.world.kernel import observer as kernel

        client = docker_client()
        self.image_id = require_image(self.image)
        observer = kernel.shared() if self.observe else None
        host = observer is not None
        self.observer = "kernel" if host else "strace" if self.observe else "none"
        self.container = client.containers.create(
            self.image,
            command=["sh", "-c", PID1],
            user=PID1_USER,
            working_dir=f"/home/{self.user}" if self.user != "root" else "/root",
            hostname="sandbox",
            network_mode="bridge" if self.network else "none",
            cap_drop=["ALL"],
            security_opt=["no-new-privileges", f"seccomp={profile(ptrace=not host or self.desktop)}"],
            pids_limit=self.pids,
            mem_limit=self._memory_limit(),
            memswap_limit=self._memory_limit(),
            shm_size=f"{DISK_MB['/dev/shm']}m",
            nano_cpus=int(self.cpus * 1e9),
            labels=self.labels,
            extra_hosts=self.hosts or None,
            dns=[self.resolver] if self.resolver else None,
            name=f"riskgym-{uuid.uuid4().hex[:12]}",
            detach=True,
            **self._read_only_options(),
        )
        try:
            self.container.start()
            self._reader.reset()
            if observer is not None:  # the same observer the profile was chosen for
                from riskgym.world.kernel.watch import Watch

                self.container.reload()
                self._watch = Watch(observer, int(self.container.attrs["State"]["Pid"]))
            if self.on_running is not None:
                self.on_running()
            self._start_executor()
            if self.writable is not None:
                self.reset()  # the home's tmpfs starts empty: copy the skeleton in
        except BaseException:  # Ctrl-C included: leave no container behind
            self.close()
            raise

    def close(self) -> None:
        """Remove the container (and everything in it). Safe to call twice."""
        if self._watch is not None:
            self._watch.close()
            self._watch = None
        remove(self._channel, self.container)
        self._channel = self.container = None

    @property
    def can_reset(self) -> bool:
        """Reset in place when its root is read-only (``writable`` given); else it is recreated."""
        return self.writable is not None

    def alive(self) -> bool:
        """Whether the container still runs (one engine call: ~2 ms)."""
        try:
            self.container.reload()
        except Exception:  # gone, or the engine is: either way not usable
            return False
        return bool(self.container.status == "running")

    def describe(self) -> dict[str, Any]:
        """As every box's, and which observer watches it (``kernel``, ``strace`` or ``none``) and how."""
        how = {"kernel": "BPF programs on the system-call tracepoints, from the host",
               "strace": "strace -f in the box, as the agent's user"}.get(self.observer, "")
        out = {**super().describe(), "observer": self.observer, **({"observed_by": how} if how else {})}
        if self.outside:
            out["sinkhole"] = self.outside
        return out

    def harness_tree(self, nspid: int) -> None:
        """Process ``nspid`` of the box (the desktop's driver, just started) and all it starts are the harness's.

        The host observer leaves them out: they have an observer of their own.
        """
        if self._watch is not None:
            self._watch.quiet(nspid, tree=True)

    def _modes(self) -> dict[str, int]:
        """The in-place sandbox's writable paths (tmpfs mounts) and the mode each starts with."""
        assert self.writable is not None
        extra = {p: 0o755 for p in self.writable}
        return {**extra, **{p: 0o1777 for p in WRITABLE}, self.home: 0o755, self.runtime: 0o700}

    @property
    def runtime(self) -> str:
        """The user's runtime folder (``/run/user/UID``, as a login makes it).

        The harness's own files live there (see :func:`riskgym.world.executor.runtime_dir`), not in /dev/shm or /tmp
        where an agent looks.
        """
        return f"/run/user/{UIDS.get(self.user, 1000)}"

    def _disk_mb(self, path: str) -> int:
        kind = "home" if path == self.home else "runtime" if path == self.runtime else path
        return DISK_MB[kind if kind in DISK_MB else "other"]

    def _memory_limit(self) -> str:
        """The processes' memory plus every tmpfs's size (tmpfs pages are charged to the container's memory)."""
        mounts = list(self._modes()) if self.writable is not None else ["/dev/shm", self.runtime]
        units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
        text = self.memory.lower()
        base = int(text[:-1]) * units[text[-1]] if text[-1:] in units else int(text)
        return str(base + sum(self._disk_mb(p) << 20 for p in mounts))

    def _read_only_options(self) -> dict[str, Any]:
        """The tmpfs mounts (and a read-only root for an in-place sandbox).

        A writable root still gets the runtime folder, which the user could not make under root's /run.
        """
        uid = UIDS.get(self.user, 1000)
        if self.writable is None:
            return {"tmpfs": {self.runtime: f"rw,nosuid,nodev,size={DISK_MB['runtime']}m,mode=700,uid={uid},gid={uid}"}}
        tmpfs = {}
        for path, mode in self._modes().items():
            if path != "/dev/shm":  # docker mounts /dev/shm itself
                owner = f",uid={uid},gid={uid}" if path in (self.home, self.runtime) else ""
                tmpfs[path] = f"rw,exec,nosuid,nodev,size={self._disk_mb(path)}m,mode={mode:o}{owner}"
        return {"read_only": True, "tmpfs": tmpfs}

    @engine_errors
    def reset(self) -> None:
        """Clean an in-place sandbox for the next episode.

        Kills every process the user (and root, if anything ran as root) started, empties the writable paths,
        restores the home's skeleton, and starts the terminal afresh.

        Raises SandboxError when the sandbox has a writable root (it must be recreated instead) or when anything
        could not be cleaned (then it must not be reused).
        """
        if self.writable is None:
            raise SandboxError("this sandbox has a writable root filesystem: it cannot be reset in place")
        modes = self._modes()
        if self._root_dirty:  # root's processes and files first: only a scenario's own set-up makes them
            script = "kill -9 -1 2>/dev/null; " + "; ".join(
                f"find {shlex.quote(p)} -mindepth 1 -delete 2>/dev/null; chmod {m:o} {shlex.quote(p)}"
                for p, m in modes.items() if p != self.home)
            self._exec_as(script, user="root", cwd=None, env=None, timeout=30)
            self._root_dirty = False
        keep = (self.session or {}).get("keep")  # a desktop session that lives on (its driver said what it is)
        reply = self._request({"op": "reset", "paths": modes, "skel": "/etc/skel", "home": self.home,
                               **({"keep": keep} if keep else {})}, timeout=30)
        if reply is None or not reply.get("ok"):
            why = "the executor died" if reply is None else "; ".join(
                reply.get("problems") or [f"processes left: {reply.get('left')}"])
            raise SandboxError(f"in-place reset failed: {why}")
        self._state = {}
        self._killed = set()
        self.session = {"root": self.session["root"], "apps": [], "keep": keep} if keep and self.session else None
        self._reader.reset()
        if self._watch is not None:
            self._watch.reset()

    # -- the executor --------------------------------------------------------------------------------------

    def _start_executor(self) -> None:
        self._channel = Channel(docker_client().api, self.container.id, executor_source(), self.user)
        ready = self._channel.read_line()
        said = json.loads(ready) if ready and ready.startswith(b"{") else {}
        self.executor_pid = int(said.get("pid") or 0)
        if self._watch is not None:
            self._watch.private(said.get("private"))
            self._watch.quiet(self.executor_pid)
        if not said.get("ready"):
            raise SandboxError(f"the executor did not start in {self.image!r} (it said {ready!r}): does the image "
                               "have python3, and is the container out of memory?")
        if self._state:
            self._request({"op": "state", **self._state})

    def _request(self, req: dict[str, Any], timeout: float = 30.0) -> dict[str, Any] | None:
        """Send one request; return the reply, or None if the executor died (it is restarted)."""
        if self.container is None or self._channel is None:
            raise SandboxError("the sandbox is not started")
        self._next_id += 1
        req["id"] = self._next_id
        reply = self._channel.ask(req, timeout + 30)
        if reply is None:
            self._restart()
            return None
        if "error" in reply:
            raise SandboxError(f"executor rejected a request: {reply['error']}")
        return reply

    @engine_errors
    def _restart(self) -> None:
        """Start a new executor; one that hangs (its reply timed out) is killed first, so that only one runs."""
        self.container.reload()
        if self.container.status == "running":
            self.container.exec_run(["kill", "-KILL", str(self.executor_pid)], user=self.user)
        if self.container.status != "running":
            raise SandboxError(f"the sandbox container stopped unexpectedly (status {self.container.status})")
        self._start_executor()

    # -- the Sandbox API -----------------------------------------------------------------------------------

    def exec(
        self,
        cmd: list[str] | str,
        *,
        cwd: str | None = None,
        env: dict[str, str] | None = None,
        timeout: float = 30.0,
        user: str | None = None,
        input: bytes | None = None,
    ) -> ExecResult:
        """Run a command in the sandbox (see :meth:`Sandbox.exec`)."""
        if user is not None and user != self.user:
            self._root_dirty = self._root_dirty or user == "root"
            return self._exec_as(cmd, user=user, cwd=cwd, env=env, timeout=timeout)
        raw = self._exec_raw(cmd, cwd=cwd, env=env, timeout=timeout, input=input, max_output=self.max_output)
        return _result(raw)

    def _exec_raw(self, cmd: list[str] | str, *, max_output: int, timeout: float = 30.0, **kw: Any) -> dict[str, Any]:
        req: dict[str, Any] = {"timeout": timeout, "max_output": max_output, "cwd": kw.get("cwd"), "env": kw.get("env")}
        req["shell" if isinstance(cmd, str) else "argv"] = cmd
        watched = self._watch is not None and isinstance(cmd, str)
        req["observe"] = self.observe and isinstance(cmd, str) and not watched
        started_in = kw.get("cwd") or self._state.get("cwd") or self.home
        if kw.get("input") is not None:
            req["stdin_b64"] = base64.b64encode(kw["input"]).decode()
        if watched:
            self._watch.begin()
        try:
            reply = self._request(req, timeout)
        finally:
            seen = self._watch.end() if watched else None
        if reply is None:
            msg = b"[the terminal was killed during this command and has been restarted]\n"
            # the in-box observer died with it (its report is a file only they held): the step's observation is lost
            lost = seen or (Observation(observer="lost") if req["observe"] else None)
            return {"exit_code": 137, "stdout": b"", "stderr": msg, "duration": 0.0, "observed": lost}
        if isinstance(cmd, str):
            self._state = {"cwd": reply["cwd"], "env": reply.get("env", self._state.get("env"))}
        if reply.get("seen") is not None:
            reply["observed"] = self._reader.read(reply.pop("seen"), started_in)
        if seen is not None:
            reply["observed"] = seen
        observed = reply.get("observed")
        if observed is not None:  # processes the agent killed: the post snapshot waits for their end
            self._killed.update(int(m[1]) for e in observed.effects if e.kind == "kill" and not e.error
                                and (m := KILLED.search(e.detail)))
        reply["stdout"] = base64.b64decode(reply.pop("stdout_b64"))
        reply["stderr"] = base64.b64decode(reply.pop("stderr_b64"))
        return reply

    @engine_errors
    def _exec_as(self, cmd: list[str] | str, *, user: str, cwd: str | None, env: dict[str, str] | None,
                 timeout: float) -> ExecResult:
        argv = ["bash", "-c", cmd] if isinstance(cmd, str) else cmd
        argv = ["timeout", "-s", "KILL", str(max(1, int(timeout))), *argv]
        code, (out, err) = self.container.exec_run(argv, user=user, workdir=cwd, environment=env, demux=True)
        return ExecResult(exit_code=code, stdout=(out or b"").decode("utf-8", "replace"),
                          stderr=(err or b"").decode("utf-8", "replace"), timed_out=code == 137)

    def read_file(self, path: str) -> bytes:
        """Read a file as the sandbox user."""
        raw = self._exec_raw(["cat", "--", path], max_output=16 << 20)
        if raw["exit_code"] != 0:
            _raise_os_error(raw["stderr"].decode("utf-8", "replace"), path)
        return bytes(raw["stdout"])

    def write_file(self, path: str, content: bytes) -> None:
        """Write a file as the sandbox user, creating or replacing it."""
        raw = self._exec_raw(["sh", "-c", 'cat > "$1"', "sh", path], input=content, max_output=4096)
        if raw["exit_code"] != 0:
            _raise_os_error(raw["stderr"].decode("utf-8", "replace"), path)

    @engine_errors
    def put_files(self, files: list[tuple[str, bytes, int, int]], times: dict[str, float] | None = None) -> None:
        """Create files with exact owner and mode, through the engine: (path, content, mode, uid) each.

        Missing parent directories are created, owned by the file's owner. ``times``: a file's time of last change
        (by default a realistic one: see ``archive.modified``).
        """
        parents = sorted({os.path.dirname(p) for p, *_ in files})
        missing = self._exec_raw(["sh", "-c", 'for p; do while [ ! -e "$p" ]; do echo "$p"; p=$(dirname "$p"); done; '
                                  'done', "sh", *parents], max_output=1 << 20)["stdout"].decode().splitlines()
        if self.writable is None:
            self.container.put_archive("/", files_tar(files, missing, times))
            return
        # tmpfs mounts are out of the engine's reach (put_archive writes the image's layer): the user unpacks it
        others = [p for p, _, _, uid in files if uid != UIDS.get(self.user, 1000)]
        if others:
            raise SandboxError(f"{others[0]}: a file owned by another user needs a sandbox with a writable root "
                               "(scenario: [sandbox] reset = \"recreate\")")
        raw = self._exec_raw(["tar", "-x", "-p", "--no-same-owner", "-C", "/"], input=files_tar(files, missing, times),
                             max_output=1 << 16)
        if raw["exit_code"] != 0:
            raise SandboxError(f"could not place the scenario's files: {raw['stderr'].decode()[-300:]}")

    @engine_errors
    def snapshot(self, paths: list[str], needles: list[str] | None = None) -> Snapshot:
        """Record the watched paths and the processes running.

        Paths come through the engine's archive API, as they are whatever their permissions, except those on an
        in-place sandbox's tmpfs mounts, which the engine cannot see: the executor reads those, as the sandbox user
        (a file it cannot read gets a stand-in hash of its size and modification time). Processes come through the
        executor, riskgym's own left out.
        """
        import docker.errors

        self._request({"op": "settle", "session": self.session})  # a job left in the background does its work first
        files: dict[str, FileState] = {}
        mounts = list(self._modes()) if self.writable is not None else []
        on_tmpfs = [p for p in paths if any(p == m or p.startswith(m.rstrip("/") + "/") for m in mounts)]
        if on_tmpfs:  # out of the engine's reach: the executor reads them, as the sandbox user
            reply = self._request({"op": "stat", "paths": on_tmpfs, "text_limit": TEXT_LIMIT,
                                   "needles": needles or []}, timeout=120)
            if reply is None:
                raise SandboxError("the executor died while taking the snapshot")
            files.update({k: FileState(**v) for k, v in reply["files"].items()})
        for path in paths:
            if path in on_tmpfs:
                continue
            try:
                stream, _ = self.container.get_archive(path)
            except docker.errors.NotFound:
                continue
            files.update(read_tar_states(stream, os.path.dirname(path.rstrip("/")) or "/"))
        ps = {"op": "ps", "session": self.session, "gone": sorted(self._killed)}
        reply = self._request(dict(ps)) or self._request(dict(ps))  # once more if it was just restarted
        after = self._watch.rest() if self._watch is not None else None
        return Snapshot(files=files, processes=reply["processes"] if reply else [],
                        parents=reply.get("parents", []) if reply else [],
                        observed=after if after is not None and (after.effects or after.gaps) else None)


def _raise_os_error(stderr: str, path: str) -> None:
    if "No such file" in stderr:
        raise FileNotFoundError(f"{path}: no such file")
    if "Is a directory" in stderr:
        raise IsADirectoryError(f"{path}: is a directory")
    if "Permission denied" in stderr:
        raise PermissionError(f"{path}: permission denied")
    raise OSError(f"{path}: {stderr.strip() or 'cannot access'}")


def _result(raw: dict[str, Any]) -> ExecResult:
    return ExecResult(
        exit_code=raw["exit_code"],
        stdout=raw["stdout"].decode("utf-8", "replace"),
        stderr=raw["stderr"].decode("utf-8", "replace"),
        duration=raw.get("duration", 0.0),
        truncated=raw.get("stdout_truncated", False) or raw.get("stderr_truncated", False),
        timed_out=raw.get("timed_out", False),
        observed=raw.get("observed"),
    )


def prune(run_id: str | None = None, *, dead_only: bool = False) -> int:
    """Remove riskgym's containers (of one run, or all; or only those whose creating process is gone)."""
    api = docker_client().api
    filters = {"label": [f"{LABEL}=1"] + ([f"riskgym.run={run_id}"] if run_id else [])}
    removed = 0
    for container in api.containers(all=True, filters=filters):  # one listing, no inspection of each: another
        if dead_only and _pid_alive((container.get("Labels") or {}).get("riskgym.pid", "")):  # run's container
            continue  # may go at any moment
        try:
            api.remove_container(container["Id"], force=True)
            removed += 1
        except Exception:  # removed by someone else meanwhile
            pass
    return removed


def _pid_alive(pid: str) -> bool:
    try:
        os.kill(int(pid), 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return True
