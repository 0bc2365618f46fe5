"""The bpftrace program of the host observer: the box's system calls that matter, read in the kernel.

Two ``raw_syscalls`` tracepoints (one program each, whatever the call: 0.2 s to attach, against 1.4 s for one
tracepoint per call) and the scheduler's ``task_newtask`` and ``sched_process_exit``. Each program first asks
whether the calling task's pid namespace is a watched box's (a map lookup in the kernel): every other process on
the host costs that lookup and nothing more. A watched call prints one line of numbers, then one line per string it
reads (a path, an argument of a program), each tagged with the thread, so that no text the agent chose can be taken
for a field (bpftrace's JSON output escapes the text itself).

Lines (tab-separated):

- ``E ts ns pid tid nspid level id a0 a1 a2 a3``  a call began (``pid``/``tid`` as the host numbers them, ``nspid``
  the process in its own namespace, ``level`` its namespace's depth: the box's, or less for a process entering it)
- ``P ns tid k text``  the call's k-th string (a path; 16+ an argument of a program, 15 a cut argument list);
  a path in a page not yet in memory is read when the call ends, after its X line
- ``A ns tid family port address``  the address a connect, send or bind names
- ``H ns tid flags``  openat2's flags (they are in a struct, not an argument)
- ``X ts ns tid id ret``  the call ended; ``Y ns tid fd0 fd1`` a pipe's two ends
- ``N ts ns pid tid child flags level nspid``  a task was made (a process, or a thread when ``flags`` has
  CLONE_THREAD), by ``pid`` (``nspid`` in its namespace)
- ``Q ts ns pid``  a process ended
- ``C ts ns pid tid id``  a 32-bit or x32 system call: not read (the box's seccomp profile refuses them)
- ``S ts seq``  a sync mark from the host; ``R ns`` a namespace watched from now on

The host may also name a process of its own in a box (the executor: ``QUIET``) whose calls are not printed (its
forks still are), until it ends, or a process whose whole tree is not printed (the desktop's driver and its apps,
which their own in-box observer follows: ``QUIET_TREE``). Of ``fcntl`` only what copies a descriptor is.
"""

from __future__ import annotations

from collections.abc import Iterable

MAGIC = 0x52474B31
"""``prctl``'s option with which the host's own process talks to the program (no such option exists: EINVAL)."""
WATCH, UNWATCH, SYNC, QUIET, QUIET_TREE = 1, 0, 2, 3, 4

PATHS = {2: (0,), 257: (1,), 437: (1,), 85: (0,), 87: (0,), 84: (0,), 263: (1,), 82: (0, 1), 264: (1, 3),
         316: (1, 3), 86: (0, 1), 265: (1, 3), 88: (0, 1), 266: (0, 2), 83: (0,), 258: (1,), 133: (0,), 259: (1,),
         76: (0,), 90: (0,), 268: (1,), 452: (1,), 92: (0,), 94: (0,), 260: (1,), 80: (0,), 59: (0,), 322: (1,)}
