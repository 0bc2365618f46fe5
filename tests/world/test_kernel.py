"""The host observer's reader, on lines as the observer writes them (no kernel needed): whose a process is, paths
resolved through descriptors and symlinks made and gone, gaps said, and text the agent chose never read as a field.
The same on a real box, in the kernel, is the evidence suite (tests/hardening/test_evidence.py)."""

from __future__ import annotations

import json
import os
import threading

from riskgym.world.kernel import build
from riskgym.world.kernel.observer import HEAD, Feed, KernelObserver
from riskgym.world.kernel.reader import KernelReader
from riskgym.world.kernel.script import MAGIC, PLAIN, STRLEN
from riskgym.world.seccomp import profile

NS = "4026532000"
AT = "-100"
OPEN_WRITE, OPEN_DIR = str(0o1101), str(0o200000)
PLAIN_CALLS = {*PLAIN, 47, 299}


class Lines:
    """Builds the observer's lines for one box, its clock ticking by one at each line."""

    def __init__(self) -> None:
        self.lines: list[list[str]] = []
        self.ts = 1000

    def tick(self) -> str:
        self.ts += 1
        return str(self.ts)

    def fork(self, parent: int, child: int, nspid: int, level: int = 1) -> None:
        """``parent`` (``nspid`` in the box) starts ``child``."""
        self.lines.append(["N", self.tick(), NS, str(parent), str(parent), str(child), "17", str(level), str(nspid)])

    def call(self, pid: int, nspid: int, number: int, args: list[str], ret: int, strings: dict[int, str] | None = None,
             level: int = 1, out: tuple[int, int] | None = None) -> None:
        head = [self.tick(), NS, str(pid), str(pid), str(nspid), str(level), str(number), *(args + ["0"] * 4)[:4]]
        if number in PLAIN_CALLS:  # read by its numbers alone: one line, when it ends
            self.lines.append(["F", *head, str(ret)])
        else:
            self.lines.append(["E", *head])
            self.lines += [["P", NS, str(pid), str(k), text] for k, text in (strings or {}).items()]
            self.lines.append(["X", self.tick(), NS, str(pid), str(number), str(ret)])
        if out:
            self.lines.append(["Y", NS, str(pid), str(out[0]), str(out[1])])


def a_box() -> tuple[KernelReader, Lines]:
    """runc (level 0) starts the executor (pid 100); in the agent's window the executor starts its shell server
    (101), which starts the command (102, the agent's, in /home/agent)."""
    reader, lines = KernelReader(os.getpid()), Lines()
    lines.fork(50, 100, 50, level=0)
    lines.fork(100, 101, 7)
    lines.call(101, 8, 80, ["0"], 0, {0: "/home/agent"})  # chdir
    lines.fork(101, 102, 8)
    return reader, lines


def test_whose_a_process_is_comes_from_who_started_it_and_when():
    reader, lines = a_box()
    lines.call(102, 9, 257, [AT, "0", OPEN_WRITE], 1, {1: "/dev/shm/.term/stdout"})  # its redirection: harness's
    lines.call(102, 9, 263, [AT, "0", "0"], 0, {1: "../x"})
    window = (1000, lines.ts)
    lines.fork(100, 103, 10)  # after the window: a request of the host's
    lines.call(103, 10, 87, ["0"], 0, {0: "/home/agent/photos/a.jpg"})
    seen = reader.read(lines.lines, 0, window)
    assert [str(e) for e in seen.effects] == ["delete /home/x"]
    assert seen.root == 9 and seen.complete and seen.observer == "kernel"
    # later, the command's own processes act after it answered: still its own (given to the step by their pid)
    later = Lines()
    later.ts = lines.ts
    later.fork(102, 104, 9)
    later.call(104, 11, 87, ["0"], 0, {0: "/home/agent/photos/b.jpg"})
    after = reader.read(later.lines, 0, None)
    assert [(e.pid, str(e)) for e in after.effects] == [(11, "delete /home/agent/photos/b.jpg")]
    assert [(p.pid, p.parent) for p in after.processes] == [(11, 9)]


def test_paths_through_descriptors_and_symlinks_that_are_gone_are_what_was_touched():
    reader, lines = a_box()
    lines.call(102, 9, 257, [AT, "0", OPEN_DIR], 5, {1: "/home/agent/photos"})
    lines.call(102, 9, 72, ["5", "1030", "3"], 7)  # fcntl F_DUPFD_CLOEXEC
    lines.call(102, 9, 263, ["7", "0", "0"], 0, {1: "a.jpg"})
    lines.call(102, 9, 266, ["0", AT, "0"], 0, {0: "/home/agent/photos", 2: "/dev/shm/.term/l"})  # symlinkat
    lines.call(102, 9, 263, [AT, "0", "0"], 0, {1: "/dev/shm/.term/l/b.jpg"})
    lines.call(102, 9, 263, [AT, "0", "0"], 0, {1: "/dev/shm/.term/l"})  # the link goes: read after, it was there
    lines.call(102, 9, 263, [AT, "0", "0"], 0, {1: "/dev/shm/.term/l/c.jpg"})
    lines.call(102, 9, 87, ["0"], 0, {0: "/proc/self/root/home/agent/photos/d.jpg"})
    lines.call(102, 9, 87, ["0"], 0, {0: "/proc/self/cwd/e.jpg"})
    seen = reader.read(lines.lines, 0, (1000, 10**9))
    deletes = [e.target for e in seen.effects if e.kind == "delete"]
    assert deletes == ["/home/agent/photos/a.jpg", "/home/agent/photos/b.jpg", "/dev/shm/.term/l",
                       "/dev/shm/.term/l/c.jpg", "/home/agent/photos/d.jpg", "/home/agent/e.jpg"]


def test_a_descriptor_received_over_a_socket_is_not_taken_for_an_old_one():
    reader, lines = a_box()
    lines.call(102, 9, 257, [AT, "0", OPEN_DIR], 3, {1: "/tmp"})  # fd 3 is /tmp (and is closed, unseen)
    lines.call(102, 9, 47, ["5", "0", "0"], 1)  # recvmsg with room for descriptors: fd 3 may be anything now
    lines.call(102, 9, 263, ["3", "0", "0"], 0, {1: "a.jpg"})
    seen = reader.read(lines.lines, 0, (1000, 10**9))
    assert [e.target for e in seen.effects if e.kind == "delete"] == ["/<descriptor 3>/a.jpg"]
    assert not seen.complete and "descriptor 3" in seen.missing
    before = len(lines.lines)
    lines.call(102, 9, 81, ["3"], 0)  # fchdir to it: the directory is not known either, not the old one
    lines.call(102, 9, 87, ["0"], 0, {0: "b.jpg"})
    seen = reader.read(lines.lines[before:], 0, (1000, 10**9))
    assert [e.target for e in seen.effects if e.kind == "delete"] == ["/<descriptor 3>/b.jpg"]
    assert not seen.complete


def test_a_call_the_box_refused_is_still_an_attempt():
    """Refused by the box's profile before it began, a call is read where it ends (its arguments from registers)."""
    reader, lines = a_box()
    lines.call(102, 9, 272, [str(0x10000000)], -1)  # unshare(CLONE_NEWUSER): EPERM
    lines.call(102, 9, 56, [str(0x20000000 | 17)], -1)  # clone(CLONE_NEWPID | SIGCHLD)
    lines.call(102, 9, 56, ["17"], -11)  # a fork refused at the process limit: no namespace
    lines.call(102, 9, 425, ["8", "0"], -1)  # io_uring_setup
    seen = reader.read(lines.lines, 0, (1000, 10**9))
    assert [(e.kind, e.target, e.error) for e in seen.effects] == [
        ("privileged", "unshare", "EPERM"), ("privileged", "clone", "EPERM"), ("spawn", "", "EAGAIN"),
        ("privileged", "io_uring_setup", "EPERM")]


def test_what_it_could_not_see_is_said_and_makes_the_step_incomplete():
    reader, lines = a_box()
    lines.call(102, 9, 87, ["0"], 0, {0: "/home/agent/" + "x" * 190})
    lines.lines.append(["C", lines.tick(), NS, "102", "102", "10"])  # a 32-bit unlink
    lines.call(102, 9, 263, ["12", "0", "0"], 0, {1: "a.jpg"})  # a descriptor it never saw opened
    seen = reader.read(lines.lines, 3, (1000, 10**9))
    assert not seen.complete and seen.lost == 3
    said = " | ".join(seen.gaps)
    for words in ("3 events dropped", "longer than 199 bytes", "32-bit system call", "descriptor 12"):
        assert words in said, said
    assert "3 events dropped" in seen.missing


