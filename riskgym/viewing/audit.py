"""``riskgym audit``: an episode as a timeline in the terminal, risk flags and state changes marked.

Each step shows the call, its output (the first lines unless ``full``) and the flags raised on it: the graders whose
evidence names that step. The model's words before a call are shown dimmed; the end state is shown as the changes
from the start, those that a check counts as harm in red.
"""

from __future__ import annotations

from typing import Any

from riskgym.core.observation import Observation
from riskgym.core.results import Emulation
from riskgym.core.trace import Final, ModelTurn, Step, Trace, call_text
from riskgym.grading.named import named, tried
from riskgym.grading.row import GradeRow
from riskgym.grading.verdict import Verdict

FLAGGED = ("intention", "completion", "leak", "escape", "judge")
"""Verdicts whose yes is a risk flag."""


def flags_by_step(verdicts: dict[str, Verdict]) -> dict[int, list[str]]:
    """Step index -> the risky verdicts whose evidence names that step (``intention: delete-backup``)."""
    out: dict[int, list[str]] = {}
    for name in FLAGGED:
        verdict = verdicts.get(name)
        if verdict is None or not verdict.value:
            continue
        evidence = verdict.evidence
        for step in verdict.steps:
            mine = [e.brief() for e in evidence if e.step == step]
            out.setdefault(step, []).append(f"{name}: {'; '.join(mine or [str(e) for e in evidence[:1]])}")
    return out


def harm_paths(verdicts: dict[str, Verdict]) -> set[str]:
    """The paths (or processes) that the completion verdict's evidence names as harmed."""
    completion = verdicts.get("completion")
    return {t for e in completion.evidence for t in e.targets} if completion else set()


def turn_note(turn: ModelTurn) -> str:
    """A model call in a few words: ``turn 2 · 18.3 s · 412+35 tokens · 2 attempts (retried: rate limit ...)``."""
    about = "~" if turn.tokens_estimated else ""  # counted by litellm: the server sent no usage
    parts = [f"turn {turn.turn}", f"{turn.latency:.1f} s",
             f"{about}{turn.prompt_tokens:,}+{turn.completion_tokens:,} tokens"]
    if turn.finish_reason not in (None, "stop", "tool_calls"):
        parts.append(f"finish: {turn.finish_reason}")  # "length": cut at max_tokens
    if turn.attempts > 1:
        why = "; ".join(dict.fromkeys(turn.retried))
        parts.append(f"{turn.attempts} attempts" + (f" (retried: {why[:200]})" if why else ""))
    return " · ".join(parts)


def render_timeline(trace: Trace, row: GradeRow, instruction: str, console: Any, full: bool = False) -> None:
    """Print one episode's timeline."""
    from rich.markup import escape
    from rich.rule import Rule

    h, end = trace.header, trace.end
    verdicts = row.verdicts
    status = f"{end.status} ({end.reason})" if end else "unfinished"
    console.print(Rule(f"[bold]{h.env_id.removeprefix('riskgym/')}[/] · {escape(h.agent)} · epoch {h.epoch} · "
                       f"{status} · {len(trace.steps)} steps", align="left"))
    console.print(f"[dim]trace[/] {trace.path}")
    console.print(f"[dim]instruction[/] {escape(instruction)}")
    console.print("[dim]verdicts[/] " + "  ".join(_verdict(name, v) for name, v in verdicts.items()))
    flags = flags_by_step(verdicts)
    per_step = zip(named(trace)[0], tried(trace), strict=True)  # network effects named, and what was tried
    for event in trace.events:
        if isinstance(event, ModelTurn):
            text = (event.message.get("content") or "").strip()
            console.print(f"  [dim]model {escape(turn_note(event))}[/]")
            if text:
                console.print(f"  [dim italic]model: {escape(_clip(text, 6 if not full else 10**6))}[/]")
            if event.error:
                console.print(f"  [yellow]model error: {escape(event.error)}[/]")
        elif isinstance(event, Step):
            mark = "[bold red]⚠[/]" if event.index in flags else " "
            code = "" if event.exit_code in (None, 0) else f" [yellow]exit {event.exit_code}[/]"
            console.print(f"{mark} [bold]#{event.index}[/] [cyan]{event.tool}[/] {escape(call_text(event))}{code}")
            for flag in flags.get(event.index, []):
                console.print(f"     [red]{escape(flag)}[/]")
            if event.monitor is not None:
                m = event.monitor
                said = "unscored" if m.score is None else f"suspicion {m.score:.2f}"
                console.print(f"     [{'bold red' if m.blocked else 'magenta'}]{'blocked by ' if m.blocked else ''}"
                              f"monitor {escape(m.monitor)}: {said}{escape(' · ' + m.reason if m.reason else '')}[/]")
            if event.error:
                console.print(f"     [yellow]rejected: {escape(event.error)}[/]")
            elif event.observation:
                lines = _clip(event.observation, 8 if not full else 10**9).splitlines()
                console.print("\n".join(f"     [dim]│[/] {escape(line)}" for line in lines))
            seen, tries = next(per_step)
            if seen is not None:
                console.print(f"     [dim]{escape(seen_note(seen, full))}[/]")
            for line in tries:
                console.print(f"     [magenta]{escape(line)}[/]")
            if event.emulation is not None:
                console.print(f"     [dim]{escape(emulation_note(event.emulation, full))}[/]")
                for said in event.emulation.contradictions:
                    console.print(f"     [yellow]contradiction: {escape(said)}[/]")
        elif isinstance(event, Final):
            console.print(f"  [bold]final answer[/] {escape(event.answer)}")
    _render_state(trace, verdicts, console)
    console.print()


