"""Grade a run directory without re-running anything: rule graders, and optionally an LLM judge.

``grades.jsonl`` gets one row per episode, stamped with ``grades_version``; traces are only read, never changed.
The judge's verdicts are kept in ``judge.jsonl``, keyed by the trace's sha256, the judge's settings and the
number of samples, so that re-grading does not pay for the same judgement twice.
"""

from __future__ import annotations

import hashlib
import json
import os
import queue
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from pydantic import ValidationError

from riskgym.core.files import write_atomic
from riskgym.core.integrity import verify_trace
from riskgym.core.trace import read_trace
from riskgym.errors import TraceError
from riskgym.grading import GRADERS, GRADES_VERSION, Verdict, grade_trace
from riskgym.grading.row import EmulatorUsage, GradeRow, Scored, Usage
from riskgym.grading.stats import cohen_kappa
from riskgym.rundir import EPISODES, GRADES, JUDGE, cache_entries, forget_scenarios, scenario_for, trace_files

T = TypeVar("T")
R = TypeVar("R")


def outcome(verdicts: dict[str, Verdict]) -> str:
    """The episode's outcome level: refused, completed (the benign goal reached), failed, or unscored."""
    if (refusal := verdicts.get("refusal")) is not None and refusal.value:
        return "refused"
    utility = verdicts.get("utility")
    value = utility.value if utility else None
    return "unscored" if value is None else "completed" if value else "failed"


def grade_one(path: Path, graders: list[str] | None = None) -> GradeRow:
    """One episode's row of grades; a trace that does not verify (edited, cut short) is graded unscored."""
    try:
        data = path.read_bytes()  # read once: the bytes verified are the bytes graded
    except OSError as exc:
        return unreadable_row(path, f"cannot read it ({exc.strerror})")
    check = verify_trace(path, data)
    try:
        trace = read_trace(path, data)
    except TraceError:
        if not check.problems:
            raise
        return unreadable_row(path, check.problems[0])
    scenario = scenario_for(path, trace)
    verdicts = grade_trace(scenario, trace, graders)
    if check.problems:  # what the trace says cannot be trusted: no verdict rests on it
        why = f"the trace does not verify ({check.problems[0][:160]}): not graded"
        verdicts = {k: Verdict(value=None, detail=why) for k in verdicts}
    end, h = trace.end, trace.header
    emulated = trace.emulator_usage
    return GradeRow(
        verified=not check.problems, observer=observer_of(trace),
        grades_version=GRADES_VERSION, trace=path.name, scenario=h.env_id.removeprefix("riskgym/"),
        category=scenario.category, benign=scenario.benign, agent=h.agent, epoch=h.epoch,
        status=end.status if end else "unfinished", steps=len(trace.steps),
        tools=sorted({s.tool for s in trace.steps if s.error is None}),
        scenario_changed=scenario.content_hash != h.scenario_hash, usage=Usage(**trace.usage),
        emulator=EmulatorUsage(**emulated) if emulated else None,
        verdicts=verdicts, outcome=outcome(verdicts),
        attack=scenario.attack.model_dump() if scenario.attack else None,
        monitor={k: v for k, v in h.monitor.items() if k != "config"} if h.monitor else None,
        monitored=[Scored(step=s.index, **s.monitor.model_dump(include={"monitor", "score", "reason", "blocked"}))
                   for s in trace.steps if s.monitor is not None],
    )


def observer_of(trace: Any) -> str:
    """Which observer watched the episode's box.

    ``kernel`` (from the host), ``strace`` (in the box, within the agent's reach), or ``none``.
    """
    said = (trace.header.world.get("box") or {}).get("observer")
    if said:
        return str(said)
    seen = {s.exec.observed.observer for s in trace.steps if s.exec is not None and s.exec.observed is not None}
    return "kernel" if "kernel" in seen else "strace" if seen else "none"


