"""A postgres part: Debian's PostgreSQL in a hardened container of its own, in the box's network namespace.

As a web service does (:mod:`riskgym.world.services.part`), the container joins the box's network namespace and
listens on an address of its own there (``127.0.0.N:5432``), which the box's /etc/hosts names by the part's host;
it runs the ``riskgym/postgres`` image as the postgres user, with no capabilities, no new privileges, a read-only
root and its data on a tmpfs. The graders' channel is a control program's stdin (:mod:`.server`): riskgym seeds,
resets and reads the databases as the superuser through the container's unix socket, which the box cannot reach.

What the agent did is read from outside the box, whatever the route (``psql``, the ``sql`` tool, a Python client,
a script): the statements the server logged for the agent's role (``sql`` effects), and, after every step, each
database's tables compared with before the step (``db`` effects: a table dropped, emptied or created, rows deleted,
inserted or changed, row-level security turned off, privileges changed).
"""

from __future__ import annotations

import json
import re
from typing import Any

from riskgym.core.kinds import Effect
from riskgym.core.results import ToolResult
from riskgym.core.scenario import Scenario
from riskgym.core.state import JsonState
from riskgym.errors import SandboxError
from riskgym.world.kind import BesidePart
from riskgym.world.postgres.spec import PostgresSpec, db_checks

IMAGE = "riskgym/postgres"
PORT = 5432
SQL_DETAIL = 2000
"""The most of a statement an ``sql`` effect keeps."""


def loader() -> str:
    """What the container's ``python3 -c`` runs: the control loop and the server, then the loop."""
    from riskgym.world.channel import program

    return program((("control", "riskgym.world"), ("server", "riskgym.world.postgres")), "server")


class PostgresPart(BesidePart):
    """One world's PostgreSQL server (see the module's text)."""

    kind = "postgres"
    joins_network = True

    def __init__(self, spec: PostgresSpec, labels: dict[str, str]) -> None:
        self.spec, self.name, self.labels = spec, spec.name, labels
        self.address = "127.0.0.2"
        self.about = f"part {self.name} (postgres)"
        self.image_id = ""
        self.last: dict[str, Any] = {}
        """Each database's tables after the last step (or the seeding): what the next step's changes are read
        against."""

    @property
    def hosts(self) -> list[str]:
        """Its host name and aliases."""
        return self.spec.hosts

    def start(self) -> None:
        """Start the server's container in the box's network namespace."""
        if getattr(self.box, "container", None) is None:
            raise SandboxError(f"part {self.name} (postgres) runs only beside a docker box: run with --sandbox docker")
        from riskgym.world.docker import beside, engine_errors, require_image

        try:
            self.image_id = engine_errors(require_image)(IMAGE, used_by=f"part {self.name}")
            self.container, self._channel = beside(self.box, self.name, "postgres", loader(), "384m", "256m",
                                                   self.labels, image=IMAGE, pids=96, cpus=1.0)
            reply = self._ask({"op": "start", "address": self.address, "port": PORT, "role": self.spec.role},
                              timeout=60)
        except BaseException:
            self.close()
            raise
        if not reply.get("ready"):
            self.close()
            raise SandboxError(f"part {self.name}: postgres did not start ({reply})")

    def reset(self) -> None:
        """End the episode in place: the role's sessions and settings, the databases it made (~10 ms)."""
        self._ask({"op": "clean"})

    def alive(self) -> bool:
        """Whether its control loop answers and its server runs."""
        try:
            return bool(self._ask({"op": "alive"}, timeout=5).get("ok"))
        except SandboxError:
            return False

    def prepare(self, scenario: Scenario) -> None:
        """Every database anew from its template (the scenario's SQL, run once per world)."""
        spec = next((p for p in scenario.parts if p.name == self.name), self.spec)
        assert isinstance(spec, PostgresSpec)
        reply = self._ask({"op": "seed", "databases": [d.model_dump() for d in spec.databases]}, timeout=120)
        self.last = reply.get("state") or {}

    def happened(self) -> list[Effect]:
        """The statements the agent's role sent since the last step, and what they changed."""
        if self._channel is None:
            return []
        try:
            reply = self._ask({"op": "changes"})
        except SandboxError:
            return []
        return self._effects(reply)

    def _effects(self, reply: dict[str, Any]) -> list[Effect]:
        """A reply's statements and the tables' changes since the last reply, as effects."""
        effects = [Effect("sql", s["database"], _one_line(s["sql"]), error=s["error"][:80])
                   for s in reply.get("statements") or []]
        now = reply.get("state") or {}
        effects += changes(self.last, now)
        self.last = now
        return effects

    def capture(self, scenario: Scenario) -> JsonState:
        """Each database's tables, and the result of every check's query over them (run read-only)."""
        checks = [leaf for c in [*scenario.completion, *scenario.utility, *scenario.refusal] for leaf in c.leaves()]
        queries = {c.key: c.request() for c in db_checks(checks, self.name)}
        return JsonState(data=self._ask({"op": "state", "queries": queries}, timeout=60)["state"])

    def call_tool(self, name: str, arguments: dict[str, Any], timeout: float = 30.0) -> ToolResult:
        """The ``sql`` tool: the statements run as the agent's role, with what they did as effects."""
        database = arguments.get("database") or self.spec.databases[0].name
        reply = self._ask({"op": "query", "database": database, "sql": arguments.get("sql") or "",
                           "timeout": timeout}, timeout=timeout + 10)
        effects = self._effects(reply) or [Effect("sql", database, _one_line(arguments.get("sql") or ""),
                                                  error="not logged")]
        return ToolResult.of_text(reply.get("output") or "(no output)", backend=self.name, effects=effects)

    def describe(self) -> dict[str, Any]:
        """Kind, host, address, role, databases and image."""
        return {"kind": self.kind, "host": self.spec.host, "address": self.address, "role": self.spec.role,
                "databases": [d.name for d in self.spec.databases], "image_id": self.image_id}



