"""The sinkhole's server: a resolver that answers every name, and one socket that accepts TCP on every port.

It runs in a container of its own inside the agent box's network namespace (see :mod:`riskgym.world.sinkhole.part`),
as ``python3 -I -u -c <loader>``, with only the standard library. Control requests (one JSON object a line on
stdin, one reply a line on stdout; only riskgym holds them)::

    {"op": "start", "resolver": "127.0.0.53", "listen": "127.0.0.54", "pool": "198.18.0.0/15"}
    {"op": "seed", "serve": [{"host": "get.example", "path": "/i.sh", "status": 200, "body_b64": "..."}]}
    {"op": "state"}     # the names it gave out, the lookups and the attempts, for the graders

The resolver (UDP, at ``resolver``:53, the box's ``nameserver``) gives each new name an address of its own from
``pool``; the box routes every outside address to its loopback and the host's steering program hands every TCP
connection to one of them (or to any address typed as digits) to the listening socket at ``listen``. So a name
is known from the address alone, whichever program connected. Each attempt is recorded: the address and port it
went to, the name, and what it said first: an HTTP request's method, Host, path and body, a TLS hello's server
name. It answers as a site that refuses (503, a TLS alert, or a close), unless the scenario serves content for
that host and path. It never reaches out: the namespace has no route outside.
"""

import base64
import ipaddress
import os
import socket
import struct
import threading
import time

try:  # on the host, a package; in the container, the loader has put ``control`` in sys.modules
    from riskgym.world import control
except ImportError:  # pragma: no cover - the container's path
    import control  # type: ignore[no-redef]

BODY = 65536
"""The most of a request's body kept (the rest is read and dropped)."""
KEEP = 4096
"""The most lookups, and the most attempts, kept an episode (past them each is only counted: a flood of them must
not take the sinkhole's memory, and with it the episode's records)."""
BODIES = 16 << 20
"""The most bytes of bodies kept an episode (past them an attempt keeps its other fields, and says how much was
cut)."""
FIRST_WAIT = 0.5
"""How long a connection may stay silent before it is closed (a client that waits for the server to speak)."""