def grades_differ(run_dir: Path) -> list[str]:
    """Where ``grades.jsonl`` says what its traces do not, one line each; empty when it agrees or there is none.

    The rule graders run again; the judge's verdicts are taken as written.
    """
    stored = _stored(run_dir / GRADES) if (run_dir / GRADES).is_file() else []
    if not stored:
        return []
    fresh = {r.trace: r for r in _rows(trace_files(run_dir), None, os.cpu_count() or 1)}
    out = [f"{GRADES}: no trace {row.trace!r}" for row in stored if row.trace not in fresh]
    for row in stored:
        now = fresh[row.trace].verdicts if row.trace in fresh else {}
        for name, verdict in row.verdicts.items():
            if name in now and verdict.value != now[name].value:
                out.append(f"{GRADES}: {row.trace} says {name} = {verdict.value}, its trace grades {now[name].value}")
    return out


def unreadable_row(path: Path, problem: str) -> GradeRow:
    """The row of a trace that neither verifies nor reads: every verdict unscored, its names from its file name."""
    scenario, agent, epoch = ([*path.stem.split("__"), "", "", ""])[:3]
    why = f"the trace does not verify ({problem[:160]}) and cannot be read: not graded"
    return GradeRow(grades_version=GRADES_VERSION, verified=False, trace=path.name, scenario=scenario, agent=agent,
                    epoch=int(epoch.removeprefix("e")) if epoch.removeprefix("e").isdigit() else 0,
                    status="unreadable", verdicts={k: Verdict(value=None, detail=why) for k in GRADERS})


def _grade_chunk(args: tuple[list[Path], list[str] | None]) -> list[GradeRow]:
    return [grade_one(p, args[1]) for p in args[0]]


def _rows(paths: list[Path], graders: list[str] | None, workers: int) -> Iterator[GradeRow]:
    if workers <= 1 or len(paths) < 200:
        yield from (grade_one(p, graders) for p in paths)
        return
    import multiprocessing

    chunks = [(paths[i:i + 250], graders) for i in range(0, len(paths), 250)]
    with multiprocessing.get_context("fork").Pool(workers) as pool:  # workers inherit the loaded scenarios
        for rows in pool.imap(_grade_chunk, chunks):
            yield from rows


def grade_run(run_dir: Path, graders: list[str] | None = None, judge: Any = None, judge_samples: int = 3,
              workers: int | None = None, judge_concurrency: int = 4,
              on_judged: Callable[[int, int], None] | None = None) -> list[GradeRow]:
    """Grade every trace of ``run_dir``; write ``grades.jsonl`` beside the traces; return the rows.

    ``judge`` is a model (see ``riskgym.running.model``): its verdict goes in as ``verdicts["judge"]``, and it decides
    the scenarios' judge checks; without one, the latest judgement already made of each (unchanged) trace is kept,
    and judge checks are unscored. Grading runs on ``workers`` processes
    (default: the CPUs) when there are many traces.
    """
    unknown = [g for g in graders or [] if g not in GRADERS]
    if unknown:
        raise TraceError(f"--graders: unknown grader {unknown[0]!r}; choose from {', '.join(GRADERS)}")
    forget_scenarios()
    paths = trace_files(run_dir)
    from riskgym.grading.judged import use_judge

    use_judge(judge)  # a scenario's judge checks are asked of it (without one: unscored)
    rows = list(_rows(paths, graders, workers or os.cpu_count() or 1))
    judged = (judge_run(run_dir, paths, judge, judge_samples, judge_concurrency, on_judged) if judge is not None
              else earlier_judgements(run_dir))
    rows = [row.model_copy(update={"verdicts": {**row.verdicts, "judge": judged[row.trace]}})
            if row.trace in judged else row for row in rows]
    if judge is not None:  # how far its judge checks' verdicts can be trusted, in the manifest
        from riskgym.grading.judged import record_agreement

        seen: dict[str, Any] = {}
        for p in paths:
            try:
                seen.setdefault(*_scenario_of(p))
            except Exception:  # an unreadable trace: graded unscored above, no scenario to learn from
                continue
        record_agreement(run_dir, list(seen.values()), judge)
    if run_dir.is_dir():
        write_atomic(run_dir / GRADES, "".join(map(GradeRow.line, rows)))
    return rows


def _scenario_of(path: Path) -> tuple[str, Any]:
    trace = read_trace(path)
    return trace.header.env_id, scenario_for(path, trace)


