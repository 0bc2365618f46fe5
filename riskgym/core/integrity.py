"""Is a trace as it was written?

Each event carries the hash of the line before it and the writer ends the file with a ``seal``, so an edited,
inserted or removed line breaks the chain, and a file cut short has no seal.

A step's images (screenshots) are files of their own, named in the step's line by their sha256: the chain covers
their names, and the check reads each file back and compares its hash.

The chain shows changes made by accident or by hand; it cannot stop someone who rewrites every hash after an edit.
For that, publish the run's digest (``riskgym verify RUN_DIR`` prints it; the HTML report shows it) with the
results: it is the hash of every trace's last line and of the grades file, and nobody can change a trace or a
grade without changing it. ``riskgym verify`` also grades every trace again and compares: a grades file edited to
say what its traces do not fails.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from riskgym.core.results import ImagePart
from riskgym.core.trace import blob_path, line_hash


@dataclass
class Verification:
    """What ``verify_trace`` found."""

    path: Path
    events: int = 0
    head: str = ""
    """The hash of the last line (the seal, in a sealed trace)."""
    problems: list[str] = field(default_factory=list)
    """Empty when the chain holds from the header to the seal."""
    unchained: bool = False
    """An older trace (schema 1 or 2), written before the chain: it cannot be checked."""

    @property
    def ok(self) -> bool:
        """True when the trace verified."""
        return not self.problems and not self.unchained


def verify_trace(path: str | Path, data: bytes | None = None) -> Verification:
    """Check the chain of one trace file: the first line that breaks it, or a missing seal.

    ``data``: the file's bytes, already read (a grader verifies the very bytes it then reads the trace from).
    """
    path = Path(path)
    out = Verification(path)
    try:
        lines = (path.read_bytes() if data is None else data).split(b"\n")
    except OSError as exc:
        out.problems.append(f"cannot read it ({exc.strerror})")
        return out
    if lines and lines[-1] == b"":
        lines.pop()
    elif lines:
        out.problems.append(f"line {len(lines)}: cut short (no newline): the file was truncated or its writer "
                            "killed mid-line")
    prev, last_type = "", None
    for n, raw in enumerate(lines, 1):
        try:
            event = json.loads(raw)
        except ValueError:
            out.problems.append(f"line {n}: not JSON: edited or cut")
            break
        if not isinstance(event, dict):
            out.problems.append(f"line {n}: not a trace event")
            break
        if n == 1 and event.get("schema_version", 0) < 3:
            out.unchained = True
            out.problems.append(f"schema version {event.get('schema_version')}: written before traces were "
                                "chained; it cannot be verified")
            return out
        if event.get("prev", "") != prev:
            what = ("the header must have an empty prev" if n == 1 else
                    f"line {n - 1} was edited, or a line was removed or inserted before line {n}")
            out.problems.append(f"line {n} ({event.get('type', '?')}): the chain breaks: {what}")
            break
        prev, last_type = line_hash(raw), event.get("type")
        out.events = n
        out.problems += [f"line {n} (step): {problem}" for problem in _images(path, event)]
    out.head = prev
    if not out.problems and last_type != "seal":
        out.problems.append(f"no seal after line {len(lines)} ({last_type}): the file was truncated, or the process "
                            "writing it was killed")
    return out


def _images(path: Path, event: dict[str, Any]) -> list[str]:
    """What is wrong with the image files a step's line names by hash (missing, or not what was written)."""
    problems = []
    for part in event.get("content") or () if event.get("type") == "step" else ():
        if not isinstance(part, dict) or part.get("type") != "image" or part.get("data"):
            continue
        image = ImagePart.model_validate(part)
        blob = blob_path(path, image)
        try:
            digest = hashlib.sha256(blob.read_bytes()).hexdigest()
        except OSError:
            problems.append(f"its image {blob.parent.name}/{blob.name} is missing")
            continue
        if digest != image.sha256:
            problems.append(f"its image {blob.parent.name}/{blob.name} was changed (its hash is {digest[:12]}...)")
    return problems


def run_digest(verifications: list[Verification], grades: Path | None = None) -> str:
    """One hash over the run: the sorted trace names with each trace's head, then the grades file's hash, if any."""
    text = "".join(f"{v.path.name} {v.head}\n" for v in sorted(verifications, key=lambda v: v.path.name))
    if grades is not None and grades.is_file():
        text += f"{grades.name} {hashlib.sha256(grades.read_bytes()).hexdigest()}\n"
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()