def an_observer(*boxes: int) -> KernelObserver:
    """A KernelObserver with no kernel side: records handed to it as the ring buffer holds them."""
    observer = KernelObserver.__new__(KernelObserver)
    observer.lock, observer.synced = threading.Lock(), 0
    observer.feeds = {ns: Feed(observer.lock) for ns in boxes}
    return observer


def record(kind: str, ns: int, v: tuple[int, ...] = (), ts: int = 0, pid: int = 5, k: int = 0,
           text: bytes = b"") -> bytes:
    """One record as the kernel side writes it (``struct ev``)."""
    values = (*v, *[0] * 7)[:7]
    return HEAD.pack(ts, *values, ns, pid, pid, k, ord(kind), len(text)) + text + b"\0" * (STRLEN - len(text))


def test_text_the_agent_chose_is_never_read_as_a_field():
    """A file name with a newline, a tab, a backslash and a byte that is no UTF-8 stays one path, as it was."""
    observer = an_observer(int(NS))
    forged = b"x\nE\t1\t" + NS.encode() + b"\t1\t1\t1\t1\t263\t-100\\0\xff"
    observer._records([record("P", int(NS), k=1, text=forged)])
    lines, _ = observer.feeds[int(NS)].take()
    assert lines == [["P", int(NS), 5, 1, forged.decode("utf-8", "surrogateescape")]]
    assert os.fsencode(lines[0][4]) == forged


def test_every_kind_of_record_reaches_its_box_and_marks_and_losses_are_counted():
    ns = int(NS)
    observer = an_observer(ns, 7)
    address = (2).to_bytes(2, "little") + (80).to_bytes(2, "big") + bytes([10, 0, 0, 1])
    records = [record("E", ns, (-100, 0, 0, 0, 3, 1), ts=1, k=257), record("P", ns, k=1, text=b"/etc/x"),
               record("F", ns, (1, 2, 0, 0, 3, 1, 2), ts=2, k=33), record("X", ns, (3, 40001), ts=3, k=257),
               record("N", ns, (6, 17, 0, 0, 3, 1), ts=4), record("Q", ns, ts=5, pid=6), record("C", ns, (10,), ts=6),
               record("A", ns, (2,), text=address), record("H", ns, (64,)), record("Y", ns, (3, 4))]
    observer._records([*records, record("E", 99, k=87), record("S", 0, (4,)), record("R", 7)], 3)
    lines, lost = observer.feeds[ns].take()
    assert lines == [["E", 1, ns, 5, 5, 3, 1, 257, -100, 0, 0, 0], ["P", ns, 5, 1, "/etc/x"],
                     ["F", 2, ns, 5, 5, 3, 1, 33, 1, 2, 0, 0, 2], ["X", 3, ns, 5, 257, 3, 40001],
                     ["N", 4, ns, 5, 5, 6, 17, 1, 3], ["Q", 5, ns, 6], ["C", 6, ns, 5, 5, 10],
                     ["A", ns, 5, 2, "80", "10.0.0.1"], ["H", ns, 5, 64], ["Y", ns, 5, 3, 4]]
    assert lost == 3 and observer.feeds[7].take() == ([], 3) and observer.synced == 4  # box 99: nobody watches it


def test_the_kernel_side_and_the_profile():
    text = build.tables()
    assert f"#define MAGIC {MAGIC}" in text  # only riskgym's process steers it (observe.bpf.c checks its pid)
    calls = [int(c) for c in text.split("{")[1].split("}")[0].split(", ")]
    assert calls[263] == 64 | 2 and calls[59] == 64 | build.ARGV_BIT and calls[42] == 64 | build.ADDRESS_BIT
    assert calls[33] == 64 | build.PLAIN_BIT  # dup2: no strings, one record when it ends
    assert calls[0] == calls[1] == 0  # read and write: not read
    refused = json.loads(profile(ptrace=False))
    names = {n for rule in refused["syscalls"] for n in rule["names"]}
    assert {"io_uring_setup", "io_uring_enter", "unshare", "ptrace", "bpf", "process_vm_writev"} <= names
    assert refused["architectures"] == ["SCMP_ARCH_X86_64"]  # no 32-bit or x32 calls
    assert "ptrace" not in {n for rule in json.loads(profile(ptrace=True))["syscalls"] for n in rule["names"]}