def _one_line(sql: str) -> str:
    """A statement as one line: comments out, white space collapsed (what tripwires match)."""
    text = re.sub(r"--[^\n]*|/\*.*?\*/", " ", sql, flags=re.S)
    return " ".join(text.split())[:SQL_DETAIL]


def changes(before: dict[str, Any], after: dict[str, Any]) -> list[Effect]:
    """``db`` effects: how each database's tables differ between two snapshots.

    >>> a = {"production": {"public.customers": {"rows": 3, "digest": "x", "rls": True, "acl": ""}}}
    >>> b = {"production": {"public.customers": {"rows": 0, "digest": "y", "rls": False, "acl": ""}}}
    >>> [str(e) for e in changes(a, b)]
    ['db production.public.customers emptied (3 rows deleted)', 'db production.public.customers row level security off']
    >>> [str(e) for e in changes(a, {})]
    ['db production dropped']
    """
    out = []
    for db in sorted(set(before) | set(after)):
        old, new = before.get(db), after.get(db)
        if new is None or "error" in (new or {}):
            if old is not None and "error" not in old:
                out.append(Effect("db", db, "dropped"))
            continue
        if old is None or "error" in old:
            out.append(Effect("db", db, "created"))
            old = {}
        for table in sorted(set(old) | set(new)):
            t0, t1, target = old.get(table), new.get(table), f"{db}.{table}"
            if t1 is None and t0 is not None:
                out.append(Effect("db", target, f"dropped ({t0['rows']} rows)"))
                continue
            if t0 is None or t1 is None:
                out.append(Effect("db", target, f"created ({t1['rows']} rows)"))
                continue
            if t1["rows"] == 0 and t0["rows"] > 0:
                out.append(Effect("db", target, f"emptied ({t0['rows']} rows deleted)"))
            elif t1["rows"] < t0["rows"]:
                out.append(Effect("db", target, f"rows deleted ({t0['rows'] - t1['rows']} of {t0['rows']})"))
            elif t1["rows"] > t0["rows"]:
                out.append(Effect("db", target, f"rows inserted ({t1['rows'] - t0['rows']})"))
            elif t1["digest"] != t0["digest"]:  # (the newest row version: a row updated, or deleted and added)
                out.append(Effect("db", target, "rows changed"))
            if t0["rls"] != t1["rls"]:
                out.append(Effect("db", target, f"row level security {'on' if t1['rls'] else 'off'}"))
            if t0.get("force") != t1.get("force"):
                out.append(Effect("db", target, f"row level security {'forced' if t1.get('force') else 'unforced'}"))
            if t0.get("policies") != t1.get("policies"):
                out.append(Effect("db", target, f"policies {t0.get('policies')} -> {t1.get('policies')}"))
            if t0["acl"] != t1["acl"]:
                out.append(Effect("db", target, f"privileges changed ({json.dumps(t1['acl'])})"))
    return out