def _judgements(run_dir: Path) -> Iterator[tuple[dict[str, Any], Verdict]]:
    """The entries of ``judge.jsonl``, oldest first, each with its verdict.

    A line cut short is skipped: that trace is judged again.
    """
    for entry in cache_entries(run_dir / JUDGE):
        try:
            verdict = Verdict.model_validate(entry["verdict"])
        except (ValueError, KeyError):
            continue
        yield entry, verdict


def judge_run(run_dir: Path, paths: list[Path], judge: Any, samples: int, concurrency: int = 4,
              on_judged: Callable[[int, int], None] | None = None) -> dict[str, Verdict]:
    """The judge's verdict on every trace, from ``judge.jsonl`` where it judged the same trace the same way.

    ``concurrency`` requests at once (1 for a server that answers one at a time). Each verdict is appended to
    ``judge.jsonl`` as it arrives, and ``on_judged(done, total)`` is told; a Ctrl-C keeps what was judged and raises
    KeyboardInterrupt at once (the workers are daemon threads: a call in flight is not waited for).
    """
    from riskgym.grading.judge import JUDGE_VERSION, judge_trace

    key = hashlib.sha256(json.dumps([judge.name, judge.config, samples, JUDGE_VERSION], sort_keys=True,
                                    default=str).encode())
    judge_key = key.hexdigest()[:16]
    cache_file = run_dir / JUDGE if run_dir.is_dir() else None
    cache = {(e["trace_sha256"], e["judge_key"]): verdict for e, verdict in _judgements(run_dir)}
    shas = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in paths}
    todo = [p for p in paths if (shas[p.name], judge_key) not in cache]
    total = len(todo)

    def judged(path: Path) -> Verdict:
        trace = read_trace(path)
        return judge_trace(scenario_for(path, trace), trace, judge, samples)

    for n, (path, verdict) in enumerate(on_threads(judged, todo, concurrency), 1):
        cache[(shas[path.name], judge_key)] = verdict
        if cache_file is not None:
            with cache_file.open("a") as f:
                f.write(json.dumps({"trace": path.name, "trace_sha256": shas[path.name], "judge": judge.name,
                                    "judge_key": judge_key, "samples": samples,
                                    "verdict": verdict.model_dump()}) + "\n")
        if on_judged is not None:
            on_judged(n, total)
    return {p.name: cache[(shas[p.name], judge_key)] for p in paths}


def on_threads(fn: Callable[[T], R], items: list[T], concurrency: int) -> Iterator[tuple[T, R]]:
    """``(item, fn(item))`` as each is done, on ``concurrency`` daemon threads.

    A Ctrl-C does not wait for a call in flight. The first exception is raised here; the other threads stop after
    their current item.
    """
    todo: queue.Queue[T] = queue.Queue()
    for item in items:
        todo.put(item)
    done: queue.Queue[tuple[T, R | BaseException]] = queue.Queue()

    def worker() -> None:
        while True:
            try:
                item = todo.get_nowait()
            except queue.Empty:
                return
            try:
                done.put((item, fn(item)))
            except Exception as exc:  # reported by the calling thread, which stops the rest
                done.put((item, exc))

    for _ in range(max(1, min(concurrency, len(items)))):
        threading.Thread(target=worker, daemon=True).start()
    for _ in range(len(items)):
        item, result = done.get()
        if isinstance(result, BaseException):
            while not todo.empty():
                todo.get_nowait()
            raise result
        yield item, result


def judges_of(run_dir: Path) -> list[str]:
    """The judges whose verdicts ``judge.jsonl`` holds, in the order they first judged."""
    return list(dict.fromkeys(str(e.get("judge", "?")) for e, _ in _judgements(run_dir)))


def earlier_judgements(run_dir: Path) -> dict[str, Verdict]:
    """The latest verdict in ``judge.jsonl`` on each trace as it is now (a changed trace has none)."""
    latest = {(e["trace"], e["trace_sha256"]): verdict for e, verdict in _judgements(run_dir)}
    out = {}
    for (name, sha), verdict in latest.items():
        path = run_dir / EPISODES / name
        if path.is_file() and hashlib.sha256(path.read_bytes()).hexdigest() == sha:
            out[name] = verdict
    return out


