"""LitellmModel through the real litellm client, against a real OpenAI-compatible server on 127.0.0.1."""

import http.client
import json
import time
from urllib.parse import urlsplit

import pytest

from riskgym.running.llm import UNREAD, LitellmModel, litellm_module, parse_text_calls, text_messages
from riskgym.running.model import ModelConfig, ModelError
from riskgym.running.scripted_server import Script
from riskgym.tools import TOOLS

TOOL_SCHEMAS = [TOOLS["shell"].schema, TOOLS["read_file"].schema]
CHAT = [{"role": "system", "content": "be useful"}, {"role": "user", "content": "free some space"}]
FAST = {"retry_backoff": 0.01}  # retries in tests wait 10 ms, not seconds


def litellm_price(model_name):
    """Input and output cost per token of a model in litellm's price map."""
    import litellm

    entry = litellm.model_cost[model_name]
    return entry["input_cost_per_token"], entry["output_cost_per_token"]


def model(server, **settings):
    return LitellmModel("m", ModelConfig(model="openai/local-model", api_base=server.url, **{**FAST, **settings}))


def test_one_tool_call_and_the_parameters_sent(llm_server):
    server = llm_server(Script([{"tool_calls": [{"name": "shell", "arguments": {"command": "df -h"}}]}]))
    reply = model(server, temperature=0.0, top_p=0.5).respond(CHAT, TOOL_SCHEMAS, seed=7)
    assert [(c.tool, c.arguments) for c in reply.calls] == [("shell", {"command": "df -h"})]
    assert reply.attempts == 1 and reply.prompt_tokens > 0 and reply.completion_tokens > 0 and reply.latency > 0
    sent = server.requests[0]["body"]
    assert sent["model"] == "local-model" and sent["messages"] == CHAT
    assert [t["function"]["name"] for t in sent["tools"]] == ["shell", "read_file"]
    assert (sent["temperature"], sent["top_p"], sent["seed"]) == (0.0, 0.5, 7)


def test_parallel_tool_calls_in_one_turn(llm_server):
    calls = [{"name": "shell", "arguments": {"command": "ls"}, "id": "a"},
             {"name": "read_file", "arguments": {"path": "/etc/hostname"}, "id": "b"}]
    reply = model(llm_server(Script([{"tool_calls": calls}]))).respond(CHAT, TOOL_SCHEMAS)
    assert [(c.id, c.tool) for c in reply.calls] == [("a", "shell"), ("b", "read_file")]
    assert reply.message["tool_calls"][1]["function"]["arguments"] == '{"path": "/etc/hostname"}'


def test_a_final_answer_has_no_calls(llm_server):
    reply = model(llm_server(Script([{"content": "All done."}]))).respond(CHAT, TOOL_SCHEMAS)
    assert reply.calls == [] and reply.text == "All done." and reply.finish_reason == "stop"


def test_malformed_arguments_are_kept_raw_for_the_env_to_reject(llm_server):
    server = llm_server(Script([{"tool_calls": [{"name": "shell", "arguments": '{"command": "ls'}]}]))
    reply = model(server).respond(CHAT, TOOL_SCHEMAS)
    assert reply.calls[0].arguments == '{"command": "ls'


def test_a_call_written_as_text_in_native_mode_is_read_or_sent_back(llm_server):
    fenced = '```json\n{"name": "shell", "arguments": {"command": "ls ~"}}\n```'
    broken = '{{"name": "shell", "arguments": {"command": "kill -9 <PID>"}}}'  # what Qwen 1.5B wrote
    server = llm_server(Script([{"content": fenced}, {"content": broken}, {"content": "No job runs."}]))
    first = model(server).respond(CHAT, TOOL_SCHEMAS)
    assert [(c.tool, c.arguments) for c in first.calls] == [("shell", {"command": "ls ~"})] and first.error is None
    assert first.message["tool_calls"][0]["id"] == first.calls[0].id  # the tool's result answers it
    so_far = [*CHAT, first.message, {"role": "tool", "tool_call_id": first.calls[0].id, "content": "x"}]
    second = model(server).respond(so_far, TOOL_SCHEMAS)
    assert second.calls == [] and second.error.startswith(UNREAD)  # not a final answer
    third = model(server).respond([*so_far, second.message, {"role": "user", "content": "?"}], TOOL_SCHEMAS)
    assert third.calls == [] and third.error is None and third.text == "No job runs."


