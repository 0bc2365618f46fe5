"""The desktop kind's self-check (``riskgym parts self-check desktop``): a real X session in a real box.

Each check is what the graders rely on: a screenshot is a real image of the screen size the scenario set, showing
the page; a click and typed text reach the page (its site records them) and are recorded as effects by the X
server and the page, whoever sent them (the computer tool's actions, or the shell's ``xdotool``); a reset in place
gives the next episode the desktop as it started.
"""

from __future__ import annotations

import base64
import io
from typing import Any, cast

from riskgym.core.scenario import Scenario
from riskgym.world.selfcheck import Checks, Results, on_world, scenario
from riskgym.world.world import World

SIZE = (1024, 640)
"""The screen's size: not the default, so that a screenshot of the default size fails."""
BLUE = (45, 149, 255)
"""The page's background (#2d95ff): a screenshot that shows the page is largely this colour."""
TYPED = "Kiwi5521"
PAGE = ("<html><head><title>Check page</title></head><body style='margin:0;background:#2d95ff;font:20px sans-serif'>"
        "<form method=post action=/><input name=q aria-label=Answer><button>Send</button></form>"
        "<p><a href=/next>Go next</a></p></body></html>")


def run() -> Results:
    """Every check of the desktop kind, on a world of a desktop and the site its browser opens."""
    spec = scenario("desktop", tools=["computer", "shell"], parts=[
        {"name": "desktop", "kind": "desktop", "size": list(SIZE),
         "apps": [{"app": "browser", "url": "http://page.check.example/"}]},
        {"name": "page", "kind": "site", "host": "page.check.example",
         "pages": [{"path": "/", "html": PAGE}, {"path": "/next", "title": "Next page"}]}])
    return on_world("desktop", spec, lambda world, checks: _checks(world, checks, spec))


def _checks(world: World, checks: Checks, spec: Scenario) -> None:
    """The kind's checks, in order, on its started world."""
    desktop, site = cast(Any, world.parts["desktop"]), cast(Any, world.parts["page"])
    checks.check("a screenshot is a real image of the set screen size, showing the page",
                 lambda: _screenshot(desktop.act({"action": "screenshot"})))
    checks.check("typed text reaches the page and is recorded", lambda: _typed(desktop, site))
    checks.check("a click reaches the page and is recorded", lambda: _clicked(desktop, site))
    checks.check("a click from the shell's xdotool is recorded too", lambda: _xdotool(world.box, desktop))
    checks.check("a reset in place gives the desktop as it started", lambda: _reset(world, spec, desktop, site))


def _screenshot(reply: dict[str, Any]) -> str | None:
    """Why the reply's screenshot is not a PNG of :data:`SIZE` that shows the page's background."""
    from PIL import Image

    image = Image.open(io.BytesIO(base64.b64decode(reply.get("png") or ""))).convert("RGB")
    if image.size != SIZE:
        return f"the screenshot is {image.size[0]}x{image.size[1]}, the screen {SIZE[0]}x{SIZE[1]}"
    raw = image.resize((64, 40)).tobytes()
    pixels = [raw[i:i + 3] for i in range(0, len(raw), 3)]
    share = sum(max(abs(p[i] - BLUE[i]) for i in range(3)) < 30 for p in pixels) / len(pixels)
    return None if share > 0.3 else f"the page's blue is {share:.0%} of the screenshot: it does not show the page"


def _effects(desktop: Any, reply: dict[str, Any]) -> list[str]:
    """What an action's reply says was done, as the effects the graders read."""
    if "error" in reply:
        raise AssertionError(f"the action failed: {reply['error']}")
    return [str(e) for e in desktop.effects(reply.get("journal") or [])]


def _typed(desktop: Any, site: Any) -> str | None:
    """Why text typed into the page's field (and Return) is not a ``type`` effect and the site's submission."""
    seen = _effects(desktop, desktop.act({"action": "left_click", "target": "Answer"}))
    seen += _effects(desktop, desktop.act({"action": "type", "text": TYPED}))
    seen += _effects(desktop, desktop.act({"action": "key", "text": "Return"}))
    got = [s["fields"] for s in site.state()["data"]["submissions"]]
    if not any(e.startswith("type ") and TYPED in e for e in seen):
        return f"no type effect holds {TYPED}: {seen}"
    return None if {"q": TYPED} in got else f"the site received {got}, not q={TYPED}"


def _clicked(desktop: Any, site: Any) -> str | None:
    """Why a click on the page's link is not a ``click`` effect on it, a visit, and the site's request."""
    seen = _effects(desktop, desktop.act({"action": "left_click", "target": "Go next"}))
    asked = [e["path"] for e in site.state()["log"]]
    if not any(e.startswith("click ") and "Go next" in e for e in seen):
        return f"no click effect on the link: {seen}"
    if not any(e.startswith("visit page.check.example/next") for e in seen):
        return f"no visit of the page it opened: {seen}"
    return None if "/next" in asked else f"the site was not asked for /next: {asked}"


def _xdotool(box: Any, desktop: Any) -> str | None:
    """Why a click sent by the shell's ``xdotool`` (not the computer tool) is not among what happened."""
    box.exec(["bash", "-c", "DISPLAY=:1 xdotool mousemove 500 300 click 1"], timeout=30)
    seen = [str(e) for e in desktop.happened()]
    return None if any(e.startswith("click ") for e in seen) else f"the shell's click was not recorded: {seen}"


def _reset(world: World, spec: Scenario, desktop: Any, site: Any) -> str | None:
    """Why, after a reset in place, the desktop does not show the start page again, its field empty, nothing logged."""
    world.reset()
    world.prepare(spec)
    reply = desktop.act({"action": "screenshot"})
    urls = [p["url"] for p in reply.get("pages", [])]
    values = [n.get("value") for p in reply.get("pages", []) for n in p.get("nodes", []) if n.get("value")]
    if urls != ["http://page.check.example/"] or values:
        return f"after a reset the pages are {urls}, with values {values}"
    stale = [f"{e['method']} {e['path']}" for e in site.state()["log"] if e["method"] == "POST" or e["path"] == "/next"]
    return f"after a reset the site holds the last episode's requests: {stale}" if stale else _screenshot(reply)
