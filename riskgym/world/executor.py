"""The executor: one long-lived process inside the sandbox that runs commands sent as JSON lines.

This file is run *inside the container* as ``python3 -I -u -c <this source>``; it is never imported on the host
(the host reads it as text). It must run on any Python >= 3.7 and use the standard library only.

Request (one JSON object a line on stdin)::

    {"id": 1, "argv": ["ls", "-l"] | "shell": "cd /tmp && ls", "cwd": null, "env": {}, "stdin_b64": null,
     "timeout": 30.0, "max_output": 65536}
    {"id": 2, "op": "state", "cwd": "/home/agent", "env": {...}}   # restore state after a restart
    {"id": 3, "op": "ps"}                                            # processes, riskgym's own left out

Response (one JSON object a line on stdout)::

    {"id": 1, "exit_code": 0, "stdout_b64": "...", "stderr_b64": "...", "duration": 0.01,
     "stdout_truncated": false, "stderr_truncated": false, "timed_out": false, "cwd": "...", "env": {...}}

(``env`` only when it changed since the last reply.)

A ``shell`` request runs in a subshell forked from one long-lived ``bash`` (the shell server: no new bash to
start per command), with the terminal's current directory and environment; what it changes (``cd``,
``export``) is kept for the next request, as in a terminal. ``argv`` requests are started directly. A timeout
kills the request's whole process group.

The executor is five files, shipped together (:func:`riskgym.world.docker.executor_source`): this one (the request
loop), :mod:`box_shell` (the shell server), :mod:`box_observe` (the in-box observer), :mod:`box_reset` (a reset
in place) and :mod:`box_files` (snapshots).
"""

import base64
import json
import os
import re
import select
import shlex
import signal
import stat
import subprocess
import sys
import tempfile
import time

try:  # on the host, a package; in the container, the loader has put each part in sys.modules
    from riskgym.world import box_files, box_observe, box_reset, box_shell
except ImportError:  # pragma: no cover - the container's path
    import box_files  # type: ignore[no-redef]
    import box_observe  # type: ignore[no-redef]
    import box_reset  # type: ignore[no-redef]
    import box_shell  # type: ignore[no-redef]

copy_tree, stat_tree = box_files.copy_tree, box_files.stat_tree
KILL_RE, STRACE, SYS_LIMIT = box_observe.KILL_RE, box_observe.STRACE, box_observe.SYS_LIMIT
desktop_session, hidden_log, observed_lines = (box_observe.desktop_session, box_observe.hidden_log,
                                              box_observe.observed_lines)
observer_works, read_log, runtime_dir, traced = (box_observe.observer_works, box_observe.read_log,
                                                 box_observe.runtime_dir, box_observe.traced)
alive, children_of, empty_dir, own_pids, spared_pids, under = (box_reset.alive, box_reset.children_of,
                                                               box_reset.empty_dir, box_reset.own_pids,
                                                               box_reset.spared_pids, box_reset.under)
DROP_ENV, ShellServer, expendable, parse_state = (box_shell.DROP_ENV, box_shell.ShellServer, box_shell.expendable,
                                                  box_shell.parse_state)

__all__ = ["STRACE", "Executor", "children_of", "hidden_log", "main", "observed_lines", "read_log", "runtime_dir",
           "serve", "spared_pids", "traced", "under"]
"""What the desktop's driver and the host use of it (the driver loads the executor as a module beside it)."""


PRIVATE = ".term"
"""The executor's folder for a command's stdin, output FIFOs and state, in the user's runtime folder (see
:func:`runtime_dir`): a fixed name, so that a replay sees what the run saw."""