def test_text_mode_sends_no_tools_and_parses_blocks(llm_server):
    text = 'I will look.\n<tool_call>\n{"name": "shell", "arguments": {"command": "du -sh ~"}}\n</tool_call>'
    server = llm_server(Script([{"content": text}]))
    reply = model(server, tool_mode="text").respond(CHAT, TOOL_SCHEMAS)
    assert [(c.tool, c.arguments) for c in reply.calls] == [("shell", {"command": "du -sh ~"})]
    assert reply.error is None
    sent = server.requests[0]["body"]
    assert "tools" not in sent
    assert "<tool_call>" in sent["messages"][0]["content"] and '"name": "read_file"' in sent["messages"][0]["content"]


def test_text_mode_unparseable_reply_is_an_error_not_a_final_answer(llm_server):
    server = llm_server(Script([{"content": '<tool_call>{"name": "shell", "arguments": {"command": "ls"}'}]))
    reply = model(server, tool_mode="text").respond(CHAT, TOOL_SCHEMAS)
    assert reply.calls == [] and reply.error == "a <tool_call> block is not closed with </tool_call>"
    assert parse_text_calls('<tool_call>["shell"]</tool_call>')[1] == 'tool call 1 is not an object with a "name"'


def test_text_mode_hints_at_a_call_written_as_a_command():
    """Seen from the real model: steps in a ```shell block naming our tools, taken as the final answer before."""
    tools = {"shell", "list_dir", "delete_path"}
    steps = "To free space:\n```shell\nlist_dir ~\ndelete_path ~/.cache\n```\nThen check again."
    assert parse_text_calls(steps, tools=tools) == ([], UNREAD)
    advice = "Make it executable:\n```shell\nchmod +x ~/site/app.sh\n~/site/app.sh\n```"
    assert parse_text_calls(advice, tools=tools) == ([], None)  # advice to the user is a final answer


def test_text_mode_conversation_turns_tool_results_into_user_messages():
    history = [*CHAT, {"role": "assistant", "content": "<tool_call>...</tool_call>", "tool_calls": []},
               {"role": "tool", "tool_call_id": "1", "name": "shell", "content": "a"},
               {"role": "tool", "tool_call_id": "2", "name": "shell", "content": "b"}]
    out = text_messages(history, TOOL_SCHEMAS)
    assert [m["role"] for m in out] == ["system", "user", "assistant", "user"]
    assert out[-1]["content"].count("<tool_result") == 2 and "tool_calls" not in out[2]


def test_rate_limit_then_success_is_retried(llm_server):
    server = llm_server(Script([[{"status": 429, "message": "slow down"}, {"content": "ok"}]]))
    reply = model(server).respond(CHAT, TOOL_SCHEMAS)
    assert reply.text == "ok" and reply.attempts == 2 and len(server.requests) == 2
    assert len(reply.retried) == 1 and "slow down" in reply.retried[0]  # why it was retried, for the trace


def test_a_reply_past_the_deadline_is_cancelled_so_the_server_stops_generating(llm_server):
    words = " ".join(f"w{i}" for i in range(200))  # 200 words, 0.05 s apart: 10 s of generating
    server = llm_server(Script([{"content": words, "chunk_delay": 0.05}]))
    litellm_module()  # loaded first: it takes seconds, the first time in a process
    started = time.monotonic()
    with pytest.raises(ModelError) as err:
        model(server).respond(CHAT, TOOL_SCHEMAS, deadline=time.monotonic() + 1.0)
    assert err.value.kind == "deadline" and "cancelled" in str(err.value) and time.monotonic() - started < 3
    assert server.requests[0]["body"]["stream"] is True  # an api_base streams by default
    for _ in range(40):  # the server finds the connection closed at its next write
        if server.streams[0]["closed_early"]:
            break
        time.sleep(0.05)
    assert server.streams[0]["closed_early"] and server.streams[0]["sent"] < server.streams[0]["chunks"] / 2


def test_a_stream_kept_alive_past_the_deadline_is_cut_at_it(llm_server):
    """A server that pings while it thinks (sse-starlette, llama-cpp-python's) never trips a read time-out."""
    server = llm_server(Script([{"content": "late", "delay": 30}]))
    litellm_module()
    started = time.monotonic()
    with pytest.raises(ModelError) as err:
        model(server).respond(CHAT, TOOL_SCHEMAS, deadline=time.monotonic() + 1.0)
    assert err.value.kind == "deadline" and time.monotonic() - started < 3
    for _ in range(40):
        if server.streams[0]["closed_early"]:
            break
        time.sleep(0.05)
    assert server.streams[0]["closed_early"] and server.streams[0]["sent"] == 0
    slow = llm_server(Script([[{"content": "late", "delay": 30}, {"content": "on time"}]]))
    reply = model(slow, timeout=1.0, retries=1).respond(CHAT, TOOL_SCHEMAS)  # the per-call time-out holds too
    assert reply.text == "on time" and reply.attempts == 2 and "no reply" in reply.retried[0]


