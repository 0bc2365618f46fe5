"""The boxes' seccomp profile: Docker's own restrictions, and the routes around an observer refused.

The host observer reads x86_64 system calls. Three routes do their work without one: io_uring (its operations are
not system calls; Docker 25's default profile refuses it, 20.10's allows it), 32-bit calls (``int $0x80`` from any
process: other numbers for the same work) and new namespaces (a new pid namespace's processes would not be the
box's). This profile refuses all three, as well as what Docker's default refuses to a container with no
capabilities (mounts, keys, kernel modules, BPF, performance counters, ``userfaultfd``, another process's memory),
and ``ptrace``: no process in a box may steer another, the harness's shell included. Where the host observer does
not run, the in-box one (strace) needs ``ptrace``, and the profile allows it.
"""

from __future__ import annotations

import functools
import json

EPERM, ENOSYS = 1, 38
REFUSED = (
    "io_uring_setup io_uring_enter io_uring_register "
    "unshare setns mount umount2 pivot_root chroot open_tree move_mount fsopen fsconfig fsmount fspick mount_setattr "
    "keyctl add_key request_key bpf perf_event_open userfaultfd lookup_dcookie kcmp personality "
    "process_vm_readv process_vm_writev pidfd_getfd name_to_handle_at open_by_handle_at "
    "init_module finit_module delete_module kexec_load kexec_file_load create_module get_kernel_syms query_module "
    "acct quotactl swapon swapoff reboot syslog vhangup iopl ioperm uselib ustat sysfs _sysctl nfsservctl "
    "clock_settime clock_adjtime settimeofday adjtimex afs_syscall tuxcall security vserver"
).split()
NAMESPACE_FLAGS = (0x20000, 0x2000000, 0x4000000, 0x8000000, 0x10000000, 0x20000000, 0x40000000)
"""CLONE_NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET: a clone with any of them is refused."""


@functools.lru_cache(maxsize=2)
def profile(ptrace: bool) -> str:
    """The profile as Docker takes it (``--security-opt seccomp=<this JSON>``); ``ptrace``: allow it (strace)."""
    refused = REFUSED + ([] if ptrace else ["ptrace"])
    rules: list[dict[str, object]] = [
        {"names": refused, "action": "SCMP_ACT_ERRNO", "errnoRet": EPERM},
        {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": ENOSYS},  # glibc falls back to clone
    ]
    rules += [{"names": ["clone"], "action": "SCMP_ACT_ERRNO", "errnoRet": EPERM,
               "args": [{"index": 0, "value": flag, "valueTwo": flag, "op": "SCMP_CMP_MASKED_EQ"}]}
              for flag in NAMESPACE_FLAGS]
    return json.dumps({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"], "syscalls": rules})
