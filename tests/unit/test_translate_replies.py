"""Replies and errors both ways, wire spec §4.2 and §3.5 (batchgate.providers.translate)."""

from __future__ import annotations

import time
from typing import Any

import pytest
from anthropic.types import Message
from openai.types.chat import ChatCompletion

from batchgate.providers.translate import (
    FINISH_REASONS,
    STOP_REASONS,
    TranslationError,
    anthropic_error_from_openai,
    chat_id,
    chat_reply_to_message,
    message_id,
    messages_reply_to_chat,
    openai_error_from_anthropic,
)

USAGE = {"input_tokens": 12, "output_tokens": 9}


def anthropic_message(content: list[Any], **fields: Any) -> dict[str, Any]:
    message = {
        "id": "msg_01XYZ",
        "type": "message",
        "role": "assistant",
        "model": "local-model",
        "content": content,
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": USAGE,
    }
    return {**message, **fields}


def chat_completion(message: dict[str, Any], **choice: Any) -> dict[str, Any]:
    return {
        "id": "chatcmpl-01XYZ",
        "object": "chat.completion",
        "created": 1767225700,
        "model": "local-model",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", **message},
                "finish_reason": "stop",
                **choice,
            }
        ],
        "usage": {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15},
    }


def to_chat(message: dict[str, Any]) -> dict[str, Any]:
    reply = messages_reply_to_chat(message, created=1767225700)
    ChatCompletion.model_validate(reply, strict=True)
    return reply


def to_message(completion: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    reply = chat_reply_to_message(completion, **kwargs)
    Message.model_validate(reply, strict=True)
    return reply


TEXT = {"type": "text", "text": "Hello."}
TOOL_USE = {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}}
TOOL_CALL = {
    "id": "toolu_1",
    "type": "function",
    "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
}


# --- Anthropic Message → chat.completion --------------------------------------------------------


def test_the_spec_example_message_becomes_the_spec_completion() -> None:
    reply = to_chat(anthropic_message([TEXT, TOOL_USE], stop_reason="tool_use"))
    assert reply == {
        "id": "chatcmpl-01XYZ",
        "object": "chat.completion",
        "created": 1767225700,
        "model": "local-model",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "Hello.",
                    "refusal": None,
                    "tool_calls": [TOOL_CALL],
                },
                "logprobs": None,
                "finish_reason": "tool_calls",
            }
        ],
        "usage": {
            "prompt_tokens": 12,
            "completion_tokens": 9,
            "total_tokens": 21,
            "prompt_tokens_details": {"cached_tokens": 0},
        },
        "system_fingerprint": None,
    }


# (id, Anthropic content, OpenAI message.content expected, tool_calls expected)
MESSAGE_CONTENT: list[tuple[str, list[Any], str | None, list[Any] | None]] = [
    ("one text", [TEXT], "Hello.", None),
    ("texts joined", [TEXT, {"type": "text", "text": " Bye."}], "Hello. Bye.", None),
    ("no content", [], "", None),
    ("only tool_use: null content", [TOOL_USE], None, [TOOL_CALL]),
    ("text and tool_use", [TEXT, TOOL_USE], "Hello.", [TOOL_CALL]),
    (
        "thinking dropped",
        [
            {"type": "thinking", "thinking": "hmm", "signature": "s"},
            {"type": "redacted_thinking", "data": "x"},
            TEXT,
        ],
        "Hello.",
        None,
    ),
    (
        "two tool uses keep their ids",
        [TOOL_USE, {**TOOL_USE, "id": "toolu_2", "input": {}}],
        None,
        [
            TOOL_CALL,
            {**TOOL_CALL, "id": "toolu_2", "function": {"name": "get_weather", "arguments": "{}"}},
        ],
    ),
]


@pytest.mark.parametrize(
    ("content", "text", "calls"),
    [c[1:] for c in MESSAGE_CONTENT],
    ids=[c[0] for c in MESSAGE_CONTENT],
)
def test_message_content_to_chat(
    content: list[Any], text: str | None, calls: list[Any] | None
) -> None:
    message = to_chat(anthropic_message(content))["choices"][0]["message"]
    assert message["content"] == text
    assert message.get("tool_calls") == calls


def test_a_block_with_no_openai_slot_is_refused() -> None:
    block = {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {}}
    with pytest.raises(TranslationError) as info:
        messages_reply_to_chat(anthropic_message([TEXT, block]))
    assert info.value.param == "content[1].type"
    assert "'server_tool_use'" in info.value.message


