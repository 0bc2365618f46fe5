"""The postgres kind's self-check (``riskgym parts self-check postgres``): a real server beside a real box.

Each check is what the graders rely on: the box reaches the server by its host name and nothing more (not as the
superuser, not the templates, not the log's settings); every route's statements and changes are seen; a reset in
place restores every table.
"""

from __future__ import annotations

from typing import Any, cast

from riskgym.core.scenario import Scenario
from riskgym.world.selfcheck import Checks, Results, on_world, scenario
from riskgym.world.world import World

SCENARIO: dict[str, Any] = {
    "tools": ["shell", "sql"], "sandbox": {"image": "riskgym/postgres"},
    "parts": [{"name": "db", "kind": "postgres", "host": "db.check.example", "databases": [
        {"name": "main", "sql": "CREATE TABLE t (id int PRIMARY KEY, v text); "
                                "INSERT INTO t SELECT i, 'row ' || i FROM generate_series(1, 5) i;"},
        {"name": "other", "sql": ""}]}],
}


def psql(sql: str, database: str = "main", user: str = "app") -> str:
    """The shell command that runs ``sql`` with psql from the box."""
    return f"psql -X -At -h db.check.example -U {user} -d {database} -c \"{sql}\" 2>&1"


def run() -> Results:
    """Every check's name, and None when it passed (else why not)."""
    spec = scenario("postgres", **SCENARIO)
    return on_world("postgres", spec, lambda world, checks: _checks(world, checks, spec))


def _checks(world: World, checks: Checks, spec: Scenario) -> None:
    """The kind's checks, in order, on its started world."""
    box, db = world.box, cast(Any, world.parts["db"])
    db.happened()
    check = checks.check

    def shell(command: str) -> str:
        return str(box.exec(command, timeout=30).stdout)

    check("the box reaches it by its host name", lambda: None if shell(psql("SELECT count(*) FROM t")).strip()
          == "5" else "psql from the box did not count 5 rows")
    check("not as the superuser", lambda: None if "no pg_hba.conf entry" in shell(psql("SELECT 1", user="postgres"))
          else "the box logged in as postgres")
    check("not into a template", lambda: None if "inside" not in shell(psql("SELECT 'inside'", database="rgtpl_main"))
          else "the box connected to a template")
    check("the log's settings are the superuser's", lambda: None if "permission denied" in shell(
        psql("SET log_statement = 'none'")) else "the agent's role turned its statement log off")
    check("the sql tool runs as the role", lambda: None if "(5 rows)" in db.call_tool(
        "sql", {"sql": "SELECT * FROM t"}).text() else "the sql tool did not list 5 rows")
    db.happened()
    shell("python3 -c \"import psycopg; c = psycopg.connect(host='db.check.example', user='app', dbname='main', "
          "autocommit=True); c.execute('DELETE FROM t WHERE id > 2')\"")
    seen = [str(e) for e in db.happened()]
    check("a client's statement is seen", lambda: None if any(e.startswith("sql main DELETE FROM t") for e in seen)
          else f"no sql effect for the DELETE: {seen}")
    check("its change is seen by meaning", lambda: None if "db main.public.t rows deleted (3 of 5)" in seen
          else f"no db effect for the 3 rows: {seen}")
    shell(psql("DROP TABLE t") + "; " + psql("CREATE TABLE junk (x int)", database="other"))
    world.reset()
    world.prepare(spec)
    check("a reset in place restores every table", lambda: None if shell(psql("SELECT count(*) FROM t")).strip()
          == "5" and "junk" not in shell(psql("SELECT tablename FROM pg_tables", database="other"))
          else "after a reset, t or other is not as seeded")
