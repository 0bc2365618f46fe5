"""An index over runs: one SQLite table of episodes, so that filtering and counting 100,000 of them takes a moment.

``riskgym query ROOT`` keeps ``ROOT/.riskgym-index.sqlite`` up to date (a run is indexed again when its
``grades.jsonl`` changed) and answers from it. ``riskgym audit`` filters one run with the same ``FIELD=VALUE``
filters, through an index in memory.

>>> db = connect(":memory:")
>>> row = GradeRow(grades_version=1, trace="t.jsonl", scenario="s", agent="a", status="completed", tools=["shell"],
...                verdicts={"intention": {"value": True}})
>>> add_rows(db, "r1", [row])
>>> [dict(r) for r in aggregate(db, parse_filters(["tool=shell"]), ["agent"])][0]["intention_k"]
1
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from riskgym.errors import RiskgymError
from riskgym.grading.row import GradeRow
from riskgym.rundir import EPISODES, GRADES
from riskgym.viewing.report import METRICS

TEXT_FIELDS = ("run", "trace", "scenario", "category", "agent", "status", "outcome")
FIELDS = (*TEXT_FIELDS, "benign", "epoch", "steps", "tokens", "cost", "tools", *METRICS)
"""What a filter (``FIELD=VALUE``) or a grouping (``--by``) may name. ``tool=NAME``: episodes that used that tool."""
GROUPABLE = (*TEXT_FIELDS, "benign", "epoch")
INDEX_VERSION = 3
"""Version 2: the escape verdict. Version 3: the exposure verdict. An index of another version is built again."""
SCHEMA = f"""
CREATE TABLE IF NOT EXISTS runs (run TEXT PRIMARY KEY, stamp TEXT);
CREATE TABLE IF NOT EXISTS episodes (
  {", ".join(f"{f} TEXT" for f in TEXT_FIELDS)}, benign INTEGER, epoch INTEGER, steps INTEGER, tokens INTEGER,
  cost REAL, tools TEXT, {", ".join(f'"{m}" INTEGER' for m in METRICS)}, PRIMARY KEY (run, trace));
CREATE INDEX IF NOT EXISTS episodes_agent ON episodes (agent, scenario);
"""
_YES = {"yes": 1, "true": 1, "1": 1, "no": 0, "false": 0, "0": 0, "-": None, "unscored": None}


def connect(path: str | Path) -> sqlite3.Connection:
    """Open (creating if needed) an index database."""
    try:
        db = sqlite3.connect(str(path))
        if db.execute("PRAGMA user_version").fetchone()[0] != INDEX_VERSION:
            db.executescript(f"DROP TABLE IF EXISTS episodes; DROP TABLE IF EXISTS runs; "
                             f"PRAGMA user_version = {INDEX_VERSION};")
        db.executescript(SCHEMA)
    except sqlite3.Error as exc:
        raise RiskgymError(f"{path}: cannot open the index ({exc}); delete the file and it is built again") from None
    db.row_factory = sqlite3.Row
    return db


def _record(run: str, row: GradeRow) -> tuple[Any, ...]:
    values = [row.verdict(m).value for m in METRICS]
    return (run, row.trace, row.scenario, row.category, row.agent, row.status, row.outcome, int(row.benign),
            row.epoch, row.steps, row.usage.tokens, row.usage.cost, "," + ",".join(row.tools) + ",",
            *(None if v is None else int(v) for v in values))


def add_rows(db: sqlite3.Connection, run: str, rows: list[GradeRow]) -> None:
    """Replace the run's episodes in the index with ``rows`` (rows of ``grades.jsonl``)."""
    db.execute("DELETE FROM episodes WHERE run = ?", (run,))
    db.executemany(f"INSERT OR REPLACE INTO episodes VALUES ({', '.join('?' * len(FIELDS))})",
                   (_record(run, r) for r in rows))


def parse_filters(filters: list[str]) -> list[tuple[str, str]]:
    """``FIELD=VALUE`` strings as pairs; raises RiskgymError naming a bad one."""
    out = []
    for text in filters:
        field, sep, value = text.partition("=")
        field = field.strip()
        if field == "tool":
            field = "tools"
        if not sep or field not in FIELDS:
            raise RiskgymError(f"--where {text!r}: give FIELD=VALUE with FIELD one of {', '.join(FIELDS)} "
                               "(tool=NAME for episodes that used a tool; intention=yes|no|-)")
        if field in METRICS and value.lower() not in _YES:
            raise RiskgymError(f"--where {text!r}: a verdict is yes, no or - (unscored)")
        out.append((field, value))
    return out


