"""The in-box observer: strace's report of a command's processes, read from a file no path names.

Part of the executor.

Run inside the container beside :mod:`riskgym.world.executor` (loaded as a module of its own); the standard
library only, any Python >= 3.7.
"""

import fcntl
import os
import re
import subprocess
import tempfile

try:  # on the host, a package; in the container, the executor's loader has put it in sys.modules
    from riskgym.world.box_reset import descendants
except ImportError:  # pragma: no cover - the container's path
    from box_reset import descendants  # type: ignore[no-redef]


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
