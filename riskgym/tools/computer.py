"""The desktop's tools: ``computer`` (Anthropic's computer-use action names) and ``computer_13`` (OSWorld's).

``computer_13``'s actions are mapped onto ``computer``'s; both run on the world's ``desktop`` part.

Each call does one action with the mouse or keyboard (xdotool, in the box) and returns what the screen shows
after it: a line saying what was done, the windows, and each browser page's accessibility tree (the elements, with
the point of each in screenshot pixels), then the screenshot. Which of them a model is sent depends on the
scenario's ``observe`` and on whether the model reads images (:mod:`riskgym.running.agent`).

What a call did, for the graders: ``click`` (the element or window under the mouse, as the screen before the click
showed it), ``type`` (the window the text went to), ``visit`` and ``network`` (a page the browser went to);
what the apps' processes did (a script run from the terminal, a file opened) comes from the observer.

>>> _key("ctrl+enter"), _key("PageDown"), _key("F5")
('ctrl+Return', 'Next', 'F5')
>>> thirteen_to_computer({"action_type": "CLICK", "x": 10, "y": 20, "num_clicks": 2})
{'action': 'double_click', 'coordinate': [10, 20]}
"""

from __future__ import annotations

import base64
from typing import Annotated, Any, Literal

from pydantic import Field

from riskgym.core.results import ContentPart, ExecInfo, ImagePart, TextPart, ToolResult
from riskgym.tools.runtime import Tool, register_tool

Point = Annotated[list[Annotated[int, Field(ge=0)]], Field(min_length=2, max_length=2)]
Action = Literal["screenshot", "left_click", "right_click", "middle_click", "double_click", "triple_click",
                 "mouse_move", "left_click_drag", "left_mouse_down", "left_mouse_up", "type", "key", "hold_key",
                 "scroll", "wait", "cursor_position"]
KEYS = {"enter": "Return", "return": "Return", "esc": "Escape", "escape": "Escape", "tab": "Tab", "space": "space",
        "backspace": "BackSpace", "delete": "Delete", "del": "Delete", "up": "Up", "down": "Down", "left": "Left",
        "right": "Right", "home": "Home", "end": "End", "pageup": "Prior", "pagedown": "Next", "pgup": "Prior",
        "pgdn": "Next", "win": "super", "cmd": "super", "command": "super", "super": "super", "ctrl": "ctrl",
        "control": "ctrl", "alt": "alt", "shift": "shift", "insert": "Insert"}
"""pyautogui's key names (OSWorld's) and common spellings, as xdotool's; others pass as they are."""


def _key(combo: str) -> str:
    return "+".join(KEYS.get(k.lower(), k.upper() if len(k) > 1 and k[0] in "fF" and k[1:].isdigit() else k)
                    for k in combo.split("+"))


def computer(desktop: Any, action: Action, coordinate: Point | None = None, text: str | None = None,
             start_coordinate: Point | None = None,
             scroll_direction: Literal["up", "down", "left", "right"] | None = None,
             scroll_amount: Annotated[int, Field(ge=1, le=50)] | None = None,
             duration: Annotated[float, Field(ge=0, le=10)] | None = None, target: str | None = None, *,
             timeout: float = 60.0) -> ToolResult:
    """Use the mouse and keyboard of the computer's desktop, and see its screen.

    Coordinates are pixels of the screenshot, (0, 0) at its top-left. Every action returns the screen after it.

    Args:
        action: what to do: screenshot; left_click, right_click, middle_click, double_click, triple_click (at
            coordinate, or where the mouse is); mouse_move; left_click_drag (from start_coordinate to coordinate);
            left_mouse_down, left_mouse_up; type (text); key (text: an xdotool key or combination, like Return or
            ctrl+s); hold_key (text, for duration seconds); scroll (scroll_direction, scroll_amount, at
            coordinate); wait (duration seconds); cursor_position
        coordinate: [x, y] in screenshot pixels
        text: the text to type, or the key(s) to press (for a click: keys held, like shift)
        start_coordinate: [x, y] where a drag starts
        scroll_direction: up, down, left or right
        scroll_amount: how many wheel clicks to scroll
        duration: seconds to wait or to hold a key
        target: instead of coordinate, the name of an element the screen's tree shows (a button's text), or a
            window's title: the action happens at the element's middle, or at a point of the window nothing covers
    """
    request: dict[str, Any] = {"action": action, "coordinate": coordinate, "text": text,
                               "start_coordinate": start_coordinate, "scroll_direction": scroll_direction,
                               "scroll_amount": scroll_amount, "duration": duration, "target": target}
    if action == "key" and text:
        request["text"] = " ".join(_key(k) for k in text.split())
    return act(desktop, {k: v for k, v in request.items() if v is not None}, timeout)


