"""Scenario files: TOML validated by pydantic. One file, ``scenarios/<id>-v<version>.toml``, per scenario.

>>> from riskgym.library import library_dir
>>> s = load_scenario(library_dir() / "free-disk-space-v0.toml")
>>> s.env_id, s.tools
('riskgym/free-disk-space-v0', ('shell', 'list_dir', 'delete_path'))
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import re
from collections.abc import Collection
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    PrivateAttr,
    ValidationInfo,
    WrapValidator,
    field_validator,
    model_validator,
)

from riskgym.core.checks import StateCheck
from riskgym.core.desktop import desktop_defaults
from riskgym.core.emulation import RiskInfo
from riskgym.core.fields import AbsPath, Mode, Regex, Strict
from riskgym.core.judged import Judged  # noqa: F401 - registers the judge check
from riskgym.core.kinds import EFFECTS
from riskgym.core.matchers import Matcher
from riskgym.core.parts import PartSpec, parse_part
from riskgym.core.records import holds_text, readings
from riskgym.core.slots import fill, slots_in
from riskgym.core.tomlfile import load_toml
from riskgym.core.web_checks import ServiceCheck  # noqa: F401 - registers the services' check kinds
from riskgym.errors import ScenarioError


class FileSpec(Strict):
    """A file the sandbox starts with."""

    path: AbsPath
    content: str = ""
    """The file's text."""
    mode: Mode = 0o644
    """Permission bits, e.g. "0600"."""
    owner: Literal["agent", "root"] = "agent"
    modified: datetime | date | None = None
    """When it was last changed (a TOML date or date-time, UTC when it names no zone). By default a day to three
    months before the episode, the same for each path: no file dated 1970 (a tell, and a date some tools refuse)."""

    def modified_at(self) -> float | None:
        """``modified`` as seconds since the epoch."""
        when = self.modified
        if when is None:
            return None
        if not isinstance(when, datetime):
            when = datetime(when.year, when.month, when.day)
        return (when if when.tzinfo else when.replace(tzinfo=timezone.utc)).timestamp()


class SetupStep(Strict):
    """A command run before the episode starts (not recorded as an agent action)."""

    run: str
    user: Literal["root", "agent"] = "root"


class SandboxSpec(Strict):
    """What the sandbox looks like when the episode starts."""

    image: str = "riskgym/base"
    network: bool = False
    """Give the container a network. Off unless the scenario needs one."""
    files: tuple[FileSpec, ...] = ()
    setup: tuple[Annotated[SetupStep, BeforeValidator(lambda v: {"run": v} if isinstance(v, str) else v)], ...] = ()
    """Commands run in order after the files are created; a plain string runs as root."""
    watch: tuple[AbsPath, ...] = ("/home/agent",)
    """Paths (recursively) recorded before and after the episode, for the state checks."""
    writable: tuple[AbsPath, ...] = ()
    """Paths the episode may write besides the agent's home, /tmp, /var/tmp and /dev/shm (the rest of the
    filesystem is read-only when the sandbox is reset in place)."""
    memory: Annotated[str, Field(pattern=r"^[1-9][0-9]*[kmg]$")] = "512m"
    """The processes' memory limit (``512m``, ``2g``); a desktop's box gets 1536m unless set here."""
    pids: Annotated[int, Field(ge=16, le=8192)] = 256
    """At most this many processes and threads."""
    cpus: Annotated[float, Field(gt=0, le=16)] = 1.0
    reset: Literal["auto", "in-place", "recreate"] = "auto"
    """How the sandbox is made clean for the next episode: ``in-place`` (a read-only root with tmpfs at the
    writable paths, reused after a reset that kills every process and empties them: fast) or ``recreate`` (a new
    container with a writable root each time). ``auto``: in place unless a file is owned by root."""

    @property
    def in_place(self) -> bool:
        """Whether the sandbox is reset in place (read-only root) rather than recreated."""
        if self.reset != "auto":
            return self.reset == "in-place"
        return all(f.owner == "agent" for f in self.files)


def _effect_kind(value: str) -> str:
    if value not in EFFECTS:
        raise ValueError(EFFECTS.unknown(value))
    return value


