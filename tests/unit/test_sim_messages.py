"""The simulator's Anthropic ``/v1/messages`` endpoint over real HTTP: reply shape (checked
against the anthropic SDK's models), parity with the chat reply, 4xx answers in Anthropic's
envelope, faults (529 included), overload and stats, and a round trip through the SDK."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import pytest
from anthropic.types import Message

from batchgate.sim import SimConfig, SimHandle, protocol

PATH = "/v1/messages"


@pytest.fixture
def client(sim: SimHandle) -> Iterator[httpx.Client]:
    # conftest's ``sim`` fixture has already reset the config and the counters.
    headers = {"x-api-key": "sk-ant-sim", "anthropic-version": "2023-06-01"}
    with httpx.Client(base_url=sim.base_url, timeout=5.0, headers=headers) as c:
        yield c


def body(content: Any = "Hello", max_tokens: int = 256, **extra: Any) -> dict[str, Any]:
    return {
        "model": "sim-model",
        "max_tokens": max_tokens,
        "messages": [{"role": "user", "content": content}],
        **extra,
    }


def post(client: httpx.Client, content: Any = "Hello", **extra: Any) -> httpx.Response:
    return client.post(PATH, json=body(content, **extra))


def assert_error(reply: httpx.Response, status: int, error_type: str) -> str:
    """Checks Anthropic's error envelope and headers; returns the message."""
    assert reply.status_code == status
    data = reply.json()
    assert set(data) == {"type", "error"}
    assert data["type"] == "error"
    assert set(data["error"]) == {"type", "message"}
    assert data["error"]["type"] == error_type
    assert reply.headers["request-id"] == reply.headers["x-request-id"]
    return str(data["error"]["message"])


def test_message_shape(client: httpx.Client) -> None:
    reply = post(client, "Hello")
    assert reply.status_code == 200
    assert reply.headers["content-type"] == "application/json"
    assert reply.headers["request-id"].startswith("req_")
    assert reply.headers["request-id"] == reply.headers["x-request-id"]
    data = reply.json()
    message = Message.model_validate(data, strict=True)
    assert message.id.startswith("msg_") and len(message.id) == len("msg_") + 24
    assert message.type == "message" and message.role == "assistant"
    assert message.model == "sim-model"
    assert message.stop_reason == "end_turn" and message.stop_sequence is None
    [block] = message.content
    assert block.type == "text"
    assert block.text.startswith("Simulated reply to: Hello\n")
    assert data["usage"] == {
        "input_tokens": 2 + 4,  # ceil(5 / 4) + 4 per message, as on chat
        "output_tokens": (len(block.text) + 3) // 4,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "service_tier": "standard",
    }


def test_deterministic_and_same_text_as_the_chat_reply(client: httpx.Client) -> None:
    system = "You are terse."
    first = post(client, "Tell me about tides", system=system).json()
    second = post(client, "Tell me about tides", system=system).json()
    text = first["content"][0]["text"]
    assert second["content"][0]["text"] == text and first["id"] != second["id"]
    assert post(client, "Tell me about tides").json()["content"][0]["text"] != text
    chat = client.post(
        "/v1/chat/completions",
        json={
            "model": "sim-model",
            "messages": [
                {"role": "system", "content": system},
                {"role": "user", "content": "Tell me about tides"},
            ],
        },
    ).json()
    assert chat["choices"][0]["message"]["content"] == text
    assert chat["usage"]["prompt_tokens"] == first["usage"]["input_tokens"]
    assert chat["usage"]["completion_tokens"] == first["usage"]["output_tokens"]


def test_system_as_blocks_equals_system_as_string(client: httpx.Client) -> None:
    plain = post(client, "Describe a cat", system="Be brief. Use rhymes.").json()
    blocks = [{"type": "text", "text": "Be brief."}, {"type": "text", "text": "Use rhymes."}]
    listed = post(client, [{"type": "text", "text": "Describe a cat"}], system=blocks).json()
    Message.model_validate(listed, strict=True)
    assert listed["content"] == plain["content"]
    assert listed["usage"] == plain["usage"]
    assert post(client, "Describe a cat").json()["content"] != plain["content"]


def test_max_tokens_truncation(client: httpx.Client) -> None:
    full = post(client, "A long question").json()["content"][0]["text"]
    data = post(client, "A long question", max_tokens=3).json()
    message = Message.model_validate(data, strict=True)
    assert message.stop_reason == "max_tokens"
    assert message.usage.output_tokens == 3
    text = data["content"][0]["text"]
    assert len(text) == 12 and full.startswith(text)


