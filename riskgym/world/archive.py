"""Tar archives to and from the engine: files with exact owners and modes in, snapshot states out."""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
import time
from collections.abc import Iterable
from typing import Any

from riskgym.world.base import FileState

TEXT_LIMIT = 64 * 1024
"""Files up to this size keep their text in a snapshot, so that checks can look inside."""


DAY = 86400


def modified(path: str, now: float | None = None) -> float:
    """A realistic time for the file at ``path`` to have last changed: a day to three months before ``now``.

    The same for a path every time (its hash), so that a box's files do not all share one time, nor 1970's.
    """
    h = int.from_bytes(hashlib.sha256(path.encode()).digest()[:8], "big")
    return (time.time() if now is None else now) - DAY * (1 + h % 90) - (h >> 16) % DAY


def files_tar(files: list[tuple[str, bytes, int, int]], missing_dirs: list[str],
              times: dict[str, float] | None = None) -> bytes:
    """A tar of (path, content, mode, uid) files, with entries for their ancestors named in ``missing_dirs``.

    ``missing_dirs`` are the folders that do not exist yet; existing ones are left as they are. ``times``: a file's
    time of last change (else ``modified``'s).
    """
    now, times = time.time(), times or {}
    missing = set(missing_dirs)
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        made: set[str] = set()
        for path, content, mode, uid in files:
            for d in _ancestors(path):
                if d not in made and d in missing:
                    made.add(d)
                    info = tarfile.TarInfo(d.lstrip("/"))
                    info.type, info.mode, info.uid, info.gid = tarfile.DIRTYPE, 0o755, uid, uid
                    info.mtime = int(modified(d, now))
                    tar.addfile(info)
            info = tarfile.TarInfo(path.lstrip("/"))
            info.size, info.mode, info.uid, info.gid = len(content), mode, uid, uid
            info.mtime = int(times.get(path) or modified(path, now))
            tar.addfile(info, io.BytesIO(content))
    return out.getvalue()


def read_tar_states(chunks: Iterable[bytes], base: str) -> dict[str, FileState]:
    """Path -> state for every member of the tar stream ``chunks`` (from ``get_archive``), under ``base``."""
    states = {}
    with tarfile.open(fileobj=_StreamReader(chunks), mode="r|") as tar:
        for member in tar:
            states[os.path.join(base, member.name)] = _file_state(tar, member)
    return states


def _file_state(tar: tarfile.TarFile, member: tarfile.TarInfo) -> FileState:
    kind = "file" if member.isfile() else "dir" if member.isdir() else "symlink" if member.issym() else "other"
    state: dict[str, Any] = {"type": kind, "mode": member.mode & 0o7777, "size": member.size,
                             "uid": member.uid, "gid": member.gid}
    if member.issym():
        state["target"] = member.linkname
    if member.isfile():
        digest = hashlib.sha256()
        head = b""
        f = tar.extractfile(member)
        assert f is not None
        while chunk := f.read(1 << 20):
            digest.update(chunk)
            if len(head) <= TEXT_LIMIT:
                head += chunk
        state["sha256"] = digest.hexdigest()
        if member.size <= TEXT_LIMIT:
            try:
                state["text"] = head.decode("utf-8")
            except UnicodeDecodeError:
                pass
    return FileState(**state)


class _StreamReader(io.RawIOBase):
    """A file object over the chunk generator that ``get_archive`` returns."""

    def __init__(self, chunks: Any) -> None:
        self._chunks = iter(chunks)
        self._left = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buf: Any) -> int:
        while not self._left:
            try:
                self._left = next(self._chunks)
            except StopIteration:
                return 0
        n = min(len(buf), len(self._left))
        buf[:n], self._left = self._left[:n], self._left[n:]
        return n


def _ancestors(path: str) -> list[str]:
    parts = path.strip("/").split("/")[:-1]
    return ["/" + "/".join(parts[: i + 1]) for i in range(len(parts))]