def computer_13(desktop: Any, action_type: Literal[
        "MOVE_TO", "CLICK", "MOUSE_DOWN", "MOUSE_UP", "RIGHT_CLICK", "DOUBLE_CLICK", "DRAG_TO", "SCROLL", "TYPING",
        "PRESS", "KEY_DOWN", "KEY_UP", "HOTKEY", "WAIT", "SCREENSHOT"],
        x: Annotated[int, Field(ge=0)] | None = None, y: Annotated[int, Field(ge=0)] | None = None,
        button: Literal["left", "right", "middle"] = "left", num_clicks: Annotated[int, Field(ge=1, le=3)] = 1,
        dx: int = 0, dy: int = 0, text: str | None = None, key: str | None = None,
        keys: list[str] | None = None, *, timeout: float = 60.0) -> ToolResult:
    """Control the computer's desktop with OSWorld's action set, and see its screen after each action.

    Coordinates are pixels of the screenshot. Give your final answer (instead of DONE or FAIL) when you are done.

    Args:
        action_type: MOVE_TO, CLICK, MOUSE_DOWN, MOUSE_UP, RIGHT_CLICK, DOUBLE_CLICK, DRAG_TO (x, y), SCROLL (dx,
            dy: wheel clicks, positive dy is up), TYPING (text), PRESS (key), KEY_DOWN, KEY_UP (key), HOTKEY
            (keys), WAIT, SCREENSHOT
        x: the x coordinate (where the action takes one)
        y: the y coordinate
        button: which mouse button, for CLICK, MOUSE_DOWN and MOUSE_UP
        num_clicks: 1, 2 or 3, for CLICK
        dx: horizontal scroll, for SCROLL
        dy: vertical scroll, for SCROLL
        text: what TYPING types
        key: the key of PRESS, KEY_DOWN and KEY_UP (pyautogui's names: enter, esc, ctrl, ...)
        keys: the keys HOTKEY presses together, like ["ctrl", "c"]
    """
    args = {"action_type": action_type, "x": x, "y": y, "button": button, "num_clicks": num_clicks, "dx": dx,
            "dy": dy, "text": text, "key": key, "keys": keys}
    return act(desktop, thirteen_to_computer(args), timeout)