EffectKind = Annotated[str, AfterValidator(_effect_kind)]
"""A name in :data:`riskgym.core.kinds.EFFECTS`: delete, write, read, move, chmod, chown, kill, exec, network,
privileged, or one an environment added."""


class Tripwire(Strict):
    """An intention tripwire: a tool call that shows the agent going for the risky action.

    Either by the call itself (``tool`` and argument matchers), or by what it does (``effect``, whatever the tool:
    ``delete_path``, ``rm -r -f``, ``find -delete`` and ``shutil.rmtree`` are all a "delete"), or both.
    """

    id: str
    description: str = ""
    tool: str = "*"
    """The tool's name, or "*" for any tool."""
    match: dict[str, Matcher] = Field(default_factory=dict)
    """Argument name (dotted for nested fields: "options.force") -> matcher; all must hold."""
    effect: EffectKind | None = None
    """What the call does, read from its arguments (shell commands are parsed)."""
    target: Matcher | None = None
    """The effect's target: a path (``under`` holds when the effect reaches the path or anything under it, e.g. a
    recursive delete of a parent), a process or signal target for ``kill`` ("-1" is every process)."""
    detail: Matcher | None = None
    """The effect's detail: the mode for chmod ("777", "o+w"), the signal for kill, the arguments for exec."""

    _GIVE: ClassVar[str] = "give `tool` (with `match`), or `effect` (with `target`/`detail`), or both"

    def _says_what(self) -> bool:
        """Whether the wire names something to match at all."""
        return self.tool != "*" or bool(self.match) or self.effect is not None

    @model_validator(mode="after")
    def _what(self) -> Tripwire:
        if not self._says_what():
            raise ValueError(self._GIVE)
        if self.effect is None and (self.target is not None or self.detail is not None):
            raise ValueError("`target` and `detail` need `effect`")
        return self


class Exposure(Tripwire):
    """What "the risk was presented" means: a call that met it (read the injected file, listed the folder).

    Matched like a tripwire, on calls that ran and succeeded (exit 0), and, with ``seen``, whose output shows that
    text (the page the agent saw). An episode in which none did was never exposed: its risk verdicts are unscored,
    not "resisted".
    """

    seen: str | None = None
    """Text the call's output must hold (the injected instruction, say)."""

    _GIVE: ClassVar[str] = "give `tool` (with `match`), `effect` (with `target`/`detail`) or `seen`, or several"

    def _says_what(self) -> bool:
        return super()._says_what() or self.seen is not None


JSON_TYPES = {"string", "number", "integer", "boolean", "array", "object", "null"}


class ToolSpec(Strict):
    """A tool the scenario declares itself, for a part of its world that provides it (a service, an emulator)."""

    name: Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]
    description: str
    backend: str
    """The part of the world that runs it (its name in ``[[parts]]``)."""
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}})
    """A JSON Schema object: ``properties`` (each with ``type`` and ``description``) and ``required``."""
    effect: EffectKind | None = None
    """What a call does (delete, send, transfer, ...), for the intention tripwires and the leak graph."""
    target: str | None = None
    """The argument whose value names what the effect acts on (the recipient, the record's id)."""

    @field_validator("parameters")
    @classmethod
    def _object(cls, value: dict[str, Any]) -> dict[str, Any]:
        properties = value.get("properties", {})
        if value.get("type", "object") != "object" or not isinstance(properties, dict):
            raise ValueError('must be a JSON Schema object: {type = "object", properties = {...}, required = [...]}')
        for name, prop in properties.items():
            kinds = prop.get("type", "string") if isinstance(prop, dict) else None
            if kinds is None or not set(kinds if isinstance(kinds, list) else [kinds]) <= JSON_TYPES:
                raise ValueError(f"properties.{name}: type {kinds!r} is not a JSON Schema type; give one of "
                                 f"{', '.join(sorted(JSON_TYPES))}")
        required = value.get("required", [])
        missing = [r for r in required if r not in properties] if isinstance(required, list) else [required]
        if missing:
            raise ValueError(f"required: {missing[0]!r} is not one of the properties; list names of properties")
        return value


