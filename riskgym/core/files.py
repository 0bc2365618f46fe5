"""Writing files so that a crash or Ctrl-C never leaves one half-written."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from riskgym.errors import RecordError, RiskgymError


def check_folder(out: Path, flag: str, resume: str) -> None:
    """``out`` can be a folder: RiskgymError naming ``flag`` when it, or a folder it would be in, is a file.

    ``resume``: what an existing folder there may be (``a run's to resume it``).
    """
    for at in (out, *out.parents):
        if at.exists():
            if not at.is_dir():
                where = "is a file" if at == out else f"is under {at}, a file"
                raise RiskgymError(f"{flag} {out}: {where}; give a folder (a new one, or {resume})")
            return


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
        with contextlib.suppress(OSError):  # its folder may not be one (a path under a file)
            tmp.unlink(missing_ok=True)
        raise cannot_write(path, exc) from None
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise
