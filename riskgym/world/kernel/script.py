"""What the host observer reads of the box's system calls, and the lines the host makes of its records (``bpf/``).

Two ``raw_syscalls`` tracepoints (one program each, whatever the call) and the scheduler's ``task_newtask`` and
``sched_process_exit`` (``bpf/observe.bpf.c``, whose table of calls ``build.py`` makes from the tables here). Each
program first asks whether the calling task's pid namespace is a watched box's (a map lookup in the kernel): every
other process on the host costs that lookup and nothing more. A watched call is one record in a ring buffer, then
one per string it reads (a path, an argument of a program), each tagged with the thread, each string with its
length: no text the agent chose can be taken for a field or a record. The host's process reads them
(``observer.py``) into lines:

- ``E ts ns pid tid nspid level id a0 a1 a2 a3``  a call began (``pid``/``tid`` as the host numbers them, ``nspid``
  the process in its own namespace, ``level`` its namespace's depth: the box's, or less for a process entering it)
- ``P ns tid k text``  the call's k-th string (a path; 16+ an argument of a program, 15 a cut argument list);
  a path in a page not yet in memory is read when the call ends, after its X line
- ``A ns tid family port address``  the address a connect, send or bind names
- ``H ns tid flags``  openat2's flags (they are in a struct, not an argument)
- ``X ts ns tid id ret port``  the call ended (``port``: a connect's or send's socket's own port, or 0);
  ``Y ns tid fd0 fd1`` a pipe's two ends
- ``F ts ns pid tid nspid level id a0 a1 a2 a3 ret``  a call read by its numbers alone (``PLAIN``), written once,
  when it ended (``ts``)
- ``N ts ns pid tid child flags level nspid``  a task was made (a process, or a thread when ``flags`` has
  CLONE_THREAD), by ``pid`` (``nspid`` in its namespace)
- ``Q ts ns pid``  a process ended
- ``C ts ns pid tid id``  a 32-bit or x32 system call: not read (the box's seccomp profile refuses them)
- ``S ts seq``  a sync mark from the host; ``R ns`` a namespace watched from now on; ``L n`` n records the ring
  buffer had no room for

The host may also name a process of its own in a box (the executor: ``QUIET``) whose calls are not printed (its
forks still are), until it ends, or a process whose whole tree is not printed (the desktop's driver and its apps,
which their own in-box observer follows: ``QUIET_TREE``). Of ``fcntl`` only what copies a descriptor is. A call
the box's profile refused (``REFUSED_CALLS``) is an ``F`` line too, its arguments read from its registers.
"""

from __future__ import annotations

MAGIC = 0x52474B31
"""``prctl``'s option with which the host's own process talks to the programs (no such option exists: EINVAL)."""
WATCH, UNWATCH, SYNC, QUIET, QUIET_TREE = 1, 0, 2, 3, 4

PATHS = {2: (0,), 257: (1,), 437: (1,), 85: (0,), 87: (0,), 84: (0,), 263: (1,), 82: (0, 1), 264: (1, 3),
         316: (1, 3), 86: (0, 1), 265: (1, 3), 88: (0, 1), 266: (0, 2), 83: (0,), 258: (1,), 133: (0,), 259: (1,),
         76: (0,), 90: (0,), 268: (1,), 452: (1,), 92: (0,), 94: (0,), 260: (1,), 80: (0,), 59: (0,), 322: (1,)}
"""x86_64 call number -> which arguments are paths (open, openat, openat2, creat, unlink, rmdir, unlinkat, rename,
renameat, renameat2, link, linkat, symlink, symlinkat, mkdir, mkdirat, mknod, mknodat, truncate, chmod, fchmodat,
fchmodat2, chown, lchown, fchownat, chdir, execve, execveat)."""
PLAIN = (77, 91, 93, 62, 200, 234, 424, 32, 33, 292, 22, 293, 81, 72, 425, 426, 427, 56, 435, 57, 58, 95, 434, 112,
         109)
