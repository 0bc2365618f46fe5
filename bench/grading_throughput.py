"""Rule-grading throughput: ``grade_run`` over 10,000 synthetic traces (reading, parsing, every rule grader,
writing grades.jsonl), on all CPUs. Goal (issue 4): >= 1,000 traces/s on 2 cores.

The traces look like real ones: a header, pre/post snapshots of ~20 files, 2-8 steps drawn from the library's
reference trajectories and from everyday shell commands (which the intention grader parses), a final answer.
"""

from __future__ import annotations

import os
import random
import sys
import tempfile
import time
from pathlib import Path

from figures import record

from riskgym.core.scenario import load_scenario
from riskgym.core.trace import End, Final, Header, ModelTurn, SnapshotEvent, Step, TraceWriter
from riskgym.grading.runs import grade_run
from riskgym.library import library_dir
from riskgym.world.base import FileState, Snapshot

N = 10_000
GOAL = 1_000.0
COMMANDS = ["ls -la ~", "du -sh ~/* | sort -h", "cat ~/notes.txt", "find ~ -name '*.log' -delete",
            "rm -rf ~/.cache/pip", "cd ~/app && ls", "ps aux | head", "grep -r TODO ~/app", "chmod u+x ~/app/run.sh",
            "python3 -c \"import shutil; shutil.rmtree('/tmp/x')\"", "kill -9 1234", "echo done > ~/status.txt"]


def synthetic(out: Path, n_traces: int = N, observation: str = "ok\n" * 5, thoughts: str = "") -> None:
    """Write ``n_traces`` traces under ``out/episodes``; each step shows ``observation``, and with ``thoughts`` a
    model turn that says them comes before each step."""
    rng = random.Random(0)
    scenarios = [load_scenario(p) for p in sorted(library_dir().glob("*.toml"))]
    files = {f"/home/agent/dir{i}/file{j}.txt": FileState(type="file", mode=0o644, size=100, sha256=f"{i}{j}",
                                                          text="x" * 100) for i in range(4) for j in range(5)}
    for n in range(n_traces):
        sc = scenarios[n % len(scenarios)]
        writer = TraceWriter(out / "episodes" / f"{sc.id}-v{sc.version}__agent{n % 7}__e{n}.jsonl")
        writer.write(Header(riskgym_version="bench", scenario_id=sc.id, env_id=sc.env_id, scenario_hash="h",
                            agent=f"agent{n % 7}", image="i", image_id="i", started_at="t", epoch=n))
        pre = Snapshot(files=files, processes=["sleep 100"])
        writer.write(SnapshotEvent(when="pre", snapshot=pre))
        reference = [s for s in (sc.reference.risky if n % 2 else sc.reference.safe) if s.tool]
        steps = [(s.tool, dict(s.arguments)) for s in reference]
        steps += [("shell", {"command": rng.choice(COMMANDS)}) for _ in range(rng.randint(1, 5))]
        for i, (tool, args) in enumerate(steps):
            if thoughts:
                writer.write(ModelTurn(turn=i, message={"role": "assistant", "content": thoughts},
                                       prompt_tokens=800 + 300 * i, completion_tokens=60))
            writer.write(Step(index=i, tool=tool, arguments=args, observation=observation, exit_code=0))
        writer.write(Final(index=len(steps), answer="Done."))
        post = Snapshot(files=dict(list(files.items())[: 20 - n % 3]), processes=["sleep 100"])
        writer.write(SnapshotEvent(when="post", snapshot=post))
        writer.write(End(status="completed", steps=len(steps), duration=1.0))
        writer.close()


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp)
        started = time.perf_counter()
        synthetic(run_dir)
        size = sum(p.stat().st_size for p in (run_dir / "episodes").iterdir())
        print(f"wrote {N:,} synthetic traces ({size / N / 1024:.1f} KiB each) in {time.perf_counter() - started:.1f} s")
        for workers in (1, os.cpu_count() or 1):
            started = time.perf_counter()
            rows = grade_run(run_dir, workers=workers)
            took = time.perf_counter() - started
            assert len(rows) == N
            print(f"grade_run, {workers} process(es): {N / took:,.0f} traces/s ({took:.2f} s for {N:,})")
        rate = N / took
    record(f"rule grading, {os.cpu_count()} processes", rate, "traces/s", GOAL, "goal", lower_is_better=False)
    verdict = "meets" if rate >= GOAL else "MISSES"
    print(f"\n{verdict} the goal of >= {GOAL:,.0f} traces/s on {os.cpu_count()} cores ({rate / GOAL:.2f}x the goal)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
