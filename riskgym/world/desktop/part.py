"""The desktop as a part of the world: an X session in the agent's box, driven over a channel only riskgym holds.

The box must be a real one (``riskgym/desktop``, or an image built FROM it). Each episode's ``prepare`` starts the
session afresh as the agent's user: the driver (:mod:`riskgym.world.desktop.driver`), then Xvfb, the window
manager and the scenario's apps. The box's own reset in place kills every process of the agent's user, the
session's among them, and empties the home (the browser's profile with it), so the desktop's ``reset`` only forgets
its channel: a desktop is reset in place whenever its box is.

What the apps' processes do is observed as the box's commands are (strace): a script run in the desktop's terminal
is graded like one run by the shell tool.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from riskgym.core.desktop import DesktopSpec
from riskgym.core.kinds import Effect
from riskgym.core.observation import Observation
from riskgym.core.scenario import Scenario
from riskgym.core.state import JsonState
from riskgym.errors import SandboxError
from riskgym.world.kind import BasePart
from riskgym.world.observe import Reader

PRIVATE = "/dev/shm/.desk"
"""The driver's folder in the box (the observer's reports of the apps)."""
PYTHON = "/usr/libexec/xsession/python3"
"""The desktop image's execute-only python3, which runs the driver: not dumpable, so the agent's user cannot read
its memory, write to its channel through /proc/PID/fd, or ptrace it (the driver lives on from one episode to the
next)."""


class DesktopPart(BasePart):
    """The desktop of one episode's world (see the module's text)."""

    def __init__(self, spec: DesktopSpec, labels: dict[str, str]) -> None:
        self.spec = spec
        self.name = spec.name
        self.kind = "desktop"
        self._box: Any = None
        self.last: dict[str, Any] = {}
        """The driver's last observation: the screenshot, windows and pages."""
        self.startup: dict[str, float] = {}
        """Seconds from the driver's start to each stage of the last session's (the X screen, the apps' windows)."""
        self._channel: Any = None
        self._driver = 0
        self._container = ""
        self._reader = Reader()
        self._typing = Typing()

    @property
    def box(self) -> Any:
        """The agent's box, which the session runs in (set by the world before it starts)."""
        return self._box

    @box.setter
    def box(self, box: Any) -> None:
        self._box = box
        if hasattr(box, "desktop"):  # told before it starts: its apps' in-box observer needs ptrace there
            box.desktop = True

    def start(self) -> None:
        """Check that the box can hold a desktop (the session itself starts with each episode)."""
        if getattr(self.box, "container", None) is None:
            raise SandboxError("the desktop runs in a real box: run it with the docker sandbox (not --sandbox "
                               f"{getattr(self.box, 'kind', 'fake')!s})")

    def reset(self) -> None:
        """End the episode.

        The box's reset, done first, ended its apps and spared the session (the screen, the window manager and
        the browser live on); the driver closes the episode's browser context and lets go of keys held. A session
        that is gone is started afresh with the next episode.
        """
        if self._channel is not None:
            try:
                self._ask({"op": "reset"}, timeout=30)
            except SandboxError:
                self.close()
        self._reader.reset()
        self._typing = Typing()
        self.last = {}

    def alive(self) -> bool:
        """Whether the box it runs in still runs (the session is started with each episode)."""
        return True

    def prepare(self, scenario: Scenario) -> None:
        """Start the session and the scenario's apps; wait until their windows show."""
        from riskgym.world.channel import Channel, program
        from riskgym.world.docker import EXECUTOR, docker_client

        spec = next((p for p in scenario.parts if isinstance(p, DesktopSpec)), self.spec)
        self.spec = spec
        self._reader.reset()
        self._typing = Typing()
        if self._channel is not None and self._container != self.box.container.id:  # a new box
            self.close()
        if self._channel is None:  # the first episode, or the session was gone
            source = program((*EXECUTOR, ("cdp", "riskgym.world.desktop"),
                              ("inputs", "riskgym.world.desktop"), ("driver", "riskgym.world.desktop")), "driver")
            self._channel = Channel(docker_client().api, self.box.container.id, source, self.box.user, python=PYTHON)
            ready = self._channel.read_line()
            if not ready or b'"ready"' not in ready:
                self.close()
                raise SandboxError(f"the desktop's driver did not start in {self.box.image!r} (it said {ready!r}): "
                                   "is the box's image riskgym/desktop (riskgym images build)?")
            self._driver = int(json.loads(ready).get("pid") or 0)
            self._container = self.box.container.id
            if hasattr(self.box, "harness_tree"):  # the host observer leaves the session out: its apps' own
                self.box.harness_tree(self._driver)  # observer follows them
        reply = self._ask({"op": "start", "size": list(spec.size), "shot": list(spec.shot), "settle": spec.settle,
                           "apps": [a.model_dump(mode="json") for a in spec.apps]}, timeout=90)
        if hasattr(self.box, "session"):  # the box's snapshots leave the session's own processes out, and its
            self.box.session = {"root": self._driver, "apps": [int(p) for p in reply.get("apps") or {}],  # reset
                                "keep": reply.get("keep")}  # spares them, as the driver says
        self.startup = reply.get("startup") or {}
        self.observation(reply)  # the apps' own start-up (its journal too): it teaches the reader their processes,
        # and is nobody's act

    def _ask(self, req: dict[str, Any], timeout: float = 60.0) -> dict[str, Any]:
        if self._channel is None:
            raise SandboxError("the desktop is not started")
        reply = self._channel.ask(req, timeout)
        if reply is None:
            self.close()
            raise SandboxError("the desktop's driver is gone (the agent ended the session?)")
        if "error" in reply and req.get("op") != "act":
            raise SandboxError(f"the desktop: {reply['error']}")
        if "windows" in reply:
            self.last = {**self.last, **reply}
        return reply

    def act(self, arguments: dict[str, Any], timeout: float = 60.0) -> dict[str, Any]:
        """One action (the computer tool's arguments, Anthropic's names); the driver's reply, with the observation."""
        start = time.perf_counter()
        reply = self._ask({"op": "act", **arguments}, timeout=timeout)
        reply["duration"] = time.perf_counter() - start
        return reply

    def happened(self) -> list[Effect]:
        """What was done on the desktop since the driver's last reply, as effects.

        Asked after a step of another tool: the shell's ``xdotool`` clicks as well as the computer tool does.
        """
        if self._channel is None:
            return []
        try:
            return self.effects(self._ask({"op": "journal"}, timeout=30).get("journal") or [])
        except SandboxError:
            return []

    def effects(self, journal: list[dict[str, Any]]) -> list[Effect]:
        """A reply's journal as effects (see :func:`journal_effects`), the text typed carried from the last."""
        return journal_effects(journal, self._typing)

    def observation(self, reply: dict[str, Any]) -> Observation:
        """What the apps' processes did since the last reply, as the observer saw it."""
        apps = {int(pid): cwd for pid, cwd in (reply.get("apps") or {}).items()}
        for pid, cwd in apps.items():  # what the apps start inherits their working directory
            self._reader.cwd.setdefault(pid, cwd)
        seen = {"sys": reply.get("sys") or [], "parents": list(apps), "private": reply.get("private") or PRIVATE}
        return self._reader.read(seen, "/home/agent")

    def capture(self, scenario: Scenario) -> JsonState:
        """The windows open and the pages shown, for the graders."""
        after: list[Effect] = []
        if self._channel is not None:
            try:
                after = self.effects(self._ask({"op": "look", "png": False}, timeout=30).get("journal") or [])
            except SandboxError:
                pass
        windows = [{k: w[k] for k in ("title", "class", "active")} for w in self.last.get("windows", [])]
        pages = [{"url": p["url"], "title": p["title"]} for p in self.last.get("pages", [])]
        data: dict[str, Any] = {"windows": windows, "pages": pages}
        if after:  # done after the last step (a job the shell left behind): for the auditor, not graded
            data["after"] = [str(e) for e in after]
        return JsonState(data=data)

    def describe(self) -> dict[str, Any]:
        """Kind, screen and screenshot sizes, and what the agent is shown."""
        return {"kind": "desktop", "size": list(self.spec.size), "screenshot": list(self.spec.shot),
                "observe": self.spec.observe}

    def destinations(self) -> list[str]:
        """None: the desktop serves nothing (its browser's DevTools port is on the box's loopback, the driver's)."""
        return []

    def close(self) -> None:
        """Close the channel: the driver ends, the session's processes with the box's next reset or its removal.

        Safe to call twice.
        """
        if self._channel is not None:
            self._channel.close()
            self._channel = None
            if getattr(self.box, "session", None):  # nothing of it is spared any more
                self.box.session = None


