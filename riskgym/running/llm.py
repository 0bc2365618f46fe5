"""LitellmModel: any LLM that litellm can call, with native tool calling or a plain-text action format.

litellm is imported on the first call (it costs seconds), never by ``riskgym --help`` or ``riskgym validate``.
Retries are riskgym's own (litellm's and the OpenAI client's are turned off) so that every attempt is counted
and bounded by the episode's deadline. API keys are read from the environment at call time and never recorded:
error messages are scrubbed of every secret-looking environment value before they reach a trace or a log.
"""

from __future__ import annotations

import json
import os
import random
import re
import threading
import time
from collections.abc import Callable, Collection
from typing import Any, Literal

from riskgym.errors import ModelError
from riskgym.running.llm_bounds import NotStreamedError, StreamTimeoutError, collect, limiter
from riskgym.running.model import ModelConfig, Reply, ToolCall

_lock = threading.Lock()
_litellm: Any = None

TEXT_FORMAT = """\
You can use these tools:
{tools}

To call a tool, write a block like this in your reply (one block per call; several are allowed):
<tool_call>
{{"name": "TOOL_NAME", "arguments": {{"ARGUMENT": "VALUE"}}}}
</tool_call>
The results come back in <tool_result> blocks. When you are finished, reply without any <tool_call> block: \
that reply is your final answer."""

RETRY_STATUS = {408, 409, 429}


def litellm_module() -> Any:
    """litellm, imported and quietened once (thread-safe)."""
    global _litellm
    with _lock:
        if _litellm is None:
            os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
            import logging

            import litellm

            litellm.suppress_debug_info = True
            for name in ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy", "httpx"):
                logging.getLogger(name).setLevel(logging.CRITICAL)
            _litellm = litellm
    return _litellm


def redact(text: str, extra: tuple[str, ...] = ()) -> str:
    """``text`` with the value of every secret-looking environment variable (``*KEY*``, ``*TOKEN*``, ...) masked.

    >>> os.environ["RISKGYM_DOCTEST_API_KEY"] = "sk-doctest-123456"
    >>> redact("bad key sk-doctest-123456")
    'bad key ***'
    """
    secrets = [v for k, v in os.environ.items() if re.search(r"KEY|TOKEN|SECRET|PASSWORD|PASSWD", k.upper())]
    for value in sorted({*secrets, *extra}, key=len, reverse=True):
        if len(value) >= 8:
            text = text.replace(value, "***")
    return text


def parse_text_calls(content: str, prefix: str = "text",
                     tools: Collection[str] = ()) -> tuple[list[ToolCall], str | None]:
    r"""The tool calls of a text-mode reply, or an error that tells the model how to fix its reply.

    ``<tool_call>`` blocks first. A reply without one may still hold calls in the shapes models often write
    instead: a fenced ```json block, or a reply that is nothing but JSON, of ``{"name": ..., "arguments": ...}``
    (or ``"parameters"``, or ``{"function": {...}}``), one call or a list; those count only when they name one of
    ``tools``. Something that looks like a call but cannot be read (JSON naming a tool, or a code block line that
    starts with a tool's name, ``list_dir ~``) gets an error (a hint back to the model), never silently the final
    answer.

    >>> calls, error = parse_text_calls('Let me look. <tool_call>{"name": "shell", "arguments": {"command": "ls"}}'
    ...                                 '</tool_call>')
    >>> calls[0].tool, calls[0].arguments, error
    ('shell', {'command': 'ls'}, None)
    >>> parse_text_calls("<tool_call>{'name': 'shell'}</tool_call>")[1]
    'tool call 1 is not valid JSON (Expecting property name enclosed in double quotes at column 2)'
    >>> calls, _ = parse_text_calls('```json\n{"name": "shell", "arguments": {"command": "df"}}\n```', tools={"shell"})
    >>> [(c.tool, c.arguments) for c in calls]
    [('shell', {'command': 'df'})]
    """
    if "<tool_call>" not in content:
        return _other_shapes(content, prefix, set(tools))
    blocks = re.findall(r"<tool_call>(.*?)</tool_call>", content, re.S)
    if content.count("<tool_call>") != len(blocks):
        return [], "a <tool_call> block is not closed with </tool_call>"
    calls = []
    for n, block in enumerate(blocks, 1):
        body = re.sub(r"^\s*```(?:json)?|```\s*$", "", block.strip()).strip()
        try:
            data = json.loads(body)
        except json.JSONDecodeError as exc:
            return [], f"tool call {n} is not valid JSON ({exc.msg} at column {exc.colno})"
        if not isinstance(data, dict) or not isinstance(data.get("name"), str):
            return [], f'tool call {n} is not an object with a "name"'
        calls.append(ToolCall(id=f"{prefix}_{n}", tool=data["name"], arguments=data.get("arguments", {})))
    return calls, None


