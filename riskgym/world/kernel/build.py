"""Build the host's BPF programs for this machine, once: the observer's and the sinkhole's steering.

The observer is ``bpf/observe.bpf.c`` and its reader ``bpf/observe.c``; the steering ``bpf/steer.bpf.c`` and its
loader ``bpf/steer.c``.

Debian's clang compiles each kernel side against the running kernel's types (``bpftool btf dump``), ``bpftool gen
skeleton`` embeds it in the reader, which gcc links with libbpf. The result is kept under
``~/.cache/riskgym/observer/<digest>`` (the sources' and the kernel's): a second build is a lookup. ``make setup``
builds it (``python -m riskgym.world.kernel.build``); riskgym builds it at first use otherwise.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from riskgym.world.kernel.script import (
    ADDRESSES,
    ARGS_SHOWN,
    ARGV,
    MAGIC,
    PATHS,
    PLAIN,
    QUIET,
    QUIET_TREE,
    REFUSED_CALLS,
    RING,
    STRLEN,
    SYNC,
    UNWATCH,
    WATCH,
)

HERE = Path(__file__).parent / "bpf"
PROGRAMS = {"riskgym-observe": "observe", "riskgym-steer": "steer"}
"""Each program built, and the name of its sources (``<name>.bpf.c``, ``<name>.c``)."""
SOURCES = (*(f"{n}{ext}" for n in PROGRAMS.values() for ext in (".bpf.c", ".c")), "handover.h")
TOOLS = {"clang": "clang", "bpftool": "bpftool", "gcc": "gcc", "ip": "iproute2"}
"""The programs the build needs, and Debian's package for each (libbpf-dev for libbpf's headers)."""


def _clang() -> str | None:
    """Debian's clang (``clang``, or one of its versioned names)."""
    return shutil.which("clang") or next((c for v in range(30, 13, -1) if (c := shutil.which(f"clang-{v}"))), None)
NCALLS = 512
ARGV_BIT, ADDRESS_BIT, WANTED_BIT, PLAIN_BIT, REFUSED_BIT = 16, 32, 64, 128, 256


class BuildError(Exception):
    """The observer could not be built here (why, in one line)."""


def tables() -> str:
    """``tables.h``: for each x86_64 call number, what the kernel side reads of it (from script.py's tables)."""
    calls = [0] * NCALLS
    for call, idxs in PATHS.items():
        if call not in ARGV:
            for k in idxs:
                calls[call] |= 1 << k
    for call in (*PATHS, *PLAIN, *ADDRESSES, 46, 307, 47, 299):
        calls[call] |= WANTED_BIT
    for call in ARGV:
        calls[call] |= ARGV_BIT
    for call in (*ADDRESSES, 46, 307):
        calls[call] |= ADDRESS_BIT
    for call in (*PLAIN, 47, 299):  # no strings: written once, when they end
        calls[call] |= PLAIN_BIT
    for call in REFUSED_CALLS:  # refused by the box's profile: read where they end
        calls[call] |= WANTED_BIT | PLAIN_BIT | REFUSED_BIT
    consts = {"MAGIC": MAGIC, "WATCH": WATCH, "UNWATCH": UNWATCH, "SYNC": SYNC, "QUIET": QUIET,
              "QUIET_TREE": QUIET_TREE, "NCALLS": NCALLS, "ARGV": ARGV_BIT, "ADDRESS": ADDRESS_BIT,
              "PLAIN": PLAIN_BIT, "REFUSED": REFUSED_BIT, "STRLEN": STRLEN, "ARGS_SHOWN": ARGS_SHOWN, "RING": RING}
    body = ", ".join(str(c) for c in calls)
    return ("// made by riskgym/world/kernel/build.py from script.py's tables\n"
            + "".join(f"#define {k} {v}\n" for k, v in consts.items())
            + f"#ifdef __bpf__\nstatic const volatile __u16 CALLS[NCALLS] = {{{body}}};\n#endif\n")


def digest() -> str:
    """What the build depends on: the sources, the tables and the kernel's release."""
    h = hashlib.sha256(tables().encode())
    for name in SOURCES:
        h.update((HERE / name).read_bytes())
    h.update(os.uname().release.encode())
    return h.hexdigest()[:16]


def cache_dir() -> Path:
    """Where builds are kept (one folder per digest)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "riskgym" / "observer"


def missing() -> list[str]:
    """The Debian packages the build lacks here."""
    need = [pkg for tool, pkg in TOOLS.items() if (_clang() if tool == "clang" else shutil.which(tool)) is None]
    if not Path("/usr/include/bpf/libbpf.h").exists():
        need.append("libbpf-dev")
    return need


def _target(program: str = "riskgym-observe") -> Path:
    return cache_dir() / digest() / program


def ready() -> bool:
    """Whether the programs for this machine are built."""
    return all(_target(p).exists() for p in PROGRAMS)


def built(program: str = "riskgym-observe") -> Path:
    """A program for this machine (the observer's, or ``riskgym-steer``), built now if the programs are not yet.

    BuildError: why they cannot be.
    """
    target = _target(program)
    if ready():
        return target
    if need := missing():
        raise BuildError(f"building the host observer needs Debian's {', '.join(need)} "
                         f"(apt-get install {' '.join(need)}; make setup installs them)")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent.parent) as tmp:
        work = Path(tmp)
        for name in SOURCES:
            shutil.copy(HERE / name, work / name)
        (work / "tables.h").write_text(tables())
        steps: list[tuple[str, str | None]] = [("bpftool btf dump file /sys/kernel/btf/vmlinux format c", "vmlinux.h")]
        for program, n in PROGRAMS.items():  # (tables.h: the observer's kernel side's)
            steps += [(f"{_clang()} -g -O2 -target bpf -D__TARGET_ARCH_x86 -I. -c {n}.bpf.c -o {n}.bpf.o", None),
                      (f"bpftool gen skeleton {n}.bpf.o name {n}_bpf", f"{n}.skel.h"),
                      (f"gcc -O2 -Wall -I. {n}.c -o {program} -lbpf", None)]
        for command, into in steps:
            done = subprocess.run(command.split(), cwd=work, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                first = next((x for x in done.stderr.splitlines() if "error" in x.lower()), done.stderr.strip())
                raise BuildError(f"building the host observer failed at {Path(command.split()[0]).name}: {first[:300]}")
            if into:
                (work / into).write_text(done.stdout)
        for program in PROGRAMS:  # each whole or not at all
            os.replace(work / program, _target(program))
    return target


def main() -> int:
    """``python -m riskgym.world.kernel.build``: build the observer now (make setup), or say why it cannot be."""
    try:
        print(f"host observer: {built()}")
    except BuildError as exc:
        print(f"host observer: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