"""x86_64 call number -> which arguments are paths (open, openat, openat2, creat, unlink, rmdir, unlinkat, rename,
renameat, renameat2, link, linkat, symlink, symlinkat, mkdir, mkdirat, mknod, mknodat, truncate, chmod, fchmodat,
fchmodat2, chown, lchown, fchownat, chdir, execve, execveat)."""
PLAIN = (77, 91, 93, 62, 200, 234, 424, 32, 33, 292, 22, 293, 81, 72, 425, 426, 427, 56, 435, 57, 58)
"""Calls read by their numbers alone: ftruncate, fchmod, fchown, kill, tkill, tgkill, pidfd_send_signal, dup, dup2,
dup3, pipe, pipe2, fchdir, fcntl, io_uring's three (refused in the box: seen if tried) and the forks (clone, clone3,
fork, vfork: one refused at the process limit is an attempt to spawn). Not ``close``: every call that can give a
process a directory's descriptor is read (its entry in the reader's table is replaced), and a line a call costs the
box about 20 microseconds (bpftrace wakes for each): ``find`` closes as often as it opens."""
ADDRESSES = {42: 1, 44: 4, 49: 1}
"""Calls with a socket address: connect, sendto (its fifth argument), bind; sendmsg and sendmmsg hold theirs in a
message header."""
RECEIVE = (47, 299)
"""recvmsg and recvmmsg, read only when they ask for ancillary data (a descriptor can come that way)."""
ARGV = {59: 1, 322: 2}
ARGS_SHOWN = 16
CLONE_THREAD = 0x10000
NAMES = {56: "clone", 435: "clone3", 57: "fork", 58: "vfork", 47: "recvmsg", 299: "recvmmsg",
         2: "open", 257: "openat", 437: "openat2", 85: "creat", 87: "unlink", 84: "rmdir", 263: "unlinkat",
         82: "rename", 264: "renameat", 316: "renameat2", 86: "link", 265: "linkat", 88: "symlink", 266: "symlinkat",
         83: "mkdir", 258: "mkdirat", 133: "mknod", 259: "mknodat", 76: "truncate", 77: "ftruncate", 90: "chmod",
         91: "fchmod", 268: "fchmodat", 452: "fchmodat2", 92: "chown", 93: "fchown", 94: "lchown", 260: "fchownat",
         62: "kill", 200: "tkill", 234: "tgkill", 424: "pidfd_send_signal", 42: "connect", 44: "sendto",
         46: "sendmsg", 307: "sendmmsg", 49: "bind", 32: "dup", 33: "dup2", 292: "dup3", 22: "pipe", 293: "pipe2",
         80: "chdir", 81: "fchdir", 3: "close", 436: "close_range", 59: "execve", 322: "execveat", 72: "fcntl",
         425: "io_uring_setup", 426: "io_uring_enter", 427: "io_uring_register"}
WATCHED = "curtask->thread_pid->level > {level} && @w[curtask->nsproxy->pid_ns_for_children->ns.inum]"
"""A task of a watched box: deeper than the host's own pid namespace first (two loads: most of the machine's calls
stop there), then the map of watched namespaces."""
NS = "$ns = curtask->nsproxy->pid_ns_for_children->ns.inum;"


def _any(ids: Iterable[int], var: str = "$id") -> str:
    return " || ".join(f"{var} == {i}" for i in sorted(ids))


def _address(ptr: str) -> str:
    """Print the socket address at ``ptr`` (IPv4 or IPv6)."""
    return (f"$sa = uptr((struct sockaddr_in *){ptr}); "
            "if ($sa->sin_family == 2) { printf(\"A\\t%u\\t%d\\t2\\t%d\\t%s\\n\", $ns, tid, "
            "(($sa->sin_port & 0xff) << 8) | ($sa->sin_port >> 8), ntop(2, $sa->sin_addr.s_addr)); } "
            f"if ($sa->sin_family == 10) {{ $s6 = uptr((struct sockaddr_in6 *){ptr}); "
            "printf(\"A\\t%u\\t%d\\t10\\t%d\\t%s\\n\", $ns, tid, "
            "(($s6->sin6_port & 0xff) << 8) | ($s6->sin6_port >> 8), ntop(10, $s6->sin6_addr.in6_u.u6_addr8)); }")


def _paths_at(k: int) -> str:
    """A program's body: print argument ``k`` as a path for the calls that have one there.

    One in a page not yet in memory is left for the call's end (``@lK``). One string a program: each program's
    stack is 512 bytes.
    """
    calls = [c for c, idxs in PATHS.items() if k in idxs and c not in ARGV]
    ptr = f"args->args[{k}]"
    return (f"if ({_any(calls)}) {{ if (*uptr((uint8 *){ptr}) == 0 && {ptr} != 0) {{ @l{k}[tid] = {ptr}; }} "
            f"else {{ printf(\"P\\t%u\\t%d\\t{k}\\t%s\\n\", $ns, tid, str(uptr({ptr}))); }} }}")


def _late(k: int) -> str:
    return (f"if (@l{k}[tid] != 0) {{ printf(\"P\\t%u\\t%d\\t{k}\\t%s\\n\", $ns, tid, str(uptr(@l{k}[tid]))); "
            f"delete(@l{k}[tid]); }}")