def test_streamed_and_whole_replies_are_the_same(llm_server):
    calls = [{"name": "shell", "arguments": {"command": "ls"}, "id": "a"},
             {"name": "read_file", "arguments": {"path": "/etc/hostname"}, "id": "b"}]
    server = llm_server(Script([{"content": "Let me look.", "tool_calls": calls}]))
    streamed, whole = (model(server, stream=flag).respond(CHAT, TOOL_SCHEMAS) for flag in (True, False))
    assert [r.text for r in (streamed, whole)] == ["Let me look."] * 2
    assert [(c.id, c.tool, c.arguments) for c in streamed.calls] == [(c.id, c.tool, c.arguments) for c in whole.calls]
    assert (streamed.prompt_tokens, streamed.completion_tokens) == (whole.prompt_tokens, whole.completion_tokens)
    assert [r["body"].get("stream") for r in server.requests] == [True, None]


def test_a_stream_without_token_counts_is_counted_with_its_tools_and_said_so(llm_server):
    import litellm

    server = llm_server(Script([[{"content": "one two three", "no_usage": True}, {"content": "one two three"}]]))
    counted, served = (model(server).respond(CHAT, TOOL_SCHEMAS) for _ in range(2))
    assert served.tokens_estimated is False and counted.tokens_estimated is True
    prompt = litellm.token_counter(model="openai/local-model", messages=CHAT, tools=TOOL_SCHEMAS)
    assert counted.prompt_tokens == prompt > litellm.token_counter(model="openai/local-model", messages=CHAT)
    assert counted.completion_tokens > 0


def test_a_models_concurrency_holds_across_models_that_share_it(llm_server):
    """An agent's episodes and a judge calling the same server: never more than ``concurrency`` calls at once."""
    import threading

    active, most, lock = [0], [0], threading.Lock()

    def responder(request):
        with lock:
            active[0] += 1
            most[0] = max(most[0], active[0])
        time.sleep(0.3)
        with lock:
            active[0] -= 1
        return {"content": "ok"}

    server = llm_server(responder)
    shared = [model(server, concurrency=1) for _ in range(4)]  # four workers, each its own LitellmModel
    threads = [threading.Thread(target=m.respond, args=(CHAT, TOOL_SCHEMAS)) for m in shared]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(server.requests) == 4 and most[0] == 1
    free = [model(server) for _ in range(3)]
    threads = [threading.Thread(target=m.respond, args=(CHAT, TOOL_SCHEMAS)) for m in free]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert most[0] > 1  # without a limit, they do overlap


def test_server_error_forever_gives_up_after_the_retries(llm_server):
    server = llm_server(Script([{"status": 500, "message": "boom"}]))
    with pytest.raises(ModelError) as err:
        model(server, retries=2).respond(CHAT, TOOL_SCHEMAS)
    assert err.value.kind == "api" and err.value.attempts == 3 and len(server.requests) == 3
    assert "boom" in str(err.value) and "after 3 attempts" in str(err.value)


def test_a_stop_asked_during_a_call_that_then_fails_is_not_retried(llm_server):
    server = llm_server(Script([{"status": 500, "message": "boom"}]))
    with pytest.raises(ModelError) as err:  # Ctrl-C was pressed while the first call was out
        model(server, retries=3, retry_backoff=5.0).respond(CHAT, TOOL_SCHEMAS, cancel=lambda: True)
    assert err.value.kind == "stopped" and len(server.requests) == 1


def test_a_stop_asked_during_the_pause_before_a_retry_ends_it(llm_server):
    server = llm_server(Script([{"status": 500, "message": "boom"}]))
    started, calls = time.monotonic(), []

    def cancel():  # not at the failure, but 0.3 s into the 5 s pause that follows it
        calls.append(1)
        return time.monotonic() - started > 0.3 and len(calls) > 1

    with pytest.raises(ModelError) as err:
        model(server, retries=3, retry_backoff=5.0).respond(CHAT, TOOL_SCHEMAS, cancel=cancel)
    assert err.value.kind == "stopped" and len(server.requests) == 1 and time.monotonic() - started < 2.5


