"""Translation through a live server (wire spec §4): OpenAI batches on an Anthropic-format
upstream, Anthropic batches on an OpenAI-compatible one, and native Anthropic batches.

The expected replies are fetched from the simulator directly, with request bodies written out
by hand here (not produced by the code under test), so the translated results are compared
with what the upstream itself answers for the same conversation."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import anthropic
import httpx
import pytest
from anthropic.types import Message
from openai.types.chat import ChatCompletion

from batchgate.config import Config, UpstreamConfig, single_upstream
from batchgate.engine.retry import RetryPolicy
from batchgate.engine.worker import WorkerOptions
from batchgate.sim import SimHandle
from tests.helpers.servers import TEST_WORKER, ServerHandle

CHAT = "/v1/chat/completions"
WEATHER_TOOL_CHAT = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}
WEATHER_TOOL_MESSAGES = {
    "name": "get_weather",
    "description": "Weather in a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
}
PATIENT = WorkerOptions(
    lease_ttl=TEST_WORKER.lease_ttl,
    poll_interval=TEST_WORKER.poll_interval,
    retry=RetryPolicy(max_attempts=12, base_delay=0.005, max_delay=0.02, max_retry_after=0.01),
)


def anthropic_upstream(sim: SimHandle) -> Config:
    upstream = UpstreamConfig("claude", sim.url, kind="anthropic", concurrency=8)
    return Config(upstreams=(upstream,), default_upstream="claude")


def sim_post(sim: SimHandle, path: str, body: dict[str, Any]) -> dict[str, Any]:
    """The simulator's own answer to ``body`` at ``path`` (e.g. ``/v1/messages``)."""
    r = httpx.post(sim.base_url + path, json=body, timeout=10)
    assert r.status_code == 200, r.text
    doc: dict[str, Any] = r.json()
    return doc


def without_ids(message: dict[str, Any]) -> dict[str, Any]:
    """A Message with its random ids (the message's, tool_use blocks') blanked."""
    blocks = [{**b, "id": None} if "id" in b else b for b in message["content"]]
    return {**message, "id": None, "content": blocks}


def chat_line(cid: str, **body: Any) -> dict[str, Any]:
    return {"custom_id": cid, "method": "POST", "url": CHAT, "body": {"model": "sim-model", **body}}