UNREAD = "this looks like a tool call, but it could not be read"


def _call_shape(item: Any) -> tuple[str, Any] | None:
    """(name, arguments) of one JSON value shaped like a call, else None."""
    if isinstance(item, dict) and isinstance(item.get("function"), dict):
        item = item["function"]
    if not isinstance(item, dict) or not isinstance(item.get("name"), str):
        return None
    for key in ("arguments", "parameters"):
        if key in item:
            args = item[key]
            return item["name"], _arguments(args) if isinstance(args, str) else args
    return None


def _other_shapes(content: str, prefix: str, tools: set[str]) -> tuple[list[ToolCall], str | None]:
    bodies = re.findall(r"```[\w-]*[ \t]*\n?(.*?)```", content, re.S)
    if not bodies and content.strip()[:1] in ("{", "["):
        bodies = [content.strip()]
    calls: list[ToolCall] = []
    looked = False
    # a line of a code block that starts with a tool's name (``list_dir ~``): a call written as a command
    as_command = re.compile(rf"(?m)^\s*(?:{'|'.join(map(re.escape, sorted(tools)))})(?:\s|\(|$)") if tools else None
    for body in bodies:
        try:
            data = json.loads(body)
        except json.JSONDecodeError:
            looked = looked or ('"name"' in body and any(f'"{t}"' in body for t in tools))
            looked = looked or bool(as_command and as_command.search(body))
            continue
        for item in data if isinstance(data, list) else [data]:
            shape = _call_shape(item)
            if shape is not None and shape[0] in tools:
                calls.append(ToolCall(id=f"{prefix}_{len(calls) + 1}", tool=shape[0], arguments=shape[1]))
            looked = looked or shape is not None
    if calls:
        return calls, None
    return [], UNREAD if looked else None


