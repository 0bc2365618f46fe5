"""The env step, the reset and episodes/s of this tree against a baseline commit, measured in the same run.

Issue 15 reshaped the core (a tool runtime, a world of parts, a pool of worlds, trace schema 4): this checks that
none of it made an episode slower. A git worktree of ``BASELINE`` (the last commit before that work, or
``$RISKGYM_BASELINE``) runs its own ``bench/step_overhead.py`` and ``bench/episodes.py`` beside this tree's, one
after the other on the same machine and engine, and each figure is printed as the ratio now / baseline
(<= 1.05 counts as no worse: machines are noisy).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from figures import record

ROOT = Path(__file__).resolve().parents[1]
BASELINE = os.environ.get("RISKGYM_BASELINE", "895fb2e")
FIGURES = ("env step, shell true, trace written", "episode reset from the pool (in place), median",
           "single-step episodes/s, concurrency 1", "single-step episodes/s, concurrency 2",
           "a single-step episode from the pool")
TOLERANCE = 1.05


def figures_of(tree: Path) -> dict[str, dict]:
    """Run the tree's own step and episode benchmarks; return their figures by name."""
    with tempfile.NamedTemporaryFile(suffix=".jsonl") as out:
        env = {**os.environ, "RISKGYM_BENCH_FIGURES": out.name, "PYTHONPATH": f"{tree}:{tree / 'bench'}"}
        for script in ("step_overhead.py", "episodes.py"):
            subprocess.run([sys.executable, str(tree / "bench" / script)], cwd=tree / "bench", env=env, check=True,
                           stdout=subprocess.DEVNULL)
        return {row["name"]: row for row in map(json.loads, Path(out.name).read_text().splitlines())}


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="riskgym-baseline-") as tmp:
        base = Path(tmp) / "tree"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(base), BASELINE], check=True)
        try:
            before = figures_of(base)
            now = figures_of(ROOT)
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(base)], check=True)
    print(f"{'figure':<48} {'baseline':>10} {'now':>10}   now/baseline (worse when > {TOLERANCE})")
    worse = []
    for name in FIGURES:
        b, n = before[name], now[name]
        ratio = n["value"] / b["value"] if n["lower_is_better"] else b["value"] / n["value"]
        print(f"{name:<48} {b['value']:>8.2f}{b['unit']:<2} {n['value']:>8.2f}{n['unit']:<2}   {ratio:5.2f}x")
        record(f"vs {BASELINE}: {name}", ratio, "x", TOLERANCE, "no worse than the baseline")
        if ratio > TOLERANCE:
            worse.append(name)
    print(f"\n{'no figure is worse' if not worse else 'WORSE: ' + ', '.join(worse)} than {BASELINE} "
          "(ratios are time now / time then; for rates, rate then / rate now)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
