"""Check that this Python environment holds exactly the versions in a lock file (pip-compile's format).

Usage: python containers/check_lock.py requirements.lock

Prints one line, `installed = locked: N packages`, and exits 0; or names each package whose installed version
differs from the lock, is missing, or is installed without being locked (pip and riskgym itself aside), and each
requirement of riskgym's (pyproject.toml, the dev extras included) that the lock does not meet, and exits 2.
"""

from __future__ import annotations

import re
import sys
from importlib import metadata
from pathlib import Path

UNLOCKED = {"pip", "riskgym"}
"""Installed but never locked: the venv's own installer, and the package being developed."""


def normalise(name: str) -> str:
    """A distribution name as PEP 503 compares it."""
    return re.sub(r"[-_.]+", "-", name).lower()


def locked(text: str) -> dict[str, str]:
    """``name==version`` pins at the start of a line, by normalised name."""
    return {normalise(m[1]): m[2] for m in re.finditer(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+?)\s*(?:\\|;|$)",
                                                       text, re.M)}


def installed() -> dict[str, str]:
    """Every distribution this interpreter sees, by normalised name."""
    return {normalise(d.metadata["Name"]): d.version for d in metadata.distributions() if d.metadata["Name"]}


def differences(lock: dict[str, str], have: dict[str, str]) -> list[str]:
    """What is off, one short phrase a package, sorted; empty when the environment is exactly the lock."""
    out = []
    for name, version in sorted(lock.items()):
        if name not in have:
            out.append(f"{name} missing (locked {version})")
        elif have[name] != version:
            out.append(f"{name} {have[name]} (locked {version})")
    out += [f"{name} {have[name]} (not locked)" for name in sorted(set(have) - set(lock) - UNLOCKED)]
    return out


def unmet(lock: dict[str, str], package: str = "riskgym", extras: tuple[str, ...] = ("", "dev")) -> list[str]:
    """The requirements of ``package`` (as installed, so as pyproject.toml says) that the lock's versions miss."""
    from packaging.requirements import Requirement

    out = []
    for text in metadata.requires(package) or []:
        req = Requirement(text)
        if req.marker is not None and not any(req.marker.evaluate({"extra": e}) for e in extras):
            continue
        have = lock.get(normalise(req.name))
        if have is None or not req.specifier.contains(have, prereleases=True):
            out.append(f"pyproject.toml asks for {req.name}{req.specifier}, the lock has {have or 'none'}")
    return out


def main(argv: list[str]) -> int:
    """Compare and say so in one line; 0 when equal, 2 otherwise."""
    if len(argv) != 1:
        print("usage: check_lock.py LOCKFILE", file=sys.stderr)
        return 2
    path = Path(argv[0])
    try:
        lock = locked(path.read_text())
    except OSError as err:
        print(f"{path}: cannot read it ({err.strerror}); run `make lock`", file=sys.stderr)
        return 2
    if not lock:
        print(f"{path}: no `name==version` pins in it; run `make lock`", file=sys.stderr)
        return 2
    stale = unmet(lock)
    if stale:
        print(f"{path} is out of date: {'; '.join(stale)}; run `make lock`", file=sys.stderr)
        return 2
    off = differences(lock, installed())
    if off:
        print(f"{sys.prefix}: installed differs from {path}: {'; '.join(off)}; remove {sys.prefix} and run make setup",
              file=sys.stderr)
        return 2
    print(f"installed = locked: {len(lock)} packages ({path})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
