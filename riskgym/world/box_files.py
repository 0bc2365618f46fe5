"""Snapshots: every file's hash, mode and owner, packed files looked into for the checks' texts.

Part of the executor.

Run inside the container beside :mod:`riskgym.world.executor` (loaded as a module of its own); the standard
library only, any Python >= 3.7.
"""

import base64
import os
import re

PEEK_LIMIT = 16 << 20
"""A file up to this size is looked into (unpacked, decoded) for the texts the checks look for; a larger one is
searched as it is."""


HASH_LIMIT = 64 << 20
"""A snapshot hashes files up to this size; a larger one (a sparse terabyte, say) gets a stand-in of its size and
modification time instead of hours of reading."""


def peek(data, needles, depth=0):
    """The needles found in ``data``: as they are, decoded from base64, or inside gzip/bz2/xz, tar and zip."""
    import bz2
    import gzip
    import io
    import lzma
    import tarfile
    import zipfile

    found = {n for n in needles if n.encode() in data}
    if depth > 2 or len(found) == len(needles):
        return found
    inner = []
    try:
        if data[:2] == b"\x1f\x8b":
            inner.append(gzip.decompress(data)[:PEEK_LIMIT])
        elif data[:3] == b"BZh":
            inner.append(bz2.decompress(data)[:PEEK_LIMIT])
        elif data[:6] == b"\xfd7zXZ\x00":
            inner.append(lzma.decompress(data)[:PEEK_LIMIT])
        elif data[:4] == b"PK\x03\x04":
            with zipfile.ZipFile(io.BytesIO(data)) as z:
                inner += [z.read(i)[:PEEK_LIMIT] for i in z.infolist()[:1000] if not i.is_dir()]
        elif len(data) > 512 and data[257:262] == b"ustar":
            with tarfile.open(fileobj=io.BytesIO(data)) as t:
                inner += [t.extractfile(m).read(PEEK_LIMIT) for m in t.getmembers()[:1000] if m.isfile()]
        elif re.fullmatch(rb"[A-Za-z0-9+/=\s]{16,}", data[:PEEK_LIMIT]):
            inner.append(base64.b64decode(re.sub(rb"\s", b"", data) + b"==", validate=False))
    except Exception:  # a damaged archive, not base64 after all: nothing more in it
        pass
    for blob in inner:
        found |= peek(blob, [n for n in needles if n not in found], depth + 1)
    return found


def stat_tree(paths, text_limit, skip=None, needles=()):
    """Path -> state (type, mode, size, uid, gid, sha256, text, target) of everything under ``paths``.

    Symlinks are never followed; ``skip`` (the executor's own folder) is left out. This user's own entries that
    it may not read are opened up for that moment and set back; another user's file that it cannot read, and any file
    over ``HASH_LIMIT``, gets a stand-in hash of its size and modification time.
    """
    import hashlib
    import stat as st

    out = {}

    def one(full):
        try:
            info = os.lstat(full)
        except OSError:
            return
        kind = ("file" if st.S_ISREG(info.st_mode) else "dir" if st.S_ISDIR(info.st_mode) else
                "symlink" if st.S_ISLNK(info.st_mode) else "other")
        state = {"type": kind, "mode": st.S_IMODE(info.st_mode), "size": info.st_size if kind == "file" else 0,
                 "uid": info.st_uid, "gid": info.st_gid}
        if kind == "symlink":
            state["target"] = os.readlink(full)
        elif kind == "file" and info.st_size > HASH_LIMIT:
            state["sha256"] = "large:%d:%d" % (info.st_size, info.st_mtime_ns)
        elif kind == "file":
            try:
                digest, head, tail, found = hashlib.sha256(), b"", b"", set()
                whole = needles and info.st_size <= PEEK_LIMIT
                keep = PEEK_LIMIT if whole else text_limit
                with opened(full, lambda: open(full, "rb")) as f:
                    for chunk in iter(lambda: f.read(1 << 20), b""):
                        digest.update(chunk)
                        if len(head) <= keep:
                            head += chunk
                        elif needles:  # a large file: its bytes, searched a chunk at a time
                            found |= {n for n in needles if n.encode() in (tail or head)[-4096:] + chunk}
                            tail = chunk
                state["sha256"] = digest.hexdigest()
                if needles:
                    found |= peek(head, needles) if whole else {n for n in needles if n.encode() in head}
                    state["found"] = sorted(found)
                if info.st_size <= text_limit:
                    try:
                        state["text"] = head.decode("utf-8")
                    except UnicodeDecodeError:
                        pass
            except OSError:
                state["sha256"] = "unreadable:%d:%d" % (info.st_size, info.st_mtime_ns)
        out[full] = state

    def opened(full, need):
        """Run ``need()``; if this user's own entry forbids it, open the mode up for that moment and put it back."""
        try:
            return need()
        except PermissionError:
            info = os.lstat(full)
            if info.st_uid != os.getuid():
                raise
            os.chmod(full, st.S_IMODE(info.st_mode) | 0o700)
            try:
                return need()
            finally:
                os.chmod(full, st.S_IMODE(info.st_mode))

    stack = [(p, None) for p in reversed(paths)]
    while stack:  # iterative: a tree thousands of folders deep must not exhaust Python's stack
        full, restore = stack.pop()
        if restore is not None:  # this user's closed folder, opened for the walk: set back
            try:
                os.chmod(full, restore)
            except OSError:
                pass
            continue
        if full == skip:
            continue
        one(full)
        if not os.path.isdir(full) or os.path.islink(full):
            continue
        try:
            info = os.lstat(full)
            mode = st.S_IMODE(info.st_mode)
            if info.st_uid == os.getuid() and mode & 0o500 != 0o500:  # this user's folder that it may not enter
                os.chmod(full, mode | 0o700)
                stack.append((full, mode))
            stack += [(os.path.join(full, name), None) for name in sorted(os.listdir(full), reverse=True)]
        except OSError:
            pass
    return out


def copy_tree(src, dst):
    """Copy the files under ``src`` into ``dst`` (modes kept; owned by this user)."""
    problems = []
    for root, _dirs, files in os.walk(src):
        target = os.path.join(dst, os.path.relpath(root, src))
        try:
            os.makedirs(target, exist_ok=True)
            for name in files:
                with open(os.path.join(root, name), "rb") as f, open(os.path.join(target, name), "wb") as g:
                    g.write(f.read())
                os.chmod(os.path.join(target, name), os.stat(os.path.join(root, name)).st_mode & 0o7777)
        except OSError as exc:
            problems.append("%s: %s" % (target, exc.strerror))
    return problems
