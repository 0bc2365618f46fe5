"""Writing files so that a crash or Ctrl-C never leaves one half-written."""

from __future__ import annotations

import os
from pathlib import Path

from riskgym.errors import RecordError


def cannot_write(path: Path, exc: OSError) -> RecordError:
    """The one-line error for a file riskgym could not write, with the fix for the usual causes."""
    import errno

    fix = ("free some space there and run the same command again" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else
           "give a path in a folder you can write to")
    return RecordError(f"{path}: cannot write it ({exc.strerror or exc}); {fix}")


def write_atomic(path: Path, data: str | bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file beside it, renamed into place once complete."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        if isinstance(data, str):
            tmp.write_text(data, encoding="utf-8")
        else:
            tmp.write_bytes(data)
        tmp.replace(path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise cannot_write(path, exc) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
