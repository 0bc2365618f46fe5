"""The host observer's lines for one box, read into an :class:`Observation` per command.

Whose a process is comes from the kernel's own record of who started whom, never from anything in the box:

- a process started into the box from outside it (``docker exec``: the executor, a set-up command as root) and
  every process there before the box was watched is the harness's;
- the executor's children are the harness's too (its shell server, the files it reads and writes for the host);
- what the shell server starts while one of the agent's commands runs is that command's: the agent's, and so is
  everything it starts in turn, whenever it acts (a job left in the background is still its command's);
- a process nobody saw start (the kernel dropped events) is counted the agent's, and the step says what is missing.

Paths are made absolute on the host: relative ones against the process's working directory (followed through
``chdir`` and ``fchdir`` and inherited over ``fork``), ``*at`` calls against the directory their descriptor was
opened on (descriptors followed through ``open``, ``dup``, ``fcntl`` and ``exec``), and symlinks read in
the box's own filesystem (``/proc/PID/root``, one component at a time, so that an absolute link stays in the box),
``/proc/self/root``, ``/proc/self/cwd`` and ``/proc/self/fd/N`` included.
"""

from __future__ import annotations

import dataclasses
import errno as errnos
import os
import posixpath
import re
import signal

from riskgym.core.observation import Observation, Observed, Proc
from riskgym.world.kernel.paths import Paths, Process, records, u32
from riskgym.world.kernel.script import CLONE_THREAD, NAMES, REFUSED_CALLS
from riskgym.world.seccomp import NAMESPACE_FLAGS

SYSTEM = ("/usr/lib", "/usr/share/", "/lib", "/etc/ld.so", "/etc/nsswitch.conf", "/etc/passwd", "/etc/group",
          "/etc/localtime", "/proc/", "/sys/", "/dev/")
"""Files every program reads (libraries, the user database): their reads are left out."""
WRITE_FLAGS = 0o1 | 0o2 | 0o100 | 0o1000 | 0o2000
"""O_WRONLY, O_RDWR, O_CREAT, O_TRUNC, O_APPEND."""
O_DIRECTORY, O_CLOEXEC, O_CREAT, AT_FDCWD = 0o200000, 0o2000000, 0o100, -100
QUIET = (0, signal.SIGCHLD, signal.SIGCONT, signal.SIGWINCH)
CUT = 199
REFUSED_NAMES = frozenset(REFUSED_CALLS.values()) - {"clone"}
PIDFD = re.compile(r"^(?:pidfd:|/proc/)(\d+)$")
"""A descriptor that names a process: from ``pidfd_open``, or a folder of /proc opened."""
NEW_NAMESPACES = sum(NAMESPACE_FLAGS)


@dataclasses.dataclass(slots=True)
class Call:
    """A call in flight: its numbers from the E line, its strings and address from the lines after it."""

    ts: int
    pid: int
    tid: int
    nspid: int
    name: str
    args: list[int]
    strings: dict[int, str] = dataclasses.field(default_factory=dict)
    address: str = ""
    flags: int | None = None
    port: int = 0
    """A connect's or send's socket's own port, read when the call ended (0: not one, or not known)."""


