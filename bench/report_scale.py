"""Looking at results at scale: the index over 100,000 episodes, and the HTML report of 10,000 in Chromium.

Goals (issue 5): a user with 100,000 episodes filters and aggregates them in seconds; the HTML report stays
responsive with 10,000 episodes and a trace of 5,000 events. PERF.md has no floor for these, so each figure is
printed against its goal: a query within 1 s; in the page, a filter or an opened episode within 100 ms (the
threshold at which a response stops feeling immediate), loading within 3 s.

Needs Debian's chromium for the page part (skipped without it).
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from figures import record
from grading_throughput import synthetic

from riskgym.core.trace import Header, ModelTurn, Step, TraceWriter
from riskgym.grading.runs import grade_run
from riskgym.viewing.html import CHUNK, write_report
from riskgym.viewing.index import aggregate, parse_filters, select, update

EPISODES, RUNS = 10_000, 10
OBSERVATION = "".join(f"-rw-r--r-- 1 agent agent {n * 37:>6} Nov 23 01:{n:02d} file-{n}.txt\n" for n in range(12))
THOUGHTS = "I will look at the folder first, then remove only what the user asked for. " * 3
LONG_EVENTS = 5_000


def ratio(took: float, goal: float, what: str, part: str = "HTML report") -> None:
    print(f"  {what}: {took * 1000:,.0f} ms ({took / goal:.2f}x the {goal * 1000:,.0f} ms goal"
          f"{'' if took <= goal else ': MISSES'})")
    record(f"{part}: {what}", took * 1000, "ms", goal * 1000, "goal")


def long_trace(path: Path) -> None:
    """A trace of LONG_EVENTS events: model turns and steps in turn."""
    writer = TraceWriter(path)
    writer.write(Header(riskgym_version="bench", scenario_id="free-disk-space", env_id="riskgym/free-disk-space-v0",
                        scenario_hash="h", agent="agent-long", image="i", image_id="i", started_at="t"))
    for i in range((LONG_EVENTS - 1) // 2):
        writer.write(ModelTurn(turn=i, message={"role": "assistant", "content": THOUGHTS}))
        writer.write(Step(index=i, tool="shell", arguments={"command": f"ls -l ~/dir{i}"}, observation=OBSERVATION))
    writer.close()


def bench_index(root: Path, rows_file: Path) -> None:
    rows = rows_file.read_text().splitlines()
    for r in range(RUNS):  # 10 runs of 10,000 graded episodes: the index reads grades.jsonl, not the traces
        run = root / f"run{r}"
        (run / "episodes").mkdir(parents=True)
        (run / "grades.jsonl").write_text("".join(
            json.dumps({**json.loads(line), "agent": f"model-{r % 4}"}) + "\n" for line in rows))
    print(f"index over {RUNS * len(rows):,} episodes in {RUNS} runs:")
    started = time.perf_counter()
    db, changed, _ = update(root)
    print(f"  first indexing ({changed} runs): {time.perf_counter() - started:.2f} s")
    started = time.perf_counter()
    update(root)
    ratio(time.perf_counter() - started, 1.0, "re-checking the index (nothing changed)", "index")
    started = time.perf_counter()
    groups = aggregate(db, parse_filters(["benign=no", "tool=shell"]), ["agent", "category"])
    ratio(time.perf_counter() - started, 1.0, f"aggregate by agent and category, filtered ({len(groups)} groups)",
          "index")
    started = time.perf_counter()
    found = select(db, parse_filters(["intention=yes", "scenario=reset-*,ticket-*", "agent=model-1,model-2"]))
    ratio(time.perf_counter() - started, 1.0, f"select with three filters ({len(found):,} episodes)", "index")


def bench_page(run_dir: Path) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from browser import Chromium, chromium_path

    page_file = run_dir / "report.html"
    started = time.perf_counter()
    n = write_report(run_dir, page_file)
    took = time.perf_counter() - started
    print(f"HTML report of {n:,} episodes: written in {took:.1f} s, {page_file.stat().st_size / 1e6:.1f} MB")
    if chromium_path() is None:
        print("  no chromium: the page's own timings are skipped (apt-get install chromium)")
        return
    with Chromium() as page:
        started = time.perf_counter()
        page.open(page_file.as_uri(), "document.querySelectorAll('#episodes-table tbody tr').length > 0")
        ratio(time.perf_counter() - started, 3.0, "load until the episode table shows")

        def timed(js: str) -> float:
            return float(page.evaluate(f"(async () => {{ const t = performance.now(); {js}; "
                                       "return performance.now() - t; })()")) / 1000

        ratio(timed("const s = document.getElementById('f-verdict'); s.value = 'intention:1'; "
                    "s.dispatchEvent(new Event('change'))"), 0.1, "filter 10,000 episodes by a verdict")
        ratio(timed("document.querySelector('#episodes-table thead th[data-col=\"2\"]').click()"), 0.1,
              "sort them by agent")
        long = page.evaluate("ROWS.findIndex(r => r[2] === 'agent-long')")
        ratio(timed(f"await openEpisode({long}); document.body.getBoundingClientRect()"), 0.1,
              f"open the {LONG_EVENTS:,}-event trace (its first {CHUNK} events drawn)")
        ratio(timed("await more(); document.body.getBoundingClientRect()"), 0.1, f"draw its next {CHUNK} events")
        rest = timed("while (document.getElementById('v-more').style.display !== 'none') await more(); "
                     "document.body.getBoundingClientRect()")
        print(f"  draw all the rest, {CHUNK} at a time: {rest * 1000:,.0f} ms (no goal: a reader clicks for each)")


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp) / "page-run"
        started = time.perf_counter()
        synthetic(run_dir, EPISODES - 1, OBSERVATION, THOUGHTS)
        long_trace(run_dir / "episodes" / "free-disk-space-v0__agent-long__e0.jsonl")
        grade_run(run_dir)
        print(f"wrote and graded {EPISODES:,} synthetic traces in {time.perf_counter() - started:.1f} s")
        bench_page(run_dir)
        bench_index(Path(tmp) / "index-root", run_dir / "grades.jsonl")
    return 0


if __name__ == "__main__":
    sys.exit(main())
