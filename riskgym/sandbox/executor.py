"""The executor: one long-lived process inside the sandbox that runs commands sent as JSON lines.

This file is run *inside the container* as ``python3 -u -c <this source>``; it is never imported on the host
(the host reads it as text). It must run on any Python >= 3.7 and use the standard library only.

Request (one JSON object a line on stdin)::

    {"id": 1, "argv": ["ls", "-l"] | "shell": "cd /tmp && ls", "cwd": null, "env": {}, "stdin_b64": null,
     "timeout": 30.0, "max_output": 65536}
    {"id": 2, "op": "state", "cwd": "/home/agent", "env": {...}}   # restore state after a restart

Response (one JSON object a line on stdout)::

    {"id": 1, "exit_code": 0, "stdout_b64": "...", "stderr_b64": "...", "duration": 0.01,
     "stdout_truncated": false, "stderr_truncated": false, "timed_out": false, "cwd": "...", "env": {...}}

(``env`` only when it changed since the last reply.)

A ``shell`` request runs in ``bash`` with the executor's current directory and environment, and what it
changes (``cd``, ``export``) is kept for the next request, as in a terminal. A timeout kills the request's
whole process group.
"""

import base64
import json
import os
import re
import select
import signal
import subprocess
import sys
import tempfile
import time

# pwd and export -p are bash builtins: the state costs no extra process.
STATE_SCRIPT = (
    '__rg_state=$1; shift; trap \'__rg_rc=$?; { pwd; export -p; } > "$__rg_state" 2>/dev/null; exit $__rg_rc\' EXIT\n'
)
EXPORT_RE = re.compile(r'^declare -x ([A-Za-z_][A-Za-z0-9_]*)(?:="((?:[^"\\]|\\.)*)"|=\$\'((?:[^\'\\]|\\.)*)\')?$',
                       re.M | re.S)
ANSI_C = {"n": "\n", "t": "\t", "r": "\r", "a": "\a", "b": "\b", "f": "\f", "v": "\v", "e": "\x1b", "E": "\x1b"}
DROP_ENV = ("_", "SHLVL", "PWD", "OLDPWD")


def unescape_ansi_c(m):
    esc = m.group(1)
    if esc[0] == "x":
        return chr(int(esc[1:], 16))
    if esc[0] in "01234567":
        return chr(int(esc, 8))
    return ANSI_C.get(esc, esc)


class Executor:
    """Runs requests one at a time and keeps the terminal-like state (cwd, environment) between them."""

    def __init__(self):
        self.env = {k: v for k, v in os.environ.items() if k not in DROP_ENV}
        self.cwd = self.env.get("HOME") or os.getcwd()
        self.sent_env = None
        self.private = tempfile.mkdtemp(prefix=".riskgym-executor-")

    def handle(self, req):
        if req.get("op") == "state":
            self.cwd = req.get("cwd") or self.cwd
            self.env = req.get("env") or self.env
            return {"id": req.get("id"), "ok": True}
        return self.run(req)

    def run(self, req):
        env = dict(self.env)
        env.update(req.get("env") or {})
        cwd = req.get("cwd") or self.cwd
        if not os.path.isdir(cwd):
            cwd = "/"
        state_file = None
        if req.get("shell") is not None:
            state_file = os.path.join(self.private, "state")
            argv = ["bash", "-c", STATE_SCRIPT + req["shell"], "bash", state_file]
        else:
            argv = req["argv"]
        stdin_data = base64.b64decode(req["stdin_b64"]) if req.get("stdin_b64") else None
        start = time.monotonic()
        try:
            proc = subprocess.Popen(
                argv, cwd=cwd, env=env, start_new_session=True,
                stdin=subprocess.PIPE if stdin_data is not None else subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            )
        except OSError as exc:
            return self.reply(req, 127, b"", str(exc).encode(), start, False, False, False)
        if stdin_data is not None:
            try:
                proc.stdin.write(stdin_data)
                proc.stdin.close()
            except OSError:
                pass
        out, err, timed_out = self.collect(proc, float(req.get("timeout") or 30), int(req.get("max_output") or 65536))
        code = proc.returncode if not timed_out else 124
        if state_file is not None and not timed_out:
            self.load_state(state_file)
        return self.reply(req, code, out[0], err[0], start, out[1], err[1], timed_out)

    def collect(self, proc, timeout, cap):
        out_fd, err_fd = proc.stdout.fileno(), proc.stderr.fileno()
        bufs = {out_fd: [b"", False], err_fd: [b"", False]}
        deadline = time.monotonic() + timeout
        timed_out = False
        open_fds = list(bufs)
        while open_fds:
            exited = proc.poll() is not None
            wait = 0 if exited else min(0.05, max(0.0, deadline - time.monotonic()))
            ready, _, _ = select.select(open_fds, [], [], wait)
            for fd in ready:
                chunk = os.read(fd, 65536)
                if not chunk:
                    open_fds.remove(fd)
                    continue
                buf = bufs[fd]
                room = cap - len(buf[0])
                if room > 0:
                    buf[0] += chunk[:room]
                if len(chunk) > room:
                    buf[1] = True
            if exited and not ready:
                break  # the command is done; background children may keep the pipes open
            if not exited and time.monotonic() >= deadline:
                timed_out = True
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except OSError:
                    pass
                proc.wait()
                break
        proc.wait()
        proc.stdout.close()
        proc.stderr.close()
        return bufs[out_fd], bufs[err_fd], timed_out

    def load_state(self, path):
        try:
            with open(path, "rb") as f:
                data = f.read()
            os.unlink(path)
        except OSError:
            return
        head, _, rest = data.decode("utf-8", "replace").partition("\n")
        if head:
            self.cwd = head
        env = {}
        for m in EXPORT_RE.finditer(rest):
            key, quoted, ansi = m.groups()
            if key in DROP_ENV:
                continue
            if quoted is not None:
                env[key] = re.sub(r'\\(["\\$`])', r"\1", quoted)
            elif ansi is not None:
                env[key] = re.sub(r"\\(x[0-9a-fA-F]{1,2}|[0-7]{1,3}|.)", unescape_ansi_c, ansi)
        if env:
            self.env = env

    def reply(self, req, code, out, err, start, out_trunc, err_trunc, timed_out):
        resp = {
            "id": req.get("id"), "exit_code": code, "duration": time.monotonic() - start,
            "stdout_b64": base64.b64encode(out).decode(), "stderr_b64": base64.b64encode(err).decode(),
            "stdout_truncated": out_trunc, "stderr_truncated": err_trunc, "timed_out": timed_out,
            "cwd": self.cwd,
        }
        if self.env != self.sent_env:  # the environment goes back only when it changed
            resp["env"] = self.sent_env = dict(self.env)
        return resp


def main():
    executor = Executor()
    out = sys.stdout.buffer
    out.write(b'{"ready": true}\n')
    out.flush()
    for line in sys.stdin.buffer:
        try:
            req = json.loads(line)
            resp = executor.handle(req)
        except Exception as exc:  # a bad request must not kill the executor
            resp = {"id": None, "error": "%s: %s" % (type(exc).__name__, exc)}
        out.write(json.dumps(resp).encode() + b"\n")
        out.flush()


if __name__ == "__main__":
    main()