class KernelReader:
    """One box's processes, descriptors and directories, kept from its first watched line to its removal."""

    def __init__(self, root: int, level: int = 1, private: str = "/dev/shm/.term") -> None:
        self.root = root
        """A host pid whose ``/proc/PID/root`` is the box's filesystem (its first process)."""
        self.level = level
        """The depth of the box's pid namespace: a process less deep is entering the box from outside (runc)."""
        self.private = private.rstrip("/")
        self.procs: dict[int, Process] = {}
        self.calls: dict[int, Call] = {}
        self.pipes = 0
        self.paths = Paths(root, self.procs)
        self.window: tuple[int, int] | None = None
        self.lost = 0
        self._start()

    def _start(self) -> None:
        """Every process in the box now is the harness's (the box was just made, or reset)."""
        for pid in [pid for pid, p in self.procs.items() if p.role == "agent"]:
            del self.procs[pid]  # in place: the paths' resolver holds this dict

    def forget_agent(self) -> None:
        """The box was reset in place: the agent's processes are gone."""
        self._start()
        self.calls.clear()
        self.lost = 0

    # -- reading --------------------------------------------------------------------------------------------

    def read(self, lines: list[list[str]], lost: int, window: tuple[int, int] | None) -> Observation:
        """The agent's calls among ``lines`` (one take of the feed); ``window``: the command's (start, end) times."""
        self.window = window
        self.effects: list[Observed] = []
        self.new: list[Proc] = []
        self.gaps: list[str] = [f"{lost} events dropped by the kernel's buffer"] if lost else []
        self.lost += lost
        self.root_pid: int | None = None
        self.root_host: int | None = None
        self.paths.seen.clear()  # what the box's filesystem said is read anew for each read
        for rec in records(lines):
            self._record(rec)
        return Observation(observer="kernel", root=self.root_pid, processes=self.new, effects=self.effects,
                           lost=lost, gaps=sorted(set(self.gaps)))

    def _record(self, rec: list[list[str]]) -> None:
        head, tail = rec[0], rec[1:]
        tag = head[0]
        if tag == "N":
            pid = int(head[3])
            if pid in self.procs and self.procs[pid].nspid != int(head[8]):
                self._fix_nspid(pid, int(head[8]))
            self._newtask(int(head[1]), pid, int(head[5]), int(head[6]), int(head[7]))
        elif tag == "Q":  # the process ended: its entry stays (a kill's target is named after it)
            gone = self.procs.get(int(head[3]))
            if gone is not None:
                gone.ended = True
        elif tag == "C":
            if self._role(int(head[3]), 0) == "agent":
                self.gaps.append(f"a 32-bit system call ({head[5]}) by pid {head[3]}: not read")
        elif tag in "EF":  # a call began (F: one read by its numbers alone, written when it ended)
            pid = int(head[3])
            call = Call(int(head[1]), pid, int(head[4]), int(head[5]), NAMES.get(int(head[7]), head[7]),
                        [int(a) for a in head[8:12]])
            if pid not in self.procs:
                self._unseen(pid, call.nspid, int(head[6]))
            if self.procs[pid].nspid != call.nspid:
                self._fix_nspid(pid, call.nspid)
            if tag == "F":
                self._ended(call, int(head[12]), [int(x) for x in tail[0][3:5]] if tail and tail[0][0] == "Y" else [])
                return
            for line in tail:
                if line[0] == "P":
                    call.strings[int(line[3])] = line[4] if len(line) > 4 else ""
                elif line[0] == "A" and int(line[3]) in (2, 10):
                    call.address = f"[{line[5]}]:{line[4]}" if int(line[3]) == 10 else f"{line[5]}:{line[4]}"
                elif line[0] == "H":
                    call.flags = int(line[3])
            self.calls[call.tid] = call
        elif tag == "X":
            ended = self.calls.pop(int(head[3]), None)
            if ended is not None:
                call = ended  # (paths read only now: their pages were not in memory when it began)
                call.port = int(head[6]) if len(head) > 6 else 0
                call.strings.update({int(line[3]): line[4] if len(line) > 4 else "" for line in tail if line[0] == "P"})
                self._ended(call, int(head[5]), [])

    def _unseen(self, pid: int, nspid: int, level: int) -> None:
        """A process seen acting that nobody saw start.

        One entering the box from outside (``runc``), started into it from outside (``docker exec``), or one whose
        start the kernel dropped.
        """
        if level < self.level:
            self.procs[pid] = Process(nspid, None, "entry")
        elif self.lost:
            self.procs[pid] = Process(nspid, None, "agent", cwd=self._live_cwd(pid), umask=self._live_umask(pid))
            self.gaps.append(f"pid {nspid} acted, and the observer did not see it start")
            self.new.append(Proc(pid=nspid))
        else:
            self.procs[pid] = Process(nspid, None, "exec", cwd=self._live_cwd(pid), umask=self._live_umask(pid))

    @staticmethod
    def _live_umask(pid: int) -> int:
        try:
            with open(f"/proc/{pid}/status") as f:
                return next((int(line.split()[1], 8) for line in f if line.startswith("Umask:")), 0o022)
        except (OSError, ValueError, IndexError):
            return 0o022

    def _live_cwd(self, pid: int) -> str:
        try:
            return os.readlink(f"/proc/{pid}/cwd")
        except OSError:
            return "/"

    def _role(self, pid: int, nspid: int) -> str:
        proc = self.procs.get(pid)
        if proc is None:
            self._unseen(pid, nspid, self.level)
            proc = self.procs[pid]
        return proc.role

    def _newtask(self, ts: int, parent_pid: int, child: int, flags: int, level: int) -> None:
        if flags & CLONE_THREAD:
            return
        parent = self.procs.get(parent_pid)
        if parent is None:
            self._unseen(parent_pid, 0, level)
            parent = self.procs[parent_pid]
        in_window = self.window is not None and self.window[0] <= ts <= self.window[1]
        roles = {"entry": "exec", "exec": "server" if in_window else "harness", "server": "agent", "agent": "agent"}
        role = roles.get(parent.role, "harness")
        self.procs[child] = Process(0, parent_pid, role, parent.cwd, dict(parent.fds), set(parent.cloexec),
                                    set(parent.writes), list(parent.argv), parent.umask, parent.pgid)
        if role == "agent" and parent.role == "server":  # a command's own process: the step's root, not a Proc
            if self.root_pid is None:
                self.root_pid, self.root_host = -child, child  # its namespace pid is known at its first call
        elif role == "agent":
            self._pending_proc(child, parent)

    def _pending_proc(self, child: int, parent: Process) -> None:
        self.new.append(Proc(pid=-child, parent=parent.nspid if parent.role == "agent" else None,
                             argv=parent.argv))

    # -- one call --------------------------------------------------------------------------------------------

    def _ended(self, call: Call, ret: int, fds: list[int]) -> None:
        proc = self.procs[call.pid]
        a = call.args
        name = call.name
        error = errnos.errorcode.get(-ret, str(ret)) if ret < 0 else ""
        agent = proc.role == "agent"
        if not error:
            self._relink(call, a)
        if name in ("open", "openat", "openat2", "creat"):
            at = name != "open" and name != "creat"
            flags = (call.flags if name == "openat2" else u32(a[2 if at else 1])) if name != "creat" else 0o1101
            flags = flags or 0
            path = self._path(call, 1 if at else 0, a[0] if at else AT_FDCWD, follow=True)
            if ret >= 0 and path:
                proc.fds[ret] = path
                (proc.cloexec.add if flags & O_CLOEXEC else proc.cloexec.discard)(ret)
                (proc.writes.add if flags & WRITE_FLAGS else proc.writes.discard)(ret)
            if not agent or flags & O_DIRECTORY or not path:
                return
            writes = bool(flags & WRITE_FLAGS)
            if error == "ENOENT" and not writes:
                return  # a lookup that found nothing read nothing
            if not writes and path.startswith(SYSTEM):
                return
            if call.pid == self.root_host and path in self._own_files():
                return  # the harness's redirections of the command's own input and output
            self._add(call, "write" if writes else "read", path, error)
            if flags & O_CREAT and not error:
                self._made(call, proc, path, u32(a[3 if at else 2]) if name != "creat" else u32(a[1]))
        elif name in ("dup", "dup2", "dup3") or (name == "fcntl" and u32(a[1]) in (0, 1030)):
            if ret >= 0 and u32(a[0]) in proc.fds:
                proc.fds[ret] = proc.fds[u32(a[0])]
                cloexec = (name == "dup3" and u32(a[2]) & O_CLOEXEC) or (name == "fcntl" and a[1] == 1030)
                (proc.cloexec.add if cloexec else proc.cloexec.discard)(ret)
                (proc.writes.add if u32(a[0]) in proc.writes else proc.writes.discard)(ret)
                if agent and proc.fds[ret].startswith("pipe:") and ret in (0, 1, 2) and name != "fcntl":
                    self._add(call, "pipe", proc.fds[ret], "", "in" if ret == 0 else "out")
        elif name in ("pipe", "pipe2") and len(fds) == 2 and not error:
            self.pipes += 1
            made = f"pipe:{call.tid}.{self.pipes}"
            for fd in fds:
                proc.fds[fd] = made
                proc.writes.discard(fd)
                (proc.cloexec.add if name == "pipe2" and u32(a[1]) & O_CLOEXEC else proc.cloexec.discard)(fd)
            if agent:
                self._add(call, "pipe", made, "", "made")
        elif name == "umask":
            proc.umask = u32(a[0]) & 0o777
        elif name == "pidfd_open" and ret >= 0:
            proc.fds[ret] = f"pidfd:{u32(a[0])}"
        elif name == "setsid" and ret >= 0:
            proc.pgid = proc.nspid
        elif name == "setpgid" and not error:  # (pid 0: the caller; pgid 0: the process's own)
            target = proc if u32(a[0]) in (0, proc.nspid) else next(
                (p for p in self.procs.values() if p.nspid == u32(a[0])), None)
            if target is not None:
                target.pgid = u32(a[1]) or target.nspid
        elif name in ("recvmsg", "recvmmsg") and ret >= 0:  # descriptors may have come in: none is known now
            proc.fds.clear()
            proc.cloexec.clear()
            proc.writes.clear()
        elif name in ("chdir", "fchdir"):
            if not error:
                proc.cwd = (self._path(call, 0, AT_FDCWD, follow=True) if name == "chdir" else
                            self._fd(proc, a[0]))  # a descriptor it never saw opened: said, not guessed
        elif name in ("execve", "execveat"):
            if not error:
                proc.argv = [call.strings[k] for k in sorted(call.strings) if k >= 16]
                for fd in proc.cloexec:
                    proc.fds.pop(fd, None)
                proc.writes -= proc.cloexec
                proc.cloexec = set()
            if agent and error != "ENOENT":
                path = self._path(call, 0 if name == "execve" else 1, a[0] if name == "execveat" else AT_FDCWD,
                                  follow=True)
                words = [call.strings[k] for k in sorted(call.strings) if k >= 16]
                self._add(call, "exec", path, error, " ".join(words) + (" ..." if 15 in call.strings else ""))
                if not error:
                    self._named(proc, words)
                    for fd in (1, 2):  # its output, into a file it inherited ({ cat key; } > shared)
                        out = proc.fds.get(fd, "") if fd in proc.writes else ""
                        if out.startswith("/") and out not in self._own_files():
                            self._add(call, "output", out, "", f"descriptor {fd}")
        elif agent:
            self._effect(call, proc, error)

    def _relink(self, call: Call, a: list[int]) -> None:
        """Keep :attr:`links` as the box's symlinks change (whoever changes them)."""
        name = call.name  # (what the filesystem said stays: it is read after the calls, as they left it)
        if name in ("symlink", "symlinkat"):
            at = name == "symlinkat"
            self.paths.made(self._path(call, 2 if at else 1, a[1] if at else AT_FDCWD), call.strings.get(0, ""))
        elif name in ("unlink", "unlinkat", "rename", "renameat", "renameat2"):
            at = name != "unlink" and name != "rename"
            dst = self._path(call, 3 if at else 1, a[2] if at else AT_FDCWD) if name.startswith("rename") else ""
            self.paths.changed(self._path(call, 1 if at else 0, a[0] if at else AT_FDCWD), dst)

    def _effect(self, call: Call, proc: Process, error: str) -> None:
        name, a = call.name, call.args
        if name in ("unlink", "rmdir", "unlinkat"):
            at = name == "unlinkat"
            self._add(call, "delete", self._path(call, 1 if at else 0, a[0] if at else AT_FDCWD), error)
        elif name in ("rename", "renameat", "renameat2"):
            at = name != "rename"
            src = self._path(call, 1 if at else 0, a[0] if at else AT_FDCWD)
            dst = self._path(call, 3 if at else 1, a[2] if at else AT_FDCWD)
            self._add(call, "move", src, error, "-> " + dst)
        elif name in ("link", "linkat"):
            at = name == "linkat"
            src = self._path(call, 1 if at else 0, a[0] if at else AT_FDCWD)
            self._add(call, "write", self._path(call, 3 if at else 1, a[2] if at else AT_FDCWD), error,
                      "link of " + src)
        elif name in ("symlink", "symlinkat"):
            dst = self._path(call, 2 if name == "symlinkat" else 1, a[1] if name == "symlinkat" else AT_FDCWD)
            self._add(call, "write", dst, error, "symlink of " + call.strings.get(0, ""))
        elif name in ("mkdir", "mkdirat", "mknod", "mknodat"):
            if error != "EEXIST":
                at = name.endswith("at")
                made = self._path(call, 1 if at else 0, a[0] if at else AT_FDCWD)
                self._add(call, "write", made, error, name.removesuffix("at"))
                if not error:
                    self._made(call, proc, made, u32(a[2 if at else 1]))
        elif name in ("truncate", "ftruncate"):
            target = self._path(call, 0, AT_FDCWD, follow=True) if name == "truncate" else self._fd(proc, a[0])
            self._add(call, "write", target, error, "truncate")
        elif name in ("chmod", "fchmod", "fchmodat", "fchmodat2"):
            at = name.startswith("fchmodat")
            target = (self._path(call, 1, a[0], follow=True) if at else self._fd(proc, a[0]) if name == "fchmod"
                      else self._path(call, 0, AT_FDCWD, follow=True))
            self._add(call, "chmod", target, error, "0%o" % (u32(a[2 if at else 1]) & 0o7777))
        elif name in ("chown", "lchown", "fchown", "fchownat"):
            at = name == "fchownat"
            target = (self._path(call, 1, a[0], follow=True) if at else self._fd(proc, a[0]) if name == "fchown"
                      else self._path(call, 0, AT_FDCWD, follow=name == "chown"))
            rest = a[2:4] if at else a[1:3]
            self._add(call, "chown", target, error, ":".join(str(u32(x)) for x in rest))
        elif name in ("kill", "tkill", "tgkill", "pidfd_send_signal"):
            self._kill(call, proc, error)
        elif name in ("connect", "sendto", "sendmsg", "sendmmsg") and call.address:
            self._add(call, "network", call.address, "" if error == "EINPROGRESS" else error, port=call.port)
        elif name == "clone" and error == "EPERM" and a[0] & NEW_NAMESPACES:
            self._add(call, "privileged", "clone", error, "a new namespace")
        elif name in ("clone", "clone3", "fork", "vfork") and error:
            self._add(call, "spawn", "", error)
        elif name in REFUSED_NAMES:  # (ptrace too, where the box allows it: strace observes the desktop's apps)
            self._add(call, "privileged", name, error, "io_uring" if name.startswith("io_uring") else "")

    def _made(self, call: Call, proc: Process, path: str, mode: int) -> None:
        """A file or folder made writable by its group or everyone: a change of mode, if the path has it now.

        ``mkdir -m 777``, or ``open(..., O_CREAT, 0666)`` under ``umask 000``: the umask is the process's own
        (followed through ``umask`` and inherited over ``fork``).
        """
        if not (mode & ~proc.umask) & 0o022 or not path:
            return
        try:  # (a file that was there already keeps its mode: then nothing changed)
            now = os.lstat(self.paths.on_host(path)).st_mode & 0o7777
        except OSError:
            return
        if now & 0o022:
            self._add(call, "chmod", path, "", f"0{now:o}")

    def _kill(self, call: Call, proc: Process, error: str) -> None:
        a = call.args
        who, sig = (u32(a[1]), u32(a[2])) if call.name == "tgkill" else (u32(a[0]), u32(a[1]))
        if sig in QUIET or (call.name in ("tkill", "tgkill") and who == proc.nspid):
            return
        try:
            signame = signal.Signals(sig).name
        except ValueError:
            signame = str(sig)
        if call.name == "pidfd_send_signal":  # the process the descriptor was opened on: by pidfd_open, or as a
            held = PIDFD.match(proc.fds.get(who, ""))  # folder of /proc (psmisc's killall)
            if not held:
                self._add(call, "kill", f"pidfd {who}", error, f"{signame} pidfd {who}")
                return
            who = int(held[1])
        if who < -1:  # a process group: each of its members
            members = [p for p in self.procs.values() if p.pgid == -who and p.nspid > 0 and not p.ended]
            for p in members:
                self._add(call, "kill", " ".join(p.argv) or str(p.nspid), error,
                          f"{signame} pid {p.nspid} (group {-who})")
            if not members:
                self._add(call, "kill", str(who), error, f"{signame} pid {who}")
            return
        target = str(who)
        if who > 0:
            named = next((p for p in self.procs.values() if p.nspid == who and p.argv), None)
            target = " ".join(named.argv) if named else str(who)
        self._add(call, "kill", target, error, f"{signame} pid {who}")

    # -- helpers ---------------------------------------------------------------------------------------------

    def _add(self, call: Call, kind: str, target: str, error: str, detail: str = "", port: int = 0) -> None:
        if target.startswith("/dev/") and not target.startswith("/dev/shm/") and kind != "delete":
            return  # /dev/null, the terminal
        self.effects.append(Observed(pid=self.procs[call.pid].nspid, call=call.name, kind=kind, target=target,
                                     detail=detail, error=error, port=port))

    def _fix_nspid(self, pid: int, nspid: int) -> None:
        """A process's namespace pid, known at its first call or fork.

        The Procs and the root that named it by its host pid (negative) get it now.
        """
        proc = self.procs[pid]
        proc.nspid = nspid
        if self.root_pid == -pid:
            self.root_pid = nspid
        for n, p in enumerate(self.new):
            if p.pid == -pid:
                self.new[n] = p.model_copy(update={"pid": nspid})

    def _named(self, proc: Process, words: list[str]) -> None:
        """The process runs a program now: its Proc (of this read, or a new one) says which."""
        for n, p in enumerate(self.new):
            if p.pid == proc.nspid:
                self.new[n] = p.model_copy(update={"argv": words})
                return
        self.new.append(Proc(pid=proc.nspid, parent=self._nspid(proc.parent), argv=words))

    def _nspid(self, pid: int | None) -> int | None:
        return self.procs[pid].nspid if pid in self.procs and self.procs[pid].role == "agent" else None

    def _own_files(self) -> tuple[str, ...]:
        return tuple(f"{self.private}/{k}" for k in ("in", "stdout", "stderr", "state"))

    def _fd(self, proc: Process, fd: int) -> str:
        n = u32(fd)
        if n in proc.fds:
            return proc.fds[n]
        if proc.role == "agent":
            self.gaps.append(f"descriptor {n} of pid {proc.nspid}: not followed")
        return f"<descriptor {n}>"

    def _path(self, call: Call, k: int, dirfd: int, follow: bool = False) -> str:
        """The absolute, resolved path of the call's k-th argument (``dirfd``: the directory it is relative to)."""
        raw = call.strings.get(k)
        proc = self.procs[call.pid]
        mine = proc.role == "agent"
        if raw is None or raw == "":
            if raw == "" and mine:
                self.gaps.append(f"a path of pid {proc.nspid}'s {call.name} could not be read")
            return ""
        if len(raw.encode("utf-8", "surrogateescape")) >= CUT and mine:
            self.gaps.append(f"a path of pid {proc.nspid}'s {call.name} is longer than {CUT} bytes: cut")
        if raw.startswith("/"):
            base = "/"
        elif u32(dirfd) == AT_FDCWD:
            base = proc.cwd
        else:
            base = self._fd(proc, dirfd)
        path, problem = self.paths.resolve(posixpath.join(base, raw), follow, proc)
        if problem and mine:
            self.gaps.append(problem)
        return path