def test_tool_use_for_weather(client: httpx.Client) -> None:
    tools = [
        {
            "name": "get_weather",
            "description": "The weather in a city.",
            "input_schema": {
                "type": "object",
                "properties": {
                    "city": {"type": "string"},
                    "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                },
            },
        }
    ]
    data = post(client, "What is the weather in Oslo?", tools=tools).json()
    message = Message.model_validate(data, strict=True)
    assert message.stop_reason == "tool_use"
    [block] = message.content
    assert block.type == "tool_use"
    assert block.id.startswith("toolu_") and block.name == "get_weather"
    assert block.input == {"city": "Paris", "unit": "celsius"}
    # The result goes back in a user turn of tool_result blocks, which (like chat's "tool"
    # message) is not the last user text: the reply quotes the question, as on chat.
    turns = [
        {"role": "user", "content": "What is the weather in Oslo?"},
        {"role": "assistant", "content": [data["content"][0]]},
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": block.id, "content": "22C"}],
        },
    ]
    answer = client.post(PATH, json={**body(), "messages": turns}).json()
    assert answer["stop_reason"] == "end_turn"
    chat_turns = [
        {"role": "user", "content": "What is the weather in Oslo?"},
        {"role": "assistant", "content": None, "tool_calls": []},
        {"role": "tool", "tool_call_id": "call_1", "content": "22C"},
    ]
    chat = client.post("/v1/chat/completions", json={"model": "sim-model", "messages": chat_turns})
    assert answer["content"][0]["text"] == chat.json()["choices"][0]["message"]["content"]
    assert answer["content"][0]["text"].startswith("Simulated reply to: What is the weather")
    plain = post(client, "Hello", tools=tools).json()
    assert plain["stop_reason"] == "end_turn"
    none = post(client, "weather?", tools=tools, tool_choice={"type": "none"}).json()
    assert none["stop_reason"] == "end_turn"


def test_invalid_requests_get_anthropic_errors(sim: SimHandle, client: httpx.Client) -> None:
    no_max = {"model": "sim-model", "messages": [{"role": "user", "content": "x"}]}
    assert "max_tokens" in assert_error(
        client.post(PATH, json=no_max), 400, "invalid_request_error"
    )
    bad_json = client.post(PATH, content=b'{"model": ')
    assert_error(bad_json, 400, "invalid_request_error")
    assert_error(client.post(PATH, content=b"[1]"), 400, "invalid_request_error")
    no_model = {"max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}
    assert "model" in assert_error(client.post(PATH, json=no_model), 400, "invalid_request_error")
    system_turn = body()
    system_turn["messages"] = [{"role": "system", "content": "x"}, *system_turn["messages"]]
    assert "system" in assert_error(
        client.post(PATH, json=system_turn), 400, "invalid_request_error"
    )
    assert_error(post(client, max_tokens=0), 400, "invalid_request_error")
    assert_error(client.post(PATH, json={**body(), "messages": []}), 400, "invalid_request_error")
    assert_error(post(client, stream=True), 400, "invalid_request_error")
    assert_error(post(client, 7), 400, "invalid_request_error")
    unknown = client.post(PATH, json={**body(), "model": "fail-line-3"})
    assert "fail-line-3" in assert_error(unknown, 404, "not_found_error")
    stats = sim.stats()
    assert stats["by_status"] == {"400": 9, "404": 1}
    assert stats["by_path"] == {PATH: 10}


def test_body_over_limit_gets_anthropic_413(
    sim: SimHandle, client: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(protocol, "MAX_BODY_BYTES", 1000)
    assert_error(client.post(PATH, content=b"x" * 2000), 413, "request_too_large")


@pytest.mark.parametrize(
    ("rate", "status", "error_type"),
    [
        ("rate_429", 429, "rate_limit_error"),
        ("rate_500", 500, "api_error"),
        ("rate_503", 503, "api_error"),
        ("rate_529", 529, "overloaded_error"),
    ],
)
def test_error_faults_use_anthropic_envelopes(
    sim: SimHandle, client: httpx.Client, rate: str, status: int, error_type: str
) -> None:
    sim.configure(**{rate: 1.0}, retry_after_s=2)
    reply = post(client)
    assert_error(reply, status, error_type)
    if status == 500:
        assert "retry-after" not in reply.headers
    else:
        assert reply.headers["retry-after"] == "2"
        assert reply.headers["retry-after-ms"] == "2000"
    stats = sim.stats()
    assert stats["faults"] == {str(status): 1}
    assert stats["by_status"] == {str(status): 1}
    assert stats["by_path"] == {PATH: 1}


def test_529_comes_after_503_and_is_503_on_openai_endpoints(
    sim: SimHandle, client: httpx.Client
) -> None:
    sim.configure(rate_503=1.0, rate_529=1.0)
    assert post(client).status_code == 503
    sim.configure(rate_503=0.0, rate_slow=1.0, slow_ms=5000)
    assert post(client).status_code == 529  # 529 is drawn before slow
    chat = {"model": "m", "messages": [{"role": "user", "content": "x"}]}
    reply = client.post("/v1/chat/completions", json=chat)
    assert reply.status_code == 503
    assert reply.json()["error"]["code"] == "service_unavailable"
    assert reply.headers["retry-after"] == "1"
    assert "request-id" not in reply.headers
    assert sim.stats()["faults"] == {"503": 1, "529": 2}


def test_drop_slow_and_malformed(sim: SimHandle, client: httpx.Client) -> None:
    sim.configure(rate_drop=1.0)
    with pytest.raises(httpx.TransportError):
        post(client)
    sim.configure(rate_drop=0.0, rate_slow=1.0, slow_ms=150)
    started = time.monotonic()
    slow = post(client)
    assert time.monotonic() - started >= 0.14
    Message.model_validate(slow.json(), strict=True)
    sim.configure(rate_slow=0.0, rate_malformed=1.0)
    malformed = post(client)
    assert malformed.status_code == 200
    assert malformed.content.startswith(b'{"id":"msg_')
    with pytest.raises(json.JSONDecodeError):
        json.loads(malformed.content)
    stats = sim.stats()
    assert stats["faults"] == {"drop": 1, "slow": 1, "malformed": 1}
    assert stats["dropped"] == 1 and stats["by_status"] == {"200": 2}


async def _fire(url: str, count: int) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=count)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=5.0) as client:
        return await asyncio.gather(*(client.post(PATH, json=body()) for _ in range(count)))