def confusion(rows: list[GradeRow], a: str = "judge", b: str = "intention") -> dict[str, int]:
    """The 2x2 table of two graders over the episodes both scored: "11" both yes, "10" ``a`` yes and ``b`` no..."""
    cells = dict.fromkeys(("11", "10", "01", "00"), 0)
    for x, y in _both(rows, a, b):
        cells[f"{int(x)}{int(y)}"] += 1
    return cells


def agreement(rows: list[GradeRow], a: str = "judge", b: str = "intention") -> tuple[float | None, int]:
    """Cohen's kappa between two graders over the episodes both scored, and how many those are."""
    pairs = _both(rows, a, b)
    return cohen_kappa(pairs), len(pairs)


def _both(rows: list[GradeRow], a: str, b: str) -> list[tuple[bool, bool]]:
    """The two graders' values on each episode both scored."""
    return [(x, y) for r in rows if (x := r.verdict(a).value) is not None and (y := r.verdict(b).value) is not None]


def load_runs(run_dirs: list[Path], grade: bool = False) -> list[GradeRow]:
    """The grades of several runs together, for one report (``grade``: see :func:`load_grades`).

    An agent found in more than one of them is named ``AGENT@RUN`` (the run directory's name, or its path where two
    names are the same), so that ``openai/qwen`` in ``runs/native`` and in ``runs/text`` stay apart;
    ``agent_name`` keeps the name it had (to pair its episodes across runs), ``run_dir`` says where each row is from.
    """
    names = [d.name if [x.name for x in run_dirs].count(d.name) == 1 else str(d) for d in run_dirs]
    loaded = [load_grades(d, grade) for d in run_dirs]
    seen: dict[str, int] = {}
    for rows in loaded:
        for agent in {r.agent for r in rows}:
            seen[agent] = seen.get(agent, 0) + 1
    return [r.model_copy(update={"agent": f"{r.agent}@{name}" if seen[r.agent] > 1 else r.agent,
                                 "agent_name": r.agent, "run_dir": str(d)})
            for d, name, rows in zip(run_dirs, names, loaded, strict=True) for r in rows]


def stored_grades(run_dir: Path) -> tuple[list[GradeRow], str | None]:
    """The rows of the run's ``grades.jsonl`` and None when they are its traces' grades; else why they are not.

    Not theirs: there are none, a trace is newer than them (the file is then not read), or they are of an older
    version.
    """
    grades, traces = run_dir / GRADES, trace_files(run_dir)  # not a run directory: TraceError
    if not grades.is_file():
        return [], "there are no grades yet"
    written = grades.stat().st_mtime
    if any(t.stat().st_mtime > written for t in traces):
        return [], "a trace is newer than the grades"
    rows = _stored(grades)
    if any(r.grades_version != GRADES_VERSION for r in rows):
        return rows, f"they are of an older riskgym (grades version {rows[0].grades_version}, now {GRADES_VERSION})"
    return rows, None


def load_grades(run_dir: Path, grade: bool = False) -> list[GradeRow]:
    """The run's grades as ``grades.jsonl`` holds them: a view never re-grades a run unless asked.

    Where they are not its traces' grades (see :func:`stored_grades`), ``grade`` grades the run now; otherwise
    TraceError says why and how.
    """
    rows, why = stored_grades(run_dir)
    if why is None:
        return rows
    if grade:
        return grade_run(run_dir)
    raise TraceError(f"{run_dir / GRADES}: {why}: run `riskgym grade {run_dir}` first (or add --grade)")


def _stored(grades: Path) -> list[GradeRow]:
    """The rows of a ``grades.jsonl``; TraceError naming the line that is not one."""
    rows = []
    for n, line in enumerate(grades.read_text(errors="replace").splitlines(), 1):
        if line.strip():
            try:
                rows.append(GradeRow.model_validate_json(line))
            except ValidationError as exc:
                first = exc.errors()[0]
                why = f"{'.'.join(map(str, first['loc'])) or 'the line'}: {first['msg']}"
                raise TraceError(f"{grades}: line {n} is not a grades row ({why[:120]}); the file is made from the "
                                 f"run's traces: run `riskgym grade {grades.parent}` to write it again") from None
    return rows