def where_sql(filters: list[tuple[str, str]]) -> tuple[str, list[Any]]:
    """The SQL ``WHERE`` clause for the filters (AND between filters; ``a,b`` is either; ``*`` a wildcard)."""
    clauses: list[str] = []
    params: list[Any] = []
    for field, value in filters:
        options = []
        for one in value.split(","):
            if field in METRICS or field == "benign":
                v = _YES.get(one.lower())
                options.append(f'"{field}" IS NULL' if v is None else f'"{field}" = ?')
                params += [] if v is None else [v]
            elif field == "tools":
                options.append("tools GLOB ?")
                params.append(f"*,{one},*")
            else:
                options.append(f"{field} GLOB ?" if "*" in one else f"{field} = ?")
                params.append(int(one) if field in ("epoch", "steps") and one.isdigit() else one)
        clauses.append("(" + " OR ".join(options) + ")")
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


def select(db: sqlite3.Connection, filters: list[tuple[str, str]]) -> list[sqlite3.Row]:
    """The matching episodes, ordered by run, scenario, agent and epoch."""
    where, params = where_sql(filters)
    return db.execute(f"SELECT * FROM episodes{where} ORDER BY run, scenario, agent, epoch", params).fetchall()


def aggregate(db: sqlite3.Connection, filters: list[tuple[str, str]], by: list[str]) -> list[sqlite3.Row]:
    """Per group: episodes, and for each verdict the episodes it called yes (``<m>_k``) and scored (``<m>_n``)."""
    bad = [b for b in by if b not in GROUPABLE]
    if bad:
        raise RiskgymError(f"--by {bad[0]!r}: group by one of {', '.join(GROUPABLE)}")
    where, params = where_sql(filters)
    cols = ", ".join(by) + ", " if by else ""
    sums = ", ".join(f'SUM("{m}") AS {m}_k, COUNT("{m}") AS {m}_n' for m in METRICS)
    group = f" GROUP BY {', '.join(by)} ORDER BY {', '.join(by)}" if by else ""
    sql = f"SELECT {cols}COUNT(*) AS episodes, SUM(tokens) AS tokens, SUM(cost) AS cost, {sums} FROM episodes"
    return db.execute(f"{sql}{where}{group}", params).fetchall()


def run_dirs(root: Path) -> list[Path]:
    """The run directories at or under ``root`` (three levels deep at most)."""
    if (root / EPISODES).is_dir():
        return [root]
    found = [p.parent for pattern in ("*/episodes", "*/*/episodes", "*/*/*/episodes") for p in root.glob(pattern)]
    return sorted(p for p in found if p.is_dir())


def _stamp(path: Path) -> str:
    stat = path.stat()
    return json.dumps([stat.st_mtime_ns, stat.st_size])


def update(root: Path, grade: bool = False) -> tuple[sqlite3.Connection, int, int]:
    """Bring ``ROOT/.riskgym-index.sqlite`` up to date; return it, the runs re-indexed and the runs in it.

    A run whose grades are not its traces' is graded first when ``grade``; else TraceError names it and the fix.
    """
    if not root.is_dir():
        raise RiskgymError(f"{root}: no such folder; give the folder your runs are in (the --out of riskgym run, "
                           "or its parent)")
    path = root / ".riskgym-index.sqlite"
    made = not path.exists()
    db = connect(path)
    try:
        return db, *_refresh(db, root, grade)
    except BaseException:
        db.close()
        if made:  # nothing half-written: an index that never held a run goes
            path.unlink(missing_ok=True)
        raise


def _refresh(db: sqlite3.Connection, root: Path, grade: bool) -> tuple[int, int]:
    """Index again each run under ``root`` whose grades changed, and drop those that are gone.

    Returns the runs indexed now and the runs there are.
    """
    from riskgym.grading.runs import load_grades

    dirs = run_dirs(root)
    known = {r["run"]: r["stamp"] for r in db.execute("SELECT run, stamp FROM runs")}
    changed = 0
    for run_dir in dirs:
        name = str(run_dir.relative_to(root)) if run_dir != root else "."
        grades = run_dir / GRADES
        if grades.is_file() and known.get(name) == _stamp(grades):
            known.pop(name)
            continue
        known.pop(name, None)
        rows = load_grades(run_dir, grade)
        with db:
            add_rows(db, name, rows)
            db.execute("INSERT OR REPLACE INTO runs VALUES (?, ?)", (name, _stamp(grades)))
        changed += 1
    with db:  # runs that are gone
        for name in known:
            db.execute("DELETE FROM episodes WHERE run = ?", (name,))
            db.execute("DELETE FROM runs WHERE run = ?", (name,))
    return changed, len(dirs)