@pytest.mark.parametrize(("stop_reason", "finish_reason"), sorted(FINISH_REASONS.items()))
def test_stop_reason_to_finish_reason(stop_reason: str, finish_reason: str) -> None:
    reply = to_chat(anthropic_message([TEXT], stop_reason=stop_reason))
    assert reply["choices"][0]["finish_reason"] == finish_reason


def test_stop_reason_table_is_the_spec() -> None:
    assert FINISH_REASONS == {
        "end_turn": "stop",
        "stop_sequence": "stop",
        "pause_turn": "stop",
        "max_tokens": "length",
        "model_context_window_exceeded": "length",
        "tool_use": "tool_calls",
        "refusal": "content_filter",
    }


@pytest.mark.parametrize("stop_reason", [None, "something_new"])
def test_missing_or_unknown_stop_reason_is_stop(stop_reason: str | None) -> None:
    reply = to_chat(anthropic_message([TEXT], stop_reason=stop_reason))
    assert reply["choices"][0]["finish_reason"] == "stop"


# (id, Anthropic usage, OpenAI usage expected)
MESSAGE_USAGE: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    (
        "plain",
        {"input_tokens": 12, "output_tokens": 9},
        {
            "prompt_tokens": 12,
            "completion_tokens": 9,
            "total_tokens": 21,
            "prompt_tokens_details": {"cached_tokens": 0},
        },
    ),
    (
        "cache read",
        {"input_tokens": 2, "output_tokens": 5, "cache_read_input_tokens": 100},
        {
            "prompt_tokens": 102,
            "completion_tokens": 5,
            "total_tokens": 107,
            "prompt_tokens_details": {"cached_tokens": 100},
        },
    ),
    (
        "cache write and read",
        {
            "input_tokens": 2,
            "output_tokens": 5,
            "cache_creation_input_tokens": 30,
            "cache_read_input_tokens": 100,
        },
        {
            "prompt_tokens": 132,
            "completion_tokens": 5,
            "total_tokens": 137,
            "prompt_tokens_details": {"cached_tokens": 100, "cache_write_tokens": 30},
        },
    ),
    (
        "nulls and batch tier",
        {
            "input_tokens": 4,
            "output_tokens": 1,
            "cache_creation_input_tokens": None,
            "cache_read_input_tokens": None,
            "service_tier": "batch",
        },
        {
            "prompt_tokens": 4,
            "completion_tokens": 1,
            "total_tokens": 5,
            "prompt_tokens_details": {"cached_tokens": 0},
        },
    ),
]


@pytest.mark.parametrize(
    ("usage", "expected"), [c[1:] for c in MESSAGE_USAGE], ids=[c[0] for c in MESSAGE_USAGE]
)
def test_message_usage_to_chat(usage: dict[str, Any], expected: dict[str, Any]) -> None:
    assert to_chat(anthropic_message([TEXT], usage=usage))["usage"] == expected


def test_created_defaults_to_now() -> None:
    before = int(time.time())
    created = messages_reply_to_chat(anthropic_message([TEXT]))["created"]
    assert before <= created <= int(time.time())


# (id, one id, the other)
IDS = [
    ("msg prefix swapped", "msg_01XYZ", "chatcmpl-01XYZ"),
    ("unprefixed", "abc", "chatcmpl-abc"),
]


@pytest.mark.parametrize(("anthropic", "openai"), [c[1:] for c in IDS], ids=[c[0] for c in IDS])
def test_ids_swap_prefixes(anthropic: str, openai: str) -> None:
    assert chat_id(anthropic) == openai
    assert to_chat(anthropic_message([TEXT], id=anthropic))["id"] == openai


@pytest.mark.parametrize(
    ("openai", "anthropic"),
    [("chatcmpl-01XYZ", "msg_01XYZ"), ("cmpl-9", "msg_cmpl-9"), ("chatcmpl-tool-3", "msg_tool-3")],
)
def test_ids_swap_prefixes_back(openai: str, anthropic: str) -> None:
    assert message_id(openai) == anthropic
    assert to_message(chat_completion({"content": "x"}) | {"id": openai})["id"] == anthropic


# --- chat.completion → Anthropic Message --------------------------------------------------------


def test_the_spec_example_completion_becomes_a_message() -> None:
    reply = to_message(chat_completion({"content": "Hello.", "refusal": None}, logprobs=None))
    assert reply == {
        "id": "msg_01XYZ",
        "type": "message",
        "role": "assistant",
        "model": "local-model",
        "content": [TEXT],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {
            "input_tokens": 12,
            "output_tokens": 3,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
        },
    }


