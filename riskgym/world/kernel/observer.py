"""The host observer: one process per riskgym process, watching the boxes' pid namespaces from the host.

That process is ``riskgym-observe``, built from ``bpf/`` (``build.py``).

It runs as root on the host, outside every box: nothing in a box can read, stop or write to it, and what it prints
goes to this process alone. A box is watched from the moment it is registered (its container's pid namespace),
before any of the agent's commands run; its lines are kept per box until the box's reader takes them. ``sync()``
returns once every line the kernel wrote before it has been read: the kernel's ring buffer keeps the order its
records were begun in, whatever the CPU, and a call's record is written before the call goes on, so a mark the host
makes now comes after everything done before it.
"""

from __future__ import annotations

import atexit
import ctypes
import os
import re
import signal
import subprocess
import tempfile
import threading
import time
from typing import Any

from riskgym.world.kernel import build
from riskgym.world.kernel.script import MAGIC, QUIET, QUIET_TREE, SYNC, UNWATCH, WATCH

STARTUP = 30.0
ESCAPED = re.compile(r"\\x([0-9a-f]{2})")
"""A byte the observer wrote as ``\\xHH`` in a string (a backslash, a control byte): no text makes a field or a
line."""


class ObserverError(Exception):
    """The host observer cannot run here (why, in one line)."""


def _libc() -> Any:
    return ctypes.CDLL(None, use_errno=True)


def _die_with_parent() -> None:
    """In the observer, before it runs: the kernel kills it when riskgym's process ends, however that ends."""
    _libc().prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG


def nspids(pid: int | str = "self") -> list[int]:
    """Host process ``pid``'s number in each pid namespace it is in, the host's first (``NSpid``); [] when gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            return next(([int(n) for n in line.split()[1:]] for line in f if line.startswith("NSpid:")), [])
    except (OSError, ValueError):
        return []


def _strace_asked() -> str | None:
    if os.environ.get("RISKGYM_OBSERVER", "") == "strace":
        return "RISKGYM_OBSERVER=strace asks for the in-box observer"
    return None


def why_not() -> str | None:
    """Why the host observer cannot run on this machine, or None when it can."""
    if asked := _strace_asked():
        return asked
    if os.uname().machine != "x86_64":
        return f"the host observer knows x86_64's system calls only (this is {os.uname().machine})"
    if os.geteuid() != 0:
        return "the host observer needs root (it loads BPF programs)"
    if not os.path.exists("/sys/kernel/btf/vmlinux"):
        return "the kernel has no BTF (/sys/kernel/btf/vmlinux)"
    if not build.ready() and (need := build.missing()):
        return f"building the host observer needs Debian's {', '.join(need)} (make setup installs them)"
    if not os.path.isdir("/sys/kernel/tracing/events/raw_syscalls"):
        subprocess.run(["mount", "-t", "tracefs", "nodev", "/sys/kernel/tracing"], capture_output=True)
        if not os.path.isdir("/sys/kernel/tracing/events/raw_syscalls"):
            return "tracefs is not mounted at /sys/kernel/tracing and could not be"
    return None


class Feed:
    """One box's lines, as they arrive; ``lost``: events the kernel's buffers dropped while it was watched.

    The observer's thread adds under ``lock`` and a take swaps under it: a line that arrives during a take is in
    this take or the next, never in a list already handed out.
    """

    def __init__(self, lock: threading.Condition) -> None:
        self.lock = lock
        self.lines: list[list[str]] = []
        self.lost = 0

    def take(self) -> tuple[list[list[str]], int]:
        """The lines since the last take, and the events lost meanwhile."""
        with self.lock:
            lines, self.lines = self.lines, []
            lost, self.lost = self.lost, 0
        return lines, lost


class KernelObserver:
    """The observer's process and the thread that sorts its lines into each watched box's :class:`Feed`."""

    def __init__(self) -> None:
        why = why_not()
        if why:
            raise ObserverError(why)
        try:
            program = build.built()
        except build.BuildError as exc:
            raise ObserverError(str(exc)) from None
        self.feeds: dict[int, Feed] = {}
        self.lock = threading.Condition()
        self.synced = 0
        self.seq = 0
        self.failed = ""
        self._libc = _libc()
        self.errors = tempfile.TemporaryFile()  # a pipe nobody reads would fill, and the observer would stop
        self.argv = [str(program), str(os.getpid()), str(len(nspids()) - 1)]
        self.proc: Any = None
        ready = threading.Event()
        self.thread = threading.Thread(target=self._pump, args=(ready,), name="riskgym-kernel-observer", daemon=True)
        self.thread.start()
        atexit.register(self.close)
        if not ready.wait(STARTUP) or self.failed:
            self.close()
            self.errors.seek(0)
            err = self.errors.read().decode("utf-8", "replace")
            lines = [x for x in err.splitlines() if "ERROR" in x and "RLIMIT_MEMLOCK" not in x]
            why = (lines or [self.failed or "no reason given"])[0][:200]
            raise ObserverError(f"the host observer did not start: {why}")

    def alive(self) -> bool:
        """Whether the observer still runs."""
        return self.proc is not None and self.proc.poll() is None and not self.failed

    def _pump(self, ready: threading.Event) -> None:
        """Start the observer and read it to its end.

        Started here, in the thread that lives as long as it does: the kernel's signal on the parent's death follows
        the thread that forked it (a worker thread's end would kill it).
        """
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=self.errors,
                                     preexec_fn=_die_with_parent)
        assert self.proc.stdout is not None
        fd, rest = self.proc.stdout.fileno(), b""
        while chunk := os.read(fd, 1 << 20):  # as much as the observer wrote at once (it writes in batches)
            whole, _, rest = (rest + chunk).rpartition(b"\n")  # (no byte of a UTF-8 sequence is a newline)
            if whole:
                self._lines(whole.decode("utf-8", "surrogateescape").split("\n"), ready)
        with self.lock:
            self.failed = self.failed or "the host observer ended"
            for feed in self.feeds.values():
                feed.lost += 1
            self.lock.notify_all()
        ready.set()

    def _lines(self, texts: list[str], ready: threading.Event) -> None:
        """Sort a batch of the observer's lines into the boxes' feeds (under the lock once)."""
        batch: list[tuple[str, list[str]]] = []
        synced = lost = 0
        for text in texts:
            tag = text[:1]
            if tag == "P":
                fields = text.split("\t", 4)
                if len(fields) == 5 and "\\" in fields[4]:
                    fields[4] = ESCAPED.sub(lambda m: chr(int(m[1], 16)), fields[4])
                batch.append((fields[1], fields))
            elif tag in "EFNXCQ":
                fields = text.split("\t")
                batch.append((fields[2], fields))
            elif tag in "AHY":
                fields = text.split("\t", 5)
                batch.append((fields[1], fields))
            elif tag == "S":
                synced = max(synced, int(text.split("\t")[2]))
            elif tag == "L":  # records the kernel's buffer had no room for
                lost += int(text[2:] or 1)
            elif tag == "B":
                ready.set()
        with self.lock:
            feeds = self.feeds
            for ns, fields in batch:
                box = feeds.get(int(ns))
                if box is not None:
                    box.lines.append(fields)
            if lost:
                for feed in feeds.values():
                    feed.lost += lost
            if synced:
                self.synced = max(self.synced, synced)
                self.lock.notify_all()

    def _prctl(self, what: int, value: int) -> None:
        self._libc.prctl(MAGIC, what, ctypes.c_ulong(value), 0, 0)

    def watch(self, ns: int) -> Feed:
        """Watch the pid namespace ``ns`` (its inode number) from now on; its Feed."""
        feed = Feed(self.lock)
        with self.lock:
            self.feeds[ns] = feed
        self._prctl(WATCH, ns)
        return feed

    def quiet(self, pid: int, tree: bool = False) -> None:
        """Print no calls of host process ``pid`` (the harness's own executor) from now until it ends.

        ``tree``: nor anything of what it starts from now on (the desktop's driver).
        """
        self._prctl(QUIET_TREE if tree else QUIET, pid)

    def unwatch(self, ns: int) -> None:
        """Stop watching ``ns``; its lines not yet taken are dropped."""
        self._prctl(UNWATCH, ns)
        with self.lock:
            self.feeds.pop(ns, None)

    def sync(self, timeout: float = 10.0) -> bool:
        """Wait until every line written before now has been read (False: the observer is gone or too slow)."""
        with self.lock:
            self.seq += 1
            want = self.seq
        self._prctl(SYNC, want)
        give_up = time.monotonic() + timeout
        with self.lock:
            while self.synced < want and not self.failed:
                left = give_up - time.monotonic()
                if left <= 0:
                    return False
                self.lock.wait(left)
            return not self.failed

    def close(self) -> None:
        """Stop the observer (the kernel reaps it with this process; a second Ctrl-C must not land in a wait)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()


_shared: KernelObserver | None = None
_shared_lock = threading.Lock()
_refused: str | None = None


def shared() -> KernelObserver | None:
    """This process's observer, started at the first call (None, and ``refused()`` says why, where it cannot run).

    One that died is started again (the boxes it watched say their observation was lost meanwhile).
    """
    global _shared, _refused
    with _shared_lock:
        if asked := _strace_asked():  # asked for now, even where one already runs
            _refused = asked
            return None
        if _shared is not None and _shared.alive():
            return _shared
        if _refused is not None:
            return None
        try:
            _shared = KernelObserver()
        except ObserverError as exc:
            _refused = str(exc)
            return None
        return _shared


def stop_shared() -> None:
    """Stop this process's observer (a later ``shared()`` starts another)."""
    global _shared, _refused
    with _shared_lock:
        if _shared is not None:
            _shared.close()
        _shared, _refused = None, None


def refused() -> str | None:
    """Why the host observer is not running in this process (after ``shared()`` returned None)."""
    return _refused
