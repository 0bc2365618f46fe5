"""A JSON-lines channel to a process started by ``docker exec`` with its stdin attached: only riskgym holds it.

The box's executor and each service's control loop are spoken to this way: no network port, nothing the agent can
reach. Docker multiplexes the process's stdout and stderr on one socket in frames (an 8-byte header: stream and
size); stdout's lines are the replies, stderr is dropped.
"""

from __future__ import annotations

import json
import socket
from functools import lru_cache
from importlib import resources
from typing import Any

BOOTSTRAP = "import sys, json; exec(json.loads(sys.stdin.buffer.readline()))"
"""What ``python3 -c`` runs in the container: the program's source, sent as the first line of its stdin (so that
neither its command line nor its environment carries it, or names riskgym)."""


@lru_cache(maxsize=8)
def program(modules: tuple[tuple[str, str], ...], main: str) -> str:
    """What a container's ``python3 -c`` runs: riskgym's files loaded as modules, then ``main()`` of ``main``.

    ``modules`` are ``(module name, package)`` pairs: each file is the package's ``<name>.py``.
    """
    sources = {name: resources.files(package).joinpath(f"{name}.py").read_text() for name, package in modules}
    return ("import sys, types\n"
            f"for name, src in {sources!r}.items():\n"
            "    mod = types.ModuleType(name); sys.modules[name] = mod\n"
            "    exec(compile(src, name, 'exec'), mod.__dict__)\n"
            f"sys.modules[{main!r}].main()\n")


class Channel:
    """The attached stdin/stdout of one ``python3 -I -u -c BOOTSTRAP`` started in a container."""

    def __init__(self, api: Any, container_id: str, source: str, user: str, python: str = "python3") -> None:
        # -I (isolated): no user site-packages, no PYTHON* variables, so the agent cannot plant code that runs in it
        exec_id = api.exec_create(container_id, [python, "-I", "-u", "-c", BOOTSTRAP], stdin=True, stdout=True,
                                  stderr=True, user=user)["Id"]
        self.exec_id = exec_id
        raw = api.exec_start(exec_id, socket=True)
        self._raw = raw  # kept: it holds the HTTP response, whose collection would close the socket under us (EBADF)
        self.sock: socket.socket = getattr(raw, "_sock", raw)
        self.sock.settimeout(60)
        self._buf, self._pending = b"", b""
        self._lines: list[bytes] = []
        self.timed_out = False
        self.sock.sendall(json.dumps(source).encode() + b"\n")

    def read_line(self) -> bytes | None:
        """The next line of the process's stdout; None at EOF."""
        while not self._lines:
            while len(self._buf) < 8 or len(self._buf) < 8 + int.from_bytes(self._buf[4:8], "big"):
                chunk = self.sock.recv(1 << 20)
                if not chunk:
                    return None
                self._buf += chunk
            size = int.from_bytes(self._buf[4:8], "big")
            stream, payload, self._buf = self._buf[0], self._buf[8 : 8 + size], self._buf[8 + size :]
            if stream == 1:
                self._pending += payload
                *lines, self._pending = self._pending.split(b"\n")
                self._lines.extend(lines)
        return self._lines.pop(0)

    def ask(self, req: dict[str, Any], timeout: float) -> dict[str, Any] | None:
        """Send one request and read its reply; None when the process is gone or did not answer in time.

        ``timed_out`` says which.
        """
        self.timed_out = False
        try:
            self.sock.settimeout(timeout)
            self.sock.sendall(json.dumps(req).encode() + b"\n")
            line = self.read_line()
        except TimeoutError:
            self.timed_out = True
            return None
        except OSError:
            return None
        return json.loads(line) if line is not None else None

    def call(self, req: dict[str, Any], timeout: float, who: str) -> dict[str, Any]:
        """:meth:`ask`, with no answer or an ``error`` reply raised as SandboxError naming ``who``."""
        from riskgym.errors import SandboxError

        reply = self.ask(req, timeout)
        if reply is None and self.timed_out:
            raise SandboxError(f"{who}: its control loop did not answer {req.get('op')!r} within {timeout:g} s (the "
                               "container runs; something in it holds the loop)")
        if reply is None:
            raise SandboxError(f"{who}: its control channel closed (the container stopped or was removed)")
        if "error" in reply:
            raise SandboxError(f"{who}: {reply['error']}")
        return reply

    def close(self) -> None:
        """Close the socket (the process sees EOF on stdin). Safe to call twice."""
        try:
            self.sock.close()
        except OSError:
            pass