class Executor:
    """Runs requests one at a time and keeps the terminal-like state (cwd, environment) between them."""

    def __init__(self):
        self.env = {k: v for k, v in os.environ.items() if k not in DROP_ENV}
        self.env.update(login_env(self.env))
        self.cwd = self.env.get("HOME") or os.getcwd()
        self.initial = (self.cwd, dict(self.env))
        self.sent_env = None
        self.private = self.make_private()
        self.shell = None
        self.last_state = b""
        self.can_observe = None  # probed at the first observed command
        self.known = {}  # pid -> command line of the live processes, for the targets of the observed kills

    @staticmethod
    def make_private():
        """A private folder for a command's files, in :func:`runtime_dir`.

        ``PRIVATE`` there; a random name beside it if something else (not this user's own folder) has that name.
        """
        base = runtime_dir()
        path = os.path.join(base, PRIVATE)
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            info = os.lstat(path)  # a symlink is not followed: not this user's folder
            if not (stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid()):
                return tempfile.mkdtemp(prefix=PRIVATE + "-", dir=base)
            os.chmod(path, 0o700)
        return path

    def handle(self, req):
        if req.get("op") == "state":
            self.cwd = req.get("cwd") or self.cwd
            self.env = req.get("env") or self.env
            return {"id": req.get("id"), "ok": True}
        if req.get("op") == "settle":
            return {"id": req.get("id"), "settled": self.settle(req.get("session"), float(req.get("timeout") or 1.5))}
        if req.get("op") == "ps":
            processes, parents = self.processes(req.get("session"), req.get("gone") or ())
            return {"id": req.get("id"), "processes": processes, "parents": parents}
        if req.get("op") == "reset":
            return dict(self.reset(req), id=req.get("id"))
        if req.get("op") == "stat":
            files = stat_tree(req["paths"], int(req.get("text_limit") or 65536), skip=self.private,
                              needles=req.get("needles") or [])
            return {"id": req.get("id"), "files": files}
        if req.get("shell") is not None:
            return self.run_shell(req)
        return self.run_argv(req)

    def reset(self, req):
        """Make the sandbox as it was for this user.

        Kills every other process of the user, empties the writable paths, copies the home skeleton back, and
        forgets the terminal's directory and environment.

        ``req``: {"paths": {path: mode}, "skel": "/etc/skel", "home": "/home/agent"}. Returns what could not be
        done (processes left, paths not emptied), so that the caller can recreate the sandbox instead.
        """
        if self.shell is not None:
            self.shell.close()
            self.shell = None
        me, uid = os.getpid(), os.getuid()
        keep = req.get("keep") or {}
        left = []
        for _ in range(200):
            spared = spared_pids(keep) if keep else set()
            trees = set(keep.get("trees") or ()) if spared else set()  # read again at each kill (below): a child
            if not spared:  # kill(-1): every process this user may signal but this one and PID 1
                try:
                    os.kill(-1, signal.SIGKILL)
                except OSError:
                    pass
            else:  # the browser forked since the scan is the browser's too, as its parent says
                for pid in own_pids(uid):  # a desktop session lives on: every other process, one by one
                    if pid not in spared and pid not in (me, 1) and not under(pid, trees):
                        try:
                            os.kill(pid, signal.SIGKILL)
                        except OSError:
                            pass
            while True:  # reap the children of this process; PID 1 reaps the rest
                try:
                    if os.waitpid(-1, os.WNOHANG)[0] == 0:
                        break
                except ChildProcessError:
                    break
            left = [pid for pid in own_pids(uid) if pid not in (me, 1) and pid not in spared
                    and not under(pid, trees)]
            if not left:
                break
            time.sleep(0.002)
        problems = []
        for path, mode in sorted(req.get("paths", {}).items()):
            problems += empty_dir(path, spare=keep.get("paths") or ())
            try:
                st = os.stat(path)
                if st.st_uid == uid and st.st_mode & 0o7777 != mode:  # others' (root's) are not this user's to set
                    os.chmod(path, mode)
            except OSError as exc:
                problems.append("%s: %s" % (path, exc))
        skel, home = req.get("skel"), req.get("home")
        if skel and home and os.path.isdir(skel):
            problems += copy_tree(skel, home)
        try:  # System V IPC objects outlive processes
            subprocess.run(["ipcrm", "--all"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        except OSError:
            pass
        self.cwd, self.env = self.initial[0], dict(self.initial[1])
        self.sent_env, self.last_state = None, b""
        self.private = self.make_private()
        return {"ok": not left and not problems, "left": left, "problems": problems[:20]}

    def mine(self):
        """The harness's own processes: this one, PID 1, the shell server (and, observed, the observer's child)."""
        mine = {os.getpid(), 1}
        if self.shell is not None:
            mine.add(self.shell.proc.pid)
            if self.shell.observed:  # the observer's child: the shell server itself
                mine.update(int(p) for p in children_of(self.shell.proc.pid))
        return mine

    def settle(self, session=None, timeout=1.5):
        """Wait (``timeout`` seconds at most) until none of the agent's processes runs or is about to (state R or D).

        Before a snapshot: a job the last command left in the background (``nohup rm ... &``) does what it was
        started for first, however busy the host (a desktop's own session is left out). False when one still ran.
        """
        deadline = time.monotonic() + timeout
        while True:
            mine, rows = self.mine(), []
            for pid in own_pids(os.getuid()):
                try:
                    with open("/proc/%d/stat" % pid) as f:
                        state, ppid = f.read().rsplit(")", 1)[1].split()[:2]
                    with open("/proc/%d/cmdline" % pid, "rb") as f:
                        args = f.read().replace(b"\0", b" ").decode("utf-8", "replace").strip()
                except (OSError, ValueError):
                    continue
                if pid not in mine:
                    rows.append((pid, int(ppid), args, state))
            own = desktop_session([r[:3] for r in rows], session) if session else set()
            if not any(r[3] in ("R", "D") for r in rows if r[0] not in own):
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)

    def processes(self, session=None, gone=()):
        """The box's processes (command lines) and each one's parent (an index, -1 for none), riskgym's own left out.

        ``session``: a desktop's, left out too ({"root", "apps"}: see ``desktop_session``). A zombie is not running.
        ``gone``: processes the agent killed: their end is waited for (2 s at most), so that whether one is still
        listed does not depend on how fast the kernel ended it.
        """
        deadline = time.monotonic() + 2
        while gone and time.monotonic() < deadline and any(alive(pid) for pid in gone):
            time.sleep(0.01)
        mine = self.mine()
        ps = subprocess.run(["ps", "-eo", "pid=,ppid=,stat=,args="], stdout=subprocess.PIPE)
        out = ps.stdout.decode("utf-8", "replace")
        rows = []
        for line in out.splitlines():
            parts = line.split(None, 3)
            if len(parts) == 4 and int(parts[0]) not in mine and not parts[2].startswith("Z") \
                    and parts[3] != "ps -eo pid=,ppid=,stat=,args=":
                if not (parts[1] == "1" and parts[3] == "sleep 1000000"):
                    rows.append((int(parts[0]), int(parts[1]), parts[3]))
        if session:
            own = desktop_session(rows, session)
            rows = [row for row in rows if row[0] not in own]
        index = {pid: i for i, (pid, _, _) in enumerate(rows)}
        return [args for _, _, args in rows], [index.get(ppid, -1) for _, ppid, _ in rows]

    def run_argv(self, req):
        env = dict(self.env)
        env.update(req.get("env") or {})
        cwd = req.get("cwd") or self.cwd
        stdin_data = base64.b64decode(req["stdin_b64"]) if req.get("stdin_b64") else None
        start = time.monotonic()
        try:
            proc = subprocess.Popen(
                req["argv"], cwd=cwd if os.path.isdir(cwd) else "/", env=env, start_new_session=True,
                stdin=subprocess.PIPE if stdin_data is not None else subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            )
        except OSError as exc:
            return self.reply(req, 127, (b"", False), (str(exc).encode(), False), start, False)
        expendable(proc.pid)
        in_fd = proc.stdin.fileno() if proc.stdin else None
        out, err, timed_out = self.pump(
            in_fd, stdin_data, proc.stdout.fileno(), proc.stderr.fileno(), lambda: proc.poll() is not None,
            lambda: os.killpg(proc.pid, signal.SIGKILL), req)
        proc.wait()
        for f in (proc.stdin, proc.stdout, proc.stderr):
            if f is not None and not f.closed:
                try:
                    f.close()
                except OSError:
                    pass
        return self.reply(req, 124 if timed_out else proc.returncode, out, err, start, timed_out)

    def ensure_shell(self, restart=False, observe=False):
        """The shell server, started anew (with the terminal's state) if it died or ``restart``.

        Anew too when it is observed and should not be, or the other way round.
        """
        if restart or self.shell is None or not self.shell.alive() or self.shell.observed != observe:
            if self.shell is not None:
                self.shell.close()
            self.shell = ShellServer(self.cwd, self.env, self.private, observe)
        return self.shell

    def refresh_known(self):
        """Note the command line of each live process not seen before (so that a kill's target has a name)."""
        live = set()
        for name in os.listdir("/proc"):
            if not name.isdigit():
                continue
            pid = int(name)
            live.add(pid)
            if pid not in self.known:
                try:
                    with open("/proc/%s/cmdline" % name, "rb") as f:
                        self.known[pid] = f.read().rstrip(b"\0").replace(b"\0", b" ").decode("utf-8", "replace")
                except OSError:
                    pass
        for pid in [p for p in self.known if p not in live]:
            del self.known[pid]

    def observation(self, raw, lost, root):
        """The step's report of what its processes did (see ``riskgym.world.observe``)."""
        lines = observed_lines(bytes(raw), self.private)
        targets = set()
        for line in lines:
            m = KILL_RE.match(line)
            if m:
                targets.add(abs(int(m.group(1))))
        return {"observer": "lost" if lost else "strace", "sys": lines, "sys_cut": len(raw) > SYS_LIMIT, "root": root,
                "private": self.private,
                "pids": {str(p): self.known[p] for p in targets if p in self.known}}

    def run_shell(self, req):
        start = time.monotonic()
        env = req.get("env") or {}
        bad = [k for k in env if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", k)]
        if bad:
            raise ValueError("not an environment variable name: %r" % bad[0])
        extra = "".join("export %s=%s\n" % (k, shlex.quote(v)) for k, v in env.items())
        if req.get("cwd"):
            extra += "cd -- %s\n" % shlex.quote(req["cwd"])
        if not os.path.isdir(self.private):  # the agent emptied its runtime folder: make the folder again
            self.private = self.make_private()
            if self.shell is not None and self.private != self.shell.folder:
                self.shell.close()
                self.shell = None
        state_file = os.path.join(self.private, "state")
        stdin_data = base64.b64decode(req["stdin_b64"]) if req.get("stdin_b64") else None
        in_path = None
        if stdin_data is not None:
            in_path = os.path.join(self.private, "in")
            with open(in_path, "wb") as f:
                f.write(stdin_data)
        # fresh FIFOs for each command (a background child of an earlier one keeps writing into its own), opened
        # here for reading and, until the command ends, for writing too: so a read means data, never an early EOF
        out_path, err_path = (os.path.join(self.private, k) for k in ("stdout", "stderr"))
        fds = []
        for path in (out_path, err_path):  # a background child of an earlier command keeps its unlinked one
            if os.path.lexists(path):
                os.unlink(path)
            os.mkfifo(path, 0o600)
            fds += [os.open(path, os.O_RDONLY | os.O_NONBLOCK), os.open(path, os.O_WRONLY | os.O_NONBLOCK)]
        out_r, out_w, err_r, err_w = fds
        observe = bool(req.get("observe"))
        if observe and self.can_observe is None:
            self.can_observe = observer_works()
        observe = observe and bool(self.can_observe)
        if observe:
            self.refresh_known()
        raw = bytearray()
        for attempt in (1, 2):
            shell = self.ensure_shell(restart=attempt == 2, observe=observe)
            shell.drain(raw, restart=True)  # what background processes did since the last command, and a clean file
            try:
                shell.start(self.cwd, self.env, extra + req["shell"], in_path is not None)
                break
            except OSError:  # the shell died after the last command (a broken pipe): start a new one
                if attempt == 2:
                    raise
        status = {"pid": None, "rc": None, "dead": False}

        def done():
            while status["rc"] is None and not status["dead"]:
                if b"\n" not in shell.pending and not select.select([shell.status_r], [], [], 0)[0]:
                    if not shell.alive():  # the server (or its observer) was killed; what is left cannot answer
                        status["dead"] = True
                        return True
                    return False
                line = shell.read_status()
                if line is None:
                    status["dead"] = True
                else:
                    key, _, value = line.partition(" ")
                    status[key] = int(value)
            return True

        def kill():
            give_up = time.monotonic() + 2
            while status["pid"] is None and not done() and time.monotonic() < give_up:
                select.select([shell.status_r], [], [], 0.05)
            # the command's process group; the whole shell server if it never said which one that is
            os.killpg(status["pid"] or shell.proc.pid, signal.SIGKILL)

        out, err, timed_out = self.pump(None, None, out_r, err_r, done, kill, req, extra_fd=shell.status_r)
        shell.drain(raw)
        seen = self.observation(raw, status["dead"] or not shell.alive(), status["pid"]) if shell.observed else None
        for fd in (out_w, err_w, out_r, err_r):
            try:
                os.close(fd)
            except OSError:
                pass
        for path in (in_path, out_path, err_path):
            if path is not None:
                try:
                    os.unlink(path)
                except OSError:
                    pass
        if status["dead"]:
            self.ensure_shell(restart=True, observe=observe)
            return self.reply(req, 137, out, (err[0] + b"[the shell was killed; it will be restarted]\n",
                                              err[1]), start, False, seen)
        if not timed_out and not extra and os.path.exists(state_file):  # per-call cwd/env are for that call only
            with open(state_file, "rb") as f:
                raw = f.read()
            os.unlink(state_file)
            if raw != self.last_state:  # most commands change nothing: no need to parse it again
                self.last_state = raw
                cwd, env = parse_state(raw)
                self.cwd = cwd or self.cwd
                self.env = env or self.env
        return self.reply(req, 124 if timed_out else status["rc"], out, err, start, timed_out, seen)

    def pump(self, in_fd, data, out_fd, err_fd, finished, kill, req, extra_fd=None):
        """Feed stdin, read stdout/stderr up to the cap until ``finished()``; kill at the deadline.

        ``extra_fd`` (the shell server's status pipe) is watched too, so that its news wakes the loop.
        """
        cap = int(req.get("max_output") or 65536)
        deadline = time.monotonic() + float(req.get("timeout") or 30)
        bufs = {out_fd: [b"", False], err_fd: [b"", False]}
        readers = [out_fd, err_fd]
        writers = [in_fd] if in_fd is not None else []
        data = data or b""
        timed_out = False
        while True:
            is_done = finished()
            watch = readers + ([extra_fd] if extra_fd is not None and not is_done else [])
            if not is_done and not watch and not writers:
                time.sleep(0.0002)  # the pipes are closed: the process is exiting
            else:
                wait = 0 if is_done else min(0.05, max(0.0, deadline - time.monotonic()))
                ready, writable, _ = select.select(watch, writers, [], wait)
                for fd in writable:
                    try:
                        n = os.write(fd, data[:65536])
                    except OSError:  # the command closed its stdin
                        n, data = 0, b""
                    data = data[n:]
                    if not data:
                        os.close(fd)
                        writers.remove(fd)
                got = False
                for fd in ready:
                    if fd not in bufs:
                        continue  # the status pipe: finished() reads it
                    chunk = os.read(fd, 65536)
                    if not chunk:
                        readers.remove(fd)
                        continue
                    got = True
                    buf = bufs[fd]
                    room = cap - len(buf[0])
                    if room > 0:
                        buf[0] += chunk[:room]
                    if len(chunk) > room:
                        buf[1] = True
                if is_done and not got:
                    break  # the command is done; background children may keep the pipes open
            if not is_done and time.monotonic() >= deadline:
                timed_out = True
                try:
                    kill()
                except OSError:
                    pass
                deadline = float("inf")  # now wait for it to be reaped
        for fd in writers:
            os.close(fd)
        return bufs[out_fd], bufs[err_fd], timed_out

    def reply(self, req, code, out, err, start, timed_out, seen=None):
        resp = {
            "id": req.get("id"), "exit_code": code, "duration": time.monotonic() - start,
            "stdout_b64": base64.b64encode(out[0]).decode(), "stderr_b64": base64.b64encode(err[0]).decode(),
            "stdout_truncated": out[1], "stderr_truncated": err[1], "timed_out": timed_out,
            "cwd": self.cwd,
        }
        if seen is not None:
            resp["seen"] = seen
        if self.env != self.sent_env:  # the environment goes back only when it changed
            resp["env"] = self.sent_env = dict(self.env)
        return resp


def not_dumpable():
    """Keep the agent's processes (the same user) from ptrace-ing this one or writing its memory (PR_SET_DUMPABLE).

    Otherwise they could change it, and survive a reset. Commands it starts are dumpable again after their execve.
    """
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE = 4
    except (ImportError, OSError, AttributeError):
        pass


def login_env(env):
    """What a login's environment has that ``docker exec``'s lacks (its absence is a tell).

    The user's names and the runtime folder (pam_systemd sets ``XDG_RUNTIME_DIR``).
    """
    import pwd

    out = {}
    try:
        name = pwd.getpwuid(os.getuid()).pw_name
        out.update({k: name for k in ("USER", "LOGNAME") if k not in env})
    except KeyError:
        pass
    if runtime_dir().startswith("/run/user/") and "XDG_RUNTIME_DIR" not in env:
        out["XDG_RUNTIME_DIR"] = runtime_dir()
    return out


def retitle(title, name):
    """Show ``title`` as this process's command line and ``name`` as its name, not python3's.

    ``ps -f`` and /proc/PID/cmdline show the title, ``ps`` and ``top`` the name, instead of
    ``python3 -I -u -c <bootstrap>``, which tells an agent a harness runs it.

    The title is written over the process's original arguments, where the kernel reads them from (their bounds are
    fields 48 and 49 of /proc/self/stat), as setproctitle does; python keeps its own copy of them.
    """
    try:
        import ctypes

        with open("/proc/self/stat") as f:
            fields = f.read().rpartition(")")[2].split()
        start, end = int(fields[45]), int(fields[46])
        data = title.encode()[:end - start - 1]
        ctypes.memmove(start, data + b"\0" * (end - start - len(data)), end - start)
        ctypes.CDLL(None, use_errno=True).prctl(15, name.encode()[:15], 0, 0, 0)  # PR_SET_NAME = 15
    except (ImportError, OSError, AttributeError, ValueError, IndexError):
        pass


def serve(handle):
    """Answer JSON-line requests on stdin with ``handle(request)`` on stdout, after a ``ready`` line.

    Out of the agent's reach first (``not_dumpable``); a request that fails is answered with its error.
    """
    not_dumpable()
    out = sys.stdout.buffer
    private = getattr(getattr(handle, "__self__", None), "private", None)
    out.write(json.dumps({"ready": True, "pid": os.getpid(), "private": private}).encode() + b"\n")
    out.flush()
    for line in sys.stdin.buffer:
        try:
            resp = handle(json.loads(line))
        except Exception as exc:  # a bad request must not kill the server
            resp = {"id": None, "error": "%s: %s" % (type(exc).__name__, exc)}
        out.write(json.dumps(resp).encode() + b"\n")
        out.flush()


def main():
    import pwd

    try:
        user = pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        user = str(os.getuid())
    retitle("sshd: %s@notty" % user, "sshd")  # what a remote login's shell runs under
    serve(Executor().handle)


if __name__ == "__main__":
    main()
