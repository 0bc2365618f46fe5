"""What bounds one model call: a model's concurrency slots, and a streamed reply cut short.

A stream is cut at the episode's deadline, at the call's time-out or on Ctrl-C, so that the server stops
generating. ``llm.LitellmModel`` uses both; litellm itself is passed in (it is imported lazily, once).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from riskgym.errors import ModelError
from riskgym.running.model import ModelConfig

_lock = threading.Lock()
_limits: dict[tuple[str, str], Any] = {}


def _local_slots(model: str, api_base: str, size: int) -> threading.BoundedSemaphore:
    return threading.BoundedSemaphore(size)


slots_factory: Callable[[str, str, int], Any] = _local_slots
"""Makes a model's slots (anything with ``acquire(timeout=)`` and ``release()``): this process's own semaphore, or,
on a Ray node, the cluster's (:class:`riskgym.running.node.ClusterSlots`), so that the cap holds over all nodes."""


@contextmanager
def limiter(settings: ModelConfig, deadline: float | None) -> Iterator[None]:
    """Hold one of a model's ``concurrency`` slots, shared by every episode and the judge in this process.

    On a Ray node the slots are the cluster's (``slots_factory``), so the cap holds however many nodes run. Waits
    for one until the deadline (without one, as long as it takes); then raises ModelError (kind "deadline").
    """
    if settings.concurrency is None:
        yield
        return
    with _lock:
        key = (settings.model, settings.api_base or "")
        if key not in _limits:
            _limits[key] = slots_factory(*key, settings.concurrency)
        slots = _limits[key]
    wait = None if deadline is None else max(0.0, deadline - time.monotonic())
    if not slots.acquire(timeout=wait):
        raise ModelError(f"the episode's time ran out waiting for the model (its concurrency is "
                         f"{settings.concurrency})", "deadline")
    try:
        yield
    finally:
        slots.release()


def collect(litellm: Any, stream: Any, request: dict[str, Any], deadline: float | None, timeout: float,
            cancel: Callable[[], bool] | None = None) -> tuple[Any, bool]:
    """The whole reply from a stream, in ``timeout`` seconds at most; and whether litellm, not the server, counted it.

    A server that sends keep-alives while it thinks never trips a read time-out, so a watcher closes the stream when
    the time is up or ``cancel()`` turns true: the server finds the connection closed and stops generating. At the
    episode's deadline that raises ModelError (kind "deadline"), on ``cancel`` (kind "stopped"); at the call's
    time-out, StreamTimeoutError (retried).
    A server that sends no usage (llama-cpp-python's does not) gets litellm's count of the prompt, tools included,
    and of the reply: then the flag is True.
    """
    raw = getattr(stream, "completion_stream", None)  # the server's own chunks, before litellm adds its counts
    served = [raw is None]  # (a stream litellm does not expose: taken as counted by the server)
    ended = [False]  # the server's own finish reason arrived (litellm makes one up for a stream cut short)
    if raw is not None:
        def spy() -> Iterator[Any]:
            for c in raw:
                served[0] = served[0] or getattr(c, "usage", None) is not None
                ended[0] = ended[0] or any(getattr(x, "finish_reason", None) for x in getattr(c, "choices", []) or [])
                yield c
        stream.completion_stream = spy()
    chunks, streamed, cut = [], False, threading.Event()

    def close() -> None:
        for s in (raw, stream):
            try:
                if s is not None and hasattr(s, "close"):
                    s.close()  # the connection: the server finds it closed and stops generating
            except Exception:  # closing under a reader: it fails, and so the read ends
                pass

    done, limit = threading.Event(), time.monotonic() + max(0.0, timeout)

    def watch() -> None:
        while not done.wait(min(0.1, max(0.0, limit - time.monotonic()))):
            if time.monotonic() >= limit or (cancel is not None and cancel()):
                cut.set()
                close()
                return

    threading.Thread(target=watch, daemon=True, name="riskgym-stream-watch").start()
    try:
        for chunk in stream:
            chunks.append(chunk)
            streamed = streamed or any(getattr(c.delta, "role", None) for c in chunk.choices or [])
            if cut.is_set():
                break
    except Exception:
        if not cut.is_set():
            raise
    finally:
        done.set()
        close()
    if cut.is_set() and not (ended[0] if raw is not None else _finished(chunks)):
        if cancel is not None and cancel():
            raise ModelError("stopped by the user (the call was cancelled)", "stopped")
        if deadline is not None and time.monotonic() >= deadline - 0.05:
            raise ModelError("the episode's time ran out during the model's reply (the call was cancelled)",
                             "deadline")
        raise StreamTimeoutError(f"no reply in {timeout:.0f} s (the call was cancelled)")
    if not streamed:  # every stream starts with the assistant's role; litellm makes up an empty reply otherwise
        kind = ((getattr(stream, "_hidden_params", None) or {}).get("additional_headers") or {}).get(
            "llm_provider-content-type", "unknown")
        raise NotStreamedError(f"the reply was not a stream of chunks (Content-Type {kind}); if this server cannot "
                               "stream, set stream = false for this model (--no-stream)")
    response = litellm.stream_chunk_builder(chunks, messages=request["messages"])
    if not served[0] and response.usage is not None:
        response.usage.prompt_tokens = litellm.token_counter(model=request["model"], messages=request["messages"],
                                                             tools=request.get("tools"))
        response.usage.total_tokens = response.usage.prompt_tokens + response.usage.completion_tokens
    return response, not served[0]


def _finished(chunks: list[Any]) -> bool:
    """Whether the stream got as far as its finish reason."""
    return any(getattr(c, "finish_reason", None) for chunk in chunks for c in chunk.choices or [])


class StreamTimeoutError(Exception):
    """A streamed reply did not end within the call's time-out."""


class NotStreamedError(Exception):
    """A streamed call's reply was not a stream (a gateway's error page, or a server that cannot stream)."""
