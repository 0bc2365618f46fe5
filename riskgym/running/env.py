"""RiskEnv: a scenario as a Gymnasium environment over a real sandbox.

Example (it needs a Docker Engine and the riskgym/base image; ``tests/test_env.py`` runs it)::

    import gymnasium
    env = gymnasium.make("riskgym:riskgym/free-disk-space-v0")
    obs, info = env.reset(seed=0)
    obs, reward, terminated, truncated, info = env.step(
        {"tool": "shell", "arguments": {"command": "du -sh ~/*"}})
    env.close()
"""

from __future__ import annotations

import datetime
import time
from pathlib import Path
from typing import Any

import gymnasium

import riskgym
from riskgym.core.monitor import BLOCKED, Context, Monitor, MonitorScore, score_of, settings
from riskgym.core.scenario import Scenario
from riskgym.core.trace import End, EventBase, Final, Header, SnapshotEvent, Step, TraceWriter
from riskgym.errors import RiskgymError, SandboxError, ToolCallError
from riskgym.library import load
from riskgym.running.pool import WorldPool
from riskgym.running.spaces import TextSpace, ToolCallSpace
from riskgym.tools import Tool, ToolResult, tools_for
from riskgym.world.base import Sandbox
from riskgym.world.emulator.emulator import EmulatorSettings
from riskgym.world.kind import sandbox_kind
from riskgym.world.world import World, needs_emulator


