"""One member's offset in a kernel struct, read from the kernel's own type information (``/sys/kernel/btf/vmlinux``).

The host observer needs where ``struct pid`` keeps its ``numbers[]`` (a process's pid in each pid namespace): the
array's offset moves between kernel versions, and bpftrace 0.17 has no ``offsetof``. BTF's format is the kernel's
(``Documentation/bpf/btf.rst``): a header, then the types one after another, each with a tail whose size its kind
gives, then the strings.
"""

from __future__ import annotations

import functools
import struct

VMLINUX = "/sys/kernel/btf/vmlinux"
STRUCT, UNION = 4, 5
TAIL = {1: 4, 3: 12, 14: 4, 17: 4}
"""Kinds with a fixed tail: INT, ARRAY, VAR, DECL_TAG (bytes)."""
PER_MEMBER = {4: 12, 5: 12, 6: 8, 13: 8, 15: 12, 19: 12}
"""Kinds with a tail per member: STRUCT, UNION, ENUM, FUNC_PROTO, DATASEC, ENUM64 (bytes each)."""


@functools.cache
def member_offset(struct_name: str, member: str, path: str = VMLINUX) -> int:
    """The byte offset of ``member`` in ``struct struct_name``; LookupError when either is not there."""
    with open(path, "rb") as f:
        data = f.read()
    magic, _, _, hdr_len, type_off, type_len, str_off, _ = struct.unpack_from("<HBBIIIII", data)
    if magic != 0xEB9F:
        raise LookupError(f"{path} is not BTF")
    strings = hdr_len + str_off

    def name(off: int) -> bytes:
        start = strings + off
        return data[start:data.index(b"\0", start)]

    want, field = struct_name.encode(), member.encode()
    pos, end = hdr_len + type_off, hdr_len + type_off + type_len
    while pos < end:
        name_off, info, _ = struct.unpack_from("<III", data, pos)
        kind, vlen = (info >> 24) & 0x1F, info & 0xFFFF
        pos += 12
        if kind == STRUCT and name(name_off) == want:
            for i in range(vlen):
                m_name, _, m_off = struct.unpack_from("<III", data, pos + 12 * i)
                if name(m_name) == field:
                    bits = m_off & 0xFFFFFF if info >> 31 else m_off  # kind_flag: bitfield size in the top byte
                    return bits // 8
            raise LookupError(f"struct {struct_name} has no member {member}")
        pos += TAIL.get(kind, 0) + PER_MEMBER.get(kind, 0) * vlen
    raise LookupError(f"no struct {struct_name} in {path}")
