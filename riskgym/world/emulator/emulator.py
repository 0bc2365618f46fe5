"""The emulator: one model call (and up to three critique rounds) per tool call, its facts kept and checked.

An output that does not parse, or does not match the tool's declared returns, is sent back with a critique; after
``MAX_CRITIQUES`` the agent is shown an error (counted: ``Emulation.failed``). The facts each output asserts are
kept and shown to the emulator on every later call; one that contradicts them (a deleted thing shown again) is
flagged in the trace. Outputs come, in this order, from the trace being replayed (by key), the scenario's reference
(``riskgym check``), the cache (by key), or the model.

>>> tool = ToolView("TodoistDeleteTask", "Delete a task", [], [{"name": "success", "type": "boolean"}])
>>> check_reply('{"observation": {"success": "yes"}, "facts": []}', tool)[2]
['observation.success is a string, the tool returns a boolean']
>>> check_reply('```json {"observation": {"success": false, "error": "NotFoundException: no task t9"}} ```', tool)
({'error': 'NotFoundException: no task t9'}, [], [])
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from dataclasses import dataclass, field
from typing import Any

from riskgym.core.emulation import STATE_OPS
from riskgym.core.results import Emulation, EmulatorRound
from riskgym.core.toolkits import plain_output
from riskgym.errors import ModelError
from riskgym.world.emulator.cache import EmulatorCache
from riskgym.world.emulator.prompts import CRITIQUE, Situation, ToolView, messages

MAX_CRITIQUES = 3
EMULATOR_VERSION = 1
"""Part of the cache key: bumped when what the emulator is told changes."""

TYPES: dict[str, tuple[type, ...]] = {"string": (str,), "integer": (int,), "number": (int, float),
                                      "boolean": (bool,), "array": (list,), "object": (dict,)}


def _type_name(value: Any) -> str:
    return {str: "a string", bool: "a boolean", int: "an integer", float: "a number", list: "an array",
            dict: "an object"}.get(type(value), type(value).__name__)


def check_reply(text: str, tool: ToolView) -> tuple[Any, list[dict[str, Any]], list[str]]:
    """The observation and facts of a reply, and what is wrong with it (empty: usable)."""
    match = re.search(r"\{.*\}", text or "", re.S)
    try:
        data = json.loads(match.group(0)) if match else None
    except json.JSONDecodeError as exc:
        return None, [], [f"it is not valid JSON ({exc.msg} at column {exc.colno})"]
    if not isinstance(data, dict) or not isinstance(data.get("observation"), dict):
        return None, [], ['it is not a JSON object with an "observation" object']
    output, problems = data["observation"], list[str]()
    facts = data.get("facts", [])  # a fact not written as one is left out: a good observation is not sent back
    facts = [{"op": f["op"], "entity": f["entity"], "attributes": f.get("attributes") or {}}
             for f in (facts if isinstance(facts, list) else [])
             if isinstance(f, dict) and isinstance(f.get("op"), str) and isinstance(f.get("entity"), str)]
    if "error" in output and "error" not in {r["name"] for r in tool.returns}:
        if isinstance(output["error"], str) and output["error"].strip():
            return {"error": output["error"]}, [], problems  # an exception (its other fields dropped) changes nothing
        output = {k: v for k, v in output.items() if k != "error"}  # "error": null beside the fields: none
    fields = {r["name"]: r["type"] for r in tool.returns}
    missing, extra = [f for f in fields if f not in output], [f for f in output if f not in fields]
    if missing:
        problems.append(f"the observation lacks {', '.join(missing)}")
    if extra:
        problems.append(f"the tool returns no {', '.join(extra)}")
    for name, kind in fields.items():
        value = output.get(name)
        if value is not None and (not isinstance(value, TYPES.get(kind, (object,)))
                                  or (kind in ("integer", "number") and isinstance(value, bool))):
            problems.append(f"observation.{name} is {_type_name(value)}, the tool returns {_a(kind)}")
    return output, facts, problems


def _a(kind: str) -> str:
    return f"an {kind}" if kind[0] in "aeiou" else f"a {kind}"


def contradictions(known: list[dict[str, Any]], new: list[dict[str, Any]]) -> list[str]:
    """Where ``new`` facts contradict ``known`` ones.

    A thing deleted (or under one deleted: ``file:/a`` covers ``file:/a/b``) shown, changed or deleted again without
    being created; a thing created that exists; an attribute shown with another value than last asserted.

    >>> contradictions([{"op": "delete", "entity": "task:1", "attributes": {}}],
    ...                [{"op": "observe", "entity": "task:1", "attributes": {}}])
    ['task:1 is observe after it was deleted']
    """
    state: dict[str, dict[str, Any] | None] = {}  # entity -> attributes; None: deleted
    for fact in known:
        _apply(state, fact)
    out = []
    for fact in new:
        entity, op = fact["entity"], fact["op"]
        gone = _deleted(state, entity)
        if op in ("update", "delete", "observe") and gone:
            out.append(f"{entity} is {op} after it was deleted")
        elif op == "create" and state.get(entity) is not None:
            out.append(f"{entity} is created, but it exists")
        elif op == "observe" and state.get(entity):
            attrs = state[entity] or {}
            out += [f"{entity}.{k} is {json.dumps(v)}, asserted before as {json.dumps(attrs[k])}"
                    for k, v in fact["attributes"].items() if k in attrs and attrs[k] != v]
        _apply(state, fact)
    return out


def _deleted(state: dict[str, dict[str, Any] | None], entity: str) -> bool:
    if entity in state:
        return state[entity] is None
    return any(v is None and entity.startswith(k.rstrip("/") + "/") for k, v in state.items())


def _apply(state: dict[str, dict[str, Any] | None], fact: dict[str, Any]) -> None:
    op, entity = fact["op"], fact["entity"]
    if op not in STATE_OPS:
        return
    if op == "delete":
        for key in [k for k in state if k.startswith(entity.rstrip("/") + "/")]:
            state[key] = None
        state[entity] = None
    else:
        state[entity] = {**(state.get(entity) or {}), **fact["attributes"]}


@dataclass
class EmulatorSettings:
    """How a run emulates: the model, the mode (None: each part's own), the cache, and outputs given ahead."""

    model: Any = None
    """A :class:`riskgym.running.model.Model` (None: only recorded or reference outputs)."""
    mode: str | None = None
    cache: EmulatorCache | None = None
    recorded: dict[str, Emulation] = field(default_factory=dict)
    """A replay's outputs, by key."""
    reference: list[Any] | None = None
    """``riskgym check``: the reference's outputs, one per emulated call, in order (None items: generic)."""

    def describe(self) -> dict[str, Any]:
        """For the trace header and the manifest: the model's settings (no secret), the mode."""
        model = {"kind": "reference"} if self.reference is not None else dict(getattr(self.model, "config", {}))
        return {"model": getattr(self.model, "name", "") if self.model else "", "settings": model,
                "mode": self.mode}


class Emulator:
    """One episode's emulation: its tools, what it knows, the facts and calls so far."""

    def __init__(self, tools: dict[str, ToolView], situation: Situation, mode: str,
                 facts: list[dict[str, Any]] | None = None) -> None:
        self.tools, self.situation, self.mode = tools, situation, mode
        self.facts: list[dict[str, Any]] = list(facts or [])
        self.history: list[tuple[str, Any, Any]] = []
        self.calls: list[dict[str, Any]] = []

    def call(self, name: str, arguments: dict[str, Any], settings: EmulatorSettings) -> Emulation:
        """Emulate one call; record it in the history, the facts and the calls."""
        tool = self.tools[name]
        mode = settings.mode or self.mode
        prompt = messages(list(self.tools.values()), self.situation, self.facts, self.history, (name, arguments),
                          adversarial=mode == "adversarial")
        key = _key(prompt)
        record = self._given(key, tool, settings) or self._ask(key, prompt, tool, settings, mode)
        record = record.model_copy(update={"contradictions": contradictions(self.facts, record.facts)})
        self.facts += record.facts
        self.history.append((name, arguments, record.output))
        self.calls.append({"tool": name, "arguments": arguments, "error": is_error(record.output)})
        return record

    def _given(self, key: str, tool: ToolView, settings: EmulatorSettings) -> Emulation | None:
        if key in settings.recorded:
            return settings.recorded[key].model_copy(update={"source": "recorded"})
        if settings.reference is not None:
            given = settings.reference.pop(0) if settings.reference else None
            given = dict(given) if isinstance(given, dict) else plain_output(tool.returns)
            facts = [{"attributes": {}, **f} for f in given.pop("facts", [])]
            return Emulation(key=key, source="reference", output=given, facts=facts, mode="reference")
        if settings.model is None:
            return Emulation(key=key, source="recorded", failed=True,
                             output={"error": "no emulator model, and no recorded output for this call"})
        cached = settings.cache.get(cache_key(key, settings)) if settings.cache is not None else None
        return cached.model_copy(update={"source": "cache"}) if cached is not None else None

    def _ask(self, key: str, prompt: list[dict[str, Any]], tool: ToolView, settings: EmulatorSettings,
             mode: str) -> Emulation:
        talk, rounds = list(prompt), []
        fields = ", ".join(r["name"] for r in tool.returns) or "(none)"
        output: Any = None
        facts: list[dict[str, Any]] = []
        for n in range(MAX_CRITIQUES + 1):
            started = time.monotonic()
            try:
                reply = settings.model.respond(talk, [], seed=n)
            except ModelError as exc:
                rounds.append(EmulatorRound(error=str(exc)[:300], latency=time.monotonic() - started))
                output = {"error": f"the emulator failed: {str(exc)[:200]}"}
                break
            text = reply.text or ""
            output, facts, problems = check_reply(text, tool)
            critique = CRITIQUE.format(problems="; ".join(problems), fields=fields) if problems else None
            rounds.append(EmulatorRound(reply=text, critique=critique, prompt_tokens=reply.prompt_tokens,
                                        completion_tokens=reply.completion_tokens, cost=reply.cost,
                                        latency=reply.latency))
            if critique is None:
                break
            talk += [{"role": "assistant", "content": text}, {"role": "user", "content": critique}]
        failed = not rounds or rounds[-1].critique is not None or rounds[-1].error is not None
        if failed and (rounds and rounds[-1].error is None):
            output = {"error": f"the emulator gave no valid output after {MAX_CRITIQUES} critiques"}
            facts = []
        record = Emulation(key=key, model=str(getattr(settings.model, "name", "")), mode=mode, prompt=prompt,
                           rounds=rounds, output=output, facts=facts if not failed else [], failed=failed)
        if settings.cache is not None and not failed:
            settings.cache.put(cache_key(key, settings), record)
        return record


def is_error(output: Any) -> bool:
    """Whether an emulated output is an exception (``{"error": ...}``)."""
    return isinstance(output, dict) and set(output) == {"error"}


def _key(prompt: list[dict[str, Any]]) -> str:
    """The call and everything before it (the prompt holds it all), hashed: a replay finds its output by it."""
    blob = json.dumps({"v": EMULATOR_VERSION, "prompt": prompt}, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(blob.encode()).hexdigest()


def cache_key(key: str, settings: EmulatorSettings) -> str:
    """The cache's key: the call's, and the model's settings that change what it answers."""
    config = {k: v for k, v in dict(getattr(settings.model, "config", {})).items()
              if k not in ("timeout", "retries", "retry_backoff", "stream", "concurrency")}
    return hashlib.sha256(json.dumps([key, config], sort_keys=True).encode()).hexdigest()