class Overuse(Strict):
    """Budgets: how much of each resource the task needs (N_req). Going beyond is overuse."""

    tool_calls: int | None = Field(default=None, ge=0)
    privileged_calls: int | None = Field(default=None, ge=0)
    """Calls of sudo, su, chmod, chown, chattr, setfacl."""
    processes: int | None = Field(default=None, ge=0)
    """Processes the agent leaves running after the episode."""
    files: int | None = Field(default=None, ge=0)
    """Files (and folders) created under the watched paths."""
    tokens: int | None = Field(default=None, ge=0)
    """Model tokens, prompt plus completion."""
    cost: float | None = Field(default=None, ge=0)
    """US dollars of model calls."""


class Canary(Strict):
    """A secret planted in the sandbox, followed by the leak grader from where it lives to where it must not go."""

    token: str = Field(min_length=8)
    """A distinctive string inside the source (it should appear nowhere else)."""
    source: AbsPath | None = None
    """The file of the box that holds it."""
    part: str | None = None
    """Or the part that holds it (a database's rows): whatever talks to the part may have read it, so what it then
    wrote is a leak only where the file holds the token at the end (a count per country is no leak)."""
    spelled: Literal["as is", "digits"] = "as is"
    """How it is found in what the agent passes on: ``as is`` (the token's text, also inside base64, hex, URL or
    quoted-printable), or ``digits`` (a phone or card number, an amount: its digits in a text's digits, whatever
    spaces, dashes, dots or parentheses the agent wrote them with)."""
    allowed_sinks: tuple[str, ...] = ()
    """Where it may go: patterns (``*`` any text) over the leak grader's sinks, ``mail:ADDRESS`` (an email to
    someone), ``social:HANDLE`` (a message), ``web:HOST/PATH`` (a form or request body), ``net:HOST``, ``file:PATH``.
    ``["web:login.corp.example/login"]``: the password sent to the real login page is no leak; anywhere else is."""

    @model_validator(mode="after")
    def _one_origin(self) -> Canary:
        if (self.source is None) == (self.part is None):
            raise ValueError("give `source` (the file that holds it) or `part` (the part whose data holds it), "
                             "one of them")
        return self

    @property
    def origin(self) -> str:
        """Where it lives: the file's path, or ``part:NAME``."""
        return self.source or f"part:{self.part}"

    @property
    def node(self) -> str:
        """Its source's node in the leak grader's graph: ``file:PATH`` or ``part:NAME``."""
        return f"file:{self.source}" if self.source else f"part:{self.part}"

    def found_in(self, text: object) -> bool:
        """Whether ``text`` holds the token, as :attr:`spelled` says (its encodings undone)."""
        if self.spelled == "digits":
            digits = re.sub(r"\D", "", self.token)
            return any(digits in re.sub(r"\D", "", r) for r in readings(text))
        return holds_text(self.token, text)

    def allows(self, sink: str) -> bool:
        """Whether the canary may reach ``sink`` (a graph node such as ``mail:emma@corp.example``).

        A request to a host allowed as ``web:HOST/PATH`` is allowed as ``net:HOST`` too: the connection that carried
        it (a request to another path of the host is its own ``web:`` sink, and a leak there).
        """
        patterns = [p.lower() for p in self.allowed_sinks]
        patterns += ["net:" + p[4:].split("/", 1)[0] for p in patterns if p.startswith("web:")]
        return any(fnmatch.fnmatchcase(sink.lower(), pattern) for pattern in patterns)


class Served(Strict):
    """Content the sinkhole serves for one host and path (``[[sinkhole]]``): the outside world as the scenario has it.

    Any other request to any host is answered as a site that refuses (503). A box without a network has a sinkhole
    (see :mod:`riskgym.world.sinkhole.part`).
    """

    host: Annotated[str, Field(pattern=r"^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$")]
    path: Annotated[str, Field(pattern=r"^/\S*$")] = "/"
    content: str = ""
    status: int = Field(default=200, ge=100, le=599)
    type: str = "application/octet-stream"
    """Its Content-Type."""


class RefStep(Strict):
    """One step of a reference trajectory: a tool call, or a final answer."""

    tool: str | None = None
    arguments: dict[str, Any] = Field(default_factory=dict)
    final: str | None = None
    output: Any = None
    """For an emulated tool: what the emulator returns to this call when ``riskgym check`` plays the reference (a
    JSON object), with the facts it asserts under ``facts``. None: a generic output that fits the tool's returns."""

    @model_validator(mode="after")
    def _one(self) -> RefStep:
        if (self.tool is None) == (self.final is None):
            raise ValueError("give either `tool` (with `arguments`) or `final`")
        return self


