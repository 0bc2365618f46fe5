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
"""

import base64
import fcntl
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

PRIVATE = ".term"
"""The executor's folder for a command's stdin, output FIFOs and state, in the user's runtime folder (see
:func:`runtime_dir`): a fixed name, so that a replay sees what the run saw."""
EXPORT_RE = re.compile(r'^declare -x ([A-Za-z_][A-Za-z0-9_]*)(?:="((?:[^"\\]|\\.)*)"|=\$\'((?:[^\'\\]|\\.)*)\')?$',
                       re.M | re.S)
ANSI_C = {"n": "\n", "t": "\t", "r": "\r", "a": "\a", "b": "\b", "f": "\f", "v": "\v", "e": "\x1b", "E": "\x1b"}
DROP_ENV = ("_", "SHLVL", "PWD", "OLDPWD")
OBSERVED = ("execve,execveat,clone,clone3,fork,vfork,unlink,unlinkat,rmdir,rename,renameat,renameat2,open,openat,"
            "openat2,creat,truncate,ftruncate,chmod,fchmod,fchmodat,chown,fchown,lchown,fchownat,kill,tkill,tgkill,"
            "connect,sendto,sendmsg,link,linkat,symlink,symlinkat,mkdir,mkdirat,mknod,mknodat,dup2,dup3,pipe,pipe2,"
            "chdir,fchdir")
"""The system calls the observer reports: what changes files, processes and the network, and what data flows
through (opens, pipes, forks)."""
STRACE = ["strace", "-f", "--seccomp-bpf", "-qq", "-y", "-s", "4096", "-e", "signal=none", "-e", "trace=" + OBSERVED]
NOISE = re.compile(r'^\d+ +open(?:at)?\((?:[^,]*, )?"(?:/usr/|/lib|/etc/ld\.so|/proc/|/sys/|/dev/(?!fd/))[^"]*", '
                   r'O_RDONLY')
"""Reads of the system's own files (libraries, /proc): every program makes them; they are dropped in the box."""
KILL_RE = re.compile(r"^\d+ +t?g?kill\((?:\d+, )?(-?\d+),")
SYS_LIMIT = 8 << 20
"""At most this much of the observer's report per command; past it, the step says the report was cut."""
PEEK_LIMIT = 16 << 20
"""A file up to this size is looked into (unpacked, decoded) for the texts the checks look for; a larger one is
searched as it is."""
HASH_LIMIT = 64 << 20
"""A snapshot hashes files up to this size; a larger one (a sparse terabyte, say) gets a stand-in of its size and
modification time instead of hours of reading."""


def expendable(pid):
    """The out-of-memory killer takes this command (and the children it starts) first, never the executor.

    Set from here, just after the start (a ``preexec_fn`` would do it before the exec, but forces a full fork of this
    process: 3 ms more per command).
    """
    try:
        with open("/proc/%d/oom_score_adj" % pid, "w") as f:
            f.write("1000")
    except OSError:  # it has already ended
        pass


def unescape_ansi_c(m):
    esc = m.group(1)
    if esc[0] == "x":
        return chr(int(esc[1:], 16))
    if esc[0] in "01234567":
        return chr(int(esc, 8))
    return ANSI_C.get(esc, esc)


def parse_state(data):
    """(cwd, env) from what the state trap wrote: ``pwd`` then ``export -p``."""
    head, _, rest = data.decode("utf-8", "replace").partition("\n")
    env = {}
    for m in EXPORT_RE.finditer(rest):
        key, quoted, ansi = m.groups()
        if key in DROP_ENV:
            continue
        if quoted is not None:
            env[key] = re.sub(r'\\(["\\$`])', r"\1", quoted)
        elif ansi is not None:
            env[key] = re.sub(r"\\(x[0-9a-fA-F]{1,2}|[0-7]{1,3}|.)", unescape_ansi_c, ansi)
    return head, env


