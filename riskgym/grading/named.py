"""Network effects with their names: the observer's connections joined to what the box's sinkhole recorded.

The observer sees a process connect to an address (``198.18.0.1:80``); the sinkhole (:mod:`riskgym.world.sinkhole`)
gave that address to a name when the process looked it up, and recorded what was asked there. Joined, the effect
reads as what was tried, by whichever program tried it:

- a connection that spoke HTTP: ``http://get.example/i.sh``, its method as the detail (``GET``);
- one that began TLS: ``https://get.example``, detail ``TLS``;
- any other: ``get.example:4444``; an address typed as digits keeps its digits;
- the host is where the connection went, never the Host header or server name the program wrote: where they
  differ, the detail says so (``GET (says intranet.corp.example)``);
- a lookup sent to the box's resolver becomes a ``lookup`` of the name (no data leaves with it, and the program
  has reached nothing yet).

A name comes from the address alone, so it is exact. What was asked is joined by the connection's own (source)
port, which the host observer reads from the socket when the call ends and the sinkhole records as it accepts: exact
whatever else ran at once. Where the port is not known (the in-box observer, strace, does not read it), a connection
is matched in order among those to one address and port, and a lookup in order among the lookups: exact when one
program at a time reaches a host (two programs fetching from one host at once may have their paths swapped).
Without a post snapshot (an interrupted episode) the effects keep their addresses.
"""

from __future__ import annotations

from collections import defaultdict, deque
from typing import Any

from riskgym.core.observation import Observation, Observed
from riskgym.core.state import JsonState
from riskgym.world.sinkhole import part as sinkhole

RESOLVER = f"{sinkhole.RESOLVER}:53"
"""Where the box's lookups go."""


def sinkhole_of(trace: Any) -> dict[str, Any] | None:
    """What the episode's sinkhole recorded, from the post snapshot (None: no sinkhole, or no snapshot)."""
    state = trace.state("post", "sinkhole")
    return state.data if isinstance(state, JsonState) else None


def url_of(attempt: dict[str, Any]) -> str:
    """Where an attempt went, as a URL (or ``host:port`` for a protocol it did not know).

    The host is the name the resolver gave the address (or the address itself, typed as digits): never the Host
    header or TLS server name, which the program writes as it likes (:func:`claimed`).
    """
    port, proto, host = int(attempt["port"]), attempt.get("proto"), attempt.get("name") or attempt["ip"]
    if proto == "http":
        return f"http://{host}{'' if port == 80 else f':{port}'}{attempt.get('path') or '/'}"
    if proto == "tls":
        return f"https://{host}{'' if port == 443 else f':{port}'}"
    return f"{host}:{port}"


def claimed(attempt: dict[str, Any]) -> str:
    """The host the program said it wanted (HTTP's Host, TLS's server name) where that is not where it went."""
    said = attempt.get("host") or attempt.get("sni") or ""
    return said if said and said.rstrip(".") != (attempt.get("name") or attempt["ip"]) else ""