def program(owner: int, numbers_offset: int, level: int = 0) -> str:
    """The bpftrace program.

    ``owner`` is the host process that may watch namespaces and mark syncs, ``level`` the depth of its own pid
    namespace (0 on a host; a box's is deeper).

    Every program on a system-call tracepoint runs for every call on the machine (its filter, at least): they are
    few. The strings are read by programs of their own, after the one that prints the call (the kernel runs a
    tracepoint's programs in the order they were attached), as each program's stack is 512 bytes.
    """
    nspid = (f"$g = curtask->group_leader->thread_pid; $lv = $g->level; "
             f"$nspid = *(int32 *)((uint64)$g + {numbers_offset} + 16 * $lv);")
    ids = set(PATHS) | set(PLAIN) | set(ADDRESSES) | {46, 307}
    watched = WATCHED.format(level=level)
    box = f"{watched} && !@h[pid]"
    calls = (f"(({_any(ids)}) && ($id != 72 || args->args[1] == 0 || args->args[1] == 1030)) || "  # fcntl: F_DUPFD*
             "(($id == 47 || $id == 299) && uptr((struct user_msghdr *)args->args[1])->msg_controllen > 0)")
    addresses = " ".join([
        *(f"if ($id == {c}) {{ {_address(f'args->args[{k}]')} }}" for c, k in ADDRESSES.items()),
        f"if ($id == 46 || $id == 307) {{ {_address('uptr((struct user_msghdr *)args->args[1])->msg_name')} }}",
        'if ($id == 437) { printf("H\\t%u\\t%d\\t%lu\\n", $ns, tid, *uptr((uint64 *)args->args[2])); }',
        "if ($id == 22 || $id == 293) { @pp[tid] = args->args[0]; }",
    ])
    argv = ("$a0 = (uint64)args->args[0]; $a1 = (uint64)args->args[1]; $a2 = (uint64)args->args[2]; "  # values, not
            "$av = $a2; $f = $a1; $k = 1; if ($id == 59) { $av = $a1; $f = $a0; $k = 0; } "  # the context: the verifier
            "printf(\"P\\t%u\\t%d\\t%d\\t%s\\n\", $ns, tid, $k, str(uptr($f)));")  # refuses a computed ctx address
    argv += (f" $more = 1; $i = (uint64)0; unroll({ARGS_SHOWN}) {{ if ($more) {{ "
             "$p = *uptr((uint64 *)($av + 8 * $i)); if ($p == 0) { $more = 0; } else { "
             "printf(\"P\\t%u\\t%d\\t%d\\t%s\\n\", $ns, tid, 16 + $i, str(uptr($p))); } $i = $i + 1; } } "
             "if ($more && *uptr((uint64 *)($av + 8 * $i)) != 0) { printf(\"P\\t%u\\t%d\\t15\\t\\n\", $ns, tid); }")
    ended = ("printf(\"X\\t%llu\\t%u\\t%d\\t%ld\\t%ld\\n\", nsecs, $ns, tid, $id, args->ret); "
             "if ($id == 22 || $id == 293) { if (args->ret == 0) { printf(\"Y\\t%u\\t%d\\t%d\\t%d\\n\", $ns, tid, "
             "*uptr((int32 *)@pp[tid]), *uptr((int32 *)(@pp[tid] + 4))); } delete(@pp[tid]); } "
             "if ($id == 72) { delete(@f[tid]); }")
    enter, leave = "tracepoint:raw_syscalls:sys_enter", "tracepoint:raw_syscalls:sys_exit"
    return "\n".join([
        "BEGIN { @w[0] = 0; @h[0] = 0; @f[0] = 0; @r[0] = 0; @pp[0] = 0; @l0[0] = 0; @l1[0] = 0; @l2[0] = 0; "
        "@l3[0] = 0; "
        "printf(\"B\\n\"); }",
        f"{enter} /pid == {owner} && args->id == 157 && args->args[0] == {MAGIC}/ {{",
        f"  if (args->args[1] == {WATCH}) {{ @w[args->args[2]] = 1; printf(\"R\\t%lu\\n\", args->args[2]); }}",
        f"  if (args->args[1] == {UNWATCH}) {{ delete(@w[args->args[2]]); }}",
        f"  if (args->args[1] == {QUIET}) {{ @h[args->args[2]] = 1; }}",
        f"  if (args->args[1] == {QUIET_TREE}) {{ @h[args->args[2]] = 2; }}",
        f"  if (args->args[1] == {SYNC}) {{ printf(\"S\\t%llu\\t%lu\\n\", nsecs, args->args[2]); }} }}",
        f"{enter} /{box}/ {{ $id = args->id; {NS}",
        "  if (curtask->thread_info.status & 2 || $id >= 0x40000000) {"
        " printf(\"C\\t%llu\\t%u\\t%d\\t%d\\t%ld\\n\", nsecs, $ns, pid, tid, $id); }",
        f"  else {{ if ({calls}) {{ {nspid} if ($id == 72) {{ @f[tid] = 1; }} if ($id == 47 || $id == 299) {{"
        " @r[tid] = 1; }",
        "    printf(\"E\\t%llu\\t%u\\t%d\\t%d\\t%d\\t%d\\t%ld\\t%ld\\t%ld\\t%ld\\t%ld\\n\","
        " nsecs, $ns, pid, tid, $nspid, $lv,"
        " $id, args->args[0], args->args[1], args->args[2], args->args[3]); } } }",
        *(f"{enter} /{box} && !(curtask->thread_info.status & 2)/ {{ $id = args->id; if ({calls}) {{ {NS} {body} }} }}"
          for body in [addresses]),
        *(f"{enter} /{box} && !(curtask->thread_info.status & 2)/ {{ $id = args->id; {NS} {_paths_at(k)} }}"
          for k in range(4)),
        f"{enter} /{box} && !(curtask->thread_info.status & 2)/ {{ $id = args->id; if ($id == 59 || $id == 322) {{"
        f" {NS} {argv} }} }}",
        f"{leave} /{box} && !(curtask->thread_info.status & 2)/ {{ $id = args->id;"
        f" if (({_any(ids)}) && ($id != 72 || @f[tid])) {{ {NS} {ended} }} }}",
        # a receive that asked for ancillary data: when it ends the process may hold descriptors nobody saw opened
        f"{leave} /{box}/ {{ $id = args->id; if (($id == 47 || $id == 299) && @r[tid]) {{ {NS}"
        " printf(\"X\\t%llu\\t%u\\t%d\\t%ld\\t%ld\\n\", nsecs, $ns, tid, $id, args->ret); delete(@r[tid]); } }",
        *(f"{leave} /{box}/ {{ $id = args->id; if ({_any(set(PATHS) - set(ARGV))}) {{ {NS} {_late(k)} }} }}"
          for k in range(4)),
        "tracepoint:task:task_newtask /@h[pid] == 2/ { @h[args->pid] = 2; }",  # a quiet tree stays quiet
        f"tracepoint:task:task_newtask /{watched}/ {{ {NS}",
        f"  {nspid} printf(\"N\\t%llu\\t%u\\t%d\\t%d\\t%d\\t%lu\\t%d\\t%d\\n\", nsecs, $ns, pid, tid, args->pid,"
        " args->clone_flags, $lv, $nspid); }",
        f"tracepoint:sched:sched_process_exit /{watched} && pid == tid/ {{ {NS}",
        "  printf(\"Q\\t%llu\\t%u\\t%d\\n\", nsecs, $ns, pid); }",
        # every task's end, watched or not (a box may be unwatched before its processes end): nothing of it stays
        # for a later task that gets its number
        "tracepoint:sched:sched_process_exit { delete(@h[tid]); delete(@f[tid]); delete(@r[tid]); delete(@pp[tid]); "
        "delete(@l0[tid]); delete(@l1[tid]); delete(@l2[tid]); delete(@l3[tid]); }",
    ]) + "\n"