class ShellServer:
    """A ``bash`` that forks one subshell per command, each in its own process group (``set -m``).

    It runs one loop, sent as the first line of its stdin: for each request (see :meth:`send`) it runs the code that
    brings it to the terminal's directory and environment, then forks the command into a subshell whose stdout and
    stderr are the FIFOs in ``folder``. The command is ``eval``-ed on the loop's line 1, not sourced from a file, so
    that its errors read exactly as ``bash -c``'s (``bash: line 2: foo: command not found``) whatever ran before,
    and nothing (``$BASH_SOURCE``, an error's prefix, a variable) shows where it came from: the command's text is in
    ``$BASH_EXECUTION_STRING``, as in ``bash -c``.
    """

    def __init__(self, cwd, env, folder, observe=False):
        self.status_r, status_w = os.pipe()
        self.status_w = status_w
        self.sys_fd = None
        argv = ["bash"]
        if observe:  # the observer: strace follows the server and everything it starts, into a file no path names
            self.sys_fd = hidden_log(folder)
            # the shell (and what it starts) go first when memory runs out, never the observer: it stays at 0
            argv = traced(self.sys_fd, ["bash", "-c", "echo 1000 > /proc/self/oom_score_adj; exec bash"])
        self.observed = observe
        self.proc = subprocess.Popen(
            argv, cwd=cwd if os.path.isdir(cwd) else "/", env=env,
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            pass_fds=(status_w,) + ((self.sys_fd,) if observe else ()), start_new_session=True)
        if not observe:
            expendable(self.proc.pid)
        os.close(status_w)
        self.cwd, self.env = cwd, dict(env)  # what the server's own shell has now
        self.pending = b""
        self.folder = folder
        # the state (pwd and export -p: bash builtins, no extra process) comes from an EXIT trap, which keeps the
        # command's exit status
        q = {k: shlex.quote(os.path.join(folder, k)) for k in ("cmd", "in", "stdout", "stderr", "state")}
        run = ("( exec {fd}>&-; trap '{{ pwd; export -p; }} > {state} 2>/dev/null' EXIT; BASH_EXECUTION_STRING=$__c; "
               "unset __k __s __c __i; eval \"$BASH_EXECUTION_STRING\" ) <\"$__i\" >{stdout} 2>{stderr} & "
               "echo \"pid $!\" >&{fd}; wait $!; echo \"rc $?\" >&{fd}").format(fd=status_w, **q)
        self.send_raw("set -m; while IFS= read -r -d '' __k && { IFS= read -r -d '' __s; IFS= read -r -d '' __c; } "
                      "<%s; do eval \"$__s\"; __i=/dev/null; [ \"$__k\" = i ] && __i=%s; %s; done\n"
                      % (q["cmd"], q["in"], run))

    def alive(self):
        return self.proc.poll() is None

    def send_raw(self, code):
        self.proc.stdin.write(code.encode())
        self.proc.stdin.flush()

    def send(self, kind, sync, command):
        """One request for the loop: its kind on the server's stdin, the code in the ``cmd`` file.

        The file holds the code that brings the server to the terminal's state, then the command (bash reads a regular
        file in blocks but a pipe a byte at a time: 5 times slower for a long command; it cannot hold a NUL, so none
        is written).
        """
        with open(os.path.join(self.folder, "cmd"), "w") as f:
            f.write(sync.replace("\0", "") + "\0" + command.replace("\0", "") + "\0")
        self.send_raw(kind + "\0")

    def sync(self, cwd, env):
        """Bash code that brings the server's directory and environment to (cwd, env)."""
        code = ["unset %s" % k for k in self.env if k not in env]
        code += ["export %s=%s" % (k, shlex.quote(v)) for k, v in env.items() if self.env.get(k) != v]
        if cwd != self.cwd:
            code.append("cd -- %s" % shlex.quote(cwd))
        self.cwd, self.env = cwd, dict(env)
        return "".join(c + "\n" for c in code)

    def start(self, cwd, env, command, with_stdin):
        """Bring the server to (cwd, env) and fork the command's subshell; its stdin is the ``in`` file or /dev/null."""
        self.send("i" if with_stdin else "r", self.sync(cwd, env), command)

    def read_status(self):
        """The next status line ("pid N" / "rc N"), or None when the server died."""
        while b"\n" not in self.pending:
            chunk = os.read(self.status_r, 4096)
            if not chunk:
                return None
            self.pending += chunk
        line, self.pending = self.pending.split(b"\n", 1)
        return line.decode()

    def close(self):
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except OSError:
            pass
        self.proc.wait()
        try:
            self.proc.stdin.close()
        except OSError:  # a broken pipe while flushing: the shell is gone anyway
            pass
        os.close(self.status_r)
        if self.sys_fd is not None:
            os.close(self.sys_fd)

    def drain(self, into, restart=False):
        """Add what the observer wrote since the last call to the bytearray ``into``; ``restart``: empty the file.

        Past ``SYS_LIMIT`` the rest is dropped. A file, not a pipe: the observer never waits for room.
        """
        if self.sys_fd is not None:
            read_log(self.sys_fd, into, empty=restart)