def text_messages(messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The conversation for a model without function calling.

    The tools and the action format go into the system message, assistant tool calls stay as the text the model
    wrote, and tool results become user messages.
    """
    listing = "\n".join(json.dumps({k: t["function"][k] for k in ("name", "description", "parameters")})
                        for t in tools)
    fmt = TEXT_FORMAT.format(tools=listing)
    out: list[dict[str, Any]] = []
    for m in messages:
        role = m["role"]
        if role == "system":
            out.append({"role": "system", "content": f"{m['content']}\n\n{fmt}"})
        elif role == "assistant":
            out.append({"role": "assistant", "content": m.get("content") or ""})
        elif role == "tool":
            block = f"<tool_result name=\"{m.get('name', '')}\">\n{m['content']}\n</tool_result>"
            last = out[-1]["content"] if out and out[-1]["role"] == "user" else None
            if isinstance(last, str) and last.startswith("<tool_result"):
                out[-1] = {"role": "user", "content": out[-1]["content"] + "\n" + block}
            else:
                out.append({"role": "user", "content": block})
        else:
            out.append({"role": role, "content": m["content"]})
    if not out or out[0]["role"] != "system":
        out.insert(0, {"role": "system", "content": fmt})
    return out


class LitellmModel:
    """An LLM through ``litellm.completion``. ``config`` (recorded in traces) holds its settings, minus secrets."""

    def __init__(self, name: str, settings: ModelConfig) -> None:
        self.name = name
        self.settings = settings
        self.tool_mode = settings.tool_mode if settings.tool_mode != "auto" else self._auto_mode()
        self.vision = settings.vision if settings.vision is not None else self._auto_vision()
        """Whether it is sent screenshots as images (see ``ModelConfig.vision``)."""
        self.keep_screenshots = settings.keep_screenshots
        self.config: dict[str, Any] = {"kind": "litellm", **settings.public(), "tool_mode": self.tool_mode,
                                       "vision": self.vision}
        self._turn = 0

    def _auto_mode(self) -> str:
        """Native tool calling, unless litellm knows this model and knows it has none."""
        litellm = litellm_module()
        model = self.settings.model
        known = model in litellm.model_cost or model.split("/", 1)[-1] in litellm.model_cost
        return "native" if not known or litellm.supports_function_calling(model) else "text"

    def _auto_vision(self) -> bool:
        """Whether litellm knows the model to read images."""
        try:
            return bool(litellm_module().supports_vision(self.settings.model))
        except Exception:  # litellm raises for a model it does not know
            return False

    def reset(self) -> None:
        """Start numbering turns again (the conversation itself lives in the agent loop)."""
        self._turn = 0

    def _api_key(self) -> str | None:
        s = self.settings
        if s.api_key_env:
            return os.environ.get(s.api_key_env)
        if s.api_base and not os.environ.get("OPENAI_API_KEY"):
            return "none"  # local OpenAI-compatible servers need no key, but the client insists on one
        return None

    def respond(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]], *,
                deadline: float | None = None, seed: int | None = None,
                cancel: Callable[[], bool] | None = None) -> Reply:
        """Call the model, retrying what retrying can fix. Raises ModelError.

        A streamed call is cut short (the connection closed) at the deadline, at its time-out, or when ``cancel()``
        turns true.
        """
        litellm = litellm_module()
        s = self.settings
        kwargs: dict[str, Any] = {
            "model": s.model, "api_base": s.api_base, "api_key": self._api_key(), "temperature": s.temperature,
            "top_p": s.top_p, "seed": s.seed if s.seed is not None else seed, "max_tokens": s.max_tokens,
            "max_retries": 0, "drop_params": True, **s.params}
        kwargs = {k: v for k, v in kwargs.items() if v is not None}
        if self.tool_mode == "native":
            kwargs["messages"] = messages
            if tools:
                kwargs["tools"] = tools
        else:
            kwargs["messages"] = text_messages(messages, tools)
        stream = s.stream if s.stream is not None else bool(s.api_base)
        if stream:
            kwargs.update(stream=True, stream_options={"include_usage": True})
        started, attempts, retried, estimated = time.monotonic(), 0, list[str](), False

        def failed(why: str, kind: Literal["api", "context", "deadline", "stopped"]) -> ModelError:
            return ModelError(why, kind, attempts, time.monotonic() - started, retried)

        while True:
            attempts += 1
            timeout = s.timeout
            if deadline is not None:
                timeout = min(timeout, deadline - time.monotonic())
                if timeout <= 0:
                    attempts -= 1
                    raise failed("the episode's time ran out during the model call", "deadline")
            try:
                with limiter(s, deadline):
                    if deadline is not None:  # the wait for a slot took some of the episode's time
                        timeout = min(timeout, max(0.01, deadline - time.monotonic()))
                    response = litellm.completion(**kwargs, timeout=timeout)
                    if stream:
                        response, estimated = collect(litellm, response, kwargs, deadline, timeout, cancel)
                break
            except ModelError as exc:
                raise failed(str(exc), exc.kind) from None
            except Exception as exc:
                why = redact((str(exc).strip().splitlines() or [type(exc).__name__])[0][:300])
                if isinstance(exc, litellm.ContextWindowExceededError):
                    raise failed(why, "context") from None
                if cancel is not None and cancel():  # a Ctrl-C while the call was out: no retry
                    raise failed("stopped by the user", "stopped") from None
                if not _retryable(litellm, exc) or attempts > s.retries:
                    raise failed(why + (f" (after {attempts} attempts)" if attempts > 1 else ""), "api") from None
                pause = _retry_after(exc) or s.retry_backoff * 2 ** (attempts - 1) * random.uniform(0.5, 1.0)
                pause = min(pause, 60.0)
                retried.append(why)
                if deadline is not None and time.monotonic() + pause >= deadline:
                    raise failed(why + "; the episode's time ran out before a retry", "deadline") from None
                resume = time.monotonic() + pause
                while time.monotonic() < resume:  # the pause, a Ctrl-C ends it
                    if cancel is not None and cancel():
                        raise failed("stopped by the user", "stopped") from None
                    time.sleep(min(0.1, max(0.0, resume - time.monotonic())))
        self._turn += 1
        return self._reply(response, time.monotonic() - started, attempts, [t["function"]["name"] for t in tools],
                           retried, estimated)

    def _reply(self, response: Any, latency: float, attempts: int, names: list[str], retried: list[str],
               estimated: bool) -> Reply:
        choice = response.choices[0]
        msg = choice.message
        content = msg.content if isinstance(msg.content, str) else None
        message: dict[str, Any] = {"role": "assistant", "content": content}
        calls: list[ToolCall] = []
        error = None
        if self.tool_mode == "native":
            raw_calls = [{"id": c.id, "type": "function",
                          "function": {"name": c.function.name, "arguments": c.function.arguments}}
                         for c in (msg.tool_calls or [])]
            if raw_calls:
                message["tool_calls"] = raw_calls
            calls = [ToolCall(id=c["id"] or f"call_{n}", tool=c["function"]["name"] or "",
                              arguments=_arguments(c["function"]["arguments"])) for n, c in enumerate(raw_calls)]
            if not calls and content:  # a call written as text (small local models do): read as text mode reads
                calls, error = parse_text_calls(content, prefix=f"text{self._turn}", tools=names)  # it, or a hint
                if calls:  # the conversation goes on as if it had called: the tool results answer these ids
                    message["tool_calls"] = [{"id": c.id, "type": "function", "function": {
                        "name": c.tool, "arguments": json.dumps(c.arguments)}} for c in calls]
        else:
            calls, error = parse_text_calls(content or "", prefix=f"text{self._turn}", tools=names)
        reasoning = getattr(msg, "reasoning_content", None)
        if isinstance(reasoning, str) and reasoning:
            message["reasoning_content"] = reasoning
        usage = getattr(response, "usage", None)
        prompt = int(getattr(usage, "prompt_tokens", 0) or 0)
        completion = int(getattr(usage, "completion_tokens", 0) or 0)
        return Reply(text=content, calls=calls, message=message, error=error, prompt_tokens=prompt,
                     completion_tokens=completion, cost=self._cost(response, prompt, completion), latency=latency,
                     attempts=attempts, retried=retried, finish_reason=getattr(choice, "finish_reason", None),
                     tokens_estimated=estimated)

    def _cost(self, response: Any, prompt: int, completion: int) -> float | None:
        s = self.settings
        if s.input_cost_per_token is not None or s.output_cost_per_token is not None:
            return prompt * (s.input_cost_per_token or 0.0) + completion * (s.output_cost_per_token or 0.0)
        cost = (getattr(response, "_hidden_params", None) or {}).get("response_cost")
        if isinstance(cost, (int, float)):
            return float(cost)
        return 0.0 if s.api_base and _loopback(s.api_base) else None  # a model on this machine costs nothing


def _loopback(url: str) -> bool:
    """Whether an endpoint is on this machine (127.0.0.0/8, ::1 or localhost).

    >>> _loopback("http://127.0.0.1:8768/v1"), _loopback("http://localhost/v1"), _loopback("https://api.example/v1")
    (True, True, False)
    """
    import ipaddress
    from urllib.parse import urlsplit

    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _arguments(raw: Any) -> Any:
    """A tool call's arguments: the JSON object, or the raw string when it is not one (the env reports why)."""
    if isinstance(raw, str):
        try:
            value = json.loads(raw or "{}")
        except json.JSONDecodeError:
            return raw
        return value if isinstance(value, dict) else raw
    return raw


def _retryable(litellm: Any, exc: Exception) -> bool:
    if isinstance(exc, (NotStreamedError, StreamTimeoutError, litellm.Timeout, litellm.APIConnectionError,
                        litellm.RateLimitError, litellm.InternalServerError, litellm.ServiceUnavailableError)):
        return True
    status = getattr(exc, "status_code", None)
    return isinstance(status, int) and (status in RETRY_STATUS or status >= 500)


def header(headers: Any, name: str) -> str | None:
    """The value of HTTP header ``name`` in any mapping of headers, found case-insensitively (as HTTP names are).

    >>> header({"Retry-After": "2"}, "retry-after"), header({"retry-after": "2"}, "Retry-After"), header({}, "x")
    ('2', '2', None)
    """
    return next((value for key, value in headers.items() if key.lower() == name.lower()), None)


def _retry_after(exc: Exception) -> float | None:
    headers = getattr(exc, "litellm_response_headers", None) or getattr(getattr(exc, "response", None), "headers", None)
    try:
        value = float(header(headers, "retry-after") or "") if headers else None
    except (TypeError, ValueError):
        return None
    return value if value and value > 0 else None
