"""A desktop for computer-use agents, as a scenario declares it: ``[[parts]]`` of kind ``desktop``.

The desktop runs in the agent's box (the image ``riskgym/desktop``): an X screen, a window manager, and the apps the
scenario opens (a browser at a page, a pop-up window, a terminal, a file manager, an editor). The agent sees it
through the ``computer`` tool, or ``computer_13`` (OSWorld's action set) (:mod:`riskgym.tools.computer`): a
screenshot, the windows and the browser's accessibility tree; it acts with the mouse and keyboard.

>>> spec = PARTS["desktop"].model_validate({"name": "desktop", "kind": "desktop",
...                                         "apps": [{"app": "browser", "url": "http://shop.example/"}]})
>>> spec.size, spec.observe, spec.apps[0].app
((1280, 800), 'both', 'browser')
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, model_validator

from riskgym.core.fields import Strict
from riskgym.core.kinds import EffectKind, register_effect
from riskgym.core.parts import PARTS, PartSpec

IMAGE = "riskgym/desktop"
BOX_LIMITS = {"memory": "1536m", "pids": 1024, "cpus": 2.0}
"""The box's limits when it runs a desktop (measured: a browser and a pop-up use ~330 MiB and ~160 processes and
threads, each of which counts against the pids limit; the rest is room for heavier pages); a scenario's own
``[sandbox]`` values win."""

Size = tuple[Annotated[int, Field(ge=200, le=3840)], Annotated[int, Field(ge=200, le=2160)]]
Point = tuple[Annotated[int, Field(ge=0)], Annotated[int, Field(ge=0)]]


class App(Strict):
    """A window open when the episode starts."""

    app: Literal["browser", "popup", "terminal", "files", "editor"]
    """``browser``: Chromium at ``url``; ``popup``: a small Chromium window without its toolbar (an app window) at
    ``url``, placed at ``at``; ``terminal``: xterm in ``path``; ``files``: the file manager in ``path``;
    ``editor``: the text editor with the file ``path``."""
    url: str = ""
    path: str = "~"
    at: Point | None = None
    """Where its window's top-left corner goes."""
    size: Size | None = None
    """Its window's width and height (the browser and pop-ups)."""

    @model_validator(mode="after")
    def _needs(self) -> App:
        if self.app in ("browser", "popup") and not self.url:
            raise ValueError(f"url: a {self.app} app needs the page it opens; give url = \"http://...\"")
        if self.app == "editor" and self.path == "~":
            raise ValueError("path: an editor app needs the file it opens; give path = \"~/notes.txt\"")
        return self


class DesktopSpec(PartSpec):
    """The desktop: its screen, what the agent is shown, and the apps open at the start."""

    kind: Literal["desktop"] = "desktop"
    in_box: ClassVar[bool] = True
    size: Size = (1280, 800)
    """The screen's width and height in pixels."""
    screenshot: Size | None = None
    """The screenshot's size, when it is to differ from the screen's; the agent's coordinates are in its pixels and
    are scaled to the screen's."""
    observe: Literal["screenshot", "tree", "both"] = "both"
    """What a model that reads images is shown after each action: the screenshot, the accessibility tree (the
    windows, and each browser page's elements with their positions), or both. A text-only model gets the tree."""
    settle: Annotated[float, Field(ge=0, le=5)] = 0.1
    """Seconds to wait after an action before the screenshot (and until the browser's pages have loaded)."""
    apps: tuple[App, ...] = ()

    @model_validator(mode="after")
    def _named(self) -> DesktopSpec:
        if self.name != "desktop":
            raise ValueError("name: the desktop part must be named \"desktop\" (its tool runs on that part)")
        return self

    def build_key(self) -> dict[str, Any]:
        """Only the kind and name: the screen and the apps are set per episode (one pooled desktop serves all)."""
        return {"kind": self.kind, "name": self.name}

    @property
    def shot(self) -> tuple[int, int]:
        """The screenshot's size."""
        return self.screenshot or self.size


def desktop_defaults(data: Any) -> Any:
    """A scenario's raw fields, its box made a desktop's where it has a desktop part.

    The box gets the desktop's image and limits, unless ``[sandbox]`` gives its own.
    """
    if not isinstance(data, dict):
        return data
    parts = data.get("parts") or ()
    if not isinstance(parts, (list, tuple)):  # not a list: the field's own validation says so
        return data
    if not any((p.get("kind") if isinstance(p, dict) else getattr(p, "kind", None)) == "desktop" for p in parts):
        return data
    sandbox = data.get("sandbox") or {}
    if not isinstance(sandbox, dict):
        return data
    return {**data, "sandbox": {"image": IMAGE, **BOX_LIMITS, **sandbox}}


PARTS.register("desktop", DesktopSpec)
register_effect(EffectKind("click", "a click on the desktop (target: the element or window under the mouse)",
                           touches="desktop"))
register_effect(EffectKind("type", "text typed on the desktop (target: the window it went to; detail: the text)",
                           sink=True, touches="desktop"))