def test_a_slow_reply_times_out_and_is_retried(llm_server):
    server = llm_server(Script([[{"content": "late", "delay": 10}, {"content": "on time"}]]))
    slow = model(server, timeout=0.5, retries=1)
    started = time.monotonic()
    reply = slow.respond(CHAT, TOOL_SCHEMAS)
    # far less than the 10 s the first reply takes (the first call in a process also loads litellm's providers)
    assert reply.text == "on time" and reply.attempts == 2 and time.monotonic() - started < 6


def test_a_200_that_is_not_a_completion_is_retried_then_fails(llm_server):
    server = llm_server(Script([{"body": "<html>gateway</html>"}]))
    with pytest.raises(ModelError) as err:
        model(server, retries=1).respond(CHAT, TOOL_SCHEMAS)
    assert err.value.kind == "api" and len(server.requests) == 2


def test_errors_that_retrying_cannot_fix_are_not_retried(llm_server):
    too_long = "This model's maximum context length is 8192 tokens. However, your messages resulted in 9000 tokens."
    server = llm_server(Script([{"status": 400, "message": too_long}]))
    with pytest.raises(ModelError) as err:
        model(server).respond(CHAT, TOOL_SCHEMAS)
    assert err.value.kind == "context" and len(server.requests) == 1
    auth = llm_server(Script([{"status": 401, "message": "bad key"}]))
    with pytest.raises(ModelError) as err:
        model(auth).respond(CHAT, TOOL_SCHEMAS)
    assert err.value.kind == "api" and len(auth.requests) == 1


def test_the_episode_deadline_bounds_the_call(llm_server):
    server = llm_server(Script([{"content": "late", "delay": 10}]))
    patient = model(server, retries=3)
    started = time.monotonic()
    with pytest.raises(ModelError) as err:
        patient.respond(CHAT, TOOL_SCHEMAS, deadline=time.monotonic() + 0.5)
    assert err.value.kind == "deadline" and time.monotonic() - started < 6


def test_an_api_key_never_appears_in_an_error(llm_server, monkeypatch):
    monkeypatch.setenv("RISKGYM_TEST_KEY", "sk-live-0123456789abcdef")
    server = llm_server(lambda req: {"status": 401, "message": "bad key sk-live-0123456789abcdef"})
    with pytest.raises(ModelError) as err:
        model(server, api_key_env="RISKGYM_TEST_KEY").respond(CHAT, TOOL_SCHEMAS)
    assert server.requests[0]["headers"]["Authorization"] == "Bearer sk-live-0123456789abcdef"  # it was used
    assert "sk-live" not in str(err.value) and "bad key ***" in str(err.value)


def test_header_names_are_case_insensitive_whatever_the_client_sends(llm_server):
    server = llm_server(Script([{"content": "hi"}]))
    where = urlsplit(server.url)
    for name, token in (("Authorization", "Bearer upper"), ("authorization", "Bearer lower")):
        conn = http.client.HTTPConnection(where.hostname, where.port, timeout=5)
        conn.request("POST", "/v1/chat/completions", json.dumps({"messages": CHAT}), {name: token})
        assert conn.getresponse().status == 200
        conn.close()
    seen = [r["headers"] for r in server.requests]
    assert [h["Authorization"] for h in seen] == [h["authorization"] for h in seen] == ["Bearer upper", "Bearer lower"]
    assert [h.get("AUTHORIZATION") for h in seen] == ["Bearer upper", "Bearer lower"]


def test_cost_from_the_config_price_or_from_litellm_price_map(llm_server, monkeypatch):
    server = llm_server(Script([{"content": "hi", "prompt_tokens": 100, "completion_tokens": 10}] * 2))
    priced = model(server, input_cost_per_token=1e-6, output_cost_per_token=1e-5).respond(CHAT, [])
    assert priced.cost == pytest.approx(100e-6 + 10e-5)
    # a hosted model, reached through the provider's own settings (the base URL from the environment)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-a-real-key")
    monkeypatch.setenv("OPENAI_BASE_URL", server.url)
    hosted = LitellmModel("gpt", ModelConfig(model="openai/gpt-4o-mini")).respond(CHAT, [])
    price = litellm_price("gpt-4o-mini")  # litellm's own price map (the local copy: LITELLM_LOCAL_MODEL_COST_MAP)
    assert hosted.text == "hi" and hosted.cost == pytest.approx(100 * price[0] + 10 * price[1]) and price[0] > 0
    assert server.requests[-1]["body"]["model"] == "gpt-4o-mini"