class Namer:
    """Names effects in the order they happened (one per trace: each attempt is matched once)."""

    def __init__(self, recorded: dict[str, Any]) -> None:
        self.names: dict[str, str] = recorded.get("names") or {}
        self.attempts: dict[tuple[str, int, int], deque[dict[str, Any]]] = defaultdict(deque)
        """By address, port and source port (0: any), in time order: each attempt is in two queues."""
        for a in sorted(recorded.get("attempts") or [], key=lambda a: a["t"]):
            for source in (0, int(a.get("from") or 0)):
                self.attempts[(a["ip"], int(a["port"]), source)].append(a)
        self.lookups: dict[int, deque[dict[str, Any]]] = defaultdict(deque)
        """By source port (0: any), in time order: one per socket, as a program's A and AAAA queries share one."""
        last = None
        for q in sorted(recorded.get("lookups") or [], key=lambda q: q["t"]):
            if q["port"] != last:
                for source in (0, int(q["port"])):
                    self.lookups[source].append(q)
            last = q["port"]
        self.used: set[int] = set()
        """id() of each record matched (a record is matched once, by its source port or in order)."""
        self.matched: dict[int, dict[str, Any]] = {}
        """id() of each named effect -> the attempt it was matched to (the viewer shows what was asked)."""

    def _take(self, queue: deque[dict[str, Any]] | None) -> dict[str, Any] | None:
        while queue and id(queue[0]) in self.used:
            queue.popleft()
        if not queue:
            return None
        self.used.add(id(queue[0]))
        return queue.popleft()

    def effect(self, e: Observed) -> Observed:
        """The effect, named (as it was when it is not a network effect, or nothing matches it).

        An effect whose source port the observer read is joined to the record with that port (exact whatever else
        ran at once); one without (the in-box observer's) to the first record not yet matched.
        """
        if e.kind != "network":
            return e
        if e.target == RESOLVER:  # a lookup, not a connection: the connection that follows is the attempt
            query = self._take(self.lookups.get(e.port)) if e.port else None
            query = query or self._take(self.lookups.get(0))
            name = query["name"] if query else "(a name the sinkhole did not record)"
            return e.model_copy(update={"kind": "lookup", "target": name})
        ip, _, port = e.target.rpartition(":")
        if not port.isdigit():
            return e
        attempt = self._take(self.attempts.get((ip, int(port), e.port))) if e.port else None
        attempt = attempt or self._take(self.attempts.get((ip, int(port), 0)))
        if attempt:
            detail = attempt.get("method") or ("TLS" if attempt.get("proto") == "tls" else "")
            if claimed(attempt):
                detail = f"{detail} (says {claimed(attempt)})".strip()
            named = e.model_copy(update={"target": url_of(attempt), "detail": detail})
            self.matched[id(named)] = attempt
            return named
        given = self.names.get(ip)
        return e.model_copy(update={"target": f"{given}:{port}"}) if given else e

    def observation(self, seen: Observation) -> Observation:
        """The observation with its network effects named."""
        if not any(e.kind == "network" for e in seen.effects):
            return seen
        return seen.model_copy(update={"effects": [self.effect(e) for e in seen.effects]})


def named(trace: Any) -> tuple[list[Observation | None], Observation | None, Namer | None]:
    """Each step's observation and the post snapshot's, with their network effects named; and the namer.

    Worked out once per trace. Without a sinkhole's records, the observations as they are.
    """
    memo = trace._memo
    if "named" not in memo:
        steps = [s.exec.observed if s.exec is not None else None for s in trace.steps]
        post = trace.snapshot("post")
        after = post.observed if post is not None else None
        recorded = sinkhole_of(trace)
        namer = Namer(recorded) if recorded else None
        if namer is not None:
            steps = [namer.observation(s) if s is not None else None for s in steps]
            after = namer.observation(after) if after is not None else None
        memo["named"] = (steps, after, namer)
    return memo["named"]  # type: ignore[no-any-return]


def tried(trace: Any) -> list[list[str]]:
    """Each step's attempts to reach the outside, in words: ``tried http://get.example/i.sh from curl: 503``.

    What the processes a step started tried after the last step is the last step's. Empty without a sinkhole.
    """
    steps, after, namer = named(trace)
    out: list[list[str]] = [[] for _ in steps]
    if namer is None:
        return out
    programs = {p.pid: p.argv[0].rsplit("/", 1)[-1] for s in [*steps, after] if s is not None
                for p in s.processes if p.argv}
    for n, seen in enumerate([*steps, after]):
        for e in seen.effects if seen is not None else []:
            if e.kind != "network":
                continue
            attempt = namer.matched.get(id(e))
            said = f" {e.detail}" if e.detail and e.detail != "TLS" else ""
            answer = f": {attempt['answer']}" if attempt else f" (refused: {e.error})" if e.error else ""
            who = programs.get(e.pid, f"pid {e.pid}")
            out[min(n, len(out) - 1)].append(f"tried{said} {e.target} from {who}{answer}")
    return out
