# ruff: noqa: UP031, D102
# (it runs inside the container: plain %-formatting, no docstrings on internals)
"""A postgres part's server: Debian's PostgreSQL in its container, and a control channel that only riskgym holds.

Runs inside the container (``python3 -I -u -c <loader>``, as the postgres user; python3-psycopg is in the image).
The server listens on the part's own address in the box's network, port 5432; the agent's role may log in from the
box's loopback (``trust``: the box is the only client that can reach it), the superuser only through the unix
socket in this container's /tmp, which nothing in the box can reach. Every statement a client sends is logged by
the server (``log_statement = all``, a setting only a superuser may change) to a file in this container; the
control loop reads it after each step. Control requests, one JSON object a line::

    {"op": "start", "address": "127.0.0.2", "port": 5432, "role": "app"}
    {"op": "seed", "databases": [{"name": "production", "sql": "CREATE TABLE ..."}]}   # each from its template
    {"op": "clean"}                  # end the episode: connections, databases and settings the agent made
    {"op": "alive"}                  # whether the server still runs
    {"op": "changes"}                # the statements logged since last asked, and the databases' state now
    {"op": "state", "queries": {"KEY": ["production", "SELECT ...", "", false]}}   # the state, the checks' queries
    {"op": "query", "database": "production", "sql": "...", "timeout": 30}   # a sql tool call, as the role
"""

import hashlib
import os
import shutil
import subprocess
import threading
import time

try:  # on the host, a package; in the container, the loader has put ``control`` in sys.modules
    from riskgym.world import control
except ImportError:  # pragma: no cover - the container's path
    import control  # type: ignore[no-redef]

BIN = "/usr/local/lib/pg-bin"
INITIAL = "/opt/riskgym-pg/data"
"""initdb's output, made when the image was built."""
DATA = "/tmp/pgdata"
LOG = "/tmp/pg.log"
PREFIX = "@@rg|"
TEMPLATE = "rgtpl_"
"""A database's template (the scenario's schema and rows) is ``rgtpl_<name>``: no one may connect to it."""
SPARE = "rgnext_"
"""The next episode's copy of a database, made ahead."""
OLD = "rgold"
"""A last episode's database, dropped in the background."""
OURS = ("rgtpl_", "rgnext_", "rgold")
KEPT = {"postgres", "template0", "template1"}
MAX_TEXT = 16000
"""The most of a query's output a tool call returns."""