def runtime_dir():
    """Where the harness keeps its files in the box.

    The user's runtime folder (``/run/user/UID``, a tmpfs of the user's own, as a login makes on any Linux system, so
    that nothing shows in /dev/shm or /tmp) if the box has one, else /dev/shm (tmpfs: cheaper to open than a disk),
    else the temp folder.
    """
    for path in ("/run/user/%d" % os.getuid(), "/dev/shm"):
        if os.access(path, os.W_OK):
            return path
    return tempfile.gettempdir()


def hidden_log(folder):
    """A file for the in-box observer's report that no path names, on a descriptor of 10 or more.

    Made in ``folder`` and unlinked at once (``traced`` closes the descriptor by number, in bash). Only this
    process and strace hold it, and neither is the agent's to reach: this one is not dumpable, strace's binary is
    execute-only (so it runs not dumpable), and strace opens its copy close-on-exec. An observer killed with this
    process takes the report with it: the step says its observation was lost.
    """
    fd, path = tempfile.mkstemp(dir=folder, prefix=".obs-")
    os.unlink(path)
    high = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)  # inherited only where it is passed (pass_fds)
    os.close(fd)
    return high


def traced(fd, argv):
    """``argv`` under strace, reporting to the ``hidden_log`` ``fd`` (given to strace, closed before ``argv`` runs)."""
    return [*STRACE, "-A", "-o", "/dev/fd/%d" % fd, "bash", "-c", 'exec %d>&-; exec "$@"' % fd, "bash", *argv]


def read_log(fd, into, empty=False):
    """Read ``fd`` from where it stands to its end into ``into``, at most ``SYS_LIMIT`` bytes kept.

    ``empty``: then empty the file, and read on from its start next time.
    """
    while True:
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            break
        into += chunk[:max(0, SYS_LIMIT + 1 - len(into))]
    if empty:
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)


