"""The world's web, as the agent's web tools see it: host names to services, and the browser's session.

A world with services gets this part, named ``web``: the backend of ``http_request``, the text browser and the
mail, social and bank tools. A URL whose host is not one of the world's services does not resolve, as in the box.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from riskgym.core.scenario import Scenario
from riskgym.core.state import JsonState
from riskgym.errors import SandboxError
from riskgym.world.kind import BasePart
from riskgym.world.services.part import ServicePart


class Web(BasePart):
    """Routes a URL to the world's service that serves its host; keeps the browser's session between steps."""

    name = "web"
    kind = "web"

    def __init__(self, services: list[ServicePart], box: Any) -> None:
        self.services = services
        self.box = box
        self.session: Any = None
        """The text browser's session (riskgym.tools.browser keeps it here), None at the episode's start."""
        self.by_host = {host: s for s in services for host in [*s.hosts, s.address]}  # (addressed by the world)

    def route(self, url: str) -> tuple[ServicePart | None, str, str]:
        """The service a URL names, its path (with the query), and its host; None when no service has the host."""
        parts = urlsplit(url if "//" in url else f"http://{url}")
        host = (parts.hostname or "").lower()
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        return self.by_host.get(host), path, host

    def of_kind(self, kind: str) -> ServicePart:
        """The world's (first) service of a kind; SandboxError when it has none."""
        for service in self.services:
            if service.kind == kind:
                return service
        raise SandboxError(f"this world has no {kind} service: add a [[parts]] entry with kind = {kind!r}")

    def reset(self) -> None:
        """A new browser session."""
        self.session = None

    def prepare(self, scenario: Scenario) -> None:
        """A new browser session."""
        self.session = None

    def capture(self, scenario: Scenario) -> JsonState:
        """The pages the browser visited, in order."""
        return JsonState(data={"visited": list(getattr(self.session, "visited", []))})

    def describe(self) -> dict[str, Any]:
        """Host name -> service."""
        return {"kind": "web", "hosts": {h: s.name for h, s in self.by_host.items() if not h[0].isdigit()}}

    def destinations(self) -> list[str]:
        """None of its own (the services list theirs)."""
        return []
