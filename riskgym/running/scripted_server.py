"""A small OpenAI-compatible chat server on 127.0.0.1 that answers from a script.

The tests and benchmarks drive the real litellm client against it, and it lets anyone try ``riskgym run --model``
without an API key. It speaks ``POST /v1/chat/completions``, streaming (server-sent events, when the request asks
for ``stream``) or not: tool calls, plain text, HTTP errors, slow replies and malformed bodies.

A *responder* maps a request (the JSON body, plus ``turn``: how many assistant messages it holds, and ``attempt``:
how many times this same turn of this same conversation was asked before) to a reply spec::

    {"content": "text"}                                          a text reply (a final answer)
    {"tool_calls": [{"name": "shell", "arguments": {...}}]}      tool calls (arguments: a dict, or a raw string)
    {"status": 429, "message": "slow down"}                      an HTTP error
    {"body": "not json"}                                         a 200 whose body is not a completion
    any of them with "delay": seconds                            wait first (a stream sends keep-alives meanwhile)
    ... "chunk_delay": seconds                                   when streaming, wait before each word of the text
    ... "no_usage": true                                         when streaming, send no token counts (as
                                                                 llama-cpp-python's server does)

>>> server = ScriptedServer(Script([{"content": "hello"}]))
>>> server.start().endswith("/v1")
True
>>> server.stop()
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Responder = Callable[[dict[str, Any]], dict[str, Any]]


class Script:
    """Replies by turn: ``turns[k]`` answers the k-th model call of every conversation.

    ``turns[k]`` may be a list: the reply to each attempt of that turn (the last one repeats), so
    ``[{"status": 429}, {"content": "ok"}]`` fails once and then succeeds. Past the end: a final answer "done".
    """

    def __init__(self, turns: list[dict[str, Any] | list[dict[str, Any]]]) -> None:
        self.turns = turns

    def __call__(self, request: dict[str, Any]) -> dict[str, Any]:
        """The reply to this turn and attempt."""
        if request["turn"] >= len(self.turns):
            return {"content": "done"}
        reply = self.turns[request["turn"]]
        if isinstance(reply, list):
            return reply[min(request["attempt"], len(reply) - 1)]
        return reply


def _conversation_key(messages: list[dict[str, Any]]) -> str:
    firsts = [str(m.get("content")) for m in messages if m.get("role") in ("system", "user")][:2]
    return hashlib.sha256("\0".join(firsts).encode()).hexdigest()[:16]


def chunks(body: dict[str, Any]) -> list[dict[str, Any]]:
    """A completion body as the stream of chunks that says the same.

    The role, each word of the text, the tool calls, the finish reason, and the usage (sent when asked for).
    """
    choice = body["choices"][0]
    message = choice["message"]

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {"id": body["id"], "object": "chat.completion.chunk", "created": body["created"],
                "model": body["model"], "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

    out = [chunk({"role": "assistant", "content": ""})]
    words = (message.get("content") or "").split(" ")
    out += [chunk({"content": w if i == 0 else " " + w}) for i, w in enumerate(words) if message.get("content")]
    out += [chunk({"tool_calls": [{"index": i, **c}]}) for i, c in enumerate(message.get("tool_calls") or [])]
    out.append(chunk({}, choice["finish_reason"]))
    out.append({**chunk({}), "choices": [], "usage": body["usage"]})
    return out


def completion(spec: dict[str, Any], model: str, prompt_tokens: int) -> dict[str, Any]:
    """An OpenAI chat completion body for a text or tool-call reply spec."""
    message: dict[str, Any] = {"role": "assistant", "content": spec.get("content")}
    calls = spec.get("tool_calls") or []
    if calls:
        message["tool_calls"] = [
            {"id": c.get("id", f"call_{i}"), "type": "function",
             "function": {"name": c["name"], "arguments": c["arguments"] if isinstance(c["arguments"], str)
                          else json.dumps(c["arguments"])}}
            for i, c in enumerate(calls)]
    completion_tokens = spec.get("completion_tokens", 1 + len(json.dumps(message)) // 4)
    return {
        "id": "chatcmpl-scripted", "object": "chat.completion", "created": int(time.time()), "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls" if calls else "stop"}],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                  "total_tokens": prompt_tokens + completion_tokens},
    }


class ScriptedServer:
    """Serves a responder over HTTP on 127.0.0.1 (a free port) in a background thread.

    ``requests`` keeps every request received: its JSON body and its headers, for tests to inspect. Header names
    are case-insensitive there, as in HTTP: ``headers["authorization"]`` finds ``Authorization: ...`` too (an
    ``email.message.Message``: a missing header is None).
    """

    def __init__(self, responder: Responder) -> None:
        self.responder = responder
        self.requests: list[dict[str, Any]] = []
        self.streams: list[dict[str, Any]] = []
        """Each streamed reply: how many chunks it had, how many were sent, and whether the client closed it early."""
        self._attempts: dict[tuple[str, int], int] = {}
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        """The API base, ``http://127.0.0.1:PORT/v1``."""
        if self._httpd is None:
            raise RuntimeError("the server is not started")
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def start(self) -> str:
        """Start serving; return the API base URL."""
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out at once, not 40 ms apart

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                status, payload, spec = server.answer(body, self.headers)
                delay = float(spec.get("delay", 0))
                if body.get("stream") and status == 200 and isinstance(payload, dict):
                    return self.stream(payload, body, delay, float(spec.get("chunk_delay", 0)),
                                       not spec.get("no_usage", False))
                time.sleep(delay)
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    if status == 429:
                        self.send_header("Retry-After", "0")
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a time-out): nothing to answer

            def stream(self, payload: dict[str, Any], body: dict[str, Any], delay: float, pause: float,
                       usage: bool) -> None:
                """Server-sent events.

                A ``delay`` is spent sending keep-alive comments, as sse-starlette does: a client's read time-out
                never fires while the model thinks.
                """
                events = chunks(payload)
                if not usage or not (body.get("stream_options") or {}).get("include_usage"):
                    events = events[:-1]
                record = {"chunks": len(events), "sent": 0, "closed_early": False}
                server.streams.append(record)
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "text/event-stream")
                    self.send_header("Connection", "close")
                    self.end_headers()
                    thinking = time.monotonic() + delay
                    while time.monotonic() < thinking:
                        self.wfile.write(b": ping\n\n")
                        self.wfile.flush()
                        time.sleep(min(0.2, max(0.0, thinking - time.monotonic())))
                    for event in events:
                        if event["choices"] and event["choices"][0]["delta"].get("content"):
                            time.sleep(pause)
                        self.wfile.write(b"data: " + json.dumps(event).encode() + b"\n\n")
                        self.wfile.flush()
                        record["sent"] += 1
                    self.wfile.write(b"data: [DONE]\n\n")
                    self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):
                    record["closed_early"] = True  # the client closed the stream: generating would stop here
                self.close_connection = True

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        return self.url

    def answer(self, body: dict[str, Any], headers: Message) -> tuple[int, Any, dict[str, Any]]:
        """Status, payload and the reply spec (its delays and stream options) for one request."""
        messages = body.get("messages", [])
        turn = sum(1 for m in messages if m.get("role") == "assistant")
        key = (_conversation_key(messages), turn)
        with self._lock:
            attempt = self._attempts.get(key, 0)
            self._attempts[key] = attempt + 1
            self.requests.append({"body": body, "headers": headers})
        spec = self.responder({**body, "turn": turn, "attempt": attempt})
        if "status" in spec:
            error = {"error": {"message": spec.get("message", "scripted error"), "type": "scripted",
                               "code": spec["status"]}}
            return int(spec["status"]), error, spec
        if "body" in spec:
            return 200, str(spec["body"]).encode(), spec
        prompt_tokens = spec.get("prompt_tokens", 1 + len(json.dumps(messages)) // 4)
        return 200, completion(spec, body.get("model", "scripted"), prompt_tokens), spec

    def stop(self) -> None:
        """Stop serving."""
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> ScriptedServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def reference_responder(scenarios: list[Any], which: str = "risky") -> Responder:
    """A responder that plays each scenario's ``which`` reference trajectory, found by its instruction.

    Tool calls come as native tool calls when the request offers tools, else as ``<tool_call>`` text blocks
    (the text mode). A benchmark of riskgym's own overhead uses it: a model with zero latency.
    """
    from riskgym.running.model import reference_actions

    plays = {s.instruction: reference_actions(getattr(s.reference, which)) for s in scenarios}

    def respond(request: dict[str, Any]) -> dict[str, Any]:
        instruction = next((m["content"] for m in request.get("messages", []) if m.get("role") == "user"), None)
        actions = plays.get(instruction)
        if actions is None:
            return {"status": 400, "message": "no scenario has this instruction"}
        if request["turn"] >= len(actions):
            return {"content": "done"}
        action = actions[request["turn"]]
        if "final" in action:
            return {"content": action["final"]}
        call = {"name": action["tool"], "arguments": action["arguments"]}
        if request.get("tools"):
            return {"tool_calls": [call]}
        return {"content": f"<tool_call>{json.dumps(call)}</tool_call>"}

    return respond


EMULATOR_PROMPT = "You are the emulator of a virtual environment"
"""How the emulator's system message starts: a responder tells its requests from the agent's by it."""

EmulatorAnswer = Callable[[str, dict[str, Any], list[dict[str, Any]]], dict[str, Any] | str]
"""(tool, arguments, the tool's returns) -> the emulator's reply: ``{"observation": ..., "facts": [...]}``, or text."""


def emulated_call(request: dict[str, Any]) -> tuple[str, dict[str, Any], list[dict[str, Any]]] | None:
    """The tool call an emulator request asks about, its arguments and the tool's returns (None: not one)."""
    messages = request.get("messages", [])
    if not messages or not str(messages[0].get("content", "")).startswith(EMULATOR_PROMPT):
        return None
    prompt = str(messages[1]["content"])
    name, _, args = prompt.rsplit("# The call to emulate\n", 1)[1].strip().partition(" ")
    returns: list[dict[str, Any]] = []
    for line in prompt.split("# The tools\n", 1)[1].split("\n\n", 1)[0].splitlines():
        spec = json.loads(line)
        if spec["name"] == name:
            returns = spec["returns"]
    return name, json.loads(args or "{}"), returns


def emulator_responder(agent: Responder, answer: EmulatorAnswer | None = None) -> Responder:
    """One server for an agent and its emulator: the emulator's requests get ``answer``, the others ``agent``.

    ``answer``'s default is an output that fits the tool's returns, asserting no facts. A critique round (the
    emulator's reply sent back) is answered by ``answer`` again.
    """
    from riskgym.core.toolkits import plain_output

    def respond(request: dict[str, Any]) -> dict[str, Any]:
        call = emulated_call(request)
        if call is None:
            return agent(request)
        reply = answer(*call) if answer else {"observation": plain_output(call[2]), "facts": []}
        return {"content": reply if isinstance(reply, str) else json.dumps({"thought": "scripted", **reply})}

    return respond
