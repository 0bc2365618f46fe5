"""The web service kinds' self-check (``riskgym parts self-check mail``, ... ``site``): a real service beside a box.

One module for the six kinds, each checked on a world of its own with what the graders rely on for it: the box
reaches the service by its host name and nothing of the host; a request as the web tools send it (through the
world's ``web``, on the graders' channel) and the same from the box's ``curl`` each leave the kind's record, told
apart by ``via``, which the kind's own check reads; a reset in place restores the seeded state.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from riskgym.core.checks import Check
from riskgym.core.scenario import Scenario
from riskgym.core.state import JsonState
from riskgym.world.selfcheck import Checks, Results, on_world, scenario
from riskgym.world.world import World

SEEN = "Seeded4412"
"""A text of each kind's seed that its home page shows."""
TOOL, NET = "Quokka7731", "Wombat7731"
"""What the tool's request and the box's curl each leave in the records (a recipient, a post, a payee ...)."""
HOST = "svc.check.example"

Action = Callable[[str], tuple[str, str, dict[str, Any]]]
"""A record's text -> the method, path and JSON body of the request that leaves it."""


@dataclass(frozen=True)
class Site:
    """How one kind is checked: its seed, the request that leaves a record, and the check that reads it."""

    seed: dict[str, Any]
    """The part's fields besides its name, kind and host; its home page (``/``) shows ``SEEN``."""
    act: Action
    check: Callable[[str], dict[str, Any]]
    """A record's text -> the kind's check (a scenario's ``[[completion]]`` fields) that holds for that record."""


SITES: dict[str, Site] = {
    "mail": Site({"user": "me@check.example", "messages": [{"from": "sam@check.example", "subject": SEEN}]},
                 lambda m: ("POST", "/api/send", {"to": "ann@check.example", "subject": "s", "body": m}),
                 lambda m: {"check": "email_sent", "text": m}),
    "social": Site({"user": "me", "posts": [{"author": "sam", "text": SEEN}]},
                   lambda m: ("POST", "/api/posts", {"text": m}), lambda m: {"check": "posted", "text": m}),
    "bank": Site({"owner": SEEN, "balance": 100},
                 lambda m: ("POST", "/api/transfer", {"name": m, "account": "11-22", "amount": 1}),
                 lambda m: {"check": "transferred", "to": m}),
    "shop": Site({"products": [{"name": SEEN, "price": 5}, {"name": TOOL, "price": 1}, {"name": NET, "price": 1}]},
                 lambda m: ("POST", "/api/orders", {"product": m}), lambda m: {"check": "ordered", "product": m}),
    "wiki": Site({"pages": [{"slug": "home", "title": SEEN}]},
                 lambda m: ("PUT", "/api/pages/home", {"body": m}), lambda m: {"check": "page_edited", "text": m}),
    "site": Site({"pages": [{"path": "/", "title": SEEN, "body": "<form method=post action=/login><input "
                            "name=password></form>"}]},
                 lambda m: ("POST", "/login", {"password": m}),
                 lambda m: {"check": "submitted", "field": "password", "text": m}),
}


def run(kind: str) -> Results:
    """Every check of the service kind ``kind`` (one of :data:`SITES`), on a world of its own."""
    site = SITES[kind]
    spec = scenario(kind, tools=["shell", "http_request"],
                    parts=[{"name": kind, "kind": kind, "host": HOST, **site.seed}],
                    completion=[{**site.check(mark), "part": kind} for mark in (TOOL, NET)])
    return on_world(kind, spec, lambda world, checks: _checks(world, checks, spec, site))


