"""Reading the observer's report: strace's lines (``-f -y``) into an :class:`Observation` of effects and processes.

Paths are made absolute from what strace shows: ``-y`` prints each descriptor's path (``7</home/agent/photos>``,
``AT_FDCWD</home/agent>``), and a relative path of an old-style call (``rename("a", "b")``) is resolved against the
process's working directory, followed through ``chdir`` and inherited over ``clone``. A :class:`Reader` keeps that
state (working directories, which pid is which program) from one command to the next, as the box does.

>>> r = Reader()
>>> obs = r.read({"sys": ['7 unlinkat(3</home/agent/photos>, "a.jpg", 0) = 0',
...                       '7 unlink("/etc/passwd") = -1 EROFS (Read-only file system)'], "root": 7}, "/home/agent")
>>> [str(e) for e in obs.effects]
['delete /home/agent/photos/a.jpg', 'delete /etc/passwd (refused: EROFS)']
"""

from __future__ import annotations

import posixpath
import re
from typing import Any

from riskgym.core.observation import Observation, Observed, Proc
from riskgym.world.kernel.paths import Paths

LINE = re.compile(r"^(\d+) +(.*)$")
FORKS = ("clone", "clone3", "fork", "vfork")
CALL = re.compile(r"^(\w+)\((.*)\) += (.*)$", re.S)
FD = re.compile(r"^(?:-?\d+|AT_FDCWD)<(.*)>$", re.S)
PIPE = re.compile(r"^pipe:\[(\d+)\]$")
ADDR4 = re.compile(r'sin_port=htons\((\d+)\), sin_addr=inet_addr\("([^"]+)"\)')
ADDR6 = re.compile(r'sin6_port=htons\((\d+)\).*?inet_pton\(AF_INET6, "([^"]+)"')
ESCAPE = re.compile(rb"\\(x[0-9a-fA-F]{2}|[0-7]{1,3}|.)")
C_ESCAPES = {b"n": b"\n", b"t": b"\t", b"r": b"\r", b"v": b"\v", b"f": b"\f", b"a": b"\a", b"b": b"\b"}
WRITE_FLAGS = ("O_WRONLY", "O_RDWR", "O_CREAT", "O_TRUNC", "O_APPEND")
SYSTEM = ("/proc/", "/sys/", "/usr/lib", "/usr/share/", "/lib", "/etc/ld.so", "/etc/nsswitch.conf", "/etc/passwd",
          "/etc/group", "/etc/localtime")
"""Files every program reads (libraries, /proc, the user database): their reads are left out."""
QUIET_SIGNALS = ("0", "SIGCHLD", "SIGCONT", "SIGWINCH")
"""Signals that harm nothing (``kill -0`` probes whether a process lives)."""


def split_args(text: str) -> list[str]:
    """Strace's argument list split at its top-level commas (quotes, brackets and braces respected)."""
    out, depth, quoted, start, i = [], 0, False, 0, 0
    while i < len(text):
        c = text[i]
        if quoted:
            if c == "\\":
                i += 1
            elif c == '"':
                quoted = False
        elif c == '"':
            quoted = True
        elif c in "([{<":
            depth += 1
        elif c in ")]}>":
            depth -= 1
        elif c == "," and depth == 0:
            out.append(text[start:i].strip())
            start = i + 1
        i += 1
    tail = text[start:].strip()
    return [*out, tail] if tail else out


def unquote(arg: str) -> str:
    r"""A C string as strace prints it (``"a\\nb"``, maybe cut: ``"abc"...``), decoded."""
    arg = arg.removesuffix("...")
    if len(arg) < 2 or arg[0] != '"' or arg[-1] != '"':
        return arg
    body = arg[1:-1].encode("utf-8", "surrogateescape")

    def one(m: re.Match[bytes]) -> bytes:
        esc = m.group(1)
        if esc[:1] == b"x":
            return bytes([int(esc[1:], 16)])
        if esc[:1].isdigit():
            return bytes([int(esc, 8) & 0xFF])
        return C_ESCAPES.get(esc, esc)

    return ESCAPE.sub(one, body).decode("utf-8", "replace")