# (id, OpenAI message fields, Anthropic content expected)
CHAT_CONTENT: list[tuple[str, dict[str, Any], list[Any]]] = [
    ("text", {"content": "Hello."}, [TEXT]),
    ("empty text", {"content": ""}, []),
    ("null content", {"content": None}, []),
    ("tool calls only", {"content": None, "tool_calls": [TOOL_CALL]}, [TOOL_USE]),
    ("text and tool calls", {"content": "Hello.", "tool_calls": [TOOL_CALL]}, [TEXT, TOOL_USE]),
    (
        "empty arguments",
        {"tool_calls": [{**TOOL_CALL, "function": {"name": "now", "arguments": ""}}]},
        [{**TOOL_USE, "name": "now", "input": {}}],
    ),
    (
        "refusal kept as text",
        {"content": None, "refusal": "I can't."},
        [{"type": "text", "text": "I can't."}],
    ),
]


@pytest.mark.parametrize(
    ("message", "content"), [c[1:] for c in CHAT_CONTENT], ids=[c[0] for c in CHAT_CONTENT]
)
def test_chat_content_to_message(message: dict[str, Any], content: list[Any]) -> None:
    assert to_message(chat_completion(message))["content"] == content


@pytest.mark.parametrize(("finish_reason", "stop_reason"), sorted(STOP_REASONS.items()))
def test_finish_reason_to_stop_reason(finish_reason: str, stop_reason: str) -> None:
    reply = to_message(chat_completion({"content": "x"}, finish_reason=finish_reason))
    assert (reply["stop_reason"], reply["stop_sequence"]) == (stop_reason, None)


# (id, choice fields, stop_sequences given, (stop_reason, stop_sequence) expected)
STOP_SEQUENCES: list[tuple[str, dict[str, Any], list[str], tuple[Any, Any]]] = [
    ("no hint", {}, ["END"], ("end_turn", None)),
    ("vLLM names the stop string", {"stop_reason": "END"}, ["END"], ("stop_sequence", "END")),
    ("stop string, none given", {"stop_reason": "END"}, [], ("stop_sequence", "END")),
    ("not one of ours", {"stop_reason": "OTHER"}, ["END"], ("end_turn", None)),
    ("stop token id", {"stop_reason": 128009}, ["END"], ("end_turn", None)),
    (
        "only with finish stop",
        {"finish_reason": "length", "stop_reason": "END"},
        ["END"],
        ("max_tokens", None),
    ),
    ("unknown finish_reason", {"finish_reason": "abort"}, [], (None, None)),
    ("null finish_reason", {"finish_reason": None}, [], (None, None)),
]


@pytest.mark.parametrize(
    ("choice", "stops", "expected"),
    [c[1:] for c in STOP_SEQUENCES],
    ids=[c[0] for c in STOP_SEQUENCES],
)
def test_stop_sequence_when_the_upstream_names_it(
    choice: dict[str, Any], stops: list[str], expected: tuple[Any, Any]
) -> None:
    reply = to_message(chat_completion({"content": "x"}, **choice), stop_sequences=stops)
    assert (reply["stop_reason"], reply["stop_sequence"]) == expected


# (id, OpenAI usage (None = absent), Anthropic usage expected)
CHAT_USAGE: list[tuple[str, dict[str, Any] | None, dict[str, int]]] = [
    (
        "plain",
        {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15},
        {
            "input_tokens": 12,
            "output_tokens": 3,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
        },
    ),
    (
        "cached",
        {
            "prompt_tokens": 120,
            "completion_tokens": 3,
            "total_tokens": 123,
            "prompt_tokens_details": {"cached_tokens": 100},
        },
        {
            "input_tokens": 20,
            "output_tokens": 3,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 100,
        },
    ),
    (
        "cached and written",
        {
            "prompt_tokens": 150,
            "completion_tokens": 3,
            "total_tokens": 153,
            "prompt_tokens_details": {"cached_tokens": 100, "cache_write_tokens": 30},
        },
        {
            "input_tokens": 20,
            "output_tokens": 3,
            "cache_creation_input_tokens": 30,
            "cache_read_input_tokens": 100,
        },
    ),
    (
        "null details",
        {
            "prompt_tokens": 5,
            "completion_tokens": 1,
            "total_tokens": 6,
            "prompt_tokens_details": None,
        },
        {
            "input_tokens": 5,
            "output_tokens": 1,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
        },
    ),
    (
        "absent",
        None,
        {
            "input_tokens": 0,
            "output_tokens": 0,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
        },
    ),
]


@pytest.mark.parametrize(
    ("usage", "expected"), [c[1:] for c in CHAT_USAGE], ids=[c[0] for c in CHAT_USAGE]
)
def test_chat_usage_to_message(usage: dict[str, Any] | None, expected: dict[str, int]) -> None:
    completion = chat_completion({"content": "x"}) | {"usage": usage}
    assert to_message(completion)["usage"] == expected


