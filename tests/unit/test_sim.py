"""The simulated upstream's endpoints over real HTTP: reply shapes (checked against the openai
SDK's models), determinism, token accounting and truncation, 4xx answers."""

from __future__ import annotations

import base64
import json
import struct
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from openai.types import CreateEmbeddingResponse
from openai.types.chat import ChatCompletion
from openai.types.responses import Response

from batchgate.sim import SimHandle


@pytest.fixture
def client(sim: SimHandle) -> Iterator[httpx.Client]:
    # conftest's ``sim`` fixture has already reset the config and the counters.
    with httpx.Client(base_url=sim.base_url, timeout=5.0) as c:
        yield c


def chat(client: httpx.Client, content: Any = "Hello", **extra: Any) -> httpx.Response:
    body = {"model": "sim-model", "messages": [{"role": "user", "content": content}], **extra}
    return client.post("/v1/chat/completions", json=body)


def test_chat_completion_shape(client: httpx.Client) -> None:
    reply = chat(client, "Hello")
    assert reply.status_code == 200
    assert reply.headers["content-type"] == "application/json"
    assert reply.headers["x-request-id"].startswith("req_")
    data = reply.json()
    completion = ChatCompletion.model_validate(data, strict=True)
    assert completion.object == "chat.completion"
    assert completion.id.startswith("chatcmpl-") and len(completion.id) == len("chatcmpl-") + 16
    assert completion.model == "sim-model"
    choice = completion.choices[0]
    assert choice.finish_reason == "stop"
    assert choice.message.role == "assistant"
    assert choice.message.content is not None
    assert choice.message.content.startswith("Simulated reply to: Hello")
    assert data["choices"][0]["message"]["refusal"] is None
    assert data["system_fingerprint"] is None
    usage = completion.usage
    assert usage is not None
    assert usage.prompt_tokens == 2 + 4  # ceil(5 / 4) + 4 per message
    assert usage.completion_tokens == (len(choice.message.content) + 3) // 4
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


def test_chat_is_deterministic_and_depends_on_prompt(client: httpx.Client) -> None:
    first = chat(client, "Tell me about tides").json()
    second = chat(client, "Tell me about tides").json()
    other = chat(client, "Tell me about volcanoes").json()
    text = first["choices"][0]["message"]["content"]
    assert second["choices"][0]["message"]["content"] == text
    assert first["id"] != second["id"]
    assert other["choices"][0]["message"]["content"] != text


def test_chat_content_parts_equal_plain_string(client: httpx.Client) -> None:
    plain = chat(client, "Describe a cat").json()
    parts = chat(client, [{"type": "text", "text": "Describe a cat"}]).json()
    assert parts["choices"][0]["message"]["content"] == plain["choices"][0]["message"]["content"]
    assert parts["usage"] == plain["usage"]


@pytest.mark.parametrize("field", ["max_tokens", "max_completion_tokens"])
def test_chat_truncation_gives_finish_reason_length(client: httpx.Client, field: str) -> None:
    full = chat(client, "A long question").json()["choices"][0]["message"]["content"]
    data = chat(client, "A long question", **{field: 3}).json()
    choice = data["choices"][0]
    assert choice["finish_reason"] == "length"
    assert data["usage"]["completion_tokens"] == 3
    assert full.startswith(choice["message"]["content"])
    assert len(choice["message"]["content"]) == 12
    ChatCompletion.model_validate(data)


def test_chat_n_choices(client: httpx.Client) -> None:
    data = chat(client, "Hi", n=3).json()
    assert [c["index"] for c in data["choices"]] == [0, 1, 2]
    single = chat(client, "Hi").json()
    assert data["usage"]["completion_tokens"] == 3 * single["usage"]["completion_tokens"]


