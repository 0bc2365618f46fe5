"""The emulator kind's self-check (``riskgym parts self-check emulator``): emulated calls answered by a canned model.

An emulator part needs a model. The check's model answers from canned replies, in order, and keeps every
conversation it is sent: a model is, to the part, whatever has ``respond(messages, tools)`` (the run's own are
litellm's, in :mod:`riskgym.running`, a room above this one). Each check is what the graders rely on: an emulated
call's observation is what the model said, from a prompt that names the call; the call is recorded (the model's
round, the tool's declared effect, the facts that the ``emulated`` check reads); an invalid reply is sent back with
a critique and not taken, and one that stays invalid is an error that asserts nothing; a reset forgets the episode.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, cast

from riskgym.core.checks import Check
from riskgym.core.scenario import Scenario
from riskgym.core.state import JsonState
from riskgym.core.toolkits import TOOLKITS, KitTool, Param, Return, Toolkit
from riskgym.world.emulator.emulator import MAX_CRITIQUES, EmulatorSettings
from riskgym.world.selfcheck import Checks, Results, on_world, scenario
from riskgym.world.world import World

KIT = Toolkit(toolkit="SelfCheck", description_for_model="Lockers in a depot; emptying one removes its items.",
              tools=(KitTool(name="EmptyLocker", summary="Empty a locker, removing its items",
                             parameters=(Param(name="locker_id", type="string", required=True),),
                             returns=(Return(name="success", type="boolean"),
                                      Return(name="items_removed", type="integer")),
                             effect="delete", target="locker_id"),))
TOOL = "SelfCheckEmptyLocker"
SEEDED = [{"op": "create", "entity": "locker:7", "attributes": {"items": 3}}]
SAID = {"observation": {"success": True, "items_removed": 3}, "facts": [{"op": "delete", "entity": "locker:7"}]}
"""The model's reply to the first call."""


@dataclass
class Said:
    """One reply, with the fields the emulator reads of a model's reply."""

    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float | None = None
    latency: float = 0.0


class Canned:
    """The check's emulator model: canned replies in order; ``asked`` keeps each conversation it was sent."""

    name = "self-check"

    def __init__(self) -> None:
        self.config: dict[str, Any] = {}
        self.replies: list[str] = []
        self.asked: list[list[dict[str, Any]]] = []

    def reset(self) -> None:
        """Nothing to forget."""

    def respond(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]], **_: Any) -> Said:
        """The next canned reply; more calls than replies is the check's failure."""
        self.asked.append(list(messages))
        if not self.replies:
            raise AssertionError("the emulator asked the model more often than the check expected")
        return Said(self.replies.pop(0))


def world_spec() -> Scenario:
    """The check's scenario: an emulator part of :data:`KIT` (registered first), the ``emulated`` checks of locker 7."""
    if KIT.name not in TOOLKITS:
        TOOLKITS.register(KIT.name, KIT)
    return scenario("emulator", tools=[TOOL], parts=[
        {"name": "emulator", "kind": "emulator", "toolkits": [KIT.name], "facts": SEEDED}], completion=[
        {"check": "emulated", "tool": TOOL, "text": "7"}, {"check": "emulated", "op": "delete", "entity": "locker:7"}])


def run() -> Results:
    """Every check of the emulator kind, on a world of an emulator part answered by a canned model."""
    spec = world_spec()
    model = Canned()
    return on_world("emulator", spec, lambda world, checks: _checks(world, checks, spec, model),
                    emulator=EmulatorSettings(model=model))


def _checks(world: World, checks: Checks, spec: Scenario, model: Canned) -> None:
    """The kind's checks, in order, on its started world."""
    part = cast(Any, world.parts["emulator"])
    pre = part.capture(spec)
    model.replies = [json.dumps(SAID)]
    first = part.call_tool(TOOL, {"locker_id": "7"})
    checks.check("an emulated call's observation is what the model said", lambda: _said(first, model))
    checks.check("it is recorded: the model's round, the declared effect, the facts the check reads",
                 lambda: _recorded(first, pre, part.capture(spec), spec.completion))
    checks.check("an invalid reply is sent back with a critique, and not taken", lambda: _critiqued(part, model))
    checks.check("a reply that stays invalid is an error that asserts nothing", lambda: _refused(part, model, spec))
    checks.check("a reset in place forgets the episode", lambda: _reset(world, spec, part))


def _said(result: Any, model: Canned) -> str | None:
    """Why the call's observation is not the model's, or the model was not asked about the call."""
    asked = model.asked[-1][-1]["content"] if model.asked else ""
    if f'{TOOL} {{"locker_id": "7"}}' not in asked:
        return f"the model was not asked about the call: {asked[-200:]!r}"
    seen = json.loads(result.text())
    return None if seen == SAID["observation"] else f"the agent saw {seen}, the model said {SAID['observation']}"


def _recorded(result: Any, pre: JsonState, post: JsonState, checks: tuple[Check, ...]) -> str | None:
    """Why the call's record, its effect, or the state the ``emulated`` checks read is not the model's."""
    emulation = result.emulation
    if emulation is None or emulation.failed or [r.reply for r in emulation.rounds] != [json.dumps(SAID)]:
        return f"the step's emulation record is not the model's one round: {emulation}"
    effects = [(e.kind, e.target) for e in result.effects]
    if effects != [("delete", "7")]:
        return f"the call's effects are {effects}, the tool declares delete of locker 7"
    held = [c.holds(pre, post) for c in checks]
    return None if all(held) else f"the emulated checks read {held} from {post.data}"


def _critiqued(part: Any, model: Canned) -> str | None:
    """Why a reply of the wrong type is taken, or is not sent back with a critique before the next is."""
    model.replies = [json.dumps({"observation": {"success": "yes", "items_removed": 0}}),
                     json.dumps({"observation": {"success": True, "items_removed": 0}})]
    result = part.call_tool(TOOL, {"locker_id": "8"})
    rounds = result.emulation.rounds
    if len(rounds) != 2 or not rounds[0].critique or model.asked[-1][-1]["content"] != rounds[0].critique:
        return f"the invalid reply was not sent back with a critique: {[r.critique for r in rounds]}"
    seen = json.loads(result.text())
    return None if seen == {"success": True, "items_removed": 0} else f"the agent saw {seen}"


def _refused(part: Any, model: Canned, spec: Scenario) -> str | None:
    """Why replies that never parse give the agent anything but an error, or leave facts or a carried-out call."""
    before = part.capture(spec)
    model.replies = ['{"facts": [{"op": "delete", "entity": "locker:9"}]} (no observation)'] * (MAX_CRITIQUES + 1)
    result = part.call_tool(TOOL, {"locker_id": "9"})
    after = part.capture(spec)
    if not result.emulation.failed or set(json.loads(result.text())) != {"error"}:
        return f"the agent saw {result.text()!r}, not an error"
    if after.data["facts"] != before.data["facts"] or not after.data["calls"][-1]["error"]:
        return f"the failed call left facts or counts as carried out: {after.data}"
    return None if all(e.error for e in result.effects) else "its effects are not marked refused"


def _reset(world: World, spec: Scenario, part: Any) -> str | None:
    """Why, after a reset in place, the emulator remembers the last episode's calls or facts."""
    if not part.capture(spec).data["calls"]:
        return "no call was recorded: the reset could not be seen"
    world.reset()
    world.prepare(spec)
    data = part.capture(spec).data
    return None if data == {"facts": SEEDED, "calls": []} else f"after a reset the emulator holds {data}"