BUTTONS = {1: "left", 2: "middle", 3: "right"}


@dataclass
class Typing:
    """The text typed into one window since the pointer was last pressed.

    A field typed in two actions, or with the page's own report of an Enter in the middle, reads whole.
    """

    window: str = ""
    text: str = ""

    def add(self, window: str, text: str) -> None:
        """Keys typed into ``window`` (another window's text starts anew)."""
        if window != self.window:
            self.window, self.text = window, ""
        self.text = (self.text + text)[-TYPED:]

    def effect(self) -> Effect:
        """What was typed so far, as a ``type`` effect."""
        return Effect("type", _window(self.window), self.text)


TYPED = 4096
"""The most of one window's typed text an effect keeps (its end), far above any password or command."""


def journal_effects(journal: list[dict[str, Any]], typing: Typing | None = None) -> list[Effect]:
    """The desktop's journal (see :mod:`riskgym.world.desktop.driver`) as effects, in order.

    A button press is a click on what the page under it reported it hit, at that moment (``link "Claim your prize"
    in "Congratulations!"``), else on the window under it; a keyboard activation in a page is a click too. Key
    presses into one window are text typed into it: the effect's detail is all that was typed there since the
    pointer was last pressed (``typing`` carries it from one action to the next). A page's navigation is a visit
    (and a request to its host).
    """
    matched: dict[int, dict[str, Any]] = {}  # a press's index -> the page's report of what it hit
    for n, event in enumerate(journal):  # the page's report and the X server's come in on two threads: by place
        if event.get("kind") == "click" and event.get("how") == "mouse":  # and time, not by order
            near = [i for i, e in enumerate(journal) if e.get("kind") == "press" and i not in matched
                    and abs(float(e.get("t", 0)) - float(event.get("t", 0))) < 2]
            same = [i for i in near if abs(int(journal[i].get("x") or 0) - int(event.get("x") or 0)) <= 3
                    and abs(int(journal[i].get("y") or 0) - int(event.get("y") or 0)) <= 3]
            press = min(same or near, key=lambda i: abs(float(journal[i]["t"]) - float(event.get("t", 0))),
                        default=None)
            matched[press if press is not None else n] = event
    typing = typing if typing is not None else Typing()
    out: list[Effect] = []
    pending = False  # keys came in since the last type effect
    for n, event in enumerate(journal):
        kind = event.get("kind")
        press = kind == "press" or (kind == "click" and n in matched)
        if pending and (kind != "key" or str(event.get("window") or "") != typing.window):
            out.append(typing.effect())  # the text typed so far, up to here (a press or another window ends it)
            pending = False
        if kind == "key":
            typing.add(str(event.get("window") or ""), str(event.get("text") or ""))
            pending = True
        elif press:
            typing.add("", "")  # a press moves the focus: what is typed next is new text
            button = f"{BUTTONS.get(int(event.get('button') or 1), 'left')}_click"
            hit = matched.get(n)
            where = event.get("window") or (hit or {}).get("title") or ""
            label = f'{hit["role"]} "{hit["name"]}" in "{where}"' if hit else _window(where)
            out.append(Effect("click", label, button))
        elif kind == "click" and event.get("how") == "key":
            out.append(Effect("click", f'{event.get("role")} "{event.get("name")}" in "{event.get("title")}"', "key"))
        elif kind == "visit":
            parts = urlsplit(str(event.get("url") or ""))
            if parts.scheme in ("http", "https") and parts.hostname:
                out += [Effect("visit", f"{parts.hostname}{parts.path or '/'}"), Effect("network", parts.hostname,
                                                                                        "GET")]
    if pending:
        out.append(typing.effect())
    return out


def _window(title: str) -> str:
    return f'window "{title}"' if title else "the desktop"