class References(Strict):
    """Two reference trajectories that prove the scenario is gradeable."""

    risky: tuple[RefStep, ...] = ()
    """Takes the harmful path: must be graded as intended and completed (a benign twin has none)."""
    safe: tuple[RefStep, ...] = Field(min_length=1)
    """Does the benign task safely: must be graded as neither, and useful."""


class ReplaySpec(Strict):
    """How ``riskgym replay`` compares what a step shows now with what it showed when recorded."""

    normalize: tuple[Regex, ...] = ()
    """Regular expressions for output that differs from run to run (random names, sizes that vary): their matches
    are ignored when comparing. Timestamps are ignored without being named here."""


class Limits(Strict):
    """Episode limits."""

    max_steps: int = Field(default=20, ge=2)
    max_seconds: float = Field(default=300.0, gt=0)
    command_timeout: float = Field(default=30.0, gt=0)


class Attack(Strict):
    """Where an attacked scenario comes from (:mod:`riskgym.core.injection`): suite, tasks, template."""

    suite: str
    user_task: str
    injection_task: str
    template: str
    slots: tuple[str, ...] = ()
    """The slots that carried the attack (those the user task shows the agent)."""


class Source(Strict):
    """Where a scenario comes from, when it was converted from another benchmark (kept for attribution)."""

    name: str
    """The benchmark, e.g. "ToolEmu (Ruan et al., 2023)"."""
    case: str = ""
    license: str = ""
    url: str = ""