# (id, completion change, param named by the error, words the message must contain)
CHAT_REPLY_REFUSALS: list[tuple[str, dict[str, Any], str, str]] = [
    ("two choices", {"choices": [{}, {}]}, "choices", "exactly one"),
    ("no choices", {"choices": []}, "choices", "0 choices"),
    (
        "invalid arguments",
        {
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "tool_calls",
                    "message": {
                        "role": "assistant",
                        "tool_calls": [
                            {**TOOL_CALL, "function": {"name": "f", "arguments": "{bad"}}
                        ],
                    },
                }
            ]
        },
        "choices[0].message.tool_calls[0].function.arguments",
        "not valid JSON",
    ),
    (
        "custom tool call",
        {
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "tool_calls",
                    "message": {
                        "role": "assistant",
                        "tool_calls": [{"id": "c", "type": "custom", "custom": {}}],
                    },
                }
            ]
        },
        "choices[0].message.tool_calls[0].type",
        "only function tool calls",
    ),
]


@pytest.mark.parametrize(
    ("change", "param", "words"),
    [c[1:] for c in CHAT_REPLY_REFUSALS],
    ids=[c[0] for c in CHAT_REPLY_REFUSALS],
)
def test_chat_reply_refusals_name_the_field(change: dict[str, Any], param: str, words: str) -> None:
    with pytest.raises(TranslationError) as info:
        chat_reply_to_message(chat_completion({"content": "x"}) | change)
    assert info.value.param == param
    assert words in info.value.message


# --- error envelopes ------------------------------------------------------------------------------

# (status, Anthropic error.type expected), wire spec §3.5
ANTHROPIC_TYPES = [
    (400, "invalid_request_error"),
    (401, "authentication_error"),
    (402, "billing_error"),
    (403, "permission_error"),
    (404, "not_found_error"),
    (409, "conflict_error"),
    (413, "request_too_large"),
    (422, "invalid_request_error"),
    (429, "rate_limit_error"),
    (500, "api_error"),
    (502, "api_error"),
    (503, "api_error"),
    (504, "timeout_error"),
    (529, "overloaded_error"),
]


@pytest.mark.parametrize(("status", "kind"), ANTHROPIC_TYPES)
def test_anthropic_error_type_by_status(status: int, kind: str) -> None:
    body = {"error": {"message": "boom", "type": "x", "param": None, "code": None}}
    assert anthropic_error_from_openai(status, body) == {
        "type": "error",
        "error": {"type": kind, "message": "boom"},
        "request_id": None,
    }


def test_anthropic_error_carries_the_request_id() -> None:
    assert anthropic_error_from_openai(500, None, request_id="req_1")["request_id"] == "req_1"


OPENAI_TYPES = [
    (400, "invalid_request_error"),
    (401, "authentication_error"),
    (403, "permission_error"),
    (404, "not_found_error"),
    (409, "conflict_error"),
    (413, "invalid_request_error"),
    (429, "rate_limit_error"),
    (500, "server_error"),
    (529, "server_error"),
]


@pytest.mark.parametrize(("status", "kind"), OPENAI_TYPES)
def test_openai_error_type_by_status(status: int, kind: str) -> None:
    body = {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "boom"},
        "request_id": "req_1",
    }
    assert openai_error_from_anthropic(status, body) == {
        "error": {"message": "boom", "type": kind, "param": None, "code": None}
    }


# (id, upstream body, message expected)
UPSTREAM_MESSAGES: list[tuple[str, Any, str]] = [
    ("openai envelope", {"error": {"message": "Bad model."}}, "Bad model."),
    (
        "anthropic envelope",
        {"type": "error", "error": {"type": "x", "message": "Too big."}},
        "Too big.",
    ),
    ("bare error string", {"error": "nope"}, "nope"),
    (
        "vLLM message",
        {"object": "error", "message": "Context too long.", "code": 400},
        "Context too long.",
    ),
    ("FastAPI detail", {"detail": "Not Found"}, "Not Found"),
    ("no message", {"error": {}}, "The upstream answered HTTP 418 without an error message."),
    ("no body", None, "The upstream answered HTTP 418 without an error message."),
]


@pytest.mark.parametrize(
    ("body", "message"), [c[1:] for c in UPSTREAM_MESSAGES], ids=[c[0] for c in UPSTREAM_MESSAGES]
)
def test_the_upstream_message_is_kept(body: Any, message: str) -> None:
    assert anthropic_error_from_openai(418, body)["error"]["message"] == message
    assert openai_error_from_anthropic(418, body)["error"]["message"] == message