def thirteen_to_computer(args: dict[str, Any]) -> dict[str, Any]:
    """A ``computer_13`` action as the ``computer`` tool's request."""
    kind = args["action_type"]
    xy = {"coordinate": [args["x"], args["y"]]} if args.get("x") is not None and args.get("y") is not None else {}
    button = args.get("button") or "left"
    if kind == "CLICK":  # several clicks are the left button's (as Anthropic's tool has them)
        if button != "left":
            return {"action": f"{button}_click", **xy}
        return {"action": {1: "left_click", 2: "double_click", 3: "triple_click"}[int(args.get("num_clicks") or 1)],
                **xy}
    simple = {"MOVE_TO": "mouse_move", "RIGHT_CLICK": "right_click", "DOUBLE_CLICK": "double_click",
              "DRAG_TO": "left_click_drag", "WAIT": "wait", "SCREENSHOT": "screenshot",
              "MOUSE_DOWN": "left_mouse_down", "MOUSE_UP": "left_mouse_up"}
    if kind in simple:
        return {"action": simple[kind], **xy}
    if kind == "SCROLL":
        dx, dy = int(args.get("dx") or 0), int(args.get("dy") or 0)
        direction = ("up" if dy > 0 else "down") if dy else ("right" if dx > 0 else "left")
        return {"action": "scroll", "scroll_direction": direction, "scroll_amount": max(1, abs(dy or dx)), **xy}
    if kind == "TYPING":
        return {"action": "type", "text": args.get("text") or ""}
    if kind in ("PRESS", "KEY_DOWN", "KEY_UP"):
        action = {"PRESS": "key", "KEY_DOWN": "key_down", "KEY_UP": "key_up"}[kind]
        return {"action": action, "text": _key(args.get("key") or "")}
    if kind == "HOTKEY":
        return {"action": "key", "text": "+".join(_key(k) for k in args.get("keys") or [])}
    raise ValueError(f"unknown action_type {kind!r}")


def act(desktop: Any, request: dict[str, Any], timeout: float) -> ToolResult:
    """Do one action on the desktop part and return the screen after it, with what it did."""
    reply = desktop.act(request, timeout=timeout)
    observed = desktop.observation(reply) if "windows" in reply else None
    info = ExecInfo(exit_code=1 if "error" in reply else 0, duration=reply.get("duration", 0.0), observed=observed)
    if "error" in reply:
        return ToolResult(content=[TextPart(text=f"error: {reply['error']}")], backend="desktop", exec=info)
    effects = desktop.effects(reply.get("journal") or [])  # what the X server and the pages recorded it doing
    return ToolResult(content=screen(desktop, reply, request), backend="desktop", exec=info, effects=effects)


def screen(desktop: Any, reply: dict[str, Any], request: dict[str, Any]) -> list[ContentPart]:
    """What the agent is shown: what was done, then the tree and the screenshot, as the scenario's ``observe`` says.

    When only the screenshot is to be shown, the tree is its ``alt`` text (for a model that cannot see it).
    """
    width, height = reply.get("shot") or (0, 0)
    head = f"{request['action']} done" + (f" at ({reply['point'][0]}, {reply['point'][1]})" if reply.get("point")
                                          else "")
    tree = tree_text(reply)
    observe = desktop.spec.observe
    out: list[ContentPart] = [TextPart(text=f"{head}. The screen is {width}x{height}.")]
    if observe == "screenshot":
        out.append(TextPart(text=tree, kind="alt"))
    else:
        out.append(TextPart(text=tree))
    if observe != "tree" and reply.get("png"):
        out.append(ImagePart.of_bytes(base64.b64decode(reply["png"]), width=width, height=height))
    return out


def tree_text(reply: dict[str, Any]) -> str:
    """The windows (bottom to top) and each browser page's elements, as text."""
    lines = ["Windows (the last is on top):"]
    for win in reply.get("windows", []):
        lines.append(f'  "{win["title"]}" ({win["class"]}) at ({win["x"]}, {win["y"]}) size {win["width"]}x'
                     f'{win["height"]}{" [active]" if win.get("active") else ""}')
    for page in reply.get("pages", []):
        lines.append(f'Page {page["url"]} "{page["title"]}":')
        for node in page.get("nodes", []):
            at = f' at ({node["at"][0]}, {node["at"][1]})' if node.get("at") else ""
            value = f' = "{node["value"]}"' if node.get("value") else ""
            lines.append(f'  {node["role"]} "{node["name"]}"{value}{at}')
    return "\n".join(lines)


for _fn in (computer, computer_13):
    register_tool(Tool.from_function(_fn, backend="desktop"))
