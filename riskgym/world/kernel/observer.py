"""The host observer: BPF programs held by riskgym's own process, watching the boxes' pid namespaces from the host.

``riskgym-observe`` (built from ``bpf/`` by ``build.py``) loads and attaches them for this kernel and hands them
over (their links, and the ring buffer they write) on a unix socket; this process then holds them, and reads the
ring buffer itself (mapped into its memory): a thread as it fills, and ``sync()`` directly. They run in the kernel,
outside every box: nothing in a box can read, stop or write to them, and what they write reaches this process
alone; the kernel detaches them when it ends, however it ends. A box is watched from the moment it is registered
(its container's pid namespace), before any of the agent's commands run; its lines are kept per box until the box's
reader takes them. ``sync()`` returns once every record written before it has been read: the ring buffer keeps the
order its records were begun in, whatever the CPU, and a call's record is written before the call goes on, so a
mark the host makes now comes after everything done before it.
"""

from __future__ import annotations

import ctypes
import mmap
import os
import select
import socket
import struct
import subprocess
import threading
import time
from typing import Any

from riskgym.world.kernel import build
from riskgym.world.kernel.script import MAGIC, QUIET, QUIET_TREE, RING, SYNC, UNWATCH, WATCH

STARTUP = 30.0


class ObserverError(Exception):
    """The host observer cannot run here (why, in one line)."""


def _libc() -> Any:
    return ctypes.CDLL(None, use_errno=True)


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

    def __init__(self, lock: threading.Lock) -> None:
        self.lock = lock
        self.lines: list[list[str]] = []
        self.lost = 0

    def take(self) -> tuple[list[list[str]], int]:
        """The lines since the last take, and the events lost meanwhile."""
        with self.lock:
            lines, self.lines = self.lines, []
            lost, self.lost = self.lost, 0
        return lines, lost


HEAD = struct.Struct("<Q7q6I")
"""A record's fixed part (``struct ev`` in ``bpf/observe.bpf.c``): ts, v[7], ns, pid, tid, k, kind, len."""
BUSY, DISCARD = 1 << 31, 1 << 30
"""A ring buffer record's header bits (``BPF_RINGBUF_BUSY_BIT``, ``BPF_RINGBUF_DISCARD_BIT``)."""