"""Calls read by their numbers alone: ftruncate, fchmod, fchown, kill, tkill, tgkill, pidfd_send_signal, dup, dup2,
dup3, pipe, pipe2, fchdir, fcntl, io_uring's three (refused in the box: seen if tried), the forks (clone, clone3,
fork, vfork: one refused at the process limit is an attempt to spawn), umask (the mode a file is made with),
pidfd_open (the process a pidfd_send_signal reaches), setsid and setpgid (the members of a group a kill reaches).
Not ``close``: every call that can give a process a directory's descriptor is read (its entry in the reader's table
is replaced), and a call costs the box a record: ``find`` closes as often as it opens."""
REFUSED_CALLS = {
    425: "io_uring_setup", 426: "io_uring_enter", 427: "io_uring_register", 272: "unshare", 308: "setns",
    165: "mount", 166: "umount2", 155: "pivot_root", 161: "chroot", 428: "open_tree", 429: "move_mount",
    430: "fsopen", 431: "fsconfig", 432: "fsmount", 433: "fspick", 442: "mount_setattr", 250: "keyctl",
    248: "add_key", 249: "request_key", 321: "bpf", 298: "perf_event_open", 323: "userfaultfd",
    212: "lookup_dcookie", 312: "kcmp", 135: "personality", 310: "process_vm_readv", 311: "process_vm_writev",
    438: "pidfd_getfd", 303: "name_to_handle_at", 304: "open_by_handle_at", 175: "init_module",
    313: "finit_module", 176: "delete_module", 246: "kexec_load", 320: "kexec_file_load", 174: "create_module",
    177: "get_kernel_syms", 178: "query_module", 163: "acct", 179: "quotactl", 167: "swapon", 168: "swapoff",
    169: "reboot", 103: "syslog", 153: "vhangup", 172: "iopl", 173: "ioperm", 134: "uselib", 136: "ustat",
    139: "sysfs", 156: "_sysctl", 180: "nfsservctl", 227: "clock_settime", 305: "clock_adjtime",
    164: "settimeofday", 159: "adjtimex", 183: "afs_syscall", 184: "tuxcall", 185: "security", 236: "vserver",
    101: "ptrace", 56: "clone"}
"""Calls the box's seccomp profile refuses (``riskgym.world.seccomp``; ``clone`` with a new namespace's flag, and
``ptrace`` where the host observer runs), by x86_64 number. A refused call never reaches the tracepoint where calls
begin, only the one where they end: there, one that began unseen and ended in EPERM is read with the arguments in
its registers, so that an attempt the box refused is still seen."""
ADDRESSES = {42: 1, 44: 4, 49: 1}
"""Calls with a socket address: connect, sendto (its fifth argument), bind; sendmsg and sendmmsg hold theirs in a
message header."""
RECEIVE = (47, 299)
"""recvmsg and recvmmsg, read only when they ask for ancillary data (a descriptor can come that way)."""
ARGV = {59: 1, 322: 2}
ARGS_SHOWN = 16
STRLEN = 200
"""The longest string read, its ending zero included: a longer path arrives cut, and the step says so."""
RING = 16 << 20
"""The ring buffer's size (bytes): about 58,000 records."""
CLONE_THREAD = 0x10000
NAMES = {56: "clone", 435: "clone3", 57: "fork", 58: "vfork", 47: "recvmsg", 299: "recvmmsg",
         2: "open", 257: "openat", 437: "openat2", 85: "creat", 87: "unlink", 84: "rmdir", 263: "unlinkat",
         82: "rename", 264: "renameat", 316: "renameat2", 86: "link", 265: "linkat", 88: "symlink", 266: "symlinkat",
         83: "mkdir", 258: "mkdirat", 133: "mknod", 259: "mknodat", 76: "truncate", 77: "ftruncate", 90: "chmod",
         91: "fchmod", 268: "fchmodat", 452: "fchmodat2", 92: "chown", 93: "fchown", 94: "lchown", 260: "fchownat",
         62: "kill", 200: "tkill", 234: "tgkill", 424: "pidfd_send_signal", 42: "connect", 44: "sendto",
         46: "sendmsg", 307: "sendmmsg", 49: "bind", 32: "dup", 33: "dup2", 292: "dup3", 22: "pipe", 293: "pipe2",
         80: "chdir", 81: "fchdir", 3: "close", 436: "close_range", 59: "execve", 322: "execveat", 72: "fcntl",
         425: "io_uring_setup", 426: "io_uring_enter", 427: "io_uring_register", 95: "umask", 434: "pidfd_open",
         112: "setsid", 109: "setpgid", **REFUSED_CALLS}