def test_chat_tool_call_for_weather(client: httpx.Client) -> None:
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "parameters": {
                    "type": "object",
                    "properties": {
                        "city": {"type": "string"},
                        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                    },
                },
            },
        }
    ]
    data = chat(client, "What is the weather in Oslo?", tools=tools).json()
    completion = ChatCompletion.model_validate(data)
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    assert choice.message.tool_calls is not None
    call = choice.message.tool_calls[0]
    assert call.type == "function"
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {
        "city": "Paris",
        "unit": "celsius",
    }
    # Without "weather", or with tool_choice "none", a plain text reply.
    plain = chat(client, "Hello", tools=tools).json()["choices"][0]
    assert plain["finish_reason"] == "stop" and plain["message"]["content"]
    none = chat(client, "weather?", tools=tools, tool_choice="none").json()["choices"][0]
    assert none["finish_reason"] == "stop"


def test_openai_sdk_round_trip(sim: SimHandle, client: httpx.Client) -> None:
    sdk = openai.OpenAI(base_url=sim.url, api_key="sk-sim", max_retries=0)
    completion = sdk.chat.completions.create(
        model="any-model-name", messages=[{"role": "user", "content": "Hi SDK"}]
    )
    assert completion.model == "any-model-name"
    assert completion.choices[0].message.content
    embedding = sdk.embeddings.create(model="sim-embed", input="hello")  # SDK asks for base64
    direct = client.post("/v1/embeddings", json={"model": "sim-embed", "input": "hello"})
    assert embedding.data[0].embedding == direct.json()["data"][0]["embedding"]
    models = [m.id for m in sdk.models.list()]
    assert models == ["sim-model", "sim-embed"]


def test_completions_one_choice_per_prompt(client: httpx.Client) -> None:
    reply = client.post(
        "/v1/completions", json={"model": "sim-model", "prompt": ["Once upon", "In a galaxy"]}
    )
    data = reply.json()
    assert reply.status_code == 200
    assert data["object"] == "text_completion"
    assert data["id"].startswith("cmpl-")
    assert [c["index"] for c in data["choices"]] == [0, 1]
    assert all(c["finish_reason"] == "stop" and c["logprobs"] is None for c in data["choices"])
    assert "Once upon" in data["choices"][0]["text"]
    assert data["usage"]["prompt_tokens"] == 3 + 3
    single = client.post("/v1/completions", json={"model": "m", "prompt": "x", "max_tokens": 2})
    assert single.json()["choices"][0]["finish_reason"] == "length"
    assert single.json()["usage"]["completion_tokens"] == 2


def test_embeddings_shape_determinism_and_base64(client: httpx.Client) -> None:
    body = {"model": "sim-embed", "input": ["alpha", "beta"]}
    data = client.post("/v1/embeddings", json=body).json()
    parsed = CreateEmbeddingResponse.model_validate(data, strict=True)
    assert [d.index for d in parsed.data] == [0, 1]
    vectors = [d.embedding for d in parsed.data]
    assert all(len(v) == 8 for v in vectors)
    assert vectors[0] != vectors[1]
    assert abs(sum(x * x for x in vectors[0]) - 1.0) < 1e-5
    assert client.post("/v1/embeddings", json=body).json()["data"] == data["data"]
    assert data["usage"] == {"prompt_tokens": 2 + 1, "total_tokens": 3}

    packed = client.post("/v1/embeddings", json={**body, "encoding_format": "base64"}).json()
    for item, vector in zip(packed["data"], vectors, strict=True):
        raw = base64.b64decode(item["embedding"])
        assert list(struct.unpack(f"<{len(raw) // 4}f", raw)) == vector


def test_embeddings_token_input_and_dimensions(client: httpx.Client) -> None:
    one = client.post("/v1/embeddings", json={"model": "e", "input": [1, 2, 3]}).json()
    assert len(one["data"]) == 1 and one["usage"]["prompt_tokens"] == 3
    many = client.post("/v1/embeddings", json={"model": "e", "input": [[1, 2], [3]]}).json()
    assert len(many["data"]) == 2 and many["usage"]["prompt_tokens"] == 3
    wide = client.post("/v1/embeddings", json={"model": "e", "input": "x", "dimensions": 100})
    assert len(wide.json()["data"][0]["embedding"]) == 100