def user(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


def run_openai_batch(srv: ServerHandle, lines: list[dict[str, Any]]) -> tuple[Any, list, list]:
    client = srv.openai()
    data = b"".join(json.dumps(x).encode() + b"\n" for x in lines)
    fid = client.files.create(file=("in.jsonl", data), purpose="batch").id
    batch = client.batches.create(input_file_id=fid, endpoint=CHAT, completion_window="24h")
    srv.wait_for(batch.id)
    batch = client.batches.retrieve(batch.id)

    def read(file_id: str | None) -> list[dict[str, Any]]:
        if file_id is None:
            return []
        return [json.loads(x) for x in client.files.content(file_id).text.splitlines()]

    return batch, read(batch.output_file_id), read(batch.error_file_id)


def client_for(srv: ServerHandle) -> anthropic.Anthropic:
    client = anthropic.Anthropic(base_url=srv.url, api_key="k", max_retries=0, timeout=30)
    srv.clients.append(client)
    return client


def run_message_batch(
    srv: ServerHandle, requests: list[dict[str, Any]]
) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """Run a Message Batch to its end: its results as the SDK parses them, and the raw result
    lines (read from ``results_url``), both by custom_id."""
    client = client_for(srv)
    batch = client.messages.batches.create(requests=requests)  # type: ignore[arg-type]
    srv.wait_for(batch.id)
    done = client.messages.batches.retrieve(batch.id)
    assert done.processing_status == "ended" and done.results_url
    results = {r.custom_id: r.result for r in client.messages.batches.results(batch.id)}
    assert len(results) == len(requests)
    assert done.request_counts.succeeded == sum(r.type == "succeeded" for r in results.values())
    assert done.request_counts.errored == sum(r.type == "errored" for r in results.values())
    raw = [json.loads(x) for x in srv.http().get(done.results_url).text.splitlines()]
    return results, {line["custom_id"]: line for line in raw}


def assert_output_line(line: dict[str, Any]) -> ChatCompletion:
    """A valid OpenAI batch output line whose body is a chat.completion."""
    assert set(line) == {"id", "custom_id", "response", "error"}
    assert line["id"].startswith("batch_req_") and line["error"] is None
    response = line["response"]
    assert set(response) == {"status_code", "request_id", "body"}
    assert response["status_code"] == 200
    assert isinstance(response["request_id"], str)
    body = response["body"]
    assert isinstance(body, dict) and body["object"] == "chat.completion"
    assert isinstance(body["created"], int)
    return ChatCompletion.model_validate(body, strict=True)


# -- OpenAI batches on an Anthropic-format upstream ------------------------------------------------


def test_openai_batch_on_anthropic_upstream(
    make_server: Callable[..., ServerHandle], sim: SimHandle
) -> None:
    srv = make_server(config=anthropic_upstream(sim))
    convo = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "first question"},
        {"role": "assistant", "content": "first answer"},
        {"role": "user", "content": "second question"},
    ]
    lines = [
        chat_line("plain", messages=user("what is a batch?")),
        chat_line("three", messages=user("give me three"), n=3),
        chat_line("convo", messages=convo, temperature=1.7),
        chat_line("short", messages=user("cut me short"), max_completion_tokens=5),
        chat_line("tool", messages=user("the weather in Paris?"), tools=[WEATHER_TOOL_CHAT]),
    ]
    # What the Anthropic upstream itself answers to the same conversations (written by hand).
    expected = {
        "plain": {"messages": user("what is a batch?"), "max_tokens": 4096},
        "convo": {
            "system": "Be brief.", "max_tokens": 4096, "temperature": 1,
            "messages": [m for m in convo if m["role"] != "system"],
        },
        "short": {"messages": user("cut me short"), "max_tokens": 5},
        "tool": {
            "messages": user("the weather in Paris?"), "max_tokens": 4096,
            "tools": [WEATHER_TOOL_MESSAGES],
        },
    }  # fmt: skip

    batch, out, err = run_openai_batch(srv, lines)
    assert batch.status == "completed"
    assert batch.request_counts is not None
    rc = batch.request_counts
    assert (rc.total, rc.completed, rc.failed) == (5, 4, 1)
    # Only the Messages endpoint was called upstream, once per translatable line.
    assert sim.stats()["by_path"] == {"/v1/messages": 4}

    assert len(err) == 1
    assert err[0]["custom_id"] == "three" and err[0]["response"] is None
    assert err[0]["error"]["code"] == "untranslatable"
    assert "n=3" in err[0]["error"]["message"] and "set n to 1" in err[0]["error"]["message"]
    assert "Line 2" in err[0]["error"]["message"]

    assert [o["custom_id"] for o in out] == ["plain", "convo", "short", "tool"]
    usage_in = usage_out = 0
    for line in out:
        completion = assert_output_line(line)
        want = sim_post(sim, "/v1/messages", {"model": "sim-model", **expected[line["custom_id"]]})
        assert completion.id.startswith("chatcmpl-")
        assert completion.model == want["model"] == "sim-model"
        assert len(completion.choices) == 1 and completion.choices[0].index == 0
        assert completion.usage is not None
        u = want["usage"]
        assert completion.usage.prompt_tokens == u["input_tokens"] > 0
        assert completion.usage.completion_tokens == u["output_tokens"] > 0
        assert completion.usage.total_tokens == u["input_tokens"] + u["output_tokens"]
        usage_in += u["input_tokens"]
        usage_out += u["output_tokens"]
        choice = completion.choices[0]
        if line["custom_id"] == "tool":
            assert want["stop_reason"] == "tool_use"
            assert choice.finish_reason == "tool_calls"
            assert choice.message.content is None
            assert choice.message.tool_calls is not None and len(choice.message.tool_calls) == 1
            call = choice.message.tool_calls[0]
            assert call.type == "function" and call.function.name == "get_weather"
            assert json.loads(call.function.arguments) == want["content"][0]["input"]
        else:
            assert choice.message.content == want["content"][0]["text"]
            assert choice.message.tool_calls is None
            stop = {"end_turn": "stop", "max_tokens": "length"}[want["stop_reason"]]
            assert choice.finish_reason == stop
    assert out[2]["response"]["body"]["choices"][0]["finish_reason"] == "length"
    assert batch.usage is not None
    assert (batch.usage.input_tokens, batch.usage.output_tokens) == (usage_in, usage_out)


def test_overloaded_529_is_retried_for_both_dialects(
    make_server: Callable[..., ServerHandle], sim: SimHandle
) -> None:
    sim.configure(rate_529=0.3, seed=7)
    srv = make_server(config=anthropic_upstream(sim), options=PATIENT)
    n = 20
    lines = [chat_line(f"c{i}", messages=user(f"question {i}")) for i in range(n)]
    batch, out, err = run_openai_batch(srv, lines)
    assert err == [] and batch.status == "completed"
    assert len(out) == n
    for line in out:
        assert_output_line(line)
    requests = [
        {"custom_id": f"m{i}", "params": {
            "model": "sim-model", "max_tokens": 32, "messages": user(f"message {i}"),
        }}
        for i in range(n)
    ]  # fmt: skip
    results, _ = run_message_batch(srv, requests)
    assert {r.type for r in results.values()} == {"succeeded"}

    stats = sim.stats()
    overloaded = stats["by_status"].get("529", 0)
    assert overloaded == stats["faults"]["529"] > 0
    assert stats["by_path"] == {"/v1/messages": 2 * n + overloaded}  # every 529 was resent


# -- Anthropic batches: native and translated ------------------------------------------------------


