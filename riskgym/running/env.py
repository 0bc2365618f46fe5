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
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium

import riskgym
from riskgym.core.scenario import Scenario, load_scenario
from riskgym.core.trace import End, EventBase, Final, Header, SnapshotEvent, Step, TraceWriter
from riskgym.errors import RiskgymError, SandboxError, ToolCallError
from riskgym.running.spaces import TextSpace, ToolCallSpace
from riskgym.tools import TOOLS
from riskgym.world.base import UIDS, Sandbox

SandboxFactory = Callable[[Scenario, dict[str, str]], Sandbox]


def docker_sandbox(scenario: Scenario, labels: dict[str, str]) -> Sandbox:
    """The default sandbox: a hardened DockerSandbox for the scenario's image."""
    from riskgym.world.docker import DockerSandbox

    spec = scenario.sandbox
    return DockerSandbox(spec.image, network=spec.network, labels=labels,
                         writable=spec.writable if spec.in_place else None)


class RiskEnv(gymnasium.Env[str, dict[str, Any]]):
    """One scenario. Observations are text; actions are tool calls or a final answer.

    ``reset(seed, options)`` builds a fresh sandbox from the scenario and returns the user's instruction.
    ``options`` may carry ``trace`` (a path: the episode is recorded there), ``agent``, ``agent_config`` (the
    agent's settings, for the trace header) and ``epoch``.
    ``step`` runs the tool in the sandbox. ``terminated`` on a final answer, ``truncated`` at the step or time
    limit. The reward is always 0: risk is graded from the trace afterwards, by ``riskgym grade``.
    ``info["event"]`` is the trace event of the step; ``info["reason"]`` says why the episode ended, when it did.
    """

    metadata: dict[str, Any] = {"render_modes": []}  # noqa: RUF012 (gymnasium's own convention)

    def __init__(self, scenario: Scenario | str | Path, *, sandbox_factory: SandboxFactory | None = None,
                 run_id: str = "") -> None:
        self.scenario = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
        self.sandbox_factory = sandbox_factory or docker_sandbox
        self.run_id = run_id
        self.observation_space = TextSpace()
        self.action_space: ToolCallSpace = ToolCallSpace(self.scenario.tools)
        self.sandbox: Sandbox | None = None
        self._trace: TraceWriter | None = None
        self._steps = 0
        self._answered = False
        self._started = 0.0
        self._live = False

    @property
    def tool_schemas(self) -> list[dict[str, Any]]:
        """The offered tools in the OpenAI function-calling format."""
        return [TOOLS[name].schema for name in self.scenario.tools]

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
        """Start a new episode in a fresh sandbox; return the instruction."""
        super().reset(seed=seed)
        self.end_episode("interrupted", "reset before the episode ended")
        options = options or {}
        sc = self.scenario
        labels = {"riskgym.run": self.run_id, "riskgym.core.scenario": sc.id}
        self.sandbox = self.sandbox_factory(sc, labels)
        try:
            self.sandbox.start()
            self._prepare(self.sandbox)
            pre = self.sandbox.snapshot(list(sc.sandbox.watch))
        except BaseException:  # a failed set-up (or Ctrl-C) leaves no container behind
            self.sandbox.close()
            self.sandbox = None
            raise
        if options.get("trace"):
            self._trace = TraceWriter(options["trace"])
            self._trace.write(Header(
                riskgym_version=riskgym.__version__, scenario_id=sc.id, env_id=sc.env_id,
                scenario_hash=sc.content_hash, agent=str(options.get("agent", "")), seed=seed,
                image=sc.sandbox.image, image_id=getattr(self.sandbox, "image_id", ""),
                started_at=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                run_id=self.run_id, epoch=int(options.get("epoch", 0)),
                agent_config=dict(options.get("agent_config") or {})))
            self._trace.write(SnapshotEvent(when="pre", snapshot=pre))
        self._steps, self._started, self._live, self._answered = 0, time.monotonic(), True, False
        return sc.instruction, {"env_id": sc.env_id, "tools": self.tool_schemas}

    def _prepare(self, box: Sandbox) -> None:
        sc = self.scenario
        if sc.sandbox.files:
            files = [(f.path, f.content.encode(), f.mode, UIDS[f.owner]) for f in sc.sandbox.files]
            box.put_files(files)
        for n, step in enumerate(sc.sandbox.setup):
            result = box.exec(["bash", "-c", step.run], user=step.user, timeout=sc.limits.command_timeout)
            if not result.ok:
                said = (result.stderr or result.stdout).strip()[-300:]
                fix = ("add the path it writes to [sandbox] writable, or set [sandbox] reset = \"recreate\""
                       if "Read-only file system" in said else "fix the command")
                raise SandboxError(f"scenario {sc.id}: sandbox.setup[{n}] failed (exit {result.exit_code}): "
                                   f"{said}; {fix}")

    def step(self, action: dict[str, Any]) -> tuple[str, float, bool, bool, dict[str, Any]]:
        """Run one tool call (or take the final answer) and return what the agent sees."""
        if not self._live or self.sandbox is None:
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
                result = TOOLS[name](self.sandbox, args, timeout=self.scenario.limits.command_timeout)
                event = Step(index=index, tool=name, arguments=args, observation=result.text(),
                             exit_code=result.exit_code, duration=result.duration, truncated=result.truncated,
                             timed_out=result.timed_out, elapsed=time.perf_counter() - t0, call_id=call_id)
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
            if self._live and self.sandbox is not None and self._trace is not None:
                try:
                    post = self.sandbox.snapshot(list(self.scenario.sandbox.watch))
                    self._trace.write(SnapshotEvent(when="post", snapshot=post))
                except (SandboxError, OSError) as exc:
                    status, reason = "error", f"post snapshot failed: {exc}"
                calls = self._steps - (1 if self._answered else 0)  # tool calls: the final answer is not one
                self._trace.write(End(status=status, reason=reason, steps=calls,  # type: ignore[arg-type]
                                      duration=time.monotonic() - self._started))
        finally:
            self._live = False
            trace, self._trace = self._trace, None
            sandbox, self.sandbox = self.sandbox, None
            try:
                if trace is not None:
                    trace.close()
            finally:  # the sandbox goes even when the trace cannot be written (a full disk)
                if sandbox is not None:
                    sandbox.close()

    def close(self) -> None:
        """End an unfinished episode as interrupted and remove the sandbox. Safe to call twice."""
        self.end_episode("interrupted", "closed before the episode ended")
        super().close()


def _jsonable(value: Any) -> Any:
    import json

    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)
    return value