def test_responses_shape_and_truncation(client: httpx.Client) -> None:
    data = client.post("/v1/responses", json={"model": "sim-model", "input": "Ping"}).json()
    parsed = Response.model_validate(data)
    assert parsed.status == "completed"
    assert parsed.output_text.startswith("Simulated reply to: Ping")
    assert data["usage"]["input_tokens"] == 1 + 4
    assert data["usage"]["total_tokens"] == (
        data["usage"]["input_tokens"] + data["usage"]["output_tokens"]
    )
    assert data["usage"]["input_tokens_details"]["cached_tokens"] == 0
    messages = [{"role": "user", "content": [{"type": "input_text", "text": "Ping"}]}]
    listed = client.post("/v1/responses", json={"model": "sim-model", "input": messages}).json()
    assert Response.model_validate(listed).output_text == parsed.output_text
    cut = client.post(
        "/v1/responses", json={"model": "sim-model", "input": "Ping", "max_output_tokens": 2}
    ).json()
    assert cut["status"] == "incomplete"
    assert cut["incomplete_details"] == {"reason": "max_output_tokens"}
    assert cut["usage"]["output_tokens"] == 2


def test_models_list_and_lookup(sim: SimHandle, client: httpx.Client) -> None:
    data = client.get("/v1/models").json()
    assert data == {
        "object": "list",
        "data": [
            {"id": name, "object": "model", "created": 0, "owned_by": "batchgate-sim"}
            for name in ("sim-model", "sim-embed")
        ],
    }
    assert client.get("/v1/models/sim-embed").json()["id"] == "sim-embed"
    assert client.get("/v1/models/nope").status_code == 404
    sim.configure(models=["only-one"])
    assert [m["id"] for m in client.get("/v1/models").json()["data"]] == ["only-one"]


def assert_error(reply: httpx.Response, status: int, param: str | None = None) -> dict[str, Any]:
    assert reply.status_code == status
    error = reply.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    return dict(error)


def test_invalid_requests_get_openai_400s(client: httpx.Client) -> None:
    bad_json = client.post("/v1/chat/completions", content=b'{"model": ')
    assert_error(bad_json, 400)
    assert_error(client.post("/v1/chat/completions", content=b"[1, 2]"), 400)
    no_model = client.post("/v1/chat/completions", json={"messages": []})
    assert_error(no_model, 400, "model")
    no_messages = client.post("/v1/chat/completions", json={"model": "m"})
    assert_error(no_messages, 400, "messages")
    assert_error(client.post("/v1/embeddings", json={"model": "m"}), 400, "input")
    assert_error(chat(client, "x", max_tokens=0), 400, "max_tokens")
    assert_error(chat(client, "x", stream=True), 400, "stream")
    stats = client.get("/_sim/stats").json()
    assert stats["by_status"] == {"400": 7}


def test_fail_model_prefix_is_a_deterministic_400(sim: SimHandle, client: httpx.Client) -> None:
    body = {"model": "fail-line-7", "messages": [{"role": "user", "content": "x"}]}
    for _ in range(2):
        error = assert_error(client.post("/v1/chat/completions", json=body), 400, "model")
        assert error["code"] == "model_not_found"
    embed = client.post("/v1/embeddings", json={"model": "fail-e", "input": "x"})
    assert assert_error(embed, 400, "model")["code"] == "model_not_found"
    sim.configure(fail_model_prefix="")
    assert client.post("/v1/chat/completions", json=body).status_code == 200


def test_unknown_path_is_404(client: httpx.Client) -> None:
    reply = client.post("/v1/nothing", json={})
    assert reply.status_code == 404
    assert reply.json()["error"]["code"] == "unknown_url"
    assert client.get("/v1/chat/completions").status_code == 404
    assert client.get("/_sim/stats").json()["requests"] == 0