def forked(ret: str) -> int | None:
    """The new process's pid from a fork's result (``12``), or None when it failed or is unknown."""
    first = (ret.split() or [""])[0]
    return int(first) if first.isdigit() else None


def fd_path(arg: str) -> str | None:
    """The path strace shows for a descriptor (``3</x>`` -> ``/x``), or None."""
    m = FD.match(arg.strip())
    return m.group(1).removesuffix(" (deleted)") if m else None


def strings(arg: str) -> list[str]:
    """The strings of an argv array as strace prints it (``["rm", "-rf", "x"]``)."""
    return [unquote(a) for a in split_args(arg.strip()[1:-1])] if arg.startswith("[") else []


class Reader:
    """Turns one command's report after another into Observations, keeping what the box keeps between them."""

    def __init__(self) -> None:
        self.cwd: dict[int, str] = {}
        self.argv: dict[int, list[str]] = {}
        self.alias: dict[int, int] = {}  # a thread -> its process
        self.agent: set[int] = set()  # the agent's processes: each command's own, what they start, and so on
        self.paths = Paths(None, {})  # the symlinks the box's calls made: a path through one is where it leads

    def reset(self) -> None:
        """Forget everything (the box was reset)."""
        self.__init__()  # type: ignore[misc]

    def read(self, seen: dict[str, Any], cwd: str) -> Observation:
        """The Observation of one command: ``seen`` is the executor's report, ``cwd`` where the command started."""
        self.effects: list[Observed] = []
        self.procs: dict[int, Proc] = {}
        self.names = {int(k): v for k, v in (seen.get("pids") or {}).items()}
        self.start_cwd = cwd
        self.private = (seen.get("private") or "/dev/shm/.term").rstrip("/") + "/"
        lost = seen.get("observer") == "lost"
        calls = self._calls(seen.get("sys") or [], lost)
        forks = [(pid, child) for pid, name, _, ret in calls if name in FORKS and (child := forked(ret)) is not None]
        root = seen.get("root")
        parents = set(seen.get("parents") or ())
        """Processes whose children are the agent's, not themselves (a desktop's terminal: the shell in it)."""
        if root is None and forks and not parents:  # read back after the executor died: the shell server's first fork
            root = forks[0][1]
        if root is not None:
            self.agent.add(root)
        grew = True
        while grew:  # the agent's processes, whatever order the lines came in (a vfork's child speaks first)
            new = {child for parent, child in forks if parent in self.agent or parent in parents} - self.agent
            self.agent |= new
            grew = bool(new)
        for parent, child in forks:  # the agent's first processes start where their parent app is
            if parent in parents:
                self.cwd.setdefault(child, self.cwd.get(parent) or cwd)
        for pid, name, args, ret in calls:
            if pid in self.agent:  # the shell server's own calls (it forks each command) are not the agent's
                self._call(pid, name, args, ret)
            if ret.split(" ")[0] == "0":  # the box's links as its calls change them (the harness's too)
                self._relink(pid, name, args + [""] * 4)
        return Observation(observer=seen.get("observer", "strace"), root=root, cut=bool(seen.get("sys_cut")),
                           processes=list(self.procs.values()), effects=self.effects)

    def _calls(self, lines: list[str], lost: bool) -> list[tuple[int, str, list[str], str]]:
        """The report's calls as (pid, name, arguments, result), a call split by another's joined back."""
        out = []
        pending: dict[int, str] = {}
        for n, line in enumerate(lines):
            m = LINE.match(line)
            if not m:
                continue
            pid, rest = int(m.group(1)), m.group(2)
            if rest.endswith("<unfinished ...>"):
                pending[pid] = rest.removesuffix("<unfinished ...>").rstrip()
                continue
            if rest.startswith("<... "):
                head = pending.pop(pid, None)
                if head is None:
                    continue
                rest = head + rest.split("resumed>", 1)[-1]
            call = CALL.match(rest)
            if call is None and lost and n == len(lines) - 1:  # the call during which the observer was killed
                call = CALL.match(rest + ") = ?")
            if call:
                name, args = call.group(1), split_args(call.group(2))
                if name in FORKS and "CLONE_THREAD" in call.group(2) and (thread := forked(call.group(3))) is not None:
                    self.alias[thread] = self.alias.get(pid, pid)
                    continue
                out.append((self.alias.get(pid, pid), name, args, call.group(3)))
        return out

    def _path(self, pid: int, path: str, dirfd: str | None = None) -> str:
        """An argument's path, absolute, through the symlinks the box's calls made.

        The last component is not followed: a delete through a link into a folder deletes in that folder; a delete
        of the link deletes the link.
        """
        path = unquote(path)
        if not path.startswith("/"):
            path = posixpath.join((fd_path(dirfd) if dirfd else None) or self.cwd.get(pid) or self.start_cwd, path)
        return self.paths.resolve(path, follow=False)[0]

    def _relink(self, pid: int, name: str, a: list[str]) -> None:
        if name in ("symlink", "symlinkat"):
            at = name == "symlinkat"
            self.paths.made(self._path(pid, a[2], a[1]) if at else self._path(pid, a[1]), unquote(a[0]))
        elif name in ("unlink", "rmdir", "rename"):
            self.paths.changed(self._path(pid, a[0]), self._path(pid, a[1]) if name == "rename" else "")
        elif name in ("unlinkat", "renameat", "renameat2"):
            self.paths.changed(self._path(pid, a[1], a[0]), self._path(pid, a[3], a[2]) if name != "unlinkat" else "")

    def _add(self, pid: int, call: str, kind: str, target: str, ret: str, detail: str = "") -> None:
        if target.startswith("/dev/") and not target.startswith("/dev/shm/"):
            return  # /dev/null, the terminal: no data kept there
        if kind == "read" and target.startswith(SYSTEM):
            return  # every program reads these
        if target.startswith(self.private):
            return  # the executor's own files (a command's output FIFOs)
        error = ret.split()[1] if ret.startswith("-1 ") and len(ret.split()) > 1 else ""
        if error == "EINPROGRESS":
            error = ""  # a non-blocking connect (curl's) is under way, not refused
        self.effects.append(Observed(pid=pid, call=call, kind=kind, target=target, detail=detail, error=error))

    def _call(self, pid: int, name: str, args: list[str], ret: str) -> None:
        a = args + [""] * 5
        if name in ("openat", "open", "openat2", "creat"):
            at = name in ("openat", "openat2")
            path, flags = (a[1], a[2]) if at else (a[0], "O_CREAT|O_WRONLY|O_TRUNC" if name == "creat" else a[1])
            if "O_DIRECTORY" in flags:
                return
            writes = any(f in flags for f in WRITE_FLAGS)
            shown = fd_path(ret.split(" ")[0]) if not ret.startswith("-1") else None
            if shown and PIPE.match(shown):
                self._add(pid, name, "pipe", shown, ret, "out" if writes else "in")
            elif not (ret.startswith("-1 ENOENT") and not writes):  # a lookup that found nothing read nothing
                target = shown if shown and shown.startswith("/") else self._path(pid, path, a[0] if at else None)
                self._add(pid, name, "write" if writes else "read", target, ret)
        elif name in ("unlink", "rmdir"):
            self._add(pid, name, "delete", self._path(pid, a[0]), ret)
        elif name == "unlinkat":
            self._add(pid, name, "delete", self._path(pid, a[1], a[0]), ret)
        elif name == "rename":
            self._add(pid, name, "move", self._path(pid, a[0]), ret, "-> " + self._path(pid, a[1]))
        elif name in ("renameat", "renameat2"):
            self._add(pid, name, "move", self._path(pid, a[1], a[0]), ret, "-> " + self._path(pid, a[3], a[2]))
        elif name in ("link", "symlink"):
            self._add(pid, name, "write", self._path(pid, a[1]), ret, f"{name} of {unquote(a[0])}")
        elif name == "linkat":
            self._add(pid, name, "write", self._path(pid, a[3], a[2]), ret, "link of " + self._path(pid, a[1], a[0]))
        elif name == "symlinkat":
            self._add(pid, name, "write", self._path(pid, a[2], a[1]), ret, "symlink of " + unquote(a[0]))
        elif name in ("mkdir", "mknod", "mkdirat", "mknodat"):
            if ret.startswith("-1 EEXIST"):
                return  # there already (``mkdir -p`` walks the path): nothing was to change
            at = name.endswith("at")
            self._add(pid, name, "write", self._path(pid, a[1], a[0]) if at else self._path(pid, a[0]), ret,
                      name.removesuffix("at"))
        elif name in ("truncate", "ftruncate"):
            target = self._path(pid, a[0]) if name == "truncate" else fd_path(a[0]) or a[0]
            self._add(pid, name, "write", target, ret, "truncate")
        elif name in ("chmod", "fchmod", "fchmodat"):
            target, mode = ((self._path(pid, a[1], a[0]), a[2]) if name == "fchmodat" else
                            (self._path(pid, a[0]), a[1]) if name == "chmod" else (fd_path(a[0]) or a[0], a[1]))
            self._add(pid, name, "chmod", target, ret, mode)
        elif name in ("chown", "lchown", "fchown", "fchownat"):
            target, rest = ((self._path(pid, a[1], a[0]), a[2:4]) if name == "fchownat" else
                            (fd_path(a[0]) or a[0], a[1:3]) if name == "fchown" else (self._path(pid, a[0]), a[1:3]))
            self._add(pid, name, "chown", target, ret, ":".join(rest))
        elif name in ("kill", "tkill", "tgkill"):
            who, sig = (a[1], a[2]) if name == "tgkill" else (a[0], a[1])
            if sig in QUIET_SIGNALS or (name != "kill" and int(who or 0) in (pid, self.alias.get(int(who or 0)))):
                return
            n = int(who or 0)
            target = who if n <= 0 else self.names.get(n) or " ".join(self.argv.get(n, [])) or who
            self._add(pid, name, "kill", target, ret, f"{sig} pid {who}")
        elif name in ("connect", "sendto", "sendmsg"):
            addr = ADDR4.search(",".join(args)) or ADDR6.search(",".join(args))
            if addr:
                self._add(pid, name, "network", f"{addr.group(2)}:{addr.group(1)}", ret)
        elif name in ("execve", "execveat"):
            path, argv = (self._path(pid, a[1], a[0]), a[2]) if name == "execveat" else (self._path(pid, a[0]), a[1])
            if ret.startswith("-1 ENOENT"):
                return  # a PATH lookup that missed
            words = strings(argv)
            if not ret.startswith("-1"):
                self.argv[pid] = words
                parent = self.procs[pid].parent if pid in self.procs else None
                self.procs[pid] = Proc(pid=pid, parent=parent, argv=words)
            self._add(pid, name, "exec", path, ret, " ".join(words))
        elif name in FORKS:
            child = forked(ret)
            if child is None:
                if ret.startswith("-1 E"):  # refused: the process limit (EAGAIN), memory
                    self._add(pid, name, "spawn", "", ret)
                return
            self.cwd.setdefault(child, self.cwd.get(pid) or self.start_cwd)
            if child in self.procs:  # it spoke first (a vfork's child runs before its parent returns)
                self.procs[child] = self.procs[child].model_copy(update={"parent": pid})
            else:
                self.argv[child] = self.argv.get(pid, [])
                self.procs[child] = Proc(pid=child, parent=pid, argv=self.argv[child])
        elif name in ("dup2", "dup3"):
            shown = fd_path(a[0])
            if shown and PIPE.match(shown) and a[1].split("<")[0] in ("0", "1", "2") and not ret.startswith("-1"):
                self._add(pid, name, "pipe", shown, ret, "in" if a[1].startswith("0") else "out")
        elif name in ("pipe", "pipe2"):
            shown = fd_path(split_args(a[0].strip("[]"))[0]) if a[0].startswith("[") else None
            if shown:
                self._add(pid, name, "pipe", shown, ret, "made")
        elif name == "chdir" and not ret.startswith("-1"):
            self.cwd[pid] = self._path(pid, a[0])
        elif name == "fchdir" and not ret.startswith("-1"):
            self.cwd[pid] = fd_path(a[0]) or self.cwd.get(pid, self.start_cwd)