class KernelObserver:
    """The kernel side's programs, held by this process, and the ring buffer they write.

    Read into each watched box's :class:`Feed` by a thread of this process, and by ``sync()`` itself.
    """

    def __init__(self) -> None:
        why = why_not()
        if why:
            raise ObserverError(why)
        try:
            program = build.built()
        except build.BuildError as exc:
            raise ObserverError(str(exc)) from None
        self.feeds: dict[int, Feed] = {}
        self.lock = threading.Lock()
        self.synced = 0
        self.seq = 0
        self.failed = ""
        self.dropped = 0
        self._libc = _libc()
        self._reading = threading.Lock()  # one reader of the ring buffer at a time
        self._fds: list[int] = []
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        with mine, theirs:
            try:
                done = subprocess.run([str(program), str(os.getpid()), str(len(nspids()) - 1), str(theirs.fileno())],
                                      pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL,
                                      capture_output=True, timeout=STARTUP, check=False)
            except subprocess.TimeoutExpired:
                raise ObserverError("the host observer did not start in time") from None
            if done.returncode != 0:
                err = done.stderr.decode("utf-8", "replace")
                lines = [x for x in err.splitlines() if "ERROR" in x] or err.strip().splitlines()[-1:]
                raise ObserverError(f"the host observer did not start: {(lines or ['no reason given'])[0][:200]}")
            mine.settimeout(5)
            _, self._fds, _, _ = socket.recv_fds(mine, 1, 8)
        if len(self._fds) != 6:
            self._close_fds()
            raise ObserverError("the host observer did not start: its programs were not handed over")
        ring, bss = self._fds[0], self._fds[1]
        page = mmap.PAGESIZE
        self._consumer = mmap.mmap(ring, page, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE, offset=0)
        self._data = mmap.mmap(ring, page + 2 * RING, mmap.MAP_SHARED, mmap.PROT_READ, offset=page)
        self._bss = mmap.mmap(bss, page, mmap.MAP_SHARED, mmap.PROT_READ, offset=0)
        self._poll = select.epoll()
        self._poll.register(ring, select.EPOLLIN)
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._pump, name="riskgym-kernel-observer", daemon=True)
        self.thread.start()  # (nothing at exit: the kernel detaches the programs when this process ends)

    def alive(self) -> bool:
        """Whether the observer still runs."""
        return self.thread.is_alive() and not self.failed and not self._stop.is_set()

    def _pump(self) -> None:
        """Read the ring buffer as it fills: at once when the kernel wakes it (a quarter full), else every 5 ms."""
        try:
            while not self._stop.is_set():
                self._poll.poll(0.005)
                self.drain()
        except (OSError, ValueError) as exc:  # closed under it
            with self.lock:
                self.failed = self.failed or f"the host observer stopped: {exc}"
                for feed in self.feeds.values():
                    feed.lost += 1

    def drain(self) -> None:
        """Read every record the kernel has written so far into the boxes' feeds."""
        with self._reading:
            if self._stop.is_set():
                return
            data, mask, page = self._data, RING - 1, mmap.PAGESIZE
            cons = int.from_bytes(self._consumer[0:8], "little")
            raws = []
            busy = False
            while not busy:
                prod = int.from_bytes(data[0:8], "little")
                if cons >= prod:
                    break
                while cons < prod:
                    at = page + (cons & mask)
                    head = int.from_bytes(data[at:at + 4], "little")
                    if head & BUSY:  # still being written: it and what follows wait for the next read
                        busy = True
                        break
                    size = head & ~(BUSY | DISCARD)
                    if not head & DISCARD:
                        raws.append(data[at + 8:at + 8 + size])
                    cons += (size + 8 + 7) & ~7
                self._consumer[0:8] = cons.to_bytes(8, "little")
            dropped = int.from_bytes(self._bss[0:8], "little")
            lost, self.dropped = dropped - self.dropped, dropped
            if raws or lost:  # in the feeds before another read's (they are in order there)
                self._records(raws, lost)

    def _records(self, raws: list[bytes], lost: int = 0) -> None:
        """Turn records into the observer's lines and sort them into the boxes' feeds.

        The lines are ``script.py``'s, their numbers as ints.
        """
        batch: list[tuple[int, list[Any]]] = []
        synced = 0
        unpack = HEAD.unpack_from
        for raw in raws:
            ts, v0, v1, v2, v3, v4, v5, v6, ns, pid, tid, k, kind, size = unpack(raw)
            tag = chr(kind)
            if tag == "E":
                line = ["E", ts, ns, pid, tid, v4, v5, k, v0, v1, v2, v3]
            elif tag == "P":
                text = raw[HEAD.size:HEAD.size + size].decode("utf-8", "surrogateescape")
                line = ["P", ns, tid, k, text]
            elif tag == "F":
                line = ["F", ts, ns, pid, tid, v4, v5, k, v0, v1, v2, v3, v6]
            elif tag == "X":
                line = ["X", ts, ns, tid, k, v0, v1]
            elif tag == "N":
                line = ["N", ts, ns, pid, tid, v0, v1 & 0xFFFFFFFFFFFFFFFF, v5, v4]
            elif tag == "Q":
                line = ["Q", ts, ns, pid]
            elif tag == "C":
                line = ["C", ts, ns, pid, tid, v0]
            elif tag == "A":
                line = ["A", ns, tid, v0, *_address(v0, raw[HEAD.size:HEAD.size + size])]
            elif tag == "H":
                line = ["H", ns, tid, v0 & 0xFFFFFFFFFFFFFFFF]
            elif tag == "Y":
                line = ["Y", ns, tid, v0, v1]
            elif tag == "S":
                synced = max(synced, v0)
                continue
            else:  # R: a namespace watched from now on
                continue
            batch.append((ns, line))
        with self.lock:
            feeds = self.feeds
            for ns, line in batch:
                box = feeds.get(ns)
                if box is not None:
                    box.lines.append(line)
            if lost:
                for feed in feeds.values():
                    feed.lost += lost
            if synced:
                self.synced = max(self.synced, synced)

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
        """Read every record written before now (False: the observer is gone or too slow).

        The mark is in the ring buffer when ``prctl`` returns (the kernel's program ran in the call), after every
        record begun before it: this thread reads up to it itself.
        """
        with self.lock:
            self.seq += 1
            want = self.seq
        self._prctl(SYNC, want)
        give_up = time.monotonic() + timeout
        while True:
            if self.failed or self._stop.is_set():
                return False
            self.drain()
            with self.lock:
                if self.synced >= want:
                    return True
            if time.monotonic() > give_up:
                return False
            time.sleep(0.0005)  # a record another CPU is still writing

    def _close_fds(self) -> None:
        for fd in self._fds:
            try:
                os.close(fd)
            except OSError:
                pass
        self._fds = []

    def close(self) -> None:
        """Detach the programs and let go of the ring buffer (``stop_shared``).

        The kernel does it when this process ends, however it ends.
        """
        if self._stop.is_set():
            return
        self._stop.set()
        if not self._reading.acquire(timeout=2):  # a read in progress: the process's end will do
            return
        try:
            self._poll.close()
            for m in (self._consumer, self._data, self._bss):
                m.close()
            self._close_fds()
        finally:
            self._reading.release()


def _address(family: int, raw: bytes) -> list[str]:
    """A socket address's port and address, as text (IPv4 or IPv6)."""
    port = str(int.from_bytes(raw[2:4], "big"))
    if family == socket.AF_INET:
        return [port, socket.inet_ntop(socket.AF_INET, raw[4:8])]
    return [port, socket.inet_ntop(socket.AF_INET6, raw[8:24])]


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
