"""Traces: one JSON event a line, a tagged union on ``type``, written and flushed after every step.

A trace starts with a ``header`` (which carries ``schema_version``), then a ``snapshot`` (pre); then, for each turn
of an LLM agent, a ``model`` event (the raw reply, the calls parsed from it, tokens, cost, latency) followed by one
``step`` per tool call; a ``final`` answer if the agent gave one, a ``snapshot`` (post), an ``end`` and a ``seal``.

Every event carries ``prev``, the sha256 of the line before it (empty for the header), and the writer closes the
file with a ``seal``, an event that carries only that: an edited, removed or inserted line, and a file cut short,
break the chain (``riskgym verify``, :mod:`riskgym.core.integrity`).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import uuid
from pathlib import Path
from typing import IO, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, TypeAdapter, ValidationError, model_validator
from pydantic_core import PydanticSerializationError

from riskgym.core.files import cannot_write
from riskgym.core.kinds import Effect
from riskgym.core.monitor import MonitorScore
from riskgym.core.results import ContentPart, Emulation, ExecInfo, ImagePart
from riskgym.core.state import JsonState, PartState, Snapshot
from riskgym.errors import TraceError, field_path

SCHEMA_VERSION = 10
READABLE_VERSIONS = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10)
"""Version 2 added the ``model`` event, ``Step.call_id`` and ``Header.agent_config``; version 3 the hash chain
(``prev`` on every event) and the ``seal``; version 4 the world (``Header.world``, a snapshot per part in
``SnapshotEvent.parts``) and tool results apart from exec details (``Step.exec``, ``Step.content``,
``Step.backend``); version 5 what the observer saw a command's processes do (``Step.exec.observed``) and the
processes' parents in a snapshot (``Snapshot.parents``); version 6 the effects a tool reported (``Step.effects``);
version 7 how an emulated tool's output came about (``Step.emulation``); version 8 images (a desktop's
screenshots) as files of their own, ``blobs/<sha256>.png`` beside the trace, named in ``Step.content`` by their
hash; version 9 a monitor's score of the call before it ran (``Step.monitor``), and whether it blocked it, and
the monitor (``Header.monitor``); version 10 the host observer (``Observation.observer`` "kernel", what it could
not see in ``Observation.gaps`` and ``lost``, the box's observer in ``Header.world``) and what the agent's
processes did after its last command, in the post snapshot (``Snapshot.observed``).
Older versions read as they are: their
box's snapshot and exec fields are lifted; a step without ``observed`` is graded from its command line alone."""


class EventBase(BaseModel):
    """What every trace event has: its type, and the hash of the line before it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: str
    prev: str = ""
    """The sha256 (hex) of the previous line of the file, as written; empty on the header."""


class Header(EventBase):
    """What ran: the scenario (and its hash), the agent, the seed, the sandbox image."""

    type: Literal["header"] = "header"
    schema_version: int = SCHEMA_VERSION
    riskgym_version: str
    scenario_id: str
    env_id: str
    scenario_hash: str
    agent: str
    seed: int | None = None
    image: str
    image_id: str
    started_at: str
    """ISO 8601, UTC."""
    run_id: str = ""
    epoch: int = 0
    agent_config: dict[str, Any] = Field(default_factory=dict)
    """The agent's settings: model parameters (temperature, seed, top_p, ...), tool mode, system prompt, budgets."""
    world: dict[str, dict[str, Any]] = Field(default_factory=dict)
    """Each part of the world by name: its kind, image and image id, the network destinations it serves."""
    monitor: dict[str, Any] | None = None
    """The monitor that scored each call before it ran: its name, settings and ``block_above`` (None: none)."""

    @property
    def destinations(self) -> set[str]:
        """The network destinations the world's own parts serve (a request to one is not an escape)."""
        return {d for part in self.world.values() for d in part.get("destinations", [])}


class SnapshotEvent(EventBase):
    """Each part's state before or after the episode: the box's watched paths and processes, a service's JSON."""

    type: Literal["snapshot"] = "snapshot"
    when: Literal["pre", "post"]
    parts: dict[str, PartState]

    @model_validator(mode="before")
    @classmethod
    def _lift(cls, data: Any) -> Any:
        if isinstance(data, dict) and "snapshot" in data:  # schema 1-3 (or a box's snapshot given alone)
            box = data["snapshot"]
            if isinstance(box, dict) and "kind" not in box:  # written before a state said its kind
                box = {**box, "kind": "box"}
            data = {k: v for k, v in data.items() if k != "snapshot"} | {"parts": {"box": box}}
        return data

    @property
    def snapshot(self) -> Snapshot | None:
        """The box's snapshot."""
        box = self.parts.get("box")
        return box if isinstance(box, Snapshot) else None


class ModelCall(BaseModel):
    """What one call of the model answered and cost: a model's reply, and the trace's record of it."""

    message: dict[str, Any] = Field(default_factory=dict)
    """The raw assistant message: content, tool calls as the API returned them (arguments unparsed)."""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    tokens_estimated: bool = False
    """The server sent no token counts: these are litellm's own counts of the prompt (tools included) and reply."""
    cost: float | None = None
    """US dollars, when the price is known."""
    latency: float = 0.0
    """Seconds in the API, retries included."""
    attempts: int = 1
    retried: list[str] = Field(default_factory=list)
    """Why each attempt before the last one failed and was retried (a rate limit, a time-out, ...)."""
    finish_reason: str | None = None
    error: str | None = None
    """Why the call failed (the API, after retries), or why its reply could not be parsed (the model is told)."""


class ModelTurn(ModelCall, EventBase):
    """One call of the model (retries included) and what it answered."""

    type: Literal["model"] = "model"
    turn: int
    """0-based."""
    calls: list[dict[str, Any]] = Field(default_factory=list)
    """The calls parsed from it: ``{"id", "tool", "arguments"}``."""


class Step(EventBase):
    """One tool call and what it returned."""

    type: Literal["step"] = "step"
    index: int
    """0-based step number."""
    tool: str
    arguments: Any
    """As the agent gave them (they may be invalid: then ``error`` says why)."""
    observation: str
    """What the agent was shown, as text."""
    content: list[ContentPart] = Field(default_factory=list)
    """The result's content parts when they are more than the observation's text (an image); else empty."""
    backend: str = "box"
    """The part of the world that ran the call."""
    exec: ExecInfo | None = None
    """When a command ran: its exit status, seconds inside the sandbox, whether it was cut or killed."""
    elapsed: float = 0.0
    """Seconds the step took as seen from the host, overhead included."""
    error: str | None = None
    """Set when the call was rejected (unknown tool, bad arguments) and not run."""
    call_id: str | None = None
    """The model's id for this call (several calls may come in one turn)."""
    effects: list[Effect] = Field(default_factory=list)
    """What the tool said it did, found as it ran (a link clicked: where it led; a form: where it went)."""
    emulation: Emulation | None = None
    """For an emulated tool: the emulator's rounds (prompt, raw replies, critiques, tokens, cost), its parsed output
    and the facts it asserted."""
    monitor: MonitorScore | None = None
    """The run's monitor's score of the call, given before it ran; ``blocked``: it did not run."""

    @property
    def blocked(self) -> bool:
        """Whether the run's monitor blocked the call (it never ran)."""
        return self.monitor is not None and self.monitor.blocked

    @model_validator(mode="before")
    @classmethod
    def _lift(cls, data: Any) -> Any:
        fields = ("exit_code", "duration", "truncated", "timed_out")
        if isinstance(data, dict) and any(k in data for k in fields):  # schema 1-3, or exec details given alone
            given = {k: data[k] for k in fields if k in data}
            data = {k: v for k, v in data.items() if k not in fields}
            if given.get("exit_code") is not None:
                data["exec"] = given
        return data

    @property
    def exit_code(self) -> int | None:
        """The command's exit status (None: no command ran)."""
        return self.exec.exit_code if self.exec else None

    @property
    def duration(self) -> float:
        """Seconds the tool ran inside the sandbox."""
        return self.exec.duration if self.exec else 0.0

    @property
    def truncated(self) -> bool:
        """The output was cut at the cap."""
        return bool(self.exec and self.exec.truncated)

    @property
    def timed_out(self) -> bool:
        """The command ran past its time-out and was killed."""
        return bool(self.exec and self.exec.timed_out)


def command_line(step: Step) -> str | None:
    """The command line the call runs, where its one argument is one (``shell``'s, a terminal toolkit's)."""
    args = step.arguments
    if isinstance(args, dict) and list(args) == ["command"] and isinstance(args["command"], str):
        return args["command"]
    return None


def call_text(step: Step) -> str:
    """The call in one line: a command line as it is, other calls as JSON arguments."""
    command = command_line(step)
    return command if command is not None else json.dumps(step.arguments, ensure_ascii=False)


class Final(EventBase):
    """The agent's final answer."""

    type: Literal["final"] = "final"
    index: int
    answer: str


class End(EventBase):
    """How the episode ended."""

    type: Literal["end"] = "end"
    status: Literal["completed", "truncated", "error", "interrupted"]
    reason: str = ""
    steps: int
    """Tool calls made (the final answer is not one), as the reports count them."""
    duration: float


class Seal(EventBase):
    """The last line the writer writes.

    It carries only the hash of the line before it, so that an edit of the ``end`` event, or a file cut short, shows.
    """

    type: Literal["seal"] = "seal"


Event = Annotated[Header | SnapshotEvent | ModelTurn | Step | Final | End | Seal, Field(discriminator="type")]
EVENT = TypeAdapter(Event)


def line_hash(line: str | bytes) -> str:
    """The sha256 (hex) of one line of a trace, without its newline: the next event's ``prev``."""
    return hashlib.sha256(line.encode() if isinstance(line, str) else line).hexdigest()


class TraceWriter:
    """Appends events to a JSONL file, each chained to the one before.

    It flushes after each one, so that a crash loses nothing written; ``close`` seals the file.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file: IO[str] | None = self.path.open("w", encoding="utf-8")
        except OSError as exc:
            raise cannot_write(self.path, exc) from None
        self.head = ""
        """The hash of the last line written."""

    def write(self, event: EventBase) -> None:
        """Write one event, chained to the previous line, and flush it to the operating system.

        A step's images are written first, each to ``blobs/<sha256>.<ext>`` beside the trace (once: the name is the
        content's hash); the line keeps their hashes, not their bytes.
        """
        if self._file is None:
            raise TraceError(f"{self.path}: the trace is closed")
        if isinstance(event, Step) and any(isinstance(p, ImagePart) and p.data for p in event.content):
            event = event.model_copy(update={"content": [self._blob(p) for p in event.content]})
        event = event.model_copy(update={"prev": self.head})
        try:
            line = event.model_dump_json()
        except PydanticSerializationError:  # text that is not Unicode (a lone surrogate from a file name, say)
            line = json.dumps(_unicode(event.model_dump()), ensure_ascii=False, separators=(",", ":"))
        try:
            self._file.write(line + "\n")
            self._file.flush()
        except OSError as exc:  # a full disk: the line may be cut short, so the trace reads as unfinished
            raise cannot_write(self.path, exc) from None
        self.head = line_hash(line)

    def _blob(self, part: ContentPart) -> ContentPart:
        if not isinstance(part, ImagePart) or not part.data:
            return part
        path = blob_path(self.path, part)
        if not path.exists():
            try:
                path.parent.mkdir(exist_ok=True)
                partial = path.with_name(f".{path.name}.{uuid.uuid4().hex}")  # one per writer, threads too
                partial.write_bytes(base64.b64decode(part.data))
                os.replace(partial, path)  # whole or absent, even when two episodes write the same image
            except OSError as exc:
                raise cannot_write(path, exc) from None
        return part.model_copy(update={"data": ""})

    def close(self) -> None:
        """Seal and close the file, syncing it to disk. Safe to call twice; the file is closed even if sealing fails."""
        if self._file is not None:
            file = self._file
            try:
                self.write(Seal())
                os.fsync(file.fileno())
            finally:
                self._file = None
                try:
                    file.close()
                except OSError:  # its buffer could not be flushed: the seal is missing, as the trace then says
                    pass


def blob_path(trace: str | Path, image: ImagePart) -> Path:
    """Where a trace keeps one of its images: ``blobs/`` beside it, named by the image's hash."""
    return Path(trace).parent / "blobs" / image.filename


def _unicode(value: Any) -> Any:
    """``value`` with every lone surrogate written as a backslash escape, so that it can be written as UTF-8."""
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, dict):
        return {_unicode(k): _unicode(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_unicode(v) for v in value]
    return value


class Trace(BaseModel):
    """A trace read back: the header and the events after it."""

    path: str
    header: Header
    events: list[Any]
    _memo: dict[str, Any] = PrivateAttr(default_factory=dict)
    """What graders derive from the trace once and share (e.g. the effects of its steps)."""

    @property
    def steps(self) -> list[Step]:
        """The tool calls, in order."""
        return [e for e in self.events if isinstance(e, Step)]

    def snapshot(self, when: Literal["pre", "post"]) -> Snapshot | None:
        """The box's pre- or post-episode snapshot, or None when the trace has none (an interrupted episode)."""
        state = self.state(when, "box")
        return state if isinstance(state, Snapshot) else None

    def state(self, when: Literal["pre", "post"], part: str) -> Snapshot | JsonState | None:
        """One part's pre- or post-episode state, or None when the trace has none."""
        event = next((e for e in self.events if isinstance(e, SnapshotEvent) and e.when == when), None)
        return event.parts.get(part) if event is not None else None

    @property
    def turns(self) -> list[ModelTurn]:
        """The model calls, in order (none for a scripted agent)."""
        return [e for e in self.events if isinstance(e, ModelTurn)]

    @property
    def usage(self) -> dict[str, Any]:
        """Totals over the model calls.

        Turns, tokens, cost (None when no price was known), failed calls, seconds in the API, retried attempts, and
        turns whose tokens litellm counted (the server sent none).
        """
        turns = self.turns
        costs = [t.cost for t in turns if t.cost is not None]
        return {"turns": len(turns), "prompt_tokens": sum(t.prompt_tokens for t in turns),
                "completion_tokens": sum(t.completion_tokens for t in turns),
                "cost": sum(costs) if costs else None, "errors": sum(1 for t in turns if t.error),
                "model_seconds": round(sum(t.latency for t in turns), 3),
                "retries": sum(t.attempts - 1 for t in turns),
                "tokens_estimated": sum(1 for t in turns if t.tokens_estimated)}

    @property
    def emulator_usage(self) -> dict[str, Any] | None:
        """Totals over the emulated steps (None: none was emulated).

        Calls, model rounds, outputs reused (from the cache or a replayed trace), failed outputs, contradictions,
        and the tokens, cost (None when no price was known) and seconds of the rounds run now.
        """
        records = [s.emulation for s in self.steps if s.emulation is not None]
        if not records:
            return None
        rounds = [r for e in records if e.source == "model" for r in e.rounds]
        costs = [r.cost for r in rounds if r.cost is not None]
        return {"calls": len(records), "rounds": len(rounds),
                "reused": sum(1 for e in records if e.source in ("cache", "recorded")),
                "failed": sum(1 for e in records if e.failed),
                "contradictions": sum(len(e.contradictions) for e in records),
                "tokens": sum(r.prompt_tokens + r.completion_tokens for r in rounds),
                "cost": sum(costs) if costs else None,
                "model_seconds": round(sum(r.latency for r in rounds), 3)}

    @property
    def end(self) -> End | None:
        """The end event, or None when the episode did not finish."""
        return next((e for e in self.events if isinstance(e, End)), None)

    @property
    def final(self) -> Final | None:
        """The final answer, if any."""
        return next((e for e in self.events if isinstance(e, Final)), None)


def read_trace(path: str | Path, data: bytes | None = None) -> Trace:
    """Read a trace file. Raises TraceError naming the file and line of anything it cannot read.

    ``data``: the file's bytes, already read.
    """
    path = Path(path)
    try:
        # "\n" only: an output may hold U+2028 or U+0085, which JSON leaves as they are and splitlines() splits on
        lines = (path.read_bytes() if data is None else data).decode("utf-8").split("\n")
        if lines and not lines[-1]:
            lines.pop()
    except (OSError, UnicodeDecodeError) as exc:
        raise TraceError(f"{path}: cannot read the trace ({exc})") from None
    events: list[Any] = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            events.append(EVENT.validate_python(json.loads(line)))
        except (json.JSONDecodeError, ValidationError) as exc:
            if n == len(lines) and isinstance(exc, json.JSONDecodeError):
                break  # a last line cut short by a crash: the events before it stand
            raise TraceError(f"{path}:{n}: not a riskgym trace event ({_first_error(exc)})") from None
    if not events or not isinstance(events[0], Header):
        raise TraceError(f"{path}: no header: not a riskgym trace")
    if events[0].schema_version not in READABLE_VERSIONS:
        raise TraceError(f"{path}: trace schema version {events[0].schema_version}, this riskgym reads "
                         f"{', '.join(map(str, READABLE_VERSIONS))}; use the riskgym version named in the header")
    return Trace(path=str(path), header=events[0], events=events[1:])


def _first_error(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        err = exc.errors()[0]
        return f"{field_path(err['loc'])}: {err['msg']}"
    return str(exc)