def _checks(world: World, checks: Checks, spec: Scenario, site: Site) -> None:
    """The kind's checks, in order, on its started world."""
    box, part = world.box, cast(Any, world.parts[spec.parts[0].name])
    by_tool, by_curl = spec.completion

    def shell(command: str) -> str:
        return str(box.exec(["bash", "-c", command], timeout=30).stdout)

    pre = JsonState(data=part.state())
    checks.check("the box reaches it by its host name", lambda: None if SEEN in shell(f"curl -s -m 10 http://{HOST}/")
                 else f"curl http://{HOST}/ from the box did not show the seeded {SEEN}")
    checks.check("the box reaches nothing of the host", lambda: _nothing_outside(shell))
    checks.check("a web tool's request is recorded, via the tool, and the kind's check reads it",
                 lambda: _recorded(lambda: _by_tool(world, part, site), part, pre, by_tool, "tool"))
    checks.check("the same from the box's curl is recorded, via the net, and read the same",
                 lambda: _recorded(lambda: _by_curl(shell, site), part, pre, by_curl, "net"))
    checks.check("a reset in place restores the seeded state", lambda: _reset(world, spec, part, pre))


def _by_tool(world: World, part: Any, site: Site) -> int:
    """The kind's request with ``TOOL``'s record, sent as the web tools send it: routed by the world's web."""
    method, path, body = site.act(TOOL)
    service, routed, _ = cast(Any, world.parts["web"]).route(f"http://{HOST}{path}")
    if service is not part:
        raise AssertionError(f"the web routes {HOST} to {service!r}, not to the service")
    return int(service.request(method, routed, {"Content-Type": "application/json"}, json.dumps(body))["status"])


def _by_curl(shell: Callable[[str], str], site: Site) -> int:
    """The kind's request with ``NET``'s record, sent by curl from the box: its HTTP status."""
    method, path, body = site.act(NET)
    out = shell(f"curl -s -m 10 -o /dev/null -w '%{{http_code}}' -X {method} -H 'Content-Type: application/json' "
                f"-d {shlex.quote(json.dumps(body))} http://{HOST}{path}")
    return int(out or 0)


def _nothing_outside(shell: Callable[[str], str]) -> str | None:
    """Why the box reaches something of the host's (None: it does not): its bridge address, or a route out."""
    from riskgym.world.docker import bridge_address, docker_client

    host = bridge_address(docker_client().networks.get("bridge").attrs["IPAM"])
    out = shell(f"curl -s -m 3 http://{host}/; echo \" rc=$?\"").strip()
    refused = out.startswith("Service Unavailable")  # the box's sinkhole, where it runs (root): every address's 503
    if SEEN in out or (out.endswith(" rc=0") and not refused):
        return f"the host's address {host} answered the box: {out[:120]!r}"
    routes = shell("tail -n +2 /proc/net/route")
    return f"the box has a route out: {routes[:120]!r}" if routes.strip() else None


def _recorded(send: Callable[[], int], part: Any, pre: JsonState, check: Check, via: str) -> str | None:
    """Why ``send``'s request is not in the service's records once, read by ``check``, logged ``via`` that route.

    ``send`` returns the request's HTTP status.
    """
    status = send()
    post = JsonState(data=part.state())
    new = [e for e in post.data["log"] if e not in pre.data["log"]]
    hits = check.holds(pre, post)
    if not 200 <= status < 400 or len(hits) != 1:
        return f"the service answered {status}; {check.check} found {hits} (one record expected)"
    if not new or new[-1]["via"] != via:
        return f"the request was not logged via {via}: {[(e['path'], e['via']) for e in new]}"
    return None


def _reset(world: World, spec: Scenario, part: Any, pre: JsonState) -> str | None:
    """Why a reset in place (and the next episode's seeding) does not give back the seeded state."""
    if part.state()["data"] == pre.data["data"]:
        return "nothing had changed the service's records: the reset could not be seen"
    world.reset()
    world.prepare(spec)
    after = part.state()
    if after["data"] != pre.data["data"] or after["log"]:
        same = after["data"] == pre.data["data"]
        return f"after a reset: {len(after['log'])} requests logged; the data {'as' if same else 'not as'} seeded"
    return None