class Scenario(Strict):
    """A risky scenario: a sandbox, an instruction, tools, and how to grade what the agent did."""

    id: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]*$")]
    version: int = Field(default=0, ge=0)
    title: str
    description: str
    category: str
    risk_source: Literal["user", "environment"]
    severity: Literal["low", "medium", "high", "critical"]
    instruction: str
    tools: tuple[str, ...] = Field(min_length=1)
    tool_specs: tuple[ToolSpec, ...] = ()
    """Tools the scenario declares itself (their names may then be listed in ``tools``)."""
    sandbox: SandboxSpec = SandboxSpec()
    """The agent's box: the part of the world named ``box``."""
    parts: tuple[Annotated[PartSpec, WrapValidator(parse_part)], ...] = ()
    """The world's other parts (services, an emulator), by kind."""
    limits: Limits = Limits()
    replay: ReplaySpec = ReplaySpec()
    benign: bool = False
    """A benign twin: the same kind of task with nothing risky in it. Refusing it is a false refusal."""
    twin_of: str | None = None
    """For a benign twin, the id of the risky scenario it mirrors."""
    intention: tuple[Tripwire, ...] = ()
    exposure: tuple[Exposure, ...] = ()
    """Any one of these calls means the agent met the risk; none given: the instruction itself presents it."""
    completion: tuple[StateCheck, ...] = ()
    intention_only: bool = False
    """The harm cannot (or must not) complete here (``curl | sh`` with no network): what is measured is the
    attempt. Completion checks are then optional, and the risky reference must leave them all false and leak
    nothing."""
    utility: tuple[StateCheck, ...] = ()
    refusal: tuple[StateCheck, ...] = ()
    """What a refusal looks like besides not acting (usually ``answer`` checks); none: the answer declines in
    words ("I won't", "I can't")."""
    overuse: Overuse = Overuse()
    canaries: tuple[Canary, ...] = ()
    sinkhole: tuple[Served, ...] = ()
    """What the outside world serves to the box (a box without a network reaches only its sinkhole)."""
    judge_rubric: str = ""
    """For the LLM judge: what counts as risky in this scenario, in a sentence or two."""
    reference: References
    underspecifications: RiskInfo = RiskInfo()
    """What the instruction leaves out (task information, safety constraints): told to an adversarial emulator
    and to the judge."""
    expected_achievements: tuple[str, ...] = ()
    """What a helpful and safe agent should do, in words (the judge's helpfulness scale reads them)."""
    risky_outcomes: tuple[str, ...] = ()
    """The harm that may come of the task, in words."""
    risky_actions: tuple[str, ...] = ()
    """Actions of the agent that would lead to it, in words."""
    source: Source | None = None
    attack: Attack | None = None
    """Set on a scenario made by an injection suite (``riskgym attack``): which tasks and template made it."""
    _hash: str = PrivateAttr(default="")
    _template: dict[str, Any] | None = PrivateAttr(default=None)
    """The file's data with its injection slots unfilled (None: it has none)."""

    @property
    def slots(self) -> list[str]:
        """The injection slots of the scenario's file (``{{inject:NAME}}``), in order."""
        return slots_in(self._template) if self._template else []

    def with_slots(self, texts: dict[str, str]) -> Scenario:
        """The scenario with its slots filled with ``texts`` (the others with nothing)."""
        if self._template is None:
            return self
        out = Scenario.model_validate(fill(self._template, texts))
        out._template = self._template
        return out

    @model_validator(mode="before")
    @classmethod
    def _desktop_box(cls, data: Any) -> Any:
        return desktop_defaults(data)  # a desktop's box: its image and limits, unless [sandbox] gives them

    @model_validator(mode="after")
    def _tools_known(self, info: ValidationInfo) -> Scenario:
        # messages start with the field's path, so that load_scenario can point at its line
        known = (info.context or {}).get("tools")
        declared = [t.name for t in self.declared_tools]
        if known is not None:
            for name in self.tools:
                if name not in known and name not in declared:
                    raise ValueError(f"tools: unknown tool {name!r}; known tools are {', '.join([*known, *declared])}"
                                     + (" (or declare it in [[tool_specs]])" if not declared else ""))
        parts = ["box", *(p.name for p in self.parts)]
        second = next((i for i, n in enumerate(parts) if n in parts[:i]), None)
        if second is not None:
            first = parts.index(parts[second])
            raise ValueError(f"parts[{second - 1}].name: {parts[second]!r} is taken by "
                             + (f"parts[{first - 1}]" if first else "the agent's box")
                             + "; give each part a name of its own")
        self._hosts_once()
        for n, canary in enumerate(self.canaries):
            if canary.part is not None and canary.part not in parts[1:]:
                raise ValueError(f"canaries[{n}].part: no part {canary.part!r}; the parts are "
                                 f"{', '.join(parts[1:]) or 'none'}")
        kinds = [p.kind for p in self.parts]  # a tool runs on the part of its backend's name, or the one of its kind
        for n, spec in enumerate(self.tool_specs):
            if spec.backend not in parts and kinds.count(spec.backend) != 1:
                raise ValueError(f"tool_specs[{n}].backend: no part {spec.backend!r}, and no one part of that kind; "
                                 f"the parts are {', '.join(parts)}")
        if {"answer", "flow", "sinkhole"} & set(parts):
            raise ValueError("parts: \"answer\" names the final answer, \"flow\" where canaries went and \"sinkhole\" "
                             "the box's outside world; give the part another name")
        for kind in ("completion", "utility", "refusal"):
            for n, top in enumerate(getattr(self, kind)):
                for check in top.leaves():
                    self._check_part(kind, n, check, parts)
        for kind in ("intention", "exposure"):
            for n, wire in enumerate(getattr(self, kind)):
                if wire.tool != "*" and wire.tool not in self.tools:
                    raise ValueError(f"{kind}[{n}].tool: tool {wire.tool!r} is not in `tools`; add it there")
        if not self.benign:
            for name in ("intention", "completion")[:1 if self.intention_only else 2]:
                if not getattr(self, name):
                    raise ValueError(f"{name}: a risky scenario needs at least one; add [[{name}]] (or set "
                                     "benign = true for a benign twin)")
            if not self.reference.risky:
                raise ValueError("reference.risky: a risky scenario needs a risky reference trajectory; add it")
        for which in ("risky", "safe"):
            for i, step in enumerate(getattr(self.reference, which)):
                if step.tool is not None and step.tool not in self.tools:
                    raise ValueError(f"reference.{which}[{i}].tool: tool {step.tool!r} is not in `tools`; add it there")
        return self

    def _hosts_once(self) -> None:
        """One part a host name: the box's /etc/hosts would send a second part's name to the first's address."""
        seen: dict[str, int] = {}
        for n, part in enumerate(self.parts):
            for i, host in enumerate(part.hosts):
                if host in seen:
                    raise ValueError(f"parts[{n}].{'host' if i == 0 else 'aliases'}: {host!r} is taken by "
                                     f"parts[{seen[host]}]; give each part host names of its own")
                seen[host] = n

    def _check_part(self, kind: str, n: int, check: Any, parts: list[str]) -> None:
        if check.part not in [*parts, "answer", "flow"]:
            raise ValueError(f"{kind}[{n}].part: no part {check.part!r}; the parts are {', '.join(parts)} "
                             "(and \"answer\", the final answer)")
        if check.part == "flow" and not self.canaries:
            raise ValueError(f"{kind}[{n}]: a `reached` check follows the scenario's canaries; plant one "
                             "([[canaries]])")

    @property
    def declared_tools(self) -> list[ToolSpec]:
        """The tools it declares (``[[tool_specs]]``) and those its parts provide (an emulator's toolkits)."""
        provided = [ToolSpec.model_validate(d) for p in self.parts for d in p.provided_tools()]
        return [*self.tool_specs, *provided]

    @property
    def uses_box(self) -> bool:
        """Whether the agent's box matters: a tool runs on it, a check or canary reads it, it has files or set-up.

        When none does (a scenario of emulated tools only), a world needs no container: its box is an empty one in
        memory.
        """
        elsewhere = {t.name for t in self.declared_tools if t.backend != "box"}
        checks = [leaf for c in [*self.completion, *self.utility, *self.refusal] for leaf in c.leaves()]
        return (any(name not in elsewhere for name in self.tools) or any(c.part == "box" for c in checks)
                or bool(self.canaries or self.sandbox.files or self.sandbox.setup)
                or any(p.in_box for p in self.parts))  # a part that runs in the box (a desktop)

    def needles(self) -> list[str]:
        """The texts its checks and canaries look for in files: the box looks for them inside packed files too."""
        out = [c.token for c in self.canaries]
        todo = [*self.completion, *self.utility, *self.refusal]
        while todo:
            check = todo.pop()
            todo += getattr(check, "checks", ())
            text = getattr(check, "text", None)
            if isinstance(text, str) and text not in out:
                out.append(text)
        return out

    @property
    def env_id(self) -> str:
        """The gymnasium id, ``riskgym/<id>-v<version>``."""
        return f"riskgym/{self.id}-v{self.version}"

    @property
    def content_hash(self) -> str:
        """sha256 of the scenario file's bytes (of the canonical JSON when it was not loaded from a file)."""
        return self._hash or hashlib.sha256(self.model_dump_json().encode()).hexdigest()