def observer_works():
    """Whether strace can follow a command here (installed, and ptrace allowed in this box)."""
    try:
        return subprocess.run([*STRACE[:4], "-e", "trace=none", "true"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, timeout=10).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def observed_lines(raw, private):
    """The observer's report as lines, the box's own noise (system libraries, the executor's folder) left out."""
    lines = raw[:SYS_LIMIT].decode("utf-8", "replace").split("\n")
    if len(raw) > SYS_LIMIT:
        lines.pop()  # cut mid-line
    own = '"' + private  # its own files opened or written: the harness's calls
    return [line for line in lines if line and own not in line and not NOISE.match(line)]


def desktop_session(rows, named):
    """The pids of a desktop session's own processes: the screen, the browsers, the apps and their shells.

    That is, all of the driver's descendants but what the agent started from an app (the apps' grandchildren on).
    ``named``: {"root": the driver's pid, "apps": the apps' pids}, as the driver told riskgym over its own channel
    (no file in the box: the agent could write one).
    """
    kids = {}
    for pid, ppid, _ in rows:
        kids.setdefault(ppid, []).append(pid)
    apps = set(named.get("apps") or ())
    agents = descendants(kids, (g for app in apps for child in kids.get(app, []) for g in kids.get(child, [])))
    return descendants(kids, [named.get("root", -1)]) - agents


def descendants(kids, roots):
    """``roots`` and every process below them (``kids``: pid -> its children's pids)."""
    out, todo = set(), list(roots)
    while todo:
        pid = todo.pop()
        if pid not in out:
            out.add(pid)
            todo += kids.get(pid, [])
    return out


def spared_pids(keep):
    """The processes a reset in place spares: ``keep["pids"]``, and every descendant of ``keep["trees"]``.

    None when the first of ``keep["pids"]`` (the driver) is gone. ``keep`` comes from the desktop's driver over
    riskgym's own channel (never from a file in the box): the driver, the screen, the window manager, and the
    browser, whose processes are all its own (it starts no other program).
    """
    kids, alive = {}, set()
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open("/proc/%s/stat" % name) as f:
                    state, ppid = f.read().rsplit(")", 1)[1].split()[:2]
            except (OSError, ValueError, IndexError):
                continue
            kids.setdefault(int(ppid), []).append(int(name))
            if state != "Z":
                alive.add(int(name))
    pids = list(keep.get("pids") or ())
    if not pids or pids[0] not in alive:  # the driver is gone (the agent killed it?): nothing of its session stays
        return set()
    return set(pids) | descendants(kids, keep.get("trees") or ())


def under(pid, trees):
    """Whether ``pid`` is one of ``trees`` or descends from one, by its parents as /proc tells them now."""
    for _ in range(64):
        if pid in trees:
            return True
        try:
            with open("/proc/%d/stat" % pid) as f:
                pid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            return False
        if pid <= 1:
            return False
    return False


def alive(pid):
    """Whether process ``pid`` runs (a zombie does not)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def children_of(pid):
    """The child pids of ``pid`` (from /proc/PID/task/*/children)."""
    out = []
    try:
        for task in os.listdir("/proc/%d/task" % pid):
            with open("/proc/%d/task/%s/children" % (pid, task)) as f:
                out += f.read().split()
    except OSError:
        pass
    return out


def own_pids(uid):
    """The live (not zombie) processes of ``uid``."""
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/status" % name) as f:
                status = f.read()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        if int(fields.get("Uid", "-1 0").split()[0]) == uid and not fields.get("State", "").strip().startswith("Z"):
            out.append(int(name))
    return out


def empty_dir(path, spare=()):
    """Delete everything inside ``path`` but the paths in ``spare``; return what could not be deleted.

    Symlinks are never followed. This user's own folders are made writable first. Iterative, not recursive: a tree
    thousands of folders deep (an agent can make one) must not exhaust Python's stack.
    """
    problems = []
    try:
        if os.stat(path).st_uid == os.getuid():
            os.chmod(path, 0o700 | os.stat(path).st_mode & 0o7777)
    except OSError:
        pass
    order, folders, stack = [], set(), [path]
    while stack:  # parents before their children
        folder = stack.pop()
        try:
            names = os.listdir(folder)
        except OSError:
            continue
        for name in names:
            full = os.path.join(folder, name)
            if full in spare:
                continue
            order.append(full)
            if os.path.isdir(full) and not os.path.islink(full):
                folders.add(full)
                try:  # open up this user's folder so that it can be listed and emptied
                    os.chmod(full, 0o700)
                except OSError:
                    pass
                stack.append(full)
    for full in reversed(order):  # children before their parents
        try:
            if full in folders:
                os.rmdir(full)
            else:
                os.unlink(full)
        except OSError as exc:
            problems.append("%s: %s" % (full, exc.strerror))
    return problems


def peek(data, needles, depth=0):
    """The needles found in ``data``: as they are, decoded from base64, or inside gzip/bz2/xz, tar and zip."""
    import bz2
    import gzip
    import io
    import lzma
    import tarfile
    import zipfile

    found = {n for n in needles if n.encode() in data}
    if depth > 2 or len(found) == len(needles):
        return found
    inner = []
    try:
        if data[:2] == b"\x1f\x8b":
            inner.append(gzip.decompress(data)[:PEEK_LIMIT])
        elif data[:3] == b"BZh":
            inner.append(bz2.decompress(data)[:PEEK_LIMIT])
        elif data[:6] == b"\xfd7zXZ\x00":
            inner.append(lzma.decompress(data)[:PEEK_LIMIT])
        elif data[:4] == b"PK\x03\x04":
            with zipfile.ZipFile(io.BytesIO(data)) as z:
                inner += [z.read(i)[:PEEK_LIMIT] for i in z.infolist()[:1000] if not i.is_dir()]
        elif len(data) > 512 and data[257:262] == b"ustar":
            with tarfile.open(fileobj=io.BytesIO(data)) as t:
                inner += [t.extractfile(m).read(PEEK_LIMIT) for m in t.getmembers()[:1000] if m.isfile()]
        elif re.fullmatch(rb"[A-Za-z0-9+/=\s]{16,}", data[:PEEK_LIMIT]):
            inner.append(base64.b64decode(re.sub(rb"\s", b"", data) + b"==", validate=False))
    except Exception:  # a damaged archive, not base64 after all: nothing more in it
        pass
    for blob in inner:
        found |= peek(blob, [n for n in needles if n not in found], depth + 1)
    return found


def stat_tree(paths, text_limit, skip=None, needles=()):
    """Path -> state (type, mode, size, uid, gid, sha256, text, target) of everything under ``paths``.

    Symlinks are never followed; ``skip`` (the executor's own folder) is left out. This user's own entries that
    it may not read are opened up for that moment and set back; another user's file that it cannot read, and any file
    over ``HASH_LIMIT``, gets a stand-in hash of its size and modification time.
    """
    import hashlib
    import stat as st

    out = {}

    def one(full):
        try:
            info = os.lstat(full)
        except OSError:
            return
        kind = ("file" if st.S_ISREG(info.st_mode) else "dir" if st.S_ISDIR(info.st_mode) else
                "symlink" if st.S_ISLNK(info.st_mode) else "other")
        state = {"type": kind, "mode": st.S_IMODE(info.st_mode), "size": info.st_size if kind == "file" else 0,
                 "uid": info.st_uid, "gid": info.st_gid}
        if kind == "symlink":
            state["target"] = os.readlink(full)
        elif kind == "file" and info.st_size > HASH_LIMIT:
            state["sha256"] = "large:%d:%d" % (info.st_size, info.st_mtime_ns)
        elif kind == "file":
            try:
                digest, head, tail, found = hashlib.sha256(), b"", b"", set()
                whole = needles and info.st_size <= PEEK_LIMIT
                keep = PEEK_LIMIT if whole else text_limit
                with opened(full, lambda: open(full, "rb")) as f:
                    for chunk in iter(lambda: f.read(1 << 20), b""):
                        digest.update(chunk)
                        if len(head) <= keep:
                            head += chunk
                        elif needles:  # a large file: its bytes, searched a chunk at a time
                            found |= {n for n in needles if n.encode() in (tail or head)[-4096:] + chunk}
                            tail = chunk
                state["sha256"] = digest.hexdigest()
                if needles:
                    found |= peek(head, needles) if whole else {n for n in needles if n.encode() in head}
                    state["found"] = sorted(found)
                if info.st_size <= text_limit:
                    try:
                        state["text"] = head.decode("utf-8")
                    except UnicodeDecodeError:
                        pass
            except OSError:
                state["sha256"] = "unreadable:%d:%d" % (info.st_size, info.st_mtime_ns)
        out[full] = state

    def opened(full, need):
        """Run ``need()``; if this user's own entry forbids it, open the mode up for that moment and put it back."""
        try:
            return need()
        except PermissionError:
            info = os.lstat(full)
            if info.st_uid != os.getuid():
                raise
            os.chmod(full, st.S_IMODE(info.st_mode) | 0o700)
            try:
                return need()
            finally:
                os.chmod(full, st.S_IMODE(info.st_mode))

    stack = [(p, None) for p in reversed(paths)]
    while stack:  # iterative: a tree thousands of folders deep must not exhaust Python's stack
        full, restore = stack.pop()
        if restore is not None:  # this user's closed folder, opened for the walk: set back
            try:
                os.chmod(full, restore)
            except OSError:
                pass
            continue
        if full == skip:
            continue
        one(full)
        if not os.path.isdir(full) or os.path.islink(full):
            continue
        try:
            info = os.lstat(full)
            mode = st.S_IMODE(info.st_mode)
            if info.st_uid == os.getuid() and mode & 0o500 != 0o500:  # this user's folder that it may not enter
                os.chmod(full, mode | 0o700)
                stack.append((full, mode))
            stack += [(os.path.join(full, name), None) for name in sorted(os.listdir(full), reverse=True)]
        except OSError:
            pass
    return out


def copy_tree(src, dst):
    """Copy the files under ``src`` into ``dst`` (modes kept; owned by this user)."""
    problems = []
    for root, _dirs, files in os.walk(src):
        target = os.path.join(dst, os.path.relpath(root, src))
        try:
            os.makedirs(target, exist_ok=True)
            for name in files:
                with open(os.path.join(root, name), "rb") as f, open(os.path.join(target, name), "wb") as g:
                    g.write(f.read())
                os.chmod(os.path.join(target, name), os.stat(os.path.join(root, name)).st_mode & 0o7777)
        except OSError as exc:
            problems.append("%s: %s" % (target, exc.strerror))
    return problems


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

    def processes(self, session=None, gone=()):
        """The box's processes (command lines) and each one's parent (an index, -1 for none), riskgym's own left out.

        ``session``: a desktop's, left out too ({"root", "apps"}: see ``desktop_session``). A zombie is not running.
        ``gone``: processes the agent killed: their end is waited for (2 s at most), so that whether one is still
        listed does not depend on how fast the kernel ended it.
        """
        deadline = time.monotonic() + 2
        while gone and time.monotonic() < deadline and any(alive(pid) for pid in gone):
            time.sleep(0.01)
        mine = {os.getpid(), 1}
        if self.shell is not None:
            mine.add(self.shell.proc.pid)
            if self.shell.observed:  # the observer's child: the shell server itself
                mine.update(int(p) for p in children_of(self.shell.proc.pid))
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
