"""The same trivial task through inspect_ai, side by side: one bash ``true`` call by its ``mockllm`` model, then an
answer, one sample at a time; per-sample time with its local sandbox (no isolation) and with its Docker sandbox
where that runs here (it needs ``docker compose``).

inspect_ai lives in its own virtualenv (``.bench/inspect-venv``, made by ``make bench``), never in riskgym's.
Goal (issue 6): riskgym's per-episode overhead with hardened containers within 3x of inspect_ai's per sample with no
isolation; riskgym's single-step episode comes from ``episodes.py``, run before this in ``make bench``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from figures import record

ROOT = Path(__file__).resolve().parents[1]
PYTHON = ROOT / ".bench" / "inspect-venv" / "bin" / "python"
SAMPLES = 20


def per_sample(sandbox: str) -> float | None:
    """inspect_ai's seconds per sample with this sandbox, or None if it does not run here (said why)."""
    if sandbox == "docker" and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode:
        print("inspect_ai, docker sandbox: does not run here: it needs `docker compose` (v2), which Debian's "
              "docker.io lacks (PERF.md measured it at >= 1.6 s per sample on machines that have it)")
        return None
    out = subprocess.run([str(PYTHON), str(ROOT / "bench" / "inspect_task.py"), sandbox, str(SAMPLES)],
                         capture_output=True, text=True)
    if out.returncode != 0:
        why = (out.stderr or out.stdout).strip()[-200:] or f"exit code {out.returncode}"
        print(f"inspect_ai, {sandbox} sandbox: does not run here ({why})")
        return None
    return float(json.loads(out.stdout.strip().splitlines()[-1])["per_sample_s"])


def riskgym_cold_episode_ms() -> float | None:
    """The single-step episode (from the warm pool) that ``episodes.py`` recorded in this ``make bench`` run."""
    path = os.environ.get("RISKGYM_BENCH_FIGURES")
    if not path or not Path(path).is_file():
        return None
    rows = [json.loads(line) for line in Path(path).read_text().splitlines()]
    return next((r["value"] for r in rows if r["name"].startswith("a single-step episode from the pool")), None)


def main() -> int:
    if not PYTHON.is_file():
        print(f"no inspect_ai virtualenv at {PYTHON.parent.parent}: `make bench` makes it")
        return 0
    local = per_sample("local")
    docker = per_sample("docker")
    for name, value in (("local", local), ("docker", docker)):
        if value is not None:
            print(f"inspect_ai, {name} sandbox: {value * 1000:.0f} ms per sample ({SAMPLES} samples, one at a time)")
            record(f"inspect_ai per sample, {name} sandbox (same task)", value * 1000, "ms")
    ours = riskgym_cold_episode_ms()
    if local is not None and ours is not None:
        print(f"riskgym's single-step episode, hardened container: {ours:.0f} ms = {ours / (local * 1000):.1f}x "
              "inspect_ai's local sample (goal: <= 3x)")
        record("riskgym episode / inspect_ai local sample", ours / (local * 1000), "x", 3.0, "goal")
    return 0


if __name__ == "__main__":
    sys.exit(main())
