"""A web service as a part of the world: a hardened container inside the agent box's network namespace.

Isolation: the box has no network but its loopback (``network_mode=none``). Each service container joins the box's
network namespace (``network_mode=container:<box>``) and serves on a loopback address of its own (``127.0.0.2``,
``.3``, ...), port 80; the box's ``/etc/hosts`` names it (``mail.corp.example``). So the agent reaches its own
world's services and nothing else: no route leaves the namespace, and another episode's services live in another
namespace. This holds with the engine started ``--iptables=false``, where bridge networks are not isolated.

The graders' channel is the service process's stdin (:class:`riskgym.world.channel.Channel`): seeding, state and
tool calls go there, not over HTTP, so the agent cannot read or reset what the graders read. In the in-memory world
(``--sandbox fake``) the same site runs in this process instead.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from riskgym.core.parts import ServiceSpec
from riskgym.core.scenario import Scenario
from riskgym.core.state import JsonState
from riskgym.errors import SandboxError
from riskgym.world.kind import BesidePart
from riskgym.world.services.server import Site

SERVICE_USER = "65534:65534"
"""Services run as nobody."""
PORT = 80


def loader() -> str:
    """What the service container's ``python3 -c`` runs: the sites and the server as modules, then the loop."""
    from riskgym.world.channel import program

    return program((("control", "riskgym.world"), ("sites", "riskgym.world.services"),
                    ("server", "riskgym.world.services")), "server")


class ServicePart(BesidePart):
    """One web service of an episode's world (see the module's text)."""

    joins_network = True
    """It starts as soon as the box's container runs (see :meth:`riskgym.world.world.World.start`)."""

    def __init__(self, spec: ServiceSpec, labels: dict[str, str]) -> None:
        self.spec = spec
        self.name = spec.name
        self.kind = spec.kind
        self.labels = labels
        self.address = "127.0.0.2"
        self.box: Any = None
        """The agent's box, whose network namespace it joins (set by the world before it starts)."""
        self.site: Site | None = None
        self.about = f"service {self.name}"
        self.image_id = ""

    @property
    def hosts(self) -> list[str]:
        """The names it answers to."""
        return self.spec.hosts

    @property
    def local(self) -> bool:
        """In this process (the box is not a container)."""
        return getattr(self.box, "container", None) is None

    def start(self) -> None:
        """Start its container in the box's network namespace (or, beside an in-memory box, in this process)."""
        if self.local:
            self.site = Site(self.kind, self.spec.host)
            return
        from riskgym.world.docker import beside, engine_errors, require_image

        try:
            self.image_id = engine_errors(require_image)(self.box.image)
            self.container, self._channel = beside(self.box, self.name, SERVICE_USER, loader(), "256m", "16m",
                                                   self.labels)
            reply = self._ask({"op": "start", "kind": self.kind, "host": self.spec.host, "address": self.address,
                               "port": PORT}, timeout=60)
        except BaseException:
            self.close()
            raise
        if not reply.get("ready"):
            self.close()
            raise SandboxError(f"service {self.name}: did not start ({reply}): is python3-flask in the image?")

    def seed(self, data: dict[str, Any]) -> None:
        """Start afresh from ``data``."""
        if self.site is not None:
            self.site.seed(data)
        else:
            self._ask({"op": "seed", "data": data})

    def reset(self) -> None:
        """Empty it in place (~1 ms: one message on the control channel)."""
        self.seed({})

    def alive(self) -> bool:
        """Whether it still answers."""
        return self.site is not None or self.answers({"op": "state"})

    def prepare(self, scenario: Scenario) -> None:
        """Seed it from the scenario's ``[[parts]]`` entry of the same name."""
        spec = next((p for p in scenario.parts if p.name == self.name), self.spec)
        self.seed(spec.seed() if isinstance(spec, ServiceSpec) else {})

    def state(self) -> dict[str, Any]:
        """Its data and request log."""
        if self.site is not None:
            return self.site.state()
        return dict(self._ask({"op": "state"})["state"])

    def capture(self, scenario: Scenario) -> JsonState:
        """Its state, for the graders."""
        return JsonState(data=self.state())

    def request(self, method: str, path: str, headers: dict[str, str] | None = None, body: str = "",
                timeout: float = 30.0) -> dict[str, Any]:
        """A tool's HTTP request to the site: ``{status, headers, body}``."""
        if self.site is not None:
            reply = self.site.call(method, path, headers, body)
        else:
            reply = self._ask({"op": "call", "method": method, "path": path, "headers": headers or {},
                               "body": body}, timeout=timeout)
        if "body_b64" in reply:
            reply["body"] = base64.b64decode(reply.pop("body_b64")).decode("utf-8", "replace")
        return reply

    def api(self, method: str, path: str, payload: dict[str, Any] | None = None) -> Any:
        """A JSON API call: the decoded reply (an ``{"error": ...}`` object on a failure)."""
        reply = self.request(method, path, {"Content-Type": "application/json"},
                             json.dumps(payload) if payload is not None else "")
        try:
            return json.loads(reply["body"])
        except json.JSONDecodeError:
            return {"error": f"HTTP {reply['status']}"}

    def describe(self) -> dict[str, Any]:
        """Kind, host, address, and where it runs."""
        return {"kind": self.kind, "host": self.spec.host, "address": self.address,
                "runner": "local" if self.local else "container", "image_id": self.image_id}

    def close(self) -> None:
        """Remove its container. Safe to call twice."""
        super().close()
        self.site = None