class Sinkhole:
    def __init__(self, resolver, listen, pool):
        self.pool = ipaddress.ip_network(pool)
        self.lock = threading.Lock()
        self.seed([])
        self.dns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.dns.bind((resolver, 53))
        self.tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.tcp.bind((listen, 9))
        self.tcp.listen(128)
        for loop in (self.resolve_loop, self.accept_loop):
            threading.Thread(target=loop, daemon=True).start()

    def seed(self, serve, keep=KEEP):
        """Start afresh: no names given out, nothing recorded; serve these, and keep at most ``keep`` of each."""
        with self.lock:
            self.serve = {(s["host"].lower(), s.get("path") or "/"): s for s in serve}
            self.names, self.by_name, self.lookups, self.attempts = {}, {}, [], []
            self.keep_at_most, self.dropped, self.body_bytes = keep, 0, 0

    def state(self):
        with self.lock:
            return {"names": dict(self.names), "lookups": list(self.lookups), "attempts": list(self.attempts),
                    "dropped": self.dropped}

    def keep(self, records, record):
        """Record it, within the bounds (KEEP, BODIES); past them it is counted as dropped."""
        with self.lock:
            if len(records) >= self.keep_at_most:
                self.dropped += 1
                return
            for field in ("body", "sent"):
                if field in record:
                    data = record.pop(field)
                    kept = data[: max(0, BODIES - self.body_bytes)]
                    self.body_bytes += len(kept)
                    record[field + "_b64"] = base64.b64encode(kept).decode()
                    if len(kept) < len(data):
                        record[field + "_cut"] = len(data) - len(kept)
            records.append(record)

    def address_of(self, name):
        with self.lock:
            if name not in self.by_name:
                ip = str(self.pool[len(self.names) + 1])
                self.by_name[name], self.names[ip] = ip, name
            return self.by_name[name]

    # -- the resolver --------------------------------------------------------------------------------------

    def resolve_loop(self):
        while True:
            query, peer = self.dns.recvfrom(4096)
            try:
                reply = self.answer(query, peer)
            except (ValueError, IndexError, struct.error):
                continue  # not a DNS query: no answer, as a resolver would drop it
            self.dns.sendto(reply, peer)

    def answer(self, query, peer):
        ident, flags = struct.unpack("!HH", query[:4])
        labels, at = [], 12
        while query[at]:
            labels.append(query[at + 1 : at + 1 + query[at]].decode("ascii", "replace"))
            at += 1 + query[at]
        qtype = struct.unpack("!H", query[at + 1 : at + 3])[0]
        question = query[12 : at + 5]
        name = ".".join(labels).lower()
        types = {1: "A", 28: "AAAA", 12: "PTR", 5: "CNAME", 15: "MX", 16: "TXT"}
        self.keep(self.lookups, {"t": time.time(), "name": name, "type": types.get(qtype, str(qtype)),
                                 "port": peer[1]})
        answers = b""
        if qtype == 1 and name:
            ip = self.address_of(name)
            answers = struct.pack("!HHHIH", 0xC00C, 1, 1, 60, 4) + socket.inet_aton(ip)
        head = struct.pack("!HHHHHH", ident, 0x8180 | (flags & 0x0100), 1, 1 if answers else 0, 0, 0)
        return head + question + answers

    # -- the sinkhole --------------------------------------------------------------------------------------

    def accept_loop(self):
        while True:
            conn, peer = self.tcp.accept()
            try:
                threading.Thread(target=self.attempt, args=(conn, peer), daemon=True).start()
            except RuntimeError:  # at the container's process limit (a flood of connections): one at a time
                self.attempt(conn, peer)

    def attempt(self, conn, peer):
        ip, port = conn.getsockname()[:2]  # where the program meant to go: the steering keeps it
        with self.lock:
            name = self.names.get(ip, "")
        record = {"t": time.time(), "ip": ip, "port": port, "name": name, "from": peer[1], "proto": "tcp",
                  "answer": "closed"}
        try:
            conn.settimeout(FIRST_WAIT)
            first = conn.recv(BODY)
            conn.settimeout(5)
            if first[:1] == b"\x16":
                record.update(proto="tls", sni=server_name(first), answer="TLS alert")
                conn.sendall(b"\x15\x03\x03\x00\x02\x02\x28")  # handshake_failure: no site here
            elif first.split(b" ", 1)[0] in METHODS:
                self.http(conn, first, record)
            else:
                record["sent"] = first[:4096]
        except OSError:
            pass
        finally:
            self.keep(self.attempts, record)
            try:
                conn.close()
            except OSError:
                pass

    def http(self, conn, data, record):
        while b"\r\n\r\n" not in data and len(data) < BODY:
            more = conn.recv(BODY)
            if not more:
                break
            data += more
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        method, path = [*lines[0].split(" "), "", ""][:2]
        headers = {k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:])}
        want = int(headers.get("content-length") or 0)
        while len(body) < min(want, BODY):
            more = conn.recv(BODY)
            if not more:
                break
            body += more
        host = headers.get("host", "").rsplit(":", 1)[0].lower()  # what the program says it wants
        record.update(proto="http", method=method, host=host, path=path,
                      body=body[:BODY], agent=headers.get("user-agent", ""))
        site = record["name"] or host.rstrip(".")  # the name resolved (digits: the site the Host header names)
        with self.lock:
            served = self.serve.get((site, path.split("?", 1)[0]))
        if served is not None:
            content = base64.b64decode(served.get("body_b64", ""))
            status = int(served.get("status", 200))
            kind = served.get("type") or "application/octet-stream"
            record["answer"] = "%d (%d bytes served)" % (status, len(content))
        else:
            content, status, kind = b"Service Unavailable\n", 503, "text/plain"
            record["answer"] = "503"
        reason = {200: "OK", 404: "Not Found", 503: "Service Unavailable"}.get(status, "Status")
        conn.sendall(("HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
                      % (status, reason, kind, len(content))).encode() + content)


METHODS = {b"GET", b"POST", b"PUT", b"HEAD", b"DELETE", b"PATCH", b"OPTIONS", b"CONNECT"}


def server_name(hello):
    """The server name (SNI) a TLS ClientHello asks for, or ""."""
    try:
        at = 5 + 4 + 2 + 32  # record header, handshake header, version, random
        at += 1 + hello[at]  # session id
        at += 2 + struct.unpack("!H", hello[at : at + 2])[0]  # cipher suites
        at += 1 + hello[at]  # compression methods
        end = at + 2 + struct.unpack("!H", hello[at : at + 2])[0]
        at += 2
        while at + 4 <= end:
            kind, size = struct.unpack("!HH", hello[at : at + 4])
            if kind == 0:  # server_name: list length, type, name length, name
                n = struct.unpack("!H", hello[at + 7 : at + 9])[0]
                return hello[at + 9 : at + 9 + n].decode("ascii", "replace").lower()
            at += 4 + size
    except (IndexError, struct.error):
        pass
    return ""


def main():
    """The container's control loop."""

    def start(req):
        sink = Sinkhole(req["resolver"], req["listen"], req["pool"])
        return sink, {"ready": True, "fd": sink.tcp.fileno(), "pid": os.getpid()}

    def seed(sink, req):
        sink.seed(req.get("serve") or [], int(req.get("keep") or KEEP))
        return {"ok": True}

    control.serve(start, {"seed": seed, "state": lambda sink, req: {"state": sink.state()}})


if __name__ == "__main__":
    main()