class Server:
    """The PostgreSQL server of one world, its templates, and what the graders read of it."""

    def __init__(self, address, port, role):
        import psycopg

        self.psycopg = psycopg
        self.address, self.port, self.role = address, int(port), role
        shutil.copytree(INITIAL, DATA, symlinks=True)
        os.chmod(DATA, 0o700)
        with open(os.path.join(DATA, "pg_hba.conf"), "w") as f:
            f.write("local all postgres trust\nhost all %s 127.0.0.0/8 trust\n" % role)
        self.log = open(LOG, "ab")
        settings = {"listen_addresses": address, "port": str(port), "unix_socket_directories": "/tmp",
                    "fsync": "off", "synchronous_commit": "off", "full_page_writes": "off",
                    "log_statement": "all", "log_line_prefix": PREFIX + "%u|%d|%p|", "log_destination": "stderr",
                    "logging_collector": "off", "shared_buffers": "16MB", "max_connections": "40",
                    "dynamic_shared_memory_type": "mmap", "lc_messages": "C", "log_min_messages": "warning",
                    "log_min_error_statement": "panic", "max_wal_size": "64MB", "checkpoint_timeout": "1h",
                    "log_checkpoints": "off", "autovacuum": "off"}
        argv = [BIN + "/postgres", "-D", DATA]
        for key, value in settings.items():
            argv += ["-c", "%s=%s" % (key, value)]
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=self.log, stdin=subprocess.DEVNULL)
        self.pos, self.rest = 0, b""
        self.templates = {}  # database -> the hash of the SQL its template was made from
        self.initial = {}  # database -> its template's tables
        self.answers = {}  # (a template's hash, a query's key) -> its result on a fresh copy
        self.fresh = False  # seeded, and no step since
        self.databases = []
        self.conns = {}  # the superuser's connections, by database
        self.agent = {}  # the sql tool's connection (as the agent's role), by database: one session an episode
        self.ahead = None
        self.serial = 0
        deadline = time.monotonic() + 30
        while True:
            try:
                self.su("postgres")
                break
            except psycopg.OperationalError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("postgres did not start: " + self.log_tail()) from None
                time.sleep(0.05)
        self.run("postgres", "CREATE ROLE %s LOGIN" % self.ident(role))

    def log_tail(self):
        with open(LOG, "rb") as f:
            return f.read()[-600:].decode("utf-8", "replace")

    @staticmethod
    def ident(name):
        return '"%s"' % name.replace('"', '""')

    def su(self, database):
        """The superuser's connection to ``database`` (its own statements are not logged)."""
        conn = self.conns.get(database)
        if conn is not None and not conn.closed:
            return conn
        conn = self.psycopg.connect(host="/tmp", port=self.port, dbname=database, user="postgres", autocommit=True)
        conn.execute("SET log_statement = 'none'")
        self.conns[database] = conn
        return conn

    def run(self, database, sql):
        """Run ``sql`` as the superuser; a connection the server ended is made again, once."""
        try:
            return self.su(database).execute(sql)
        except self.psycopg.OperationalError:
            self.conns.pop(database, None)
            return self.su(database).execute(sql)

    def drop(self, name):
        self.drop_conn(name)
        self.run("postgres", "DROP DATABASE IF EXISTS %s WITH (FORCE)" % self.ident(name))

    # -- an episode ----------------------------------------------------------------------------------------

    def seed(self, databases):
        """Each database anew from its template, in ~10 ms.

        A copy made ahead (in the background, during the last episode) takes its place, and the old one is dropped in
        the background. A template is made first when the scenario's SQL is new to this server.
        """
        self.wait()
        self.databases = [d["name"] for d in databases]
        for d in databases:
            self.template(d["name"], d.get("sql") or "")
        names = self.names()
        for name in self.databases:
            spare = SPARE + name
            if spare not in names:
                self.copy(name)
            if name in names:
                self.drop_conn(name)
                self.serial += 1
                self.run("postgres", "ALTER DATABASE %s RENAME TO %s" % (self.ident(name), self.ident(
                    "%s%d_%s" % (OLD, self.serial, name))))
            self.run("postgres", "ALTER DATABASE %s RENAME TO %s" % (self.ident(spare), self.ident(name)))
            self.run("postgres", "ALTER DATABASE %s WITH ALLOW_CONNECTIONS true" % self.ident(name))
            self.run("postgres", "ALTER DATABASE %s OWNER TO %s" % (self.ident(name), self.ident(self.role)))
        self.read_log()  # what seeding logged is not the agent's
        state = {name: self.initial[name] for name in self.databases}  # a copy is its template
        self.fresh = True
        self.ahead = threading.Thread(target=self.prepare_next, daemon=True)
        self.ahead.start()
        return {"ok": True, "state": state}

    def template(self, name, sql):
        """The database's template (owned by the superuser; no one may connect), made anew when ``sql`` changed."""
        digest = hashlib.sha256(sql.encode()).hexdigest()
        if self.templates.get(name) == digest:
            return
        template = TEMPLATE + name
        self.run("postgres", "UPDATE pg_database SET datistemplate = false WHERE datname = '%s'"
                 % template.replace("'", "''"))
        self.drop(template)
        self.drop(SPARE + name)
        self.run("postgres", "CREATE DATABASE %s" % self.ident(template))
        conn = self.psycopg.connect(host="/tmp", port=self.port, dbname=template, user="postgres", autocommit=True)
        try:
            conn.execute("SET log_statement = 'none'")
            conn.execute("GRANT ALL ON SCHEMA public TO %s" % self.ident(self.role))
            conn.execute("SET ROLE %s" % self.ident(self.role))  # the agent's role owns what it makes
            if sql.strip():
                conn.execute(sql)
            conn.execute("RESET ROLE")
            conn.execute("VACUUM (FREEZE, ANALYZE)")  # its copies start with every row's hint bits set
            self.initial[name] = self.tables(conn)  # and each copy's tables are these, read once here
        finally:
            conn.close()
        self.run("postgres", "ALTER DATABASE %s WITH IS_TEMPLATE true ALLOW_CONNECTIONS false" % self.ident(template))
        self.templates[name] = digest

    def copy(self, name, conn=None):
        """A spare copy of the database's template, that no one may connect to yet."""
        sql = ("CREATE DATABASE %s TEMPLATE %s ALLOW_CONNECTIONS false"
               % (self.ident(SPARE + name), self.ident(TEMPLATE + name)))
        (conn.execute(sql) if conn is not None else self.run("postgres", sql))

    def prepare_next(self):
        """In the background: drop the old databases and copy the next episode's."""
        conn = self.psycopg.connect(host="/tmp", port=self.port, dbname="postgres", user="postgres", autocommit=True)
        try:
            conn.execute("SET log_statement = 'none'")
            for (name,) in conn.execute("SELECT datname FROM pg_database WHERE datname LIKE 'rgold%'").fetchall():
                conn.execute("DROP DATABASE IF EXISTS %s WITH (FORCE)" % self.ident(name))
            for name in self.databases:
                self.copy(name, conn)
        except self.psycopg.Error:  # seed() makes what is missing
            pass
        finally:
            conn.close()

    def wait(self):
        if self.ahead is not None:
            self.ahead.join()
            self.ahead = None

    def names(self):
        return {n for (n,) in self.run("postgres", "SELECT datname FROM pg_database").fetchall()}

    def drop_conn(self, name):
        conn = self.conns.pop(name, None)
        if conn is not None:
            conn.close()
        agent = self.agent.pop(name, None)
        if agent is not None:
            agent.close()

    def clean(self):
        """End the episode in place: the role's sessions and settings, and every database the agent made."""
        for name in [*self.agent, *self.databases]:  # (the box's own sessions ended with its processes)
            self.drop_conn(name)
        self.run("postgres", "ALTER ROLE %s RESET ALL" % self.ident(self.role))
        for name in self.names():
            if name not in KEPT and not name.startswith(OURS) and name not in self.databases:
                self.drop(name)
        self.read_log()
        return {"ok": True}

    # -- what happened ---------------------------------------------------------------------------------------

    def read_log(self):
        """The role's statements logged since the last read: ``{database, sql, pid, error}`` each, in order."""
        with open(LOG, "rb") as f:
            f.seek(self.pos)
            data = f.read()
        self.pos += len(data)
        data, self.rest = self.rest + data, b""
        if data and not data.endswith(b"\n"):
            cut = data.rfind(b"\n") + 1
            data, self.rest = data[:cut], data[cut:]
        entries = []
        for line in data.decode("utf-8", "replace").split("\n"):
            if line.startswith(PREFIX):
                entries.append(line[len(PREFIX):])
            elif entries and line.startswith("\t"):
                entries[-1] += "\n" + line[1:]
        out, last = [], {}
        for entry in entries:
            fields = entry.split("|", 3)
            if len(fields) < 4 or fields[0] != self.role:
                continue
            _, database, pid, message = fields
            level, _, text = message.partition(":  ")
            if level == "LOG" and (text.startswith("statement: ") or text.startswith("execute ")):
                sql = text.split(": ", 1)[1] if text.startswith("statement: ") else text.split(": ", 1)[-1]
                last[pid] = {"database": database, "sql": sql, "pid": int(pid), "error": ""}
                out.append(last[pid])
            elif level in ("ERROR", "FATAL") and pid in last and not last[pid]["error"]:
                last[pid]["error"] = text.strip()[:200]
        return out

    def snapshot(self):
        """Every database's tables now (see :meth:`tables`)."""
        out = {}
        for name in sorted(n for n in self.names() if n not in KEPT and not n.startswith(OURS)):
            try:
                out[name] = self.tables(self.su(name))
            except self.psycopg.Error as exc:  # dropped as we looked
                self.conns.pop(name, None)
                if name in self.databases:
                    out[name] = {"error": str(exc).strip()[:200]}
        return out

    def tables(self, conn):
        """A database's tables: rows, the newest row version (``digest``), row-level security, policies, privileges."""
        tables = conn.execute(
            "SELECT n.nspname, c.relname, c.relrowsecurity, c.relforcerowsecurity, coalesce(c.relacl::text, ''), "
            "(SELECT count(*) FROM pg_policy p WHERE p.polrelid = c.oid) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('r', 'p') AND n.nspname "
            "NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%' ORDER BY 1, 2").fetchall()
        seen = {}
        for schema, table, rls, force, acl, policies in tables:
            rel = "%s.%s" % (self.ident(schema), self.ident(table))
            count, digest = conn.execute(  # a row written since has a newer xmin: no need to read it
                "SELECT count(*), coalesce(max(t.xmin::text::bigint), 0) FROM %s t" % rel).fetchone()
            seen["%s.%s" % (schema, table)] = {"rows": count, "digest": digest, "rls": rls, "force": force,
                                               "policies": policies, "acl": acl}
        return seen

    def changes(self):
        self.fresh = False
        return {"statements": self.read_log(), "state": self.snapshot()}

    def state(self, queries):
        """The databases' state and each check's query result (``{"rows": [[...]]}`` or ``{"error": ...}``).

        Just after the seeding, before any step, each database is its template: its tables and the results of
        queries asked of an earlier copy are read from memory (the state before an episode, ~1 ms).
        """
        queries = queries or {}
        fresh = self.fresh  # (no step since: the box is prepared before the database, its set-up ran before)
        known = {key: (self.templates.get(q[0]), key) for key, q in queries.items()}
        if fresh and all(k in self.answers for k in known.values()):
            return {"state": {"databases": {n: self.initial[n] for n in self.databases},
                              "queries": {key: self.answers[k] for key, k in known.items()}}}
        results = {}
        for key, (database, sql, setup, as_role) in queries.items():
            try:
                conn = self.su(database)
                with conn.transaction():
                    conn.execute("SET TRANSACTION READ ONLY")
                    if as_role:  # row-level security applies as it does to the agent
                        conn.execute("SET LOCAL ROLE %s" % self.ident(self.role))
                    if setup:
                        conn.execute(setup)
                    rows = conn.execute(sql).fetchall()
                results[key] = {"rows": [[_plain(v) for v in row] for row in rows]}
            except self.psycopg.Error as exc:
                results[key] = {"error": str(exc).strip().split("\n")[0][:200]}
        state = {"databases": self.snapshot(), "queries": results}
        if fresh:
            self.answers.update({known[key]: result for key, result in results.items()})
        for name in self.databases:  # closed now, so that the next episode's swap finds no session of ours there (a
            conn = self.conns.pop(name, None)  # rename waits 100 ms for each to end); the next step opens it again
            if conn is not None:
                conn.close()
        return {"state": state}

    # -- a tool call -----------------------------------------------------------------------------------------

    def query(self, database, sql, timeout):
        """Run a ``sql`` tool call as the agent's role, over the network as any client: psql's kind of output.

        One session a database an episode, as a psql left open would be (its settings and temporary tables last).
        """
        psycopg = self.psycopg
        self.fresh = False
        database = database or "postgres"
        conn = self.agent.get(database)
        if conn is None or conn.closed:
            try:
                conn = psycopg.connect(host=self.address, port=self.port, dbname=database, user=self.role,
                                       autocommit=True, connect_timeout=5,  # (a setting given here is not logged)
                                       options="-c statement_timeout=%d" % int(float(timeout) * 1000))
            except psycopg.Error as exc:
                return {"output": "psql: error: %s" % str(exc).strip(), "ok": False}
            self.agent[database] = conn
        parts = []
        try:
            cur = conn.cursor()
            cur.execute(sql.encode("utf-8"))  # bytes, no parameters: the simple protocol, several statements
            while True:
                parts.append(_table(cur))
                if not cur.nextset():
                    break
            ok = True
        except psycopg.Error as exc:
            parts.append("ERROR:  %s" % str(exc).strip())
            ok = False
            if conn.closed or conn.broken:
                self.agent.pop(database, None)
        text = "\n".join(p for p in parts if p)
        if len(text) > MAX_TEXT:
            text = text[:MAX_TEXT] + "\n[... output cut at %d characters]" % MAX_TEXT
        return {"output": text, "ok": ok}


