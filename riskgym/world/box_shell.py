"""The box's shell server: one long-lived bash that forks a subshell per command (part of the executor).

Run inside the container beside :mod:`riskgym.world.executor` (loaded as a module of its own); the standard
library only, any Python >= 3.7.
"""

import os
import re
import shlex
import signal
import subprocess

try:  # on the host, a package; in the container, the executor's loader has put it in sys.modules
    from riskgym.world.box_observe import hidden_log, read_log, traced
except ImportError:  # pragma: no cover - the container's path
    from box_observe import hidden_log, read_log, traced  # type: ignore[no-redef]


EXPORT_RE = re.compile(r'^declare -x ([A-Za-z_][A-Za-z0-9_]*)(?:="((?:[^"\\]|\\.)*)"|=\$\'((?:[^\'\\]|\\.)*)\')?$',
                       re.M | re.S)


ANSI_C = {"n": "\n", "t": "\t", "r": "\r", "a": "\a", "b": "\b", "f": "\f", "v": "\v", "e": "\x1b", "E": "\x1b"}


DROP_ENV = ("_", "SHLVL", "PWD", "OLDPWD")


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