def test_overload_answers_529(sim: SimHandle, client: httpx.Client) -> None:
    limit = 3
    sim.configure(overload_max_in_flight=limit, latency_ms=200, retry_after_s=1)
    replies = asyncio.run(_fire(sim.base_url, limit + 4))
    statuses = [r.status_code for r in replies]
    assert set(statuses) <= {200, 529}
    assert statuses.count(200) >= limit and statuses.count(529) >= 1
    rejected = next(r for r in replies if r.status_code == 529)
    assert rejected.headers["retry-after"] == "1"
    assert "Overloaded" in assert_error(rejected, 529, "overloaded_error")
    stats = sim.stats()
    assert stats["requests"] == limit + 4
    assert stats["by_status"]["529"] == statuses.count(529)
    assert stats["by_path"] == {PATH: limit + 4}


def test_anthropic_sdk_round_trip(sim: SimHandle, client: httpx.Client) -> None:
    sdk = anthropic.Anthropic(base_url=sim.base_url, api_key="x", max_retries=0)
    message = sdk.messages.create(
        model="claude-sim",
        max_tokens=64,
        system="Be kind.",
        messages=[{"role": "user", "content": "Hi SDK"}],
        metadata={"user_id": "sim-user"},
        extra_body={"temperature": 0.2},
        stop_sequences=["\n\n"],
    )
    assert message.model == "claude-sim"
    assert message.stop_reason == "end_turn"
    assert message.content[0].type == "text"
    assert message.content[0].text.startswith("Simulated reply to: Hi SDK")
    assert message.usage.input_tokens > 0
    raw = sdk.messages.with_raw_response.create(
        model="claude-sim", max_tokens=64, messages=[{"role": "user", "content": "Hi"}]
    )
    assert raw.headers["request-id"].startswith("req_")
    sim.configure(rate_529=1.0)
    with pytest.raises(anthropic.OverloadedError) as overloaded:
        sdk.messages.create(
            model="claude-sim", max_tokens=8, messages=[{"role": "user", "content": "Hi"}]
        )
    assert overloaded.value.status_code == 529
    assert overloaded.value.request_id is not None
    sim.configure(rate_529=0.0)
    with pytest.raises(anthropic.BadRequestError):
        sdk.messages.create(model="claude-sim", max_tokens=8, messages=[])


def test_rate_529_config() -> None:
    assert SimConfig(rate_529=1).rate_529 == 1.0
    assert SimConfig().fault_rates == (0.0,) * 7
    with pytest.raises(ValueError, match="between 0 and 1"):
        SimConfig(rate_529=1.5)