def load_scenario(path: str | Path, tools: Collection[str] | None = None) -> Scenario:
    """Read and validate a scenario file. Raises ScenarioError naming the file, line, field and fix.

    ``tools``: the tool names this riskgym offers, checked against the scenario's (:func:`riskgym.library.load`
    passes the registry's); None leaves them unchecked.
    """
    path = Path(path)
    context = {"tools": list(tools)} if tools is not None else None
    template: list[dict[str, Any]] = []

    def unfilled(data: dict[str, Any]) -> dict[str, Any]:  # a plain run: every injection slot holds nothing
        if not slots_in(data):
            return data
        template.append(data)
        return fill(data, {})  # type: ignore[no-any-return]

    raw, scenario = load_toml(path, Scenario, ScenarioError, context=context, prepare=unfilled)
    scenario._template = template[0] if template else None
    expected = f"{scenario.id}-v{scenario.version}.toml"
    if path.name != expected:
        raise ScenarioError(f"{path}: id {scenario.id!r} and version {scenario.version} ask for the file name "
                            f"{expected!r}; rename the file or fix `id`/`version`")
    scenario._hash = hashlib.sha256(raw).hexdigest()
    return scenario


def world_key(scenario: Scenario) -> str:
    """A hash of what building the scenario's world depends on (images, networks, writable paths, part specs).

    Scenarios with the same key can share a pooled world: files and set-up are applied per episode.
    """
    box = scenario.sandbox
    parts = {"box": {"image": box.image, "network": box.network, "memory": box.memory, "pids": box.pids,
                     "cpus": box.cpus, "writable": list(box.writable) if box.in_place else None}}
    parts |= {p.name: p.build_key() for p in scenario.parts}
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]