def seen_note(seen: Observation, full: bool = False) -> str:
    """What the observer saw a step's processes do, in one line: changes first, then reads and runs.

    >>> from riskgym.core.observation import Observed
    >>> seen_note(Observation(observer="kernel",
    ...                       effects=[Observed(pid=5, call="unlinkat", kind="delete", target="/a")]))
    'seen from the host: 0 processes · delete /a'
    """
    order = {"delete": 0, "move": 0, "write": 0, "chmod": 0, "chown": 0, "kill": 0, "network": 1, "exec": 2}
    shown = sorted((e for e in seen.effects if e.kind not in ("pipe",)), key=lambda e: order.get(e.kind, 3))
    limit = len(shown) if full else 6
    words = [str(e) for e in shown[:limit]] + ([f"+{len(shown) - limit} more (--full)"] if len(shown) > limit else [])
    who = {"kernel": " from the host", "strace": " in the box"}.get(seen.observer, "")
    lost = f" (incomplete: {seen.missing})" if not seen.complete else ""
    n = len(seen.processes)
    return " · ".join([f"seen{who}{lost}: {n} process{'es' if n != 1 else ''}", *words])


def emulation_note(emulation: Emulation, full: bool = False) -> str:
    """How an emulated output came about, in one line: source, rounds and critiques, tokens, the facts asserted.

    >>> from riskgym.core.results import EmulatorRound
    >>> emulation_note(Emulation(key="k", model="openai/emu", facts=[{"op": "delete", "entity": "task:1"}],
    ...                          rounds=[EmulatorRound(critique="bad"), EmulatorRound(prompt_tokens=9)]))
    'emulated by openai/emu · 2 rounds, 1 critique · 9 tokens · asserts delete task:1'
    """
    source = {"model": f"by {emulation.model}", "cache": "from the cache", "recorded": "from the recorded trace",
              "reference": "from the reference"}[emulation.source]
    critiques = sum(1 for r in emulation.rounds if r.critique)
    parts = [f"emulated {source}", f"{len(emulation.rounds)} round{'s' * (len(emulation.rounds) != 1)}"
             + (f", {critiques} critique{'s' * (critiques != 1)}" if critiques else "")]
    if emulation.tokens:
        parts.append(f"{emulation.tokens:,} tokens")
    if emulation.failed:
        parts.append("FAILED: no valid output")
    limit = len(emulation.facts) if full else 4
    facts = [f"{f['op']} {f['entity']}" for f in emulation.facts[:limit]]
    if facts:
        more = f" +{len(emulation.facts) - limit} more" if len(emulation.facts) > limit else ""
        parts.append("asserts " + ", ".join(facts) + more)
    return " · ".join(parts)


def _verdict(name: str, verdict: Verdict) -> str:
    value = verdict.value
    if value is None:
        return f"{name} [dim]-[/]"
    risky = name in FLAGGED or name == "overuse"
    colour = ("red" if risky else "green") if value else ("green" if risky else "yellow")
    return f"{name} [{colour}]{'yes' if value else 'no'}[/]"


def _clip(text: str, lines: int) -> str:
    parts = text.splitlines()
    if len(parts) <= lines:
        return text
    return "\n".join(parts[:lines]) + f"\n… {len(parts) - lines} more lines (--full shows them)"


def _render_state(trace: Trace, verdicts: dict[str, Verdict], console: Any) -> None:
    from rich.markup import escape

    pre, post = trace.snapshot("pre"), trace.snapshot("post")
    if pre is None or post is None:
        console.print("[dim]state changes: no end snapshot (the episode did not finish)[/]")
        return
    changes = pre.diff(post)
    harm = harm_paths(verdicts)
    console.print(f"[dim]state changes[/] ({len(changes) or 'none'})")
    for what, where, detail in changes[:40]:
        colour = "red" if where in harm else "default"
        console.print(f"  [{colour}]{what:<8} {escape(where)}[/] [dim]{escape(detail)}[/]")
    if len(changes) > 40:
        console.print(f"  [dim]… {len(changes) - 40} more[/]")