MESSAGE_REQUESTS = [
    {"custom_id": "plain", "params": {
        "model": "sim-model", "max_tokens": 200, "messages": user("tell me about batches"),
    }},
    {"custom_id": "convo", "params": {
        "model": "sim-model", "max_tokens": 200, "system": "Be brief.",
        "messages": [
            {"role": "user", "content": "first question"},
            {"role": "assistant", "content": "first answer"},
            {"role": "user", "content": [{"type": "text", "text": "second question"}]},
        ],
    }},
    {"custom_id": "short", "params": {
        "model": "sim-model", "max_tokens": 4, "messages": user("cut me short"),
    }},
    {"custom_id": "tool", "params": {
        "model": "sim-model", "max_tokens": 200, "messages": user("weather in Paris?"),
        "tools": [WEATHER_TOOL_MESSAGES],
    }},
]  # fmt: skip


def test_native_batch_messages_are_anthropic_messages(
    make_server: Callable[..., ServerHandle], sim: SimHandle
) -> None:
    srv = make_server(config=anthropic_upstream(sim))
    results, lines = run_message_batch(srv, MESSAGE_REQUESTS)
    assert sim.stats()["by_path"] == {"/v1/messages": len(MESSAGE_REQUESTS)}
    for item in MESSAGE_REQUESTS:
        cid = item["custom_id"]
        result = results[cid]
        assert result.type == "succeeded"
        message = Message.model_validate_json(
            json.dumps(lines[cid]["result"]["message"]), strict=True
        )
        assert message == result.message
        want = sim_post(sim, "/v1/messages", item["params"])
        got = lines[cid]["result"]["message"]
        assert got["id"].startswith("msg_")
        assert without_ids(got) == without_ids(want)  # the upstream's message, as it sent it
    assert results["short"].message.stop_reason == "max_tokens"
    assert results["tool"].message.stop_reason == "tool_use"
    assert results["tool"].message.content[0].type == "tool_use"


def test_translated_batch_text_equals_the_upstream_reply(
    make_server: Callable[..., ServerHandle], sim: SimHandle
) -> None:
    srv = make_server(config=single_upstream(sim.url, concurrency=8, timeout=5.0))
    thinking = {
        "custom_id": "thinking", "params": {
            "model": "sim-model", "max_tokens": 2000, "messages": user("think hard"),
            "thinking": {"type": "enabled", "budget_tokens": 1024},
        },
    }  # fmt: skip
    results, lines = run_message_batch(srv, [*MESSAGE_REQUESTS, thinking])
    # The same conversations as chat bodies, written by hand.
    chat = {
        "plain": {"max_tokens": 200, "messages": user("tell me about batches")},
        "convo": {"max_tokens": 200, "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "first question"},
            {"role": "assistant", "content": "first answer"},
            {"role": "user", "content": "second question"},
        ]},
        "short": {"max_tokens": 4, "messages": user("cut me short")},
        "tool": {"max_tokens": 200, "messages": user("weather in Paris?"),
                 "tools": [WEATHER_TOOL_CHAT]},
    }  # fmt: skip
    assert sim.stats()["by_path"] == {CHAT: len(chat)}

    error = results["thinking"]
    assert error.type == "errored"
    assert error.error.error.type == "invalid_request_error"
    assert "thinking" in error.error.error.message

    for cid, body in chat.items():
        result = results[cid]
        assert result.type == "succeeded", result
        message = result.message
        raw = json.dumps(lines[cid]["result"]["message"])
        assert Message.model_validate_json(raw, strict=True) == message
        assert message.id.startswith("msg_") and message.role == "assistant"
        want = sim_post(sim, CHAT, {"model": "sim-model", **body})
        choice = want["choices"][0]
        assert message.model == "sim-model"
        assert message.usage.input_tokens == want["usage"]["prompt_tokens"] > 0
        assert message.usage.output_tokens == want["usage"]["completion_tokens"] > 0
        if cid == "tool":
            assert choice["finish_reason"] == "tool_calls"
            assert message.stop_reason == "tool_use"
            assert len(message.content) == 1
            block = message.content[0]
            assert block.type == "tool_use" and block.name == "get_weather"
            assert block.input == json.loads(
                choice["message"]["tool_calls"][0]["function"]["arguments"]
            )
        else:
            assert [b.type for b in message.content] == ["text"]
            assert message.content[0].text == choice["message"]["content"]  # type: ignore[union-attr]
            stop = {"stop": "end_turn", "length": "max_tokens"}[choice["finish_reason"]]
            assert message.stop_reason == stop
    assert results["short"].message.stop_reason == "max_tokens"  # type: ignore[union-attr]


@pytest.mark.parametrize("path", ["translated", "native"])
def test_upstream_5xx_exhausted_is_an_errored_result(
    path: str, make_server: Callable[..., ServerHandle], sim: SimHandle
) -> None:
    """Retries that run out end as an errored result with api_error (never a crash)."""
    sim.configure(rate_500=1.0)
    retry = RetryPolicy(max_attempts=2, base_delay=0.001, max_delay=0.002)
    options = WorkerOptions(lease_ttl=5.0, poll_interval=0.05, retry=retry)
    config = anthropic_upstream(sim) if path == "native" else single_upstream(sim.url)
    srv = make_server(config=config, options=options)
    results, _ = run_message_batch(srv, MESSAGE_REQUESTS[:1])
    result = results["plain"]
    assert result.type == "errored"
    assert result.error.type == "error"
    assert result.error.error.type == "api_error"
    assert sim.stats()["requests"] == 2