def _plain(value):
    return value if value is None or isinstance(value, (bool, int, float, str)) else str(value)


def _table(cur):
    """A result as psql prints it, roughly: a header, rows separated by |, and the count; else its status."""
    if cur.description is None:
        return cur.statusmessage or ""
    names = [d.name for d in cur.description]
    rows = cur.fetchall()
    lines = [" | ".join(names), "-+-".join("-" * len(n) for n in names)]
    lines += [" | ".join("" if v is None else str(v) for v in row) for row in rows]
    lines.append("(%d row%s)" % (len(rows), "" if len(rows) == 1 else "s"))
    return "\n".join(lines)


def main():
    """The container's control loop."""

    def start(req):
        server = Server(req["address"], req.get("port", 5432), req.get("role", "app"))
        return server, {"ready": True, "pid": server.proc.pid}

    control.serve(start, {
        "seed": lambda s, req: s.seed(req.get("databases") or []),
        "clean": lambda s, req: s.clean(),
        "alive": lambda s, req: {"ok": s.proc.poll() is None},
        "changes": lambda s, req: s.changes(),
        "state": lambda s, req: s.state(req.get("queries")),
        "query": lambda s, req: dict(s.query(req.get("database"), req.get("sql") or "", req.get("timeout", 30)),
                                     **s.changes()),
    })