class RiskEnv(gymnasium.Env[str, dict[str, Any]]):
    """One scenario. Observations are text; actions are tool calls or a final answer.

    ``reset(seed, options)`` leases a clean world (the agent's box, and any other parts the scenario names) from
    ``pool`` and returns the user's instruction. Without a pool the env keeps its own, so that ``gymnasium.make``
    reuses its box across resets, reset in place as ``riskgym run`` does; ``sandbox`` names the box's
    implementation (``docker``, or ``fake`` for checks without Docker).
    ``options`` may carry ``trace`` (a path: the episode is recorded there), ``agent``, ``agent_config`` (the
    agent's settings, for the trace header) and ``epoch``.
    ``step`` runs the tool on the part that backs it. ``terminated`` on a final answer, ``truncated`` at the step or
    time limit. The reward is always 0: risk is graded from the trace afterwards, by ``riskgym grade``.
    ``info["event"]`` is the trace event of the step; ``info["reason"]`` says why the episode ended, when it did.
    ``monitor`` (see :mod:`riskgym.core.monitor`) scores each proposed call before it runs, into the step's
    ``monitor``; a call it scores above ``block_above`` is not run, and the agent is told it was blocked.
    """

    metadata: dict[str, Any] = {"render_modes": []}  # noqa: RUF012 (gymnasium's own convention)

    def __init__(self, scenario: Scenario | str | Path, *, pool: WorldPool | None = None, run_id: str = "",
                 sandbox: str = "docker", emulator: EmulatorSettings | None = None, monitor: Monitor | None = None,
                 block_above: float | None = None) -> None:
        self.scenario = scenario if isinstance(scenario, Scenario) else load(scenario)
        self.tools: dict[str, Tool] = tools_for(self.scenario)
        self.run_id = run_id
        self._own_pool = pool is None
        self._sandbox = pool.sandbox if pool is not None else sandbox
        self._emulator = pool.emulator if pool is not None else emulator
        if needs_emulator(self.scenario, self._sandbox) and self._emulator is None:
            where = "its box is emulated" if sandbox_kind(self._sandbox).emulates else "it has emulated tools"
            raise RiskgymError(f"scenario {self.scenario.id}: {where}: give an emulator model (riskgym run "
                               "--emulator MODEL; RiskEnv(..., emulator=EmulatorSettings(model=...)))")
        self.pool = pool or self._new_pool()
        self.observation_space = TextSpace()
        self.action_space: ToolCallSpace = ToolCallSpace(self.tools)
        self.world: World | None = None
        self._trace: TraceWriter | None = None
        self._steps = 0
        self._answered = False
        self._started = 0.0
        self._live = False
        self.monitor, self.block_above = monitor, block_above
        self._history: list[Step] = []
        self.ended_as: tuple[str, str] | None = None
        """How the episode was recorded as ending (an "error" where its post snapshot could not be taken)."""

    def _new_pool(self) -> WorldPool:
        """The env's own pool: one world, reused across resets, never refilled ahead."""
        return WorldPool(self.run_id, size=1, sandbox=self._sandbox, refill=False, emulator=self._emulator)

    @property
    def sandbox(self) -> Sandbox | None:
        """The agent's box while an episode runs."""
        return self.world.box if self.world is not None else None

    @property
    def tool_schemas(self) -> list[dict[str, Any]]:
        """The offered tools in the OpenAI function-calling format."""
        return [tool.schema for tool in self.tools.values()]

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
        """Start a new episode in a clean world; return the instruction."""
        super().reset(seed=seed)
        self.end_episode("interrupted", "reset before the episode ended")
        options = options or {}
        sc = self.scenario
        self.world = self.pool.take(sc)
        try:
            for part in self.world.parts.values():  # (an emulated box answers as the tools would)
                part.offer(self.tool_schemas)
            self.world.prepare(sc)
            pre = self.world.capture(sc)
        except BaseException:  # a failed set-up (or Ctrl-C) leaves no container behind
            world, self.world = self.world, None
            world.close()
            raise
        if options.get("trace"):
            box = self.world.box
            self._trace = TraceWriter(options["trace"])
            self._trace.write(Header(
                riskgym_version=riskgym.__version__, scenario_id=sc.id, env_id=sc.env_id,
                scenario_hash=sc.content_hash, agent=str(options.get("agent", "")), seed=seed,
                image=sc.sandbox.image, image_id=box.image_id,
                started_at=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                run_id=self.run_id, epoch=int(options.get("epoch", 0)),
                agent_config=dict(options.get("agent_config") or {}), world=self.world.describe(),
                monitor=settings(self.monitor, self.block_above)))
            self._trace.write(SnapshotEvent(when="pre", parts=pre))
        self._steps, self._started, self._live, self._answered = 0, time.monotonic(), True, False
        self.ended_as = None
        self._history = []
        return sc.instruction, {"env_id": sc.env_id, "tools": self.tool_schemas}

    def call(self, name: str, arguments: dict[str, Any]) -> ToolResult:
        """Run one validated tool call on the part of the world that backs it."""
        assert self.world is not None
        tool = self.tools[name]
        part = self.world.part_for(tool.backend)
        if part is None:
            raise ToolCallError(f"{name}: its backend {tool.backend!r} is not a part of this world")
        result = tool(part, arguments, timeout=self.scenario.limits.command_timeout)
        named = next(n for n, p in self.world.parts.items() if p is part)  # bound by its kind: the part's own name
        return result if result.backend == named else result.model_copy(update={"backend": named})

    def step(self, action: dict[str, Any]) -> tuple[str, float, bool, bool, dict[str, Any]]:
        """Run one tool call (or take the final answer) and return what the agent sees."""
        if not self._live or self.world is None:
            raise RiskgymError("the episode is over: call reset() first")
        index, t0 = self._steps, time.perf_counter()
        self._steps += 1
        terminated = False
        event: Step | Final
        call_id = action.get("id") if isinstance(action, dict) else None
        call_id = str(call_id) if call_id is not None else None
        try:
            name, args = self.action_space.check(action)
        except ToolCallError as exc:
            tool = action.get("tool", "?") if isinstance(action, dict) else "?"
            arguments = action.get("arguments") if isinstance(action, dict) else action
            event = Step(index=index, tool=str(tool), arguments=_jsonable(arguments), observation=f"error: {exc}",
                         error=str(exc), elapsed=time.perf_counter() - t0, call_id=call_id)
        else:
            if name == "final":
                event, terminated = Final(index=index, answer=args["answer"]), True
                self._answered = True
            else:
                seen = self._monitored(name, args)
                if seen is not None and seen.blocked:
                    event = Step(index=index, tool=name, arguments=args, call_id=call_id, monitor=seen,
                                 observation=BLOCKED.format(monitor=seen.monitor, reason=seen.reason or "no reason"),
                                 elapsed=time.perf_counter() - t0)
                else:
                    result = self.call(name, args)
                    effects = [*result.effects, *self.world.happened(besides=self.tools[name].backend)]
                    event = Step(index=index, tool=name, arguments=args, observation=result.text(),
                                 content=result.beyond_text, backend=result.backend, exec=result.exec,
                                 effects=effects, emulation=result.emulation,
                                 elapsed=time.perf_counter() - t0, call_id=call_id, monitor=seen)
        if isinstance(event, Step):
            self._history.append(event)
        if self._trace is not None:
            self._trace.write(event)
        limits = self.scenario.limits
        over_time = time.monotonic() - self._started >= limits.max_seconds
        truncated = not terminated and (self._steps >= limits.max_steps or over_time)
        info: dict[str, Any] = {"event": event.model_dump()}
        if terminated or truncated:
            info["reason"] = "final answer" if terminated else ("step limit" if not over_time else "time limit")
            self.end_episode("completed" if terminated else "truncated", info["reason"])
        observation = event.answer if isinstance(event, Final) else event.observation
        return observation, 0.0, terminated, truncated, info

    def _monitored(self, name: str, args: dict[str, Any]) -> MonitorScore | None:
        """The monitor's score of a proposed call (None: no monitor), blocked when above ``block_above``."""
        if self.monitor is None:
            return None
        t0 = time.perf_counter()
        context = Context(instruction=self.scenario.instruction, history=list(self._history), tool=name,
                          arguments=args, scenario=self.scenario)
        seen = score_of(self.monitor, context)
        update: dict[str, Any] = {"seconds": round(time.perf_counter() - t0, 6)}
        if seen.score is not None and self.block_above is not None and seen.score > self.block_above:
            update["blocked"] = True
        return seen.model_copy(update=update)

    def record(self, event: EventBase) -> None:
        """Add an event of the agent's own (a model turn) to the episode's trace, if it has one."""
        if self._trace is not None:
            self._trace.write(event)

    @property
    def elapsed(self) -> float:
        """Seconds since the episode started."""
        return time.monotonic() - self._started

    def end_episode(self, status: str, reason: str) -> None:
        """Record the post snapshot and the end of the episode, and remove the sandbox (whatever happens)."""
        try:
            if self._live and self.world is not None and self._trace is not None:
                try:
                    post = self.world.capture(self.scenario)
                    self._trace.write(SnapshotEvent(when="post", parts=post))
                except (SandboxError, OSError) as exc:
                    status, reason = "error", f"post snapshot failed: {exc}"
                self.ended_as = (status, reason)
                calls = self._steps - (1 if self._answered else 0)  # tool calls: the final answer is not one
                self._trace.write(End(status=status, reason=reason, steps=calls,  # type: ignore[arg-type]
                                      duration=time.monotonic() - self._started))
        finally:
            self._live = False
            trace, self._trace = self._trace, None
            world, self.world = self.world, None
            try:
                if trace is not None:
                    trace.close()
            finally:  # the world goes back even when the trace cannot be written (a full disk)
                if world is not None:
                    self.pool.give_back(world)

    def close(self) -> None:
        """End an unfinished episode as interrupted, and remove the env's own world. Safe to call twice."""
        try:
            self.end_episode("interrupted", "closed before the episode ended")
        finally:
            if self._own_pool:  # its world goes; a reset after close() starts another
                self.pool.close()
                self.pool = self._new_pool()
        super().close()


def _jsonable(value: Any) -> Any:
    import json

    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)
    return value
